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

/// Each field's value is taken from its `source` JSON Pointer, or from the top-level key of its
/// name. Strings stay as they are, numbers and booleans become their JSON text, `null` becomes
/// empty.
pub fn stage(integration: &Integration, payload: &Map<String, Value>) -> StagedRow {
    let mut row = StagedRow::default();
    let mut used_top_level = BTreeSet::new();
    for spec in &integration.definition.fields {
        let value = match &spec.source {
            Some(pointer) => {
                let mut parts = pointer.split('/').skip(1);
                let first = parts.next().map(unescape).unwrap_or_default();
                used_top_level.insert(first.clone());
                let Some(root) = payload.get(&first) else { continue };
                let rest: String = parts.map(|p| format!("/{p}")).collect();
                if rest.is_empty() { Some(root) } else { root.pointer(&rest) }
            }
            None => {
                used_top_level.insert(spec.name.clone());
                payload.get(&spec.name)
            }
        };
        if let Some(value) = value {
            stage_value(&mut row, &spec.name, value);
        }
    }
    row.unknown = payload.keys().filter(|k| !used_top_level.contains(*k)).cloned().collect();
    row
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn stage_value(row: &mut StagedRow, key: &str, value: &Value) {
    {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => {
                row.nested.insert(key.to_owned());
                value.to_string()
            }
        };
        row.columns.insert(key.to_owned(), text);
    }
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
    pub const ALL: [Self; 6] =
        [Self::Pending, Self::Inserted, Self::Updated, Self::Ignored, Self::Skipped, Self::Error];

    /// The state named by its stored value (`pending`, `inserted`, …).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

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
