//! Validate: check a staged row against the integration's fields and turn it into typed values.
//! Every problem is reported, not just the first, each with a stable code.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::datetime::DateTime;
use crate::integration::{FieldType, Integration};
use crate::staging::StagedRow;

/// Stable, documented error codes (docs/errors.md). Programs match on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    FieldRequired,
    FieldTooLong,
    InvalidChoice,
    WrongType,
    PatternMismatch,
    UnknownReference,
    CoalesceEmpty,
    DataPolicy,
    /// An `on_before` script set `error = true` (its `error_message` is the message).
    ScriptRejected,
    /// A script threw, did not compile, or was stopped by a limit (time, memory, stack).
    ScriptFailed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FieldRequired => "field_required",
            Self::FieldTooLong => "field_too_long",
            Self::InvalidChoice => "invalid_choice",
            Self::WrongType => "wrong_type",
            Self::PatternMismatch => "pattern_mismatch",
            Self::UnknownReference => "unknown_reference",
            Self::CoalesceEmpty => "coalesce_empty",
            Self::DataPolicy => "data_policy",
            Self::ScriptRejected => "script_rejected",
            Self::ScriptFailed => "script_failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub code: ErrorCode,
    /// The staging column (or, for business rules, the target field) at fault.
    pub field: String,
    pub message: String,
    /// Where the value sits in the payload, as a JSON Pointer (`/alert/host`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            // A script's own message is passed through as it is, as ServiceNow does.
            ErrorCode::ScriptRejected | ErrorCode::ScriptFailed => f.write_str(&self.message),
            _ => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// A value that passed its field's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedValue {
    Text(String),
    Integer(i64),
    Boolean(bool),
    DateTime(DateTime),
}

impl TypedValue {
    /// The stored and wire form.
    pub fn to_db_string(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Integer(i) => i.to_string(),
            Self::Boolean(b) => b.to_string(),
            Self::DateTime(d) => d.to_string(),
        }
    }
}

/// A staged row that passed validation: only the fields that carry a value (after defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidRow {
    pub values: BTreeMap<String, TypedValue>,
}

pub fn validate(integration: &Integration, row: &StagedRow) -> Result<ValidRow, Vec<FieldError>> {
    let mut valid = ValidRow::default();
    let mut errors = Vec::new();
    for spec in &integration.definition.fields {
        let name = &spec.name;
        let err = |code, message: String| FieldError { code, field: name.clone(), message, path: None };
        if row.nested.contains(name) {
            errors.push(err(ErrorCode::WrongType, "expected a single value, got a JSON object or array".into()));
            continue;
        }
        let given = row.columns.get(name).map(|s| s.trim()).filter(|s| !s.is_empty());
        let Some(text) = given.or(spec.default.as_deref()) else {
            if spec.required {
                errors.push(err(ErrorCode::FieldRequired, "is required".into()));
            }
            continue;
        };
        if let Some(max) = spec.max_length {
            let len = text.chars().count();
            if len > max {
                errors.push(err(ErrorCode::FieldTooLong, format!("is {len} characters long, at most {max} allowed")));
                continue;
            }
        }
        if let Some(pattern) = integration.patterns.get(name)
            && !pattern.is_match(text)
        {
            let shown = spec.pattern.as_deref().unwrap_or_default();
            errors.push(err(ErrorCode::PatternMismatch, format!("{text:?} does not match the pattern {shown}")));
            continue;
        }
        let typed = match spec.kind {
            FieldType::String | FieldType::Reference => Ok(TypedValue::Text(text.to_owned())),
            FieldType::Choice if spec.choices.iter().any(|c| c == text) => Ok(TypedValue::Text(text.to_owned())),
            FieldType::Choice => {
                Err(err(ErrorCode::InvalidChoice, format!("{text:?} is not one of {}", spec.choices.join(", "))))
            }
            FieldType::Integer => text
                .parse::<i64>()
                .map(TypedValue::Integer)
                .map_err(|_| err(ErrorCode::WrongType, format!("{text:?} is not an integer"))),
            FieldType::Boolean => match text.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(TypedValue::Boolean(true)),
                "false" | "0" => Ok(TypedValue::Boolean(false)),
                _ => Err(err(ErrorCode::WrongType, format!("{text:?} is not true or false"))),
            },
            FieldType::DateTime => DateTime::parse(text).map(TypedValue::DateTime).map_err(|_| {
                err(ErrorCode::WrongType, format!("{text:?} is not a date-time yyyy-MM-dd HH:mm:ss (UTC)"))
            }),
        };
        match typed {
            Ok(v) => {
                valid.values.insert(name.clone(), v);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(valid) } else { Err(errors) }
}

/// ServiceNow-style one-line summary of row errors: `field: message; field: message`.
pub fn summary(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::Integration;
    use crate::staging::stage;
    use crate::tables::Catalog;
    use serde_json::json;

    fn check(payload: serde_json::Value) -> Result<ValidRow, Vec<FieldError>> {
        let i = Integration::builtin_default(&Catalog::builtin());
        let row = stage(&i, payload.as_object().unwrap());
        validate(&i, &row)
    }

    #[test]
    fn reports_every_failing_field_with_its_code() {
        let errors =
            check(json!({"u_impact": "9", "u_urgency": {"x": 1}, "u_correlation_id": "x".repeat(101)})).unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            got,
            vec![
                ("u_short_description", ErrorCode::FieldRequired),
                ("u_impact", ErrorCode::InvalidChoice),
                ("u_urgency", ErrorCode::WrongType),
                ("u_correlation_id", ErrorCode::FieldTooLong),
            ]
        );
        assert!(summary(&errors).contains("u_impact: \"9\" is not one of 1, 2, 3"), "{}", summary(&errors));
    }

    #[test]
    fn numbers_are_accepted_as_their_text_and_blank_counts_as_missing() {
        let row = check(json!({"u_short_description": "Disk full", "u_impact": 2, "u_urgency": null})).unwrap();
        assert_eq!(row.values["u_impact"], TypedValue::Text("2".into()));
        assert!(!row.values.contains_key("u_urgency"));
        let errors = check(json!({"u_short_description": "   "})).unwrap_err();
        assert_eq!(errors[0].code, ErrorCode::FieldRequired);
    }

    #[test]
    fn unknown_keys_are_ignored() {
        assert!(check(json!({"u_short_description": "x", "u_whatever": "y"})).is_ok());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(check(json!({"u_short_description": "é".repeat(160)})).is_ok());
        assert!(check(json!({"u_short_description": "é".repeat(161)})).is_err());
    }
}
