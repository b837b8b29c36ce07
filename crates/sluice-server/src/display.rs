//! Gathers what an answer needs from other records for a page of records, with one store call
//! per referenced table: the referenced records of dot-walked `sysparm_fields`
//! (`caller_id.user_name`), referenced records' display fields and journal entries.

use std::collections::{BTreeMap, HashMap};

use sluice_core::account::{Access, Role, may};
use sluice_core::query::{Clause, Condition, EncodedQuery, FieldPath, Group, Operator};
use sluice_core::schema::{Field, FieldKind, TableSchema};
use sluice_core::{Record, tables::Catalog};
use sluice_store::ListQuery;

use crate::AppState;
use crate::error::ApiResult;
use crate::params::DisplayMode;
use crate::wire::DisplayContext;

/// A dot-walked `sysparm_fields` entry, `reference.field`: a visible reference field of the table
/// and a visible, stored field of the table it references.
pub fn walk<'a>(catalog: &'a Catalog, schema: &'a TableSchema, name: &str) -> Option<(&'a Field, &'a Field)> {
    let (reference, name) = name.split_once('.')?;
    let via = schema.visible_field(reference)?;
    let target = catalog.get(via.reference_table()?)?;
    let field = target.visible_field(name).filter(|f| f.kind != FieldKind::Journal)?;
    Some((via, field))
}

/// The records of `table` with these sys_ids, by sys_id.
async fn records_by_id(state: &AppState, table: &str, mut ids: Vec<String>) -> ApiResult<HashMap<String, Record>> {
    let registry = state.registry();
    let Some(schema) = registry.catalog.get(table) else { return Ok(HashMap::new()) };
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let limit = ids.len() as u64;
    let condition = Condition { field: FieldPath::field("sys_id"), op: Operator::In(ids) };
    let filter = EncodedQuery {
        groups: vec![Group { clauses: vec![Clause { any_of: vec![condition] }] }],
        ..Default::default()
    };
    let page = state.store.list(schema.clone(), ListQuery { filter, limit, offset: 0, count_up_to: None }).await?;
    Ok(page.records.into_iter().map(|r| (r.get("sys_id").cloned().unwrap_or_default(), r)).collect())
}

/// The referenced records that dot-walked `fields` read, for the tables `roles` may read (the
/// others' dot-walked fields are left out of the answer, as unknown fields are).
async fn walked(
    state: &AppState,
    schema: &TableSchema,
    records: &[Record],
    fields: &[String],
    roles: &[Role],
    context: &mut DisplayContext,
) -> ApiResult<()> {
    let registry = state.registry();
    let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in fields {
        let Some((via, _)) = walk(&registry.catalog, schema, name) else { continue };
        let Some(table) = via.reference_table() else { continue };
        if !may(roles, table, Access::Read) {
            continue;
        }
        let ids = by_table.entry(table.to_owned()).or_default();
        ids.extend(records.iter().filter_map(|r| r.get(&via.name)).filter(|v| !v.is_empty()).cloned());
    }
    for (table, ids) in by_table {
        context.walked.extend(records_by_id(state, &table, ids).await?);
        context.walked_tables.insert(table);
    }
    Ok(())
}

pub async fn context(
    state: &AppState,
    schema: &TableSchema,
    records: &[Record],
    mode: DisplayMode,
    fields: Option<&[String]>,
    roles: &[Role],
) -> ApiResult<DisplayContext> {
    let mut context = DisplayContext::default();
    if records.is_empty() {
        return Ok(context);
    }
    if let Some(fields) = fields.filter(|f| f.iter().any(|name| name.contains('.'))) {
        walked(state, schema, records, fields, roles, &mut context).await?;
    }
    if mode == DisplayMode::Value {
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
    // Display values of dot-walked reference fields (`caller_id.manager`).
    for name in fields.unwrap_or_default() {
        let Some((via, field)) = walk(&registry.catalog, schema, name) else { continue };
        let FieldKind::Reference(table) = &field.kind else { continue };
        let ids = by_table.entry(table.as_str()).or_default();
        let walked = records.iter().filter_map(|r| context.walked.get(r.get(&via.name)?));
        ids.extend(walked.filter_map(|target| target.get(&field.name)).filter(|v| !v.is_empty()).cloned());
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
