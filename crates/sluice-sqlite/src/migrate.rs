//! Schema creation and evolution. Tables are generated from the core schemas (one source of
//! truth); new fields in a later version are added as columns at start. Versioned steps that
//! cannot be derived (indexes, counters) are listed in order and tracked in `user_version`.

use rusqlite::Connection;
use sluice_core::number::{FIRST_NUMBER, IMPORT_SET_PREFIX, INCIDENT_PREFIX};
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_core::tables::Catalog;

fn affinity(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Integer => "INTEGER",
        _ => "TEXT",
    }
}

fn column_sql(name: &str, kind: &FieldKind) -> String {
    format!("{name} {} NOT NULL DEFAULT ''", affinity(kind))
}

/// Creates the table when missing and adds any column the schema has and the table lacks.
pub fn ensure_table(conn: &Connection, schema: &TableSchema) -> rusqlite::Result<()> {
    let columns: Vec<String> = schema
        .stored_fields()
        .map(|f| {
            if f.name == "sys_id" {
                "sys_id TEXT PRIMARY KEY NOT NULL".to_owned()
            } else {
                column_sql(&f.name, &f.kind)
            }
        })
        .collect();
    conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {} ({})", schema.name, columns.join(", ")))?;
    // A table read through a view (sys_audit, step 8) gains columns by a step that redefines it.
    let view: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'view' AND name = ?1)",
        [&schema.name],
        |r| r.get(0),
    )?;
    if view {
        return Ok(());
    }
    // `table_xinfo`: generated columns (sys_audit's derived ones) exist too.
    let existing: Vec<String> = conn
        .prepare(&format!("SELECT name FROM pragma_table_xinfo('{}')", schema.name))?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for f in schema.stored_fields() {
        if !existing.contains(&f.name) {
            conn.execute_batch(&format!("ALTER TABLE {} ADD COLUMN {}", schema.name, column_sql(&f.name, &f.kind)))?;
        }
    }
    Ok(())
}

/// The indexes every staging table needs: rows of one import set in order, rows by state in
/// staging order (pending rows for the bulk workers, error rows for replays), and rows newest
/// first (the console's import rows; made at the next start on older databases).
pub fn staging_indexes(conn: &Connection, table: &str) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS {table}_set_row ON {table} (sys_import_set, sys_import_row);
         CREATE INDEX IF NOT EXISTS {table}_state ON {table} (sys_import_state);
         CREATE INDEX IF NOT EXISTS {table}_created ON {table} (sys_created_on COLLATE NOCASE);"
    ))
}

