//! The XML payload reader of the Import Set and Table APIs: any bytes are refused or read into a
//! JSON value within the depth limit (no DTD, no entity expansion), and whatever it reads can be
//! written back as an XML answer, all without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_server::xml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for bulk in [false, true] {
        if let Ok(value) = xml::request_value(text, 32, bulk) {
            let answer = xml::document(&value);
            // The answer is well-formed XML: it reads back.
            assert!(xml::parse(&answer, 64).is_ok(), "unreadable answer {answer:?} for {text:?}");
        }
    }
});
