//! Table API query parameters, parsed once. Booleans arrive in any case (`True`, `false`); an
//! empty parameter means absent (some clients send every `sysparm_*` empty on every call).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DisplayMode {
    /// Stored values (`sysparm_display_value=false`, the default).
    #[default]
    Value,
    /// Display values: choice labels, referenced records' display fields, journal text.
    Display,
    /// Both, as `{"display_value", "value"}` for every field.
    All,
}

#[derive(Debug, Clone, Default)]
pub struct TableParams {
    pub query: Option<String>,
    pub fields: Option<Vec<String>>,
    pub limit: Option<u64>,
    pub offset: u64,
    pub display: DisplayMode,
    pub exclude_reference_link: bool,
    pub suppress_pagination_header: bool,
    pub input_display_value: bool,
    pub no_count: bool,
    /// `field=value` parameters that are not `sysparm_*`: equality filters on lists.
    pub field_filters: Vec<(String, String)>,
}

use crate::error::ApiError;

pub(crate) fn truthy(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

impl TableParams {
    /// The parameters; a `sysparm_limit` or `sysparm_offset` that is not a whole number from 0
    /// to 2^63−1 is refused (400 `invalid_parameter`), everything else is lenient.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut p = Self::default();
        for (key, value) in pairs {
            if value.is_empty() {
                continue;
            }
            match key.as_str() {
                "sysparm_query" => p.query = Some(value.clone()),
                "sysparm_fields" => {
                    let fields: Vec<String> =
                        value.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
                    p.fields = (!fields.is_empty()).then_some(fields);
                }
                "sysparm_limit" => p.limit = Some(paging(key, value)?),
                "sysparm_offset" => p.offset = paging(key, value)?,
                "sysparm_display_value" => {
                    p.display = match value.to_ascii_lowercase().as_str() {
                        "true" => DisplayMode::Display,
                        "all" => DisplayMode::All,
                        _ => DisplayMode::Value,
                    }
                }
                "sysparm_exclude_reference_link" => p.exclude_reference_link = truthy(value),
                "sysparm_suppress_pagination_header" => p.suppress_pagination_header = truthy(value),
                "sysparm_input_display_value" => p.input_display_value = truthy(value),
                "sysparm_no_count" => p.no_count = truthy(value),
                k if k.starts_with("sysparm_") => {}
                k => p.field_filters.push((k.to_owned(), value.clone())),
            }
        }
        Ok(p)
    }
}

pub(crate) fn paging(key: &str, value: &str) -> Result<u64, ApiError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or_else(|| ApiError::InvalidParameter(format!("{key} is a whole number from 0, not {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn empty_means_absent_and_booleans_ignore_case() {
        let p = TableParams::parse(&pairs(&[
            ("sysparm_query", ""),
            ("sysparm_fields", ""),
            ("sysparm_display_value", "All"),
            ("sysparm_exclude_reference_link", "True"),
            ("sysparm_suppress_pagination_header", "False"),
            ("sysparm_limit", "100"),
            ("number", "INC0010001"),
            ("sysparm_view", "desktop"),
        ]))
        .unwrap();
        assert_eq!(p.query, None);
        assert_eq!(p.fields, None);
        assert_eq!(p.display, DisplayMode::All);
        assert!(p.exclude_reference_link);
        assert!(!p.suppress_pagination_header);
        assert_eq!(p.limit, Some(100));
        assert_eq!(p.field_filters, vec![("number".to_owned(), "INC0010001".to_owned())]);
    }

    #[test]
    fn absurd_paging_is_refused() {
        for (k, v) in [
            ("sysparm_limit", "-1"),
            ("sysparm_limit", "abc"),
            ("sysparm_offset", "1e3"),
            ("sysparm_offset", "99999999999999999999"),
            ("sysparm_limit", "9223372036854775808"),
        ] {
            assert!(TableParams::parse(&pairs(&[(k, v)])).is_err(), "{k}={v}");
        }
        let p =
            TableParams::parse(&pairs(&[("sysparm_limit", " 5 "), ("sysparm_offset", "9223372036854775807")])).unwrap();
        assert_eq!((p.limit, p.offset), (Some(5), i64::MAX as u64));
    }
}
