//! Respond: records as ServiceNow encodes them on the wire. Every value is a string; references
//! are `{"link", "value"}` (or `""` when empty); journal fields read back as `""`.

use serde_json::{Map, Value, json};
use sluice_core::Record;
use sluice_core::schema::{FieldKind, TableSchema};

pub struct Encoding<'a> {
    pub base_url: &'a str,
    /// `sysparm_fields`: only these keys, in the schema's order.
    pub fields: Option<&'a [String]>,
    /// `sysparm_exclude_reference_link`: references as the bare sys_id.
    pub exclude_reference_link: bool,
}

pub fn record_link(base_url: &str, table: &str, sys_id: &str) -> String {
    format!("{base_url}/api/now/table/{table}/{sys_id}")
}

pub fn encode(schema: &TableSchema, record: &Record, enc: &Encoding<'_>) -> Value {
    let mut out = Map::new();
    for field in schema.visible_fields() {
        if enc.fields.is_some_and(|wanted| !wanted.iter().any(|w| w == &field.name)) {
            continue;
        }
        let value = record.get(&field.name).map(String::as_str).unwrap_or("");
        let encoded = match &field.kind {
            FieldKind::Journal => json!(""),
            FieldKind::Reference(table) if !value.is_empty() && !enc.exclude_reference_link => json!({
                "link": record_link(enc.base_url, table, value),
                "value": value,
            }),
            _ => json!(value),
        };
        out.insert(field.name.clone(), encoded);
    }
    Value::Object(out)
}
