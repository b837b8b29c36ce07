//! Stage: turn a received JSON object into the staging row's string columns, as ServiceNow stores
//! staged values. The raw body is kept alongside, untouched.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::integration::Integration;

#[derive(Debug, Clone, Default)]
pub struct StagedRow {
    /// The integration's columns that the payload carried, as strings.
    pub columns: BTreeMap<String, String>,
    /// Columns whose JSON value was an object or array (kept as JSON text; a type error later).
    pub nested: BTreeSet<String>,
    /// Payload keys that are not columns of the staging table (ignored, as ServiceNow does).
    pub unknown: Vec<String>,
}

/// Strings stay as they are, numbers and booleans become their JSON text, `null` becomes empty.
pub fn stage(integration: &Integration, payload: &Map<String, Value>) -> StagedRow {
    let mut row = StagedRow::default();
    for (key, value) in payload {
        if integration.field(key).is_none() {
            row.unknown.push(key.clone());
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => {
                row.nested.insert(key.clone());
                value.to_string()
            }
        };
        row.columns.insert(key.clone(), text);
    }
    row
}

/// A staging row's `sys_import_state`, and the `status` of an Import Set API result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    Pending,
    Inserted,
    Updated,
    Ignored,
    Skipped,
    Error,
}

impl RowState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Inserted => "inserted",
            Self::Updated => "updated",
            Self::Ignored => "ignored",
            Self::Skipped => "skipped",
            Self::Error => "error",
        }
    }
}
