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

/// A JSON object body nested at most `max_depth` levels with at most `max_fields` fields.
pub fn read_object(raw: &[u8], max_depth: usize, max_fields: usize) -> Result<Map<String, Value>, PayloadError> {
    if nests_deeper_than(raw, max_depth) {
        return Err(PayloadError::TooDeep(max_depth));
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(object)) if object.len() > max_fields => Err(PayloadError::TooManyFields(max_fields)),
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(PayloadError::NotObject),
        Err(e) => Err(PayloadError::Malformed(e.to_string())),
    }
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
}
