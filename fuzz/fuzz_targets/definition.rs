//! The integration definition loader: any TOML text is parsed and checked, reporting problems
//! rather than panicking.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_core::integration::Integration;
use sluice_core::tables::Catalog;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::builtin)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Integration::parse(text, "fuzz.toml", catalog());
    }
});
