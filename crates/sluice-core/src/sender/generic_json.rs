//! `generic-json`: the body is one JSON object (one row) or an array of objects (one row each).

use serde_json::Value;

use super::{Documents, SenderError};

pub fn split(body: Value) -> Result<Documents, SenderError> {
    let rows = match body {
        Value::Object(object) => vec![object],
        Value::Array(items) if items.is_empty() => {
            return Err(SenderError::Shape("the array is empty: send at least one object".into()));
        }
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(object) => Ok(object),
                _ => Err(SenderError::Shape(format!("[{i}] is not a JSON object"))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(SenderError::Shape("the body must be a JSON object or an array of objects".into())),
    };
    Ok(Documents { rows, truncated_alerts: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_is_one_row_and_an_array_one_row_per_object() {
        let one = split(json!({"host": "db-01"})).unwrap();
        assert_eq!(one.rows.len(), 1);
        assert_eq!(one.rows[0]["host"], "db-01");
        let many = split(json!([{"n": 1}, {"n": 2}])).unwrap();
        assert_eq!(many.rows.iter().map(|r| r["n"].clone()).collect::<Vec<_>>(), [json!(1), json!(2)]);
    }

    #[test]
    fn anything_else_is_refused_naming_the_place() {
        assert_eq!(split(json!([{"n": 1}, 7])), Err(SenderError::Shape("[1] is not a JSON object".into())));
        assert!(matches!(split(json!([])), Err(SenderError::Shape(_))));
        assert!(matches!(split(json!("text")), Err(SenderError::Shape(_))));
    }
}
