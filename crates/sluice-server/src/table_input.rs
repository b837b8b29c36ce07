//! Parse a Table API write body at the edge: known, writable fields only (unknown and system
//! fields are ignored, as ServiceNow does), values checked against their field's kind, choices
//! and length, journal fields split off as entries to append.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sluice_core::DateTime;
use sluice_core::schema::{Field, FieldKind, TableSchema};
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

/// How a value that is not one of its field's choices is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choices {
    /// Refused on every choice field (values written by an import's scripts: imports are strict).
    Strict,
    /// Refused only on fields declared strict, otherwise stored as given (the Table API).
    AsDeclared,
}

pub fn parse(
    schema: &TableSchema,
    body: &Map<String, Value>,
    choices: Choices,
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
        let chosen = (!field.choices.is_empty() && !trimmed.is_empty()).then(|| choice_value(field, trimmed)).flatten();
        let value = match chosen {
            Some(value) => value,
            None if (field.strict_choices || choices == Choices::Strict)
                && !field.choices.is_empty()
                && !trimmed.is_empty() =>
            {
                let allowed: Vec<&str> = field.choices.iter().map(|c| c.value.as_str()).collect();
                errors.push(err(ErrorCode::InvalidChoice, format!("{trimmed:?} is not one of {}", allowed.join(", "))));
                continue;
            }
            // Not a choice of a lenient field: stored as given, as ServiceNow's REST API does,
            // once it fits the field's kind.
            None => match kind_value(&field.kind, text) {
                Ok(value) => value,
                Err((code, message)) => {
                    errors.push(err(code, message));
                    continue;
                }
            },
        };
        input.values.insert(key.clone(), value);
    }
    if errors.is_empty() { Ok(input) } else { Err(errors) }
}

/// The stored value of a choice given by its value or by its label (labels are accepted with or
/// without `sysparm_input_display_value=true`).
fn choice_value(field: &Field, text: &str) -> Option<String> {
    let by_value = field.choices.iter().find(|c| c.value == text);
    by_value.or_else(|| field.choices.iter().find(|c| c.label.eq_ignore_ascii_case(text))).map(|c| c.value.clone())
}

/// A value checked against its field's kind: integers and booleans normalised, date-times in
/// ServiceNow's format, references trimmed, text as given.
fn kind_value(kind: &FieldKind, text: String) -> Result<String, (ErrorCode, String)> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(if matches!(kind, FieldKind::Reference(_)) { String::new() } else { text });
    }
    Ok(match kind {
        FieldKind::Integer => match trimmed.parse::<i64>() {
            Ok(i) => i.to_string(),
            Err(_) => return Err((ErrorCode::WrongType, format!("{trimmed:?} is not an integer"))),
        },
        FieldKind::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" => "true".into(),
            "false" | "0" => "false".into(),
            _ => return Err((ErrorCode::WrongType, format!("{trimmed:?} is not true or false"))),
        },
        FieldKind::DateTime => match DateTime::parse(trimmed) {
            Ok(d) => d.to_string(),
            Err(_) => {
                return Err((
                    ErrorCode::WrongType,
                    format!("{trimmed:?} is not a date-time yyyy-MM-dd HH:mm:ss (UTC)"),
                ));
            }
        },
        FieldKind::Reference(_) => trimmed.to_owned(),
        _ => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_core::tables;

    fn run(body: Value) -> Result<RecordInput, Vec<FieldError>> {
        parse(&tables::incident(), body.as_object().unwrap(), Choices::AsDeclared)
    }

    #[test]
    fn numbers_labels_and_journal() {
        let input =
            run(json!({"impact": 1, "urgency": "3 - Low", "active": "TRUE", "work_notes": "checked", "sys_id": "x",
                   "number": "INC9", "bogus": 1, "caller_id": {"value": "abc", "link": "l"}}))
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
        let errors = run(json!({"impact": "9", "reopen_count": "many", "opened_at": "soon"})).unwrap_err();
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

    #[test]
    fn lenient_choice_fields_store_what_they_are_given() {
        let input = run(json!({"close_code": "Fixed by reboot", "category": "Solved (Permanently)",
                               "contact_type": "pager", "severity": "7"}))
        .unwrap();
        assert_eq!(input.values["close_code"], "Fixed by reboot");
        assert_eq!(input.values["contact_type"], "pager");
        assert_eq!(input.values["severity"], "7");
        // Still of their kind: an integer field takes integers only.
        let errors = run(json!({"severity": "high"})).unwrap_err();
        assert_eq!(errors[0].code, ErrorCode::WrongType);
        // Labels still become values.
        assert_eq!(run(json!({"contact_type": "Walk-in"})).unwrap().values["contact_type"], "walk-in");
        // An import's scripts are held to every choice list.
        let strict = parse(&tables::incident(), json!({"close_code": "Fixed"}).as_object().unwrap(), Choices::Strict);
        assert_eq!(strict.unwrap_err()[0].code, ErrorCode::InvalidChoice);
    }
}
