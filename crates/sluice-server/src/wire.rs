//! Respond: records as ServiceNow encodes them on the wire. Every value is a string; references
//! are `{"link", "value"}` (or `""` when empty); `sysparm_display_value` switches to choice labels
//! and referenced records' display values (`true`) or both (`all`); journal fields read back as
//! `""`, or as their entries when display values are asked for.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use sluice_core::Record;
use sluice_core::schema::{Field, FieldKind, TableSchema};
use sluice_core::tables::Catalog;

use crate::params::DisplayMode;

/// Display values that need other records: referenced records' display fields by sys_id, and
/// rendered journal text by (record sys_id, element).
#[derive(Debug, Default)]
pub struct DisplayContext {
    pub references: HashMap<String, String>,
    pub journal: HashMap<(String, String), String>,
    /// Referenced records of dot-walked `sysparm_fields`, by sys_id, and the tables they were
    /// read from (those the caller may read).
    pub walked: HashMap<String, Record>,
    pub walked_tables: HashSet<String>,
}

pub struct Encoding<'a> {
    pub base_url: &'a str,
    /// `sysparm_fields`: only these keys, in the schema's order, then the dot-walked ones
    /// (`caller_id.user_name`) in the order asked, each under its dotted name.
    pub fields: Option<&'a [String]>,
    /// Where dot-walks lead (the catalog of tables).
    pub catalog: &'a Catalog,
    /// `sysparm_exclude_reference_link`: references without `link`.
    pub exclude_reference_link: bool,
    pub mode: DisplayMode,
    pub context: &'a DisplayContext,
}

pub fn record_link(base_url: &str, table: &str, sys_id: &str) -> String {
    format!("{base_url}/api/now/table/{table}/{sys_id}")
}

fn display_of(field: &Field, record: &Record, value: &str, enc: &Encoding<'_>) -> String {
    match &field.kind {
        FieldKind::Reference(_) => enc.context.references.get(value).cloned().unwrap_or_default(),
        FieldKind::Journal => {
            let id = record.get("sys_id").cloned().unwrap_or_default();
            enc.context.journal.get(&(id, field.name.clone())).cloned().unwrap_or_default()
        }
        _ => field.choice_label(value).unwrap_or(value).to_owned(),
    }
}

fn encode_field(field: &Field, record: &Record, enc: &Encoding<'_>) -> Value {
    let stored = record.get(&field.name).map(String::as_str).unwrap_or("");
    let value = if field.kind == FieldKind::Journal { "" } else { stored };
    let link = match &field.kind {
        FieldKind::Reference(table) if !value.is_empty() && !enc.exclude_reference_link => {
            Some(record_link(enc.base_url, table, value))
        }
        _ => None,
    };
    match enc.mode {
        DisplayMode::Value => match link {
            Some(link) => json!({"link": link, "value": value}),
            None => json!(value),
        },
        DisplayMode::Display => {
            let display = display_of(field, record, value, enc);
            match link {
                Some(link) => json!({"display_value": display, "link": link}),
                None => json!(display),
            }
        }
        DisplayMode::All => {
            let display = display_of(field, record, value, enc);
            match link {
                Some(link) => json!({"display_value": display, "link": link, "value": value}),
                None => json!({"display_value": display, "value": value}),
            }
        }
    }
}

pub fn encode(schema: &TableSchema, record: &Record, enc: &Encoding<'_>) -> Value {
    let mut out = Map::new();
    for field in schema.visible_fields() {
        if enc.fields.is_some_and(|wanted| !wanted.iter().any(|w| w == &field.name)) {
            continue;
        }
        out.insert(field.name.clone(), encode_field(field, record, enc));
    }
    // Dot-walked fields: the referenced record's field, encoded as that table's own; empty when
    // the reference is. Those of tables the caller may not read were not gathered and are left out.
    let empty = Record::new();
    for name in enc.fields.unwrap_or_default().iter().filter(|n| n.contains('.')) {
        let Some((via, field)) = crate::display::walk(enc.catalog, schema, name) else { continue };
        if !via.reference_table().is_some_and(|t| enc.context.walked_tables.contains(t)) {
            continue;
        }
        let reference = record.get(&via.name).map(String::as_str).unwrap_or("");
        let target = enc.context.walked.get(reference).unwrap_or(&empty);
        out.insert(name.clone(), encode_field(field, target, enc));
    }
    Value::Object(out)
}
