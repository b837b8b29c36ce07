//! The encoded-query parser (`sysparm_query`): any text either parses (unknown fields set aside,
//! relative dates evaluated against a fixed now) or is refused with an error naming a term,
//! without a panic; what parses reads back the same from its canonical text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::DateTime;
use sluice_core::query::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let now = DateTime::from_unix(1_796_571_737);
        if let Ok(query) = parse(text, now) {
            assert_eq!(parse(&query.to_string(), now), Ok(query));
        }
    }
});
