//! The plan's section on row errors: an example of a failed row and the catalogue of the row
//! error codes this integration can produce.

use serde_json::{Value, json};
use sluice_core::integration::{FieldType, Integration, OnUnknown};
use sluice_core::validate::ErrorCode;
use sluice_core::{contract, staging};

/// A failing row as sluice would answer it: every field left out, or one that cannot pass.
pub(super) fn row_error_example(integration: &Integration) -> Option<Value> {
    let mut payload = contract::example_payload(integration).unwrap_or_else(|| json!({}));
    let d = &integration.definition;
    let left_out = d.fields.iter().position(|f| f.required && f.default.is_none());
    // Break the first other field with a rule that a wrong value shows.
    let mut broken = false;
    for (i, f) in d.fields.iter().enumerate().filter(|(i, _)| Some(*i) != left_out) {
        let bad = match (f.kind, f.max_length) {
            (FieldType::Choice, _) => json!("no-such-choice"),
            (FieldType::Integer, _) => json!("twelve"),
            (FieldType::DateTime, _) => json!("yesterday"),
            (_, Some(m)) => json!("x".repeat(m + 1)),
            _ => continue,
        };
        if let Some(slot) = payload.pointer_mut(integration.contract.pointer(i)) {
            *slot = bad;
            broken = true;
            break;
        }
    }
    // And leave out the first required field.
    if let Some(f) = left_out {
        let pointer = integration.contract.pointer(f);
        if let Some((parent, key)) = pointer.rsplit_once('/') {
            let key = key.replace("~1", "/").replace("~0", "~");
            let parent = if parent.is_empty() { Some(&mut payload) } else { payload.pointer_mut(parent) };
            if let Some(Value::Object(o)) = parent {
                broken |= o.remove(&key).is_some();
            }
        }
    }
    if !broken {
        return None;
    }
    let object = payload.as_object()?;
    let errors = contract::verdict(integration, object, &staging::stage(integration, object)).err()?;
    Some(json!({"status": "error", "error_message": sluice_core::validate::summary(&errors), "errors": errors}))
}

/// Each row error code, what it means, and the fields of this integration that can raise it.
pub(super) fn row_error_catalogue(integration: &Integration) -> Vec<(ErrorCode, &'static str, Vec<String>)> {
    let d = &integration.definition;
    let names = |keep: &dyn Fn(&sluice_core::integration::FieldSpec) -> bool| -> Vec<String> {
        d.fields.iter().filter(|f| keep(f)).map(|f| f.name.clone()).collect()
    };
    let mapped: Vec<&str> =
        d.transform.field_map.iter().filter(|m| !m.value_map.is_empty()).map(|m| m.source.as_str()).collect();
    let rejecting: Vec<String> = d
        .transform
        .field_map
        .iter()
        .filter(|m| m.reference.as_ref().is_some_and(|r| r.on_unknown == OnUnknown::Reject))
        .map(|m| m.source.clone())
        .collect();
    let state_set =
        d.transform.field_map.iter().any(|m| m.target == "state") || d.transform.constants.contains_key("state");
    vec![
        (
            ErrorCode::FieldRequired,
            "A required field is missing, null or blank (or an object on its way is).",
            names(&|f| f.required && f.default.is_none()),
        ),
        (
            ErrorCode::FieldTooLong,
            "Longer than the field's maximum, in characters.",
            names(&|f| f.max_length.is_some()),
        ),
        (
            ErrorCode::InvalidChoice,
            "Not one of the field's choices, or not a key of its value map.",
            names(&|f| f.kind == FieldType::Choice || mapped.contains(&f.name.as_str())),
        ),
        (ErrorCode::PatternMismatch, "Does not match the field's pattern.", names(&|f| f.pattern.is_some())),
        (
            ErrorCode::WrongType,
            "Not a value of the field's type, or an object or array where one value belongs.",
            names(&|_| true),
        ),
        (ErrorCode::UnknownReference, "A reference lookup found no record.", rejecting),
        (
            ErrorCode::DataPolicy,
            "The business rules refused the result (resolving without resolution code and notes).",
            if state_set { vec!["close_code".into(), "close_notes".into()] } else { Vec::new() },
        ),
    ]
}
