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
    catalog: &Catalog,
    target: &TableSchema,
    applied: &Applied,
    actor: &Actor,
    now: DateTime,
    source: &Source<'_>,
) -> rusqlite::Result<()> {
    if applied.changes.is_empty() {
        return Ok(());
    }
    let audit = catalog.get(tables::SYS_AUDIT).expect("built-in table");
    let record = &applied.record;
    let checkpoint = record.get("sys_mod_count").cloned().unwrap_or_default();
    // What every row of this change shares, built once; one prepared statement for all rows.
    let common = rules::insert_simple(
        audit,
        &[
            ("tablename", &target.name),
            ("documentkey", &record["sys_id"]),
            ("user", &actor.user_name),
            ("reason", &source.reason),
            ("record_checkpoint", &checkpoint),
            ("source_table", source.table),
            ("source_row", source.row),
        ],
        actor,
        now,
    );
    let mut insert = conn.prepare_cached(&records::insert_sql(audit))?;
    for change in &applied.changes {
        let mut row = common.clone();
        let sys_id = SysId::generate().into_string();
        row.insert("internal_checkpoint".into(), sys_id[..18].to_owned());
        row.insert("sys_id".into(), sys_id);
        row.insert("fieldname".into(), change.field.clone());
        row.insert("oldvalue".into(), change.old.clone());
        row.insert("newvalue".into(), change.new.clone());
        records::execute_insert(&mut insert, audit, &row, None)?;
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
