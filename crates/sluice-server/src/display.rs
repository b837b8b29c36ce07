//! Gathers what display values need from other records (referenced records' display fields,
//! journal entries) for a page of records, with one store call per referenced table.

use std::collections::{BTreeMap, HashMap};

use sluice_core::Record;
use sluice_core::schema::{FieldKind, TableSchema};

use crate::AppState;
use crate::error::ApiResult;
use crate::params::DisplayMode;
use crate::wire::DisplayContext;

pub async fn context(
    state: &AppState,
    schema: &TableSchema,
    records: &[Record],
    mode: DisplayMode,
    fields: Option<&[String]>,
) -> ApiResult<DisplayContext> {
    let mut context = DisplayContext::default();
    if mode == DisplayMode::Value || records.is_empty() {
        return Ok(context);
    }
    let wanted = |name: &str| fields.is_none_or(|f| f.iter().any(|w| w == name));
    let registry = state.registry();
    let mut by_table: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut journal_fields = HashMap::new();
    for field in schema.visible_fields().filter(|f| wanted(&f.name)) {
        match &field.kind {
            FieldKind::Reference(table) => {
                let ids = by_table.entry(table.as_str()).or_default();
                ids.extend(records.iter().filter_map(|r| r.get(&field.name)).filter(|v| !v.is_empty()).cloned());
            }
            FieldKind::Journal => {
                journal_fields.insert(field.name.clone(), field.label.clone());
            }
            _ => {}
        }
    }
    for (table, mut ids) in by_table {
        ids.sort();
        ids.dedup();
        let Some(referenced) = registry.catalog.get(table) else { continue };
        if !ids.is_empty() {
            context.references.extend(state.store.display_values(referenced.clone(), ids).await?);
        }
    }
    if !journal_fields.is_empty() {
        let ids = records.iter().filter_map(|r| r.get("sys_id").cloned()).collect();
        for entry in state.store.journal(schema.name.clone(), ids).await? {
            let Some(label) = journal_fields.get(&entry.element) else { continue };
            let text = context.journal.entry((entry.element_id.clone(), entry.element.clone())).or_default();
            text.push_str(&format!("{} - {} ({label})\n{}\n\n", entry.created_on, entry.created_by, entry.value));
        }
    }
    Ok(context)
}
