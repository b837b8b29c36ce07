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
    let existing: Vec<String> = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{}')", schema.name))?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for f in schema.stored_fields() {
        if !existing.contains(&f.name) {
            conn.execute_batch(&format!("ALTER TABLE {} ADD COLUMN {}", schema.name, column_sql(&f.name, &f.kind)))?;
        }
    }
    Ok(())
}

/// The indexes every staging table needs: rows of one import set in order, and rows by state in
/// staging order (pending rows for the bulk workers, error rows for replays).
pub fn staging_indexes(conn: &Connection, table: &str) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS {table}_set_row ON {table} (sys_import_set, sys_import_row);
         CREATE INDEX IF NOT EXISTS {table}_state ON {table} (sys_import_state);"
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
];

/// The schema version a database has once every step ran (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: usize = STEPS.len();

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
                super::records::insert(conn, choice, &record, None)?;
            }
        }
    }
    Ok(())
}

pub fn migrate(conn: &mut Connection, catalog: &Catalog) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for table in catalog.tables() {
        ensure_table(&tx, table)?;
    }
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for (i, step) in STEPS.iter().enumerate().skip(version) {
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