const STEPS: &[&str] = &[
    // 1: indexes for lookups, coalesce and audit history; number counters.
    "CREATE UNIQUE INDEX incident_number ON incident (number);
     CREATE INDEX incident_correlation ON incident (correlation_id COLLATE NOCASE);
     CREATE INDEX sys_user_user_name ON sys_user (user_name COLLATE NOCASE);
     CREATE INDEX sys_user_email ON sys_user (email COLLATE NOCASE);
     CREATE INDEX sys_user_name ON sys_user (name COLLATE NOCASE);
     CREATE INDEX sys_user_group_name ON sys_user_group (name COLLATE NOCASE);
     CREATE INDEX cmdb_ci_name ON cmdb_ci (name COLLATE NOCASE);
     CREATE INDEX sys_audit_document ON sys_audit (documentkey, sys_created_on);
     CREATE INDEX sys_journal_field_element ON sys_journal_field (element_id, sys_created_on);
     CREATE INDEX sys_import_set_loading ON sys_import_set (table_name, state);
     CREATE TABLE sys_number_counter (prefix TEXT PRIMARY KEY NOT NULL, next INTEGER NOT NULL);",
    // 2: one sys_choice row per (table, element, value).
    "CREATE UNIQUE INDEX sys_choice_entry ON sys_choice (name, element, value);",
    // 3: idempotency keys of creates, per account.
    "CREATE TABLE sluice_idempotency (
         account TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, outcome TEXT NOT NULL,
         created_on INTEGER NOT NULL, PRIMARY KEY (account, key));
     CREATE INDEX sluice_idempotency_age ON sluice_idempotency (created_on);",
    // 4: list queries compare text without regard to case, as ServiceNow does; an index they
    // search by must use the same collation, or SQLite scans the whole table.
    "DROP INDEX incident_number;
     CREATE UNIQUE INDEX incident_number ON incident (number COLLATE NOCASE);
     DROP INDEX sys_audit_document;
     CREATE INDEX sys_audit_document ON sys_audit (documentkey COLLATE NOCASE, sys_created_on);
     DROP INDEX sys_journal_field_element;
     CREATE INDEX sys_journal_field_element ON sys_journal_field (element_id COLLATE NOCASE, sys_created_on);",
    // 5: API tokens (SHA-256 digests only) and the admin audit.
    "CREATE TABLE sluice_api_token (
         id TEXT PRIMARY KEY NOT NULL, user_name TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, label TEXT NOT NULL,
         created_on TEXT NOT NULL, created_by TEXT NOT NULL);
     CREATE INDEX sluice_api_token_user ON sluice_api_token (user_name);
     CREATE TABLE sluice_admin_audit (
         id INTEGER PRIMARY KEY AUTOINCREMENT, created_on TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
         target TEXT NOT NULL, details TEXT NOT NULL);",
    // 6: request statistics: additive counters per minute, account, integration and name.
    "CREATE TABLE sluice_stats (
         minute INTEGER NOT NULL, account TEXT NOT NULL, integration TEXT NOT NULL, metric TEXT NOT NULL,
         value INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
         PRIMARY KEY (minute, account, integration, metric));
     CREATE INDEX sluice_stats_account ON sluice_stats (account, minute);
     CREATE INDEX sluice_stats_integration ON sluice_stats (integration, minute);",
    // 7: sys_audit stores only what is not derived from the rest of its row: the import reason
    // ("Import Set {source_table} row {source_row}"), internal_checkpoint (the first 18
    // characters of sys_id) and the system fields (the user and the time of the change) are
    // generated columns. An incident's 19 audit rows were 8.2 of the 9.5 KB it adds; this is a
    // third of them. `sluice_reason` holds a reason that is not the derived one.
    "CREATE TABLE sluice_audit_v7 (
         sys_id TEXT PRIMARY KEY NOT NULL, tablename TEXT NOT NULL DEFAULT '', documentkey TEXT NOT NULL DEFAULT '',
         fieldname TEXT NOT NULL DEFAULT '', oldvalue TEXT NOT NULL DEFAULT '', newvalue TEXT NOT NULL DEFAULT '',
         user TEXT NOT NULL DEFAULT '', record_checkpoint INTEGER NOT NULL DEFAULT '',
         source_table TEXT NOT NULL DEFAULT '', source_row TEXT NOT NULL DEFAULT '',
         sys_created_on TEXT NOT NULL DEFAULT '', sluice_reason TEXT NOT NULL DEFAULT '',
         reason TEXT GENERATED ALWAYS AS (CASE WHEN sluice_reason = '' AND source_table != ''
             THEN 'Import Set ' || source_table || ' row ' || source_row ELSE sluice_reason END) VIRTUAL,
         internal_checkpoint TEXT GENERATED ALWAYS AS (substr(sys_id, 1, 18)) VIRTUAL,
         sys_created_by TEXT GENERATED ALWAYS AS (user) VIRTUAL,
         sys_updated_on TEXT GENERATED ALWAYS AS (sys_created_on) VIRTUAL,
         sys_updated_by TEXT GENERATED ALWAYS AS (user) VIRTUAL,
         sys_mod_count INTEGER GENERATED ALWAYS AS (0) VIRTUAL);
     INSERT INTO sluice_audit_v7 (sys_id, tablename, documentkey, fieldname, oldvalue, newvalue, user,
             record_checkpoint, source_table, source_row, sys_created_on, sluice_reason)
         SELECT sys_id, tablename, documentkey, fieldname, oldvalue, newvalue, user, record_checkpoint,
             source_table, source_row, sys_created_on,
             CASE WHEN source_table != '' AND reason = 'Import Set ' || source_table || ' row ' || source_row
                 THEN '' ELSE reason END
         FROM sys_audit ORDER BY rowid;
     DROP TABLE sys_audit;
     ALTER TABLE sluice_audit_v7 RENAME TO sys_audit;
     CREATE INDEX sys_audit_document ON sys_audit (documentkey COLLATE NOCASE, sys_created_on);",
    // 8: one stored row per change set instead of one per changed field: `sluice_audit_set`
    // holds what a set's rows share once, and its changes as a JSON array of [field, old, new].
    // An incident's creation was 19 rows, each in three B-trees, a third of the writer's time.
    // `sys_audit` becomes a view that reads the sets as one row per field, after the per-field
    // rows written before (kept as they were, in `sluice_audit_field`). A field row's sys_id is
    // its set's with the last four hex digits replaced by the field's position (the set's own
    // ends in 0000; `sluice_set` names it, so a lookup by sys_id finds the set by its key); its
    // insertion order comes after every per-field row's.
    "ALTER TABLE sys_audit RENAME TO sluice_audit_field;
     CREATE TABLE sluice_audit_set (
         sys_id TEXT PRIMARY KEY NOT NULL, tablename TEXT NOT NULL, documentkey TEXT NOT NULL, user TEXT NOT NULL,
         sluice_reason TEXT NOT NULL, record_checkpoint INTEGER NOT NULL, source_table TEXT NOT NULL,
         source_row TEXT NOT NULL, sys_created_on TEXT NOT NULL, changes TEXT NOT NULL);
     CREATE INDEX sluice_audit_set_document ON sluice_audit_set (documentkey COLLATE NOCASE, sys_created_on);
     CREATE VIEW sys_audit AS
         SELECT rowid AS rowid, sys_id, tablename, documentkey, fieldname, oldvalue, newvalue, user, reason,
             record_checkpoint, internal_checkpoint, source_table, source_row, sys_created_on, sys_created_by,
             sys_updated_on, sys_updated_by, sys_mod_count, substr(sys_id, 1, 28) || '0000' AS sluice_set
         FROM sluice_audit_field
         UNION ALL
         SELECT (1 << 56) + (s.rowid << 16) + c.key, substr(s.sys_id, 1, 28) || printf('%04x', c.key),
             s.tablename, s.documentkey, c.value ->> 0, c.value ->> 1, c.value ->> 2, s.user,
             CASE WHEN s.sluice_reason = '' AND s.source_table != ''
                 THEN 'Import Set ' || s.source_table || ' row ' || s.source_row ELSE s.sluice_reason END,
             s.record_checkpoint, substr(s.sys_id, 1, 18), s.source_table, s.source_row, s.sys_created_on,
             s.user, s.sys_created_on, s.user, 0, s.sys_id
         FROM sluice_audit_set s, json_each(s.changes) c;",
    // 9: attachment content beside its `sys_attachment` record, removed with it (checked at
    // commit, so a dump may load either table first); attachments by their record.
    "CREATE TABLE sluice_attachment_content (
         sys_id TEXT PRIMARY KEY NOT NULL
             REFERENCES sys_attachment (sys_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
         content BLOB NOT NULL);
     CREATE INDEX sys_attachment_record ON sys_attachment (table_sys_id COLLATE NOCASE, table_name COLLATE NOCASE);",
    // 10: console sessions: the SHA-256 of the cookie's token (never the token), the account, the
    // session's CSRF token and its idle and absolute expiry (unix milliseconds).
    "CREATE TABLE sluice_session (
         digest TEXT PRIMARY KEY NOT NULL, user_name TEXT NOT NULL, csrf TEXT NOT NULL, created_ms INTEGER NOT NULL,
         idle_expires_ms INTEGER NOT NULL, absolute_expires_ms INTEGER NOT NULL);
     CREATE INDEX sluice_session_user ON sluice_session (user_name COLLATE NOCASE);
     CREATE INDEX sluice_session_idle ON sluice_session (idle_expires_ms);",
    // 11: the console's saved filters, per account (its user name exactly as stored), one name
    // once per account.
    "CREATE TABLE sluice_saved_filter (
         id TEXT PRIMARY KEY NOT NULL, user_name TEXT NOT NULL, name TEXT NOT NULL, query TEXT NOT NULL,
         sort TEXT NOT NULL, saved_ms INTEGER NOT NULL, UNIQUE (user_name, name));",
    // 12: incidents newest first (the console's and most lists' order) without sorting them all:
    // each index holds the rowid after the key, which is the order of ties.
    "CREATE INDEX incident_created ON incident (sys_created_on COLLATE NOCASE);
     CREATE INDEX incident_updated ON incident (sys_updated_on COLLATE NOCASE);",
    // 13: a token bound to one integration is that integration's routing key (PagerDuty Events
    // API v2), never a Bearer token; '' for the others.
    "ALTER TABLE sluice_api_token ADD COLUMN integration TEXT NOT NULL DEFAULT '';",
    // 14: the forwarding outbox: one row per forwarded record, due rows found by state and time.
    "CREATE TABLE sluice_outbox (
         integration TEXT NOT NULL, record_sys_id TEXT NOT NULL, table_name TEXT NOT NULL,
         staging_sys_id TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL,
         attempts INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL, lease_owner TEXT NOT NULL DEFAULT '',
         lease_until_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
         upstream_number TEXT NOT NULL DEFAULT '', upstream_sys_id TEXT NOT NULL DEFAULT '',
         created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (integration, record_sys_id));
     CREATE INDEX sluice_outbox_due ON sluice_outbox (state, next_attempt_ms);",
    // 15: due rows in the claim's order (time, then queueing), pending rows only: a claim reads
    // its few rows off the index instead of sorting every due row, and delivered rows leave it.
    "DROP INDEX sluice_outbox_due;
     CREATE INDEX sluice_outbox_due ON sluice_outbox (next_attempt_ms, created_ms) WHERE state = 'pending';",
];

