//! Parse a Table API write body at the edge: known, writable fields only (unknown and system
//! fields are ignored, as ServiceNow does), values checked against their field's kind, choices
//! and length, journal fields split off as entries to append.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sluice_core::DateTime;
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_core::validate::{ErrorCode, FieldError};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecordInput {
    pub values: BTreeMap<String, String>,
    pub journal: Vec<(String, String)>,
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        // A reference echoed back as {"value": ..., "link": ...} or {"display_value", "value"}.
        Value::Object(o) => o.get("value").and_then(scalar),
        Value::Array(_) => None,
    }
}

pub fn parse(
    schema: &TableSchema,
    body: &Map<String, Value>,
    input_display_value: bool,
) -> Result<RecordInput, Vec<FieldError>> {
    let mut input = RecordInput::default();
    let mut errors = Vec::new();
    for (key, raw) in body {
        let Some(field) = schema.visible_field(key) else { continue };
        if key.starts_with("sys_") || (key == "number" && schema.display_field == "number") {
            continue;
        }
        let err = |code, message: String| FieldError { code, field: key.clone(), message, path: None };
        let Some(text) = scalar(raw) else {
            errors.push(err(ErrorCode::WrongType, "expected a single value, got an array".into()));
            continue;
        };
        if field.kind == FieldKind::Journal {
            if !text.trim().is_empty() {
                input.journal.push((key.clone(), text));
            }
            continue;
        }
        if let Some(max) = field.max_length {
            let len = text.chars().count();
            if len > max {
                errors.push(err(ErrorCode::FieldTooLong, format!("is {len} characters long, at most {max} allowed")));
                continue;
            }
        }
        let trimmed = text.trim();
        let value = if !field.choices.is_empty() && !trimmed.is_empty() {
            // Labels are accepted for choices (always with sysparm_input_display_value=true).
            let by_value = field.choices.iter().find(|c| c.value == trimmed);
            let by_label = field.choices.iter().find(|c| c.label.eq_ignore_ascii_case(trimmed));
            match by_value.or(if input_display_value || by_value.is_none() { by_label } else { None }) {
                Some(choice) => choice.value.clone(),
                None => {
                    let allowed: Vec<&str> = field.choices.iter().map(|c| c.value.as_str()).collect();
                    errors.push(err(
                        ErrorCode::InvalidChoice,
                        format!("{trimmed:?} is not one of {}", allowed.join(", ")),
                    ));
                    continue;
                }
            }
        } else {
            match &field.kind {
                FieldKind::Integer if !trimmed.is_empty() => match trimmed.parse::<i64>() {
                    Ok(i) => i.to_string(),
                    Err(_) => {
                        errors.push(err(ErrorCode::WrongType, format!("{trimmed:?} is not an integer")));
                        continue;
                    }
                },
                FieldKind::Boolean if !trimmed.is_empty() => match trimmed.to_ascii_lowercase().as_str() {
                    "true" | "1" => "true".into(),
                    "false" | "0" => "false".into(),
                    _ => {
                        errors.push(err(ErrorCode::WrongType, format!("{trimmed:?} is not true or false")));
                        continue;
                    }
                },
                FieldKind::DateTime if !trimmed.is_empty() => match DateTime::parse(trimmed) {
                    Ok(d) => d.to_string(),
                    Err(_) => {
                        errors.push(err(
                            ErrorCode::WrongType,
                            format!("{trimmed:?} is not a date-time yyyy-MM-dd HH:mm:ss (UTC)"),
                        ));
                        continue;
                    }
                },
                FieldKind::Reference(_) => trimmed.to_owned(),
                _ => text,
            }
        };
        input.values.insert(key.clone(), value);
    }
    if errors.is_empty() { Ok(input) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_core::tables;

    fn run(body: Value, display: bool) -> Result<RecordInput, Vec<FieldError>> {
        parse(&tables::incident(), body.as_object().unwrap(), display)
    }

    #[test]
    fn numbers_labels_and_journal() {
        let input = run(
            json!({"impact": 1, "urgency": "3 - Low", "active": "TRUE", "work_notes": "checked", "sys_id": "x",
                   "number": "INC9", "bogus": 1, "caller_id": {"value": "abc", "link": "l"}}),
            false,
        )
        .unwrap();
        assert_eq!(input.values["impact"], "1");
        assert_eq!(input.values["urgency"], "3");
        assert_eq!(input.values["active"], "true");
        assert_eq!(input.values["caller_id"], "abc");
        assert!(!input.values.contains_key("sys_id") && !input.values.contains_key("number"));
        assert_eq!(input.journal, vec![("work_notes".to_owned(), "checked".to_owned())]);
    }

    #[test]
    fn bad_values_are_all_reported() {
        let errors = run(json!({"impact": "9", "reopen_count": "many", "opened_at": "soon"}), false).unwrap_err();
        let codes: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            codes,
            vec![
                ("impact", ErrorCode::InvalidChoice),
                ("reopen_count", ErrorCode::WrongType),
                ("opened_at", ErrorCode::WrongType)
            ]
        );
    }
}
