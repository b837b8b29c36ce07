//! The payload reader and what follows it for an Import Set row: any bytes are read within the
//! limits (depth 32, 1000 fields), and an object is staged, checked against the built-in
//! integration's payload schema and validated, all without a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_core::integration::Integration;
use sluice_core::tables::Catalog;
use sluice_core::{contract, payload, staging};

fn integration() -> &'static Integration {
    static INTEGRATION: OnceLock<Integration> = OnceLock::new();
    INTEGRATION.get_or_init(|| Integration::builtin_default(&Catalog::builtin()))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = payload::read_object(data, 32, 1000) {
        let integration = integration();
        let staged = staging::stage(integration, &object);
        let _ = contract::verdict(integration, &object, &staged);
    }
});
