//! The encoded-query parser (`sysparm_query`): any text parses (lenient, like ServiceNow: terms
//! it cannot read are set aside) without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sluice_core::query::parse(text);
    }
});