/// The schema version a database has once every step ran (`PRAGMA user_version`).
pub const SCHEMA_VERSION: usize = STEPS.len();

/// Adds the `sys_choice` rows of every choice field that has none yet (at every start, so new
/// choices in a newer version appear).
fn seed_choices(conn: &Connection, catalog: &Catalog) -> rusqlite::Result<()> {
    let Some(choice) = catalog.get(sluice_core::tables::SYS_CHOICE) else { return Ok(()) };
    let actor = sluice_core::rules::Actor { user_name: "system".into(), sys_id: sluice_core::SysId::generate() };
    let now = sluice_core::DateTime::now();
    let mut exists = conn.prepare("SELECT 1 FROM sys_choice WHERE name = ?1 AND element = ?2 AND value = ?3")?;
    for table in catalog.tables() {
        for field in table.fields.iter().filter(|f| !f.choices.is_empty()) {
            for (i, c) in field.choices.iter().enumerate() {
                if exists.exists([&table.name, &field.name, &c.value])? {
                    continue;
                }
                let sequence = (i * 100).to_string();
                let record = sluice_core::rules::insert_simple(
                    choice,
                    &[
                        ("name", &table.name),
                        ("element", &field.name),
                        ("value", &c.value),
                        ("label", &c.label),
                        ("sequence", &sequence),
                        ("inactive", "false"),
                        ("language", "en"),
                    ],
                    &actor,
                    now,
                );
                super::records::insert(conn, choice, &record)?;
            }
        }
    }
    Ok(())
}

