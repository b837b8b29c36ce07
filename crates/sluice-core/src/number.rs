//! Record numbers such as `INC0010001`: a prefix and a counter zero-padded to seven digits
//! (it may grow beyond seven, as ServiceNow's does).

/// Where each numbered table's counter starts, as in a fresh ServiceNow instance.
pub const FIRST_NUMBER: u64 = 10_001;
pub const INCIDENT_PREFIX: &str = "INC";
pub const IMPORT_SET_PREFIX: &str = "ISET";

pub fn format(prefix: &str, counter: u64) -> String {
    format!("{prefix}{counter:07}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn pads_to_seven_digits_and_grows_beyond() {
        assert_eq!(super::format("INC", 10_001), "INC0010001");
        assert_eq!(super::format("ISET", 7), "ISET0000007");
        assert_eq!(super::format("INC", 12_345_678), "INC12345678");
    }
}
