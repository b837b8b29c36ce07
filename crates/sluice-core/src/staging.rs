//! Stage: turn a received JSON object into the staging row's string columns, as ServiceNow stores
//! staged values. The raw body is kept alongside, untouched.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Number, Value};

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
/// name. Strings stay as they are, numbers and booleans become their JSON text ([`number_text`]),
/// `null` becomes empty.
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
            Value::Number(n) => number_text(n),
            Value::Array(_) | Value::Object(_) => {
                row.nested.insert(key.to_owned());
                value.to_string()
            }
        };
        row.columns.insert(key.to_owned(), text);
    }
}

/// The staged text of a JSON number: integers as sent (`2`, `-15`); a number without a fractional
/// part written without one (`2.0` → `2`, `1e3` → `1000`), since JSON and JSON Schema see one
/// number there, not two; any other number in its shortest form (`1.5`, `1e-7`).
pub fn number_text(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        // `-0.0` too: the integer zero has no sign.
        Some(x) if x.fract() == 0.0 => {
            if x == 0.0 {
                "0".to_owned()
            } else {
                format!("{x:.0}")
            }
        }
        _ => n.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_staged_as_one_number_however_they_are_written() {
        let texts: Vec<String> = serde_json::from_str::<Vec<Number>>(
            "[2, -15, 2.0, 1e3, -0, -0.0, 1.5, 1e-7, 18446744073709551615, 1e20, 0.1]",
        )
        .unwrap()
        .iter()
        .map(number_text)
        .collect();
        assert_eq!(
            texts,
            ["2", "-15", "2", "1000", "0", "0", "1.5", "1e-7", "18446744073709551615", "100000000000000000000", "0.1"]
        );
    }
}
