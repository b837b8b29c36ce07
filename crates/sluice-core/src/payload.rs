//! The payload reader: a JSON body as an object, within the nesting and field-count limits.
//! Depth is counted before parsing, so a hostile body costs one pass over its bytes. The server
//! maps each refusal to its HTTP error; the fuzz target `payload` drives this with any bytes.

use serde_json::{Map, Value};

/// Why a body is not a payload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("the body is not a JSON object")]
    NotObject,
    #[error("more than {0} fields")]
    TooManyFields(usize),
}

/// Whether `raw` nests objects and arrays deeper than `max` levels (`{"a": 1}` is one level).
/// Brackets inside strings do not count.
pub fn nests_deeper_than(raw: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in raw {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The deepest nesting serde_json parses: its own recursion limit (128) refuses the 128th level.
pub const PARSER_MAX_DEPTH: usize = 127;

/// Any JSON value nested at most `max_depth` levels. Nesting beyond the parser's own limit is
/// `TooDeep` too, never `Malformed`, whatever `max_depth` says.
pub fn read_value(raw: &[u8], max_depth: usize) -> Result<Value, PayloadError> {
    let max_depth = max_depth.min(PARSER_MAX_DEPTH);
    if nests_deeper_than(raw, max_depth) {
        return Err(PayloadError::TooDeep(max_depth));
    }
    serde_json::from_slice::<Value>(raw).map_err(|e| {
        // serde_json files its recursion limit under `Category::Syntax`: only the text tells.
        if e.to_string().starts_with("recursion limit exceeded") {
            PayloadError::TooDeep(max_depth)
        } else {
            PayloadError::Malformed(e.to_string())
        }
    })
}

/// A JSON object body nested at most `max_depth` levels with at most `max_fields` fields.
pub fn read_object(raw: &[u8], max_depth: usize, max_fields: usize) -> Result<Map<String, Value>, PayloadError> {
    check_object(read_value(raw, max_depth)?, max_depth, max_fields)
}

/// An already parsed value as a payload object: nested at most `max_depth` levels (the object
/// itself is the first), with at most `max_fields` fields. One `insertMultiple` record is
/// checked with this, so that it meets the limits of a single row's body.
pub fn check_object(value: Value, max_depth: usize, max_fields: usize) -> Result<Map<String, Value>, PayloadError> {
    match value {
        Value::Object(object) if object.len() > max_fields => Err(PayloadError::TooManyFields(max_fields)),
        Value::Object(object) if depth_of(&object) > max_depth => Err(PayloadError::TooDeep(max_depth)),
        Value::Object(object) => Ok(object),
        _ => Err(PayloadError::NotObject),
    }
}

/// How deep an object nests objects and arrays, itself included (`{"a": 1}` is 1). Values come
/// from the parser, so the recursion is at most [`PARSER_MAX_DEPTH`] deep.
fn depth_of(object: &Map<String, Value>) -> usize {
    fn value_depth(v: &Value) -> usize {
        match v {
            Value::Object(o) => depth_of(o),
            Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    1 + object.values().map(value_depth).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings() {
        assert!(!nests_deeper_than(br#"{"a": 1}"#, 1));
        assert!(nests_deeper_than(br#"{"a": {"b": 1}}"#, 1));
        assert!(!nests_deeper_than(br#"{"a": "[[[[{{{{", "b": "\"[[["}"#, 1));
        // object, array, object, array: four levels.
        assert!(nests_deeper_than(br#"{"a": [[1], {"b": [2]}]}"#, 3));
        assert!(!nests_deeper_than(br#"{"a": [[1], {"b": [2]}]}"#, 4));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(nests_deeper_than(deep.as_bytes(), 32));
        let wide = format!("[{}]", "[],".repeat(10_000) + "[]");
        assert!(!nests_deeper_than(wide.as_bytes(), 2));
    }

    #[test]
    fn objects_within_the_limits_only() {
        assert_eq!(read_object(br#"{"a": 1}"#, 4, 1).unwrap().len(), 1);
        assert_eq!(read_object(br#"{"a": 1, "b": 2}"#, 4, 1), Err(PayloadError::TooManyFields(1)));
        assert_eq!(read_object(b"[1]", 4, 1), Err(PayloadError::NotObject));
        assert_eq!(read_object(br#"{"a": [[[1]]]}"#, 3, 9), Err(PayloadError::TooDeep(3)));
        assert!(matches!(read_object(b"{\"a\": \xff}", 4, 9), Err(PayloadError::Malformed(_))));
    }

    #[test]
    fn nesting_past_the_parsers_own_limit_is_too_deep_not_malformed() {
        let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        assert!(read_value(nested(PARSER_MAX_DEPTH).as_bytes(), 500).is_ok());
        // A limit above the parser's is read as the parser's.
        assert_eq!(read_value(nested(128).as_bytes(), 500), Err(PayloadError::TooDeep(PARSER_MAX_DEPTH)));
        assert_eq!(read_value(nested(100_000).as_bytes(), 500), Err(PayloadError::TooDeep(PARSER_MAX_DEPTH)));
        assert_eq!(
            read_object(format!("{{\"a\": {}}}", nested(200)).as_bytes(), 32, 9),
            Err(PayloadError::TooDeep(32))
        );
    }

    #[test]
    fn parsed_records_meet_the_single_row_limits() {
        let record = |v: Value| check_object(v, 2, 2);
        assert_eq!(record(serde_json::json!({"a": [1]})).unwrap().len(), 1);
        assert_eq!(record(serde_json::json!({"a": [[1]]})), Err(PayloadError::TooDeep(2)));
        assert_eq!(record(serde_json::json!({"a": {"b": {}}})), Err(PayloadError::TooDeep(2)));
        assert_eq!(record(serde_json::json!({"a": 1, "b": 2, "c": 3})), Err(PayloadError::TooManyFields(2)));
        assert_eq!(record(serde_json::json!("x")), Err(PayloadError::NotObject));
    }
}
