//! History: one `sys_audit` row per changed field, and `sys_journal_field` entries for journal
//! fields (`work_notes`, `comments`), written in the same transaction as the change.

use rusqlite::Connection;
use sluice_core::rules::{self, Actor, Applied};
use sluice_core::schema::TableSchema;
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, SysId};

use super::records;

/// What caused a change: an inbound staging row, or a Table API call (empty table and row).
pub struct Source<'a> {
    pub table: &'a str,
    pub row: &'a str,
    pub reason: String,
}

pub fn audit(
    conn: &Connection,
    _catalog: &Catalog,
    target: &TableSchema,
    applied: &Applied,
    actor: &Actor,
    now: DateTime,
    source: &Source<'_>,
) -> rusqlite::Result<()> {
    // The hot path of every write: one prepared statement, values bound directly (no record
    // built per row).
    let mut insert = conn.prepare_cached(
        "INSERT INTO sys_audit (sys_id, tablename, documentkey, fieldname, oldvalue, newvalue, user, reason,
             record_checkpoint, internal_checkpoint, source_table, source_row,
             sys_created_on, sys_created_by, sys_updated_on, sys_updated_by, sys_mod_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?7, ?13, ?7, 0)",
    )?;
    let record = &applied.record;
    let checkpoint = record.get("sys_mod_count").map(String::as_str).unwrap_or("0");
    let document = record.get("sys_id").map(String::as_str).unwrap_or("");
    let now = now.to_string();
    for change in &applied.changes {
        let sys_id = SysId::generate();
        insert.execute(rusqlite::params![
            sys_id.as_str(),
            target.name,
            document,
            change.field,
            change.old,
            change.new,
            actor.user_name,
            source.reason,
            checkpoint,
            &sys_id.as_str()[..18],
            source.table,
            source.row,
            now,
        ])?;
    }
    Ok(())
}

/// Appends journal entries (`element`, text) for one record.
pub fn journal(
    conn: &Connection,
    catalog: &Catalog,
    table: &str,
    element_id: &str,
    entries: &[(String, String)],
    actor: &Actor,
    now: DateTime,
) -> rusqlite::Result<()> {
    let schema = catalog.get(tables::SYS_JOURNAL_FIELD).expect("built-in table");
    for (element, value) in entries {
        let row = rules::insert_simple(
            schema,
            &[("name", table), ("element", element), ("element_id", element_id), ("value", value)],
            actor,
            now,
        );
        records::insert(conn, schema, &row, None)?;
    }
    Ok(())
}
