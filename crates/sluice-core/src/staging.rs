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
/// `null` becomes empty; objects and arrays become their JSON text in the text fields of sender
/// formats ([`crate::integration::Definition::stages_json_text`]), elsewhere they are errors.
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
            stage_value(&mut row, &spec.name, value, integration.definition.stages_json_text(spec));
        }
    }
    row.unknown = payload.keys().filter(|k| !used_top_level.contains(*k)).cloned().collect();
    row
}

/// A record keyed by staging column labels (how ServiceNow's `insertMultiple` takes records by
/// default, e.g. `"Short description"`) rewritten to column names. A key that is a column name or
/// the first token of a `source` path stays as it is; another key equal to a column's label
/// (ignoring ASCII case and surrounding blanks) becomes that column's key, unless the record also
/// carries the column by name (the name wins). Only columns read from a top-level key have
/// a label to match; other keys are left for [`stage`] to report as unknown.
pub fn by_column_names(integration: &Integration, record: Map<String, Value>) -> Map<String, Value> {
    let top_level = |f: &crate::integration::FieldSpec| match &f.source {
        None => Some(f.name.clone()),
        Some(p) => p.strip_prefix('/').filter(|rest| !rest.contains('/')).map(unescape),
    };
    let fields = &integration.definition.fields;
    // A key that names a field or a source is not a label (asked only of keys that match a
    // label, so nothing is built for the usual payload).
    let known = |key: &str| {
        fields.iter().any(|f| {
            f.name == key || f.source.as_deref().and_then(|p| p.split('/').nth(1)).is_some_and(|s| unescape(s) == key)
        })
    };
    let label_of = |key: &str| {
        let key = key.trim();
        fields.iter().find_map(|f| {
            let label = f.label.as_deref().unwrap_or(&f.name).trim();
            if label.eq_ignore_ascii_case(key) { top_level(f) } else { None }
        })
    };
    let mut out = Map::with_capacity(record.len());
    let mut by_label = Vec::new();
    for (key, value) in record {
        match label_of(&key) {
            Some(column) if !known(&key) => by_label.push((key, column, value)),
            _ => {
                out.insert(key, value);
            }
        }
    }
    for (key, column, value) in by_label {
        let target = if out.contains_key(&column) { key } else { column };
        out.entry(target).or_insert(value);
    }
    out
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// `json_text`: an object or array is the value's JSON text, not a nested value (an error).
fn stage_value(row: &mut StagedRow, key: &str, value: &Value, json_text: bool) {
    {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => number_text(n),
            Value::Array(_) | Value::Object(_) => {
                if !json_text {
                    row.nested.insert(key.to_owned());
                }
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

/// A state name that is none of [`RowState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown row state {0:?}")]
pub struct UnknownRowState(pub String);

impl std::str::FromStr for RowState {
    type Err = UnknownRowState;

    /// The state named by its stored value (`pending`, `inserted`, …).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRowState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_states_read_back_from_their_stored_names() {
        for state in RowState::ALL {
            assert_eq!(state.as_str().parse::<RowState>(), Ok(state));
        }
        assert_eq!("Inserted".parse::<RowState>(), Err(UnknownRowState("Inserted".into())));
    }

    #[test]
    fn records_keyed_by_labels_are_read_by_column_name() {
        let catalog = crate::tables::Catalog::builtin();
        let integration = Integration::builtin_default(&catalog);
        let record = serde_json::json!({
            "Short description": "Disk full",
            "urgency": "1",
            "u_impact": "2",
            "Impact": "3",
            "u_category": "network",
            "No such column": "x",
        });
        let Value::Object(record) = record else { unreachable!() };
        let out = by_column_names(&integration, record);
        assert_eq!(out["u_short_description"], "Disk full");
        assert_eq!(out["u_urgency"], "1", "labels match whatever the case");
        assert_eq!(out["u_impact"], "2", "the column's name wins over its label");
        assert_eq!(out["Impact"], "3", "left for staging to report as unknown");
        assert_eq!(out["u_category"], "network");
        assert_eq!(out["No such column"], "x");
        let staged = stage(&integration, &out);
        assert_eq!(staged.columns["u_short_description"], "Disk full");
        assert!(staged.unknown.contains(&"Impact".to_owned()));
    }

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
