//! A Table API write, written once for every backend: resolve references given by display value,
//! apply the table's business rules, write the record, its history and journal entries. Each
//! backend implements only [`TableTransaction`] (three primitives beyond the commit step's
//! [`RowTransaction`], whose numbering, `insert`, `update` and `write_history` it reuses) inside
//! its own transaction. Deleting a record deletes its attachments ([`crate::attachment`]).

use std::collections::BTreeMap;

use sluice_core::Record;
use sluice_core::number;
use sluice_core::rules::{self, Applied};
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_core::tables::{self, Catalog};

use crate::settle::{RowContext, RowTransaction};
use crate::{TableWrite, WriteOp, WriteResult};

/// The `sys_audit` reason of a Table API write (no staging row).
pub const REASON: &str = "Table API";

/// What a Table API write needs of a transaction besides the commit step's reads and writes.
// As `RowTransaction`: concrete backends only, static dispatch, no `Send` promised.
#[allow(async_fn_in_trait)]
pub trait TableTransaction: RowTransaction {
    /// The record to update, locked until the transaction ends where the backend locks
    /// (PostgreSQL: `FOR UPDATE`, so concurrent writers of it on any node take turns).
    async fn get_for_update(&mut self, schema: &TableSchema, sys_id: &str) -> Result<Option<Record>, Self::Error>;

    /// Deletes the record; whether there was one.
    async fn delete(&mut self, schema: &TableSchema, sys_id: &str) -> Result<bool, Self::Error>;

    /// The `sys_attachment` records of one record, oldest first, locked where the backend locks
    /// (deleting a record deletes them: [`crate::attachment::remove_all_of`]).
    async fn attachments_of(&mut self, table: &str, sys_id: &str) -> Result<Vec<Record>, Self::Error>;

    /// The record `value` names: `value` itself when it is the sys_id of a record of `schema`,
    /// else the first record (oldest first) whose field equals it, ignoring ASCII case, trying
    /// `match_fields` in order.
    async fn find_named(
        &mut self,
        schema: &TableSchema,
        value: &str,
        match_fields: &[&str],
    ) -> Result<Option<String>, Self::Error>;
}

/// Inserts, updates or deletes one record through the table's business rules in `tx`.
pub async fn write<T: TableTransaction>(
    tx: &mut T,
    catalog: &Catalog,
    w: &TableWrite,
) -> Result<WriteResult, T::Error> {
    let schema = &*w.table;
    match &w.op {
        WriteOp::Delete(sys_id) => {
            if !tx.delete(schema, sys_id).await? {
                return Ok(WriteResult::NotFound);
            }
            if sluice_core::attachment::attachable(&schema.name) {
                crate::attachment::remove_all_of(tx, catalog, schema, sys_id, &w.actor, w.now).await?;
            }
            Ok(WriteResult::Deleted)
        }
        WriteOp::Insert => {
            let values = resolve_references(tx, catalog, schema, &w.values).await?;
            let mut applied = match rules::insert(schema, &values, &w.actor, w.now) {
                Ok(a) => a,
                Err(v) => return Ok(WriteResult::Refused(v)),
            };
            if schema.name == tables::INCIDENT
                && let Some(number) = tx.next_number(number::INCIDENT_PREFIX).await?
            {
                applied.assign_number(&number);
            }
            tx.insert(schema, &applied.record).await?;
            finish(tx, catalog, applied, w).await
        }
        WriteOp::Update(sys_id) => {
            let Some(existing) = tx.get_for_update(schema, sys_id).await? else {
                return Ok(WriteResult::NotFound);
            };
            let values = resolve_references(tx, catalog, schema, &w.values).await?;
            let mut applied = match rules::update(schema, &existing, &values, &w.actor, w.now) {
                Ok(a) => a,
                Err(v) => return Ok(WriteResult::Refused(v)),
            };
            if applied.changes.is_empty() && !w.journal.is_empty() {
                // A journal entry alone is an update of the record, as in ServiceNow.
                rules::touch(&mut applied.record, &w.actor, w.now);
            }
            // A counted update writes its changes and system fields (`Applied::update_columns`);
            // one that changed nothing writes nothing.
            if applied.record.get("sys_mod_count") != existing.get("sys_mod_count") {
                tx.update(schema, &applied).await?;
            }
            finish(tx, catalog, applied, w).await
        }
    }
}

/// The history of the change (nothing when nothing changed) and the journal entries that are
/// not blank.
async fn finish<T: TableTransaction>(
    tx: &mut T,
    catalog: &Catalog,
    applied: Applied,
    w: &TableWrite,
) -> Result<WriteResult, T::Error> {
    let row = RowContext {
        staging_table: "",
        target: &w.table,
        staging_sys_id: "",
        actor: &w.actor,
        now: w.now,
        reason: w.reason,
    };
    tx.write_history(&row, &applied).await?;
    if w.journal.iter().any(|(_, v)| !v.trim().is_empty()) {
        let journal = catalog.get(tables::SYS_JOURNAL_FIELD).expect("built-in table");
        let (table, element_id) = (w.table.name.as_str(), applied.record["sys_id"].as_str());
        for (element, value) in w.journal.iter().filter(|(_, v)| !v.trim().is_empty()) {
            let entry = rules::insert_simple(
                journal,
                &[("name", table), ("element", element), ("element_id", element_id), ("value", value)],
                &w.actor,
                w.now,
            );
            tx.insert(journal, &entry).await?;
        }
    }
    Ok(WriteResult::Written(applied.record))
}

/// A reference value that is not the sys_id of an existing record is looked up by the referenced
/// table's display field (users also by user name and e-mail); when nothing matches, the field
/// is left out of the change.
async fn resolve_references<T: TableTransaction>(
    tx: &mut T,
    catalog: &Catalog,
    schema: &TableSchema,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, T::Error> {
    let mut out = BTreeMap::new();
    for (field, value) in values {
        let Some(FieldKind::Reference(table)) = schema.field(field).map(|f| &f.kind) else {
            out.insert(field.clone(), value.clone());
            continue;
        };
        let Some(referenced) = catalog.get(table) else { continue };
        if value.is_empty() {
            out.insert(field.clone(), String::new());
            continue;
        }
        let by = [referenced.display_field.as_str(), "user_name", "email"];
        let match_fields = if referenced.name == tables::SYS_USER { &by[..] } else { &by[..1] };
        if let Some(id) = tx.find_named(referenced, value, match_fields).await? {
            out.insert(field.clone(), id);
        }
    }
    Ok(out)
}
