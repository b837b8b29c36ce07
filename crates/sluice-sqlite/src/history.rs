//! History: one stored row per change set, read as one `sys_audit` row per changed field,
//! written in the same transaction as the change (journal entries are plain `sys_journal_field`
//! records: `sluice_store::table_write`).

use rusqlite::Connection;
use sluice_core::DateTime;
use sluice_core::rules::{Actor, Applied};
use sluice_core::schema::TableSchema;
use sluice_store::audit_set::{self, Source};

pub fn audit(
    conn: &Connection,
    target: &TableSchema,
    applied: &Applied,
    actor: &Actor,
    now: DateTime,
    source: &Source<'_>,
) -> rusqlite::Result<()> {
    // The hot path of every write: one row per change set (schema step 8); the view `sys_audit`
    // shows it as one row per field.
    if applied.changes.is_empty() {
        return Ok(());
    }
    let record = &applied.record;
    let checkpoint = record.get("sys_mod_count").map(String::as_str).unwrap_or("0");
    let document = record.get("sys_id").map(String::as_str).unwrap_or("");
    let reason = audit_set::stored_reason(source.table, source.row, source.reason);
    let changes = audit_set::changes_json(applied, std::borrow::Cow::Borrowed);
    let sys_id = audit_set::set_id();
    conn.prepare_cached(
        "INSERT OR FAIL INTO sluice_audit_set (sys_id, tablename, documentkey, user, sluice_reason,
             record_checkpoint, source_table, source_row, sys_created_on, changes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(rusqlite::params![
        sys_id,
        target.name,
        document,
        actor.user_name,
        reason,
        checkpoint,
        source.table,
        source.row,
        now.to_string(),
        changes
    ])?;
    Ok(())
}