pub fn migrate(conn: &mut Connection, catalog: &Catalog) -> rusqlite::Result<()> {
    migrate_to(conn, catalog, STEPS.len())
}

/// Brings the schema up to step `last` (a test starts from an older version this way).
fn migrate_to(conn: &mut Connection, catalog: &Catalog, last: usize) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for table in catalog.tables() {
        ensure_table(&tx, table)?;
    }
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for (i, step) in STEPS.iter().enumerate().take(last).skip(version) {
        tx.execute_batch(step)?;
        if i == 0 {
            for prefix in [INCIDENT_PREFIX, IMPORT_SET_PREFIX] {
                tx.execute(
                    "INSERT INTO sys_number_counter (prefix, next) VALUES (?1, ?2)",
                    rusqlite::params![prefix, FIRST_NUMBER as i64],
                )?;
            }
        }
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    seed_choices(&tx, catalog)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGICAL: &str = "sys_id, tablename, documentkey, fieldname, oldvalue, newvalue, user, reason, \
        record_checkpoint, internal_checkpoint, source_table, source_row, sys_created_on, sys_created_by, \
        sys_updated_on, sys_updated_by, sys_mod_count";

    fn audit_rows(conn: &Connection) -> Vec<Vec<String>> {
        let mut stmt = conn.prepare(&format!("SELECT {LOGICAL} FROM sys_audit ORDER BY sys_id")).unwrap();
        stmt.query_map([], |r| {
            (0..17).map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}"))).collect()
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    /// Steps 7 and 8 keep every audit row as readers saw it, while storing only what is not derived.
    #[test]
    fn the_narrow_audit_table_reads_exactly_as_the_wide_one_did() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("t.db")).unwrap();
        let catalog = Catalog::builtin();
        migrate_to(&mut conn, &catalog, 6).unwrap();
        let insert = format!(
            "INSERT INTO sys_audit ({LOGICAL}) VALUES (?1, 'incident', 'doc1', ?2, '', 'v', 'bot', ?3, 0, ?4, ?5, ?6, '2026-11-28 05:00:00', 'bot', '2026-11-28 05:00:00', 'bot', 0)"
        );
        let rows = [
            // An import (the derived reason), a Table API change, a replay.
            (
                "01a2206e7161e730a065fef9d819ad2c",
                "short_description",
                "Import Set u_in row 01a2206e7161e730a065fef9d819ad99",
                "u_in",
                "01a2206e7161e730a065fef9d819ad99",
            ),
            ("01a2206e7161e730a065fef9d819ad2d", "state", "Table API", "", ""),
            (
                "01a2206e7161e730a065fef9d819ad2e",
                "impact",
                "Replay of Import Set u_in row 01a2206e7161e730a065fef9d819ad99 (requested by admin)",
                "u_in",
                "01a2206e7161e730a065fef9d819ad99",
            ),
        ];
        for (id, field, reason, table, row) in rows {
            conn.execute(&insert, rusqlite::params![id, field, reason, &id[..18], table, row]).unwrap();
        }
        let before = audit_rows(&conn);
        assert_eq!(before.len(), 3);

        migrate(&mut conn, &catalog).unwrap();
        assert_eq!(audit_rows(&conn), before, "rows read the same after the rebuild");
        let stored: Vec<String> = conn
            .prepare("SELECT sluice_reason FROM sluice_audit_field ORDER BY sys_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(stored[0], "", "the import reason is derived, not stored");
        assert_eq!(stored[1], "Table API");
        // A second start finds nothing to add or change.
        migrate(&mut conn, &catalog).unwrap();
        assert_eq!(audit_rows(&conn), before);

        // Step 8: a change set written now reads as one row per change, after the older rows.
        conn.execute(
            "INSERT INTO sluice_audit_set (sys_id, tablename, documentkey, user, sluice_reason, record_checkpoint,
                 source_table, source_row, sys_created_on, changes)
             VALUES ('01a2206e7161e730a065fef9d8190000', 'incident', 'doc1', 'bot', '', 1, 'u_in', 'r9',
                 '2026-11-28 06:00:00', '[[\"impact\",\"3\",\"1\"],[\"urgency\",\"\",\"2\"]]')",
            [],
        )
        .unwrap();
        let read: Vec<(String, String, String, String, String, String)> = conn
            .prepare("SELECT sys_id, fieldname, oldvalue, newvalue, reason, internal_checkpoint FROM sys_audit ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let fields: Vec<&str> = read.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(fields, ["short_description", "state", "impact", "impact", "urgency"]);
        assert_eq!(
            read[3],
            (
                "01a2206e7161e730a065fef9d8190000".into(),
                "impact".into(),
                "3".into(),
                "1".into(),
                "Import Set u_in row r9".into(),
                "01a2206e7161e730a0".into()
            )
        );
        assert_eq!(read[4].0, "01a2206e7161e730a065fef9d8190001");
    }
}
