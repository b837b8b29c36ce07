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
    // The hot path of every write: one multi-row INSERT per change set (one statement step
    // instead of one per field). What all rows share is bound once (SQLite copies every bound
    // text), so each row binds only its id, field and values.
    let record = &applied.record;
    let checkpoint = record.get("sys_mod_count").map(String::as_str).unwrap_or("0");
    let document = record.get("sys_id").map(String::as_str).unwrap_or("");
    let now = now.to_string();
    // The usual import reason is derived from the source columns when read (schema step 7).
    let derived = !source.table.is_empty()
        && source
            .reason
            .strip_prefix("Import Set ")
            .and_then(|r| r.strip_prefix(source.table))
            .and_then(|r| r.strip_prefix(" row "))
            == Some(source.row);
    let reason = if derived { "" } else { source.reason.as_str() };
    let shared: [&dyn rusqlite::ToSql; SHARED_PARAMS] =
        [&target.name, &document, &actor.user_name, &reason, &checkpoint, &source.table, &source.row, &now];
    for chunk in applied.changes.chunks(AUDIT_ROWS_PER_STATEMENT) {
        let ids: Vec<String> = chunk.iter().map(|_| SysId::generate().into_string()).collect();
        let mut insert = conn.prepare_cached(audit_insert_sql(chunk.len()))?;
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(SHARED_PARAMS + chunk.len() * ROW_PARAMS);
        values.extend_from_slice(&shared);
        for (change, sys_id) in chunk.iter().zip(&ids) {
            values.extend_from_slice(&[sys_id as &dyn rusqlite::ToSql, &change.field, &change.old, &change.new]);
        }
        insert.execute(values.as_slice())?;
    }
    Ok(())
}

/// Parameters every row of a statement shares: ?1 table, ?2 document, ?3 user, ?4 reason,
/// ?5 record checkpoint, ?6 source table, ?7 source row, ?8 time.
const SHARED_PARAMS: usize = 8;
/// Parameters of each row: sys_id, field, old value, new value.
const ROW_PARAMS: usize = 4;
/// Rows per statement: an incident's insert is about 20 changes; far below SQLite's limit of
/// 32,766 parameters.
const AUDIT_ROWS_PER_STATEMENT: usize = 64;

/// The statement for `rows` audit rows (1..=[`AUDIT_ROWS_PER_STATEMENT`]), built once: the
/// statement cache is keyed by its text, and formatting ~300 parameter numbers per incident
/// showed in the writer's profile.
fn audit_insert_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    &SQL.get_or_init(|| (1..=AUDIT_ROWS_PER_STATEMENT).map(build_audit_insert_sql).collect())[rows - 1]
}

fn build_audit_insert_sql(rows: usize) -> String {
    use std::fmt::Write as _;
    // `OR FAIL`: a multi-row INSERT that may abort halfway makes SQLite copy every page it
    // touches into a statement journal first (a fifth of the audit's cost); one that fails
    // instead needs none, and a failed job is undone by the writer's savepoint anyway.
    // Only the stored columns: internal_checkpoint, the system fields and the usual reason are
    // generated from these (schema step 7).
    let mut sql = String::from(
        "INSERT OR FAIL INTO sys_audit (sys_id, tablename, documentkey, fieldname, oldvalue, newvalue, user,
             sluice_reason, record_checkpoint, source_table, source_row, sys_created_on) VALUES ",
    );
    for row in 0..rows {
        let p = |i: usize| SHARED_PARAMS + row * ROW_PARAMS + i;
        if row > 0 {
            sql.push_str(", ");
        }
        let _ = write!(
            sql,
            "(?{id}, ?1, ?2, ?{field}, ?{old}, ?{new}, ?3, ?4, ?5, ?6, ?7, ?8)",
            id = p(1),
            field = p(2),
            old = p(3),
            new = p(4),
        );
    }
    sql
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
