//! Schema creation and evolution on PostgreSQL, from the same core schemas as SQLite's: tables
//! are created from them and gain the columns a newer schema adds; the steps that cannot be
//! derived (indexes, sequences, sluice's own tables) are numbered in [`STEPS`] and recorded in
//! `sluice_migrations`. Everything runs in one transaction under an advisory lock, so nodes that
//! start together migrate once, one after the other.

use sluice_core::number::{FIRST_NUMBER, IMPORT_SET_PREFIX, INCIDENT_PREFIX};
use sluice_core::rules::{self, Actor};
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, SysId};
use sqlx::{PgConnection, Row};

use crate::query::ident;
use crate::{lock, records};

fn column_sql(name: &str, kind: &FieldKind) -> String {
    match kind {
        // NULL is the empty value: `NOT NULL DEFAULT ''` has no integer equivalent.
        FieldKind::Integer => format!("{} BIGINT", ident(name)),
        _ => format!("{} TEXT COLLATE \"C\" NOT NULL DEFAULT ''", ident(name)),
    }
}

/// The sequence that numbers a staging table's rows within their import sets.
pub fn row_sequence(table: &str) -> String {
    ident(&format!("{table}_row_seq"))
}

/// The sequence behind a record number prefix (`INC`, `ISET`).
pub fn number_sequence(prefix: &str) -> String {
    ident(&format!("sluice_number_{}", prefix.to_ascii_lowercase()))
}

/// Creates the table when missing and adds any column the schema has and the table lacks. The
/// caller holds the DDL lock.
pub async fn ensure_table(c: &mut PgConnection, schema: &TableSchema) -> Result<(), sqlx::Error> {
    let mut columns: Vec<String> = schema
        .stored_fields()
        .map(|f| {
            if f.name == "sys_id" {
                "\"sys_id\" TEXT COLLATE \"C\" PRIMARY KEY".to_owned()
            } else {
                column_sql(&f.name, &f.kind)
            }
        })
        .collect();
    // Insertion order, as SQLite's rowid: the last ordering term of every list.
    columns.push("sluice_rowid BIGINT GENERATED ALWAYS AS IDENTITY".into());
    let table = ident(&schema.name);
    records::sql(format!("CREATE TABLE IF NOT EXISTS {table} ({})", columns.join(", "))).execute(&mut *c).await?;
    // A table read through a view (sys_audit, step 3) gains columns by a step that redefines it.
    let view: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.views WHERE table_schema = current_schema() AND table_name = $1)",
    )
    .bind(&schema.name)
    .fetch_one(&mut *c)
    .await?;
    if view {
        return Ok(());
    }
    let existing: Vec<String> = sqlx::query(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(&schema.name)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    for f in schema.stored_fields() {
        if !existing.contains(&f.name) {
            records::sql(format!("ALTER TABLE {table} ADD COLUMN {}", column_sql(&f.name, &f.kind)))
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

/// What every staging table needs besides its columns: rows of one import set in order, rows by
/// state in staging order (pending rows for the bulk workers, error rows for replays), rows newest
/// first (the console's import rows; made at the next start on older databases), and the sequence
/// that numbers the rows of a set.
pub async fn staging_extras(c: &mut PgConnection, table: &str) -> Result<(), sqlx::Error> {
    let t = ident(table);
    for statement in [
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {t} (\"sys_import_set\", \"sys_import_row\")",
            ident(&format!("{table}_set_row"))
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {t} (\"sys_import_state\", sluice_rowid)",
            ident(&format!("{table}_state"))
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {t} (lower(\"sys_created_on\"), sluice_rowid)",
            ident(&format!("{table}_created"))
        ),
        format!("CREATE SEQUENCE IF NOT EXISTS {} START WITH 1", row_sequence(table)),
    ] {
        records::sql(statement).execute(&mut *c).await?;
    }
    Ok(())
}

/// Prepares a staging table under the DDL lock, in its own transaction.
pub async fn prepare_staging(c: &mut PgConnection, salt: &str, schema: &TableSchema) -> Result<(), sqlx::Error> {
    lock(c, &[(salt, "ddl")]).await?;
    ensure_table(c, schema).await?;
    staging_extras(c, &schema.name).await
}

fn steps() -> Vec<String> {
    vec![
        // 1: indexes for lookups, coalesce and audit history (lower(): comparisons ignore ASCII
        // case); number sequences; sluice's own tables.
        format!(
            "CREATE UNIQUE INDEX incident_number ON incident (lower(number));
             CREATE INDEX incident_correlation ON incident (lower(correlation_id));
             CREATE INDEX sys_user_user_name ON sys_user (lower(user_name));
             CREATE INDEX sys_user_email ON sys_user (lower(email));
             CREATE INDEX sys_user_name ON sys_user (lower(name));
             CREATE INDEX sys_user_group_name ON sys_user_group (lower(name));
             CREATE INDEX cmdb_ci_name ON cmdb_ci (lower(name));
             CREATE INDEX sys_audit_document ON sys_audit (lower(documentkey), sys_created_on);
             CREATE INDEX sys_journal_field_element ON sys_journal_field (lower(element_id), sys_created_on);
             CREATE INDEX sys_import_set_loading ON sys_import_set (table_name, state);
             CREATE UNIQUE INDEX sys_choice_entry ON sys_choice (name, element, value);
             CREATE SEQUENCE {inc} START WITH {FIRST_NUMBER};
             CREATE SEQUENCE {iset} START WITH {FIRST_NUMBER};
             CREATE TABLE sluice_idempotency (
                 account TEXT COLLATE \"C\" NOT NULL, key TEXT COLLATE \"C\" NOT NULL, fingerprint TEXT NOT NULL,
                 outcome TEXT NOT NULL, created_on BIGINT NOT NULL, PRIMARY KEY (account, key));
             CREATE INDEX sluice_idempotency_age ON sluice_idempotency (created_on);
             CREATE TABLE sluice_api_token (
                 id TEXT COLLATE \"C\" PRIMARY KEY, user_name TEXT COLLATE \"C\" NOT NULL,
                 digest TEXT COLLATE \"C\" NOT NULL UNIQUE, label TEXT NOT NULL, created_on TEXT NOT NULL,
                 created_by TEXT NOT NULL, sluice_rowid BIGINT GENERATED ALWAYS AS IDENTITY);
             CREATE INDEX sluice_api_token_user ON sluice_api_token (user_name);
             CREATE TABLE sluice_admin_audit (
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created_on TEXT NOT NULL, actor TEXT NOT NULL,
                 action TEXT NOT NULL, target TEXT NOT NULL, details TEXT NOT NULL);
             CREATE TABLE sluice_import_set_base (
                 import_set TEXT COLLATE \"C\" PRIMARY KEY REFERENCES sys_import_set (sys_id) ON DELETE CASCADE,
                 base BIGINT NOT NULL);",
            inc = number_sequence(INCIDENT_PREFIX),
            iset = number_sequence(IMPORT_SET_PREFIX),
        ),
        // 2: request statistics, per minute, account, integration and counter.
        "CREATE TABLE sluice_stats (
             minute BIGINT NOT NULL, account TEXT COLLATE \"C\" NOT NULL, integration TEXT COLLATE \"C\" NOT NULL,
             metric TEXT COLLATE \"C\" NOT NULL, value BIGINT NOT NULL, first_seen BIGINT NOT NULL,
             last_seen BIGINT NOT NULL, PRIMARY KEY (minute, account, integration, metric));
         CREATE INDEX sluice_stats_account ON sluice_stats (account, minute);
         CREATE INDEX sluice_stats_integration ON sluice_stats (integration, minute);"
            .to_owned(),
        // 3: one stored row per change set, `sys_audit` a view reading it as one row per field
        // (see `sluice_store::audit_set`; SQLite's step 8). A field row's order comes after every
        // per-field row's: its set's order shifted left 16 bits, plus its position.
        "ALTER TABLE sys_audit RENAME TO sluice_audit_field;
         CREATE TABLE sluice_audit_set (
             sys_id TEXT COLLATE \"C\" PRIMARY KEY, tablename TEXT COLLATE \"C\" NOT NULL,
             documentkey TEXT COLLATE \"C\" NOT NULL, \"user\" TEXT COLLATE \"C\" NOT NULL,
             sluice_reason TEXT COLLATE \"C\" NOT NULL, record_checkpoint BIGINT,
             source_table TEXT COLLATE \"C\" NOT NULL, source_row TEXT COLLATE \"C\" NOT NULL,
             sys_created_on TEXT COLLATE \"C\" NOT NULL, changes TEXT NOT NULL,
             sluice_rowid BIGINT GENERATED ALWAYS AS IDENTITY);
         CREATE INDEX sluice_audit_set_document ON sluice_audit_set (lower(documentkey), sys_created_on);
         CREATE VIEW sys_audit AS
             SELECT sys_id, tablename, documentkey, fieldname, oldvalue, newvalue, \"user\", reason, record_checkpoint,
                 internal_checkpoint, source_table, source_row, sys_created_on, sys_created_by, sys_updated_on,
                 sys_updated_by, sys_mod_count, sluice_rowid, (left(sys_id, 28) || '0000') COLLATE \"C\" AS sluice_set
             FROM sluice_audit_field
             UNION ALL
             SELECT (left(s.sys_id, 28) || lpad(to_hex(c.n - 1), 4, '0')) COLLATE \"C\", s.tablename, s.documentkey,
                 (c.change ->> 0) COLLATE \"C\", (c.change ->> 1) COLLATE \"C\", (c.change ->> 2) COLLATE \"C\",
                 s.\"user\",
                 (CASE WHEN s.sluice_reason = '' AND s.source_table != ''
                     THEN 'Import Set ' || s.source_table || ' row ' || s.source_row ELSE s.sluice_reason END) COLLATE \"C\",
                 s.record_checkpoint, left(s.sys_id, 18) COLLATE \"C\", s.source_table, s.source_row, s.sys_created_on,
                 s.\"user\", s.sys_created_on, s.\"user\", 0::bigint, (1::bigint << 56) + (s.sluice_rowid << 16) + c.n - 1,
                 s.sys_id
             FROM sluice_audit_set s CROSS JOIN LATERAL json_array_elements(s.changes::json) WITH ORDINALITY AS c(change, n);"
            .to_owned(),
        // 4: attachment content beside its `sys_attachment` record, removed with it (checked at
        // commit, so a dump may load either table first); attachments by their record.
        "CREATE TABLE sluice_attachment_content (
             sys_id TEXT COLLATE \"C\" PRIMARY KEY
                 REFERENCES sys_attachment (sys_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
             content BYTEA NOT NULL);
         CREATE INDEX sys_attachment_record ON sys_attachment (lower(table_sys_id), lower(table_name));"
            .to_owned(),
        // 5: console sessions: the SHA-256 of the cookie's token (never the token), the account,
        // the session's CSRF token and its idle and absolute expiry (unix milliseconds).
        "CREATE TABLE sluice_session (
             digest TEXT COLLATE \"C\" PRIMARY KEY, user_name TEXT COLLATE \"C\" NOT NULL,
             csrf TEXT COLLATE \"C\" NOT NULL, created_ms BIGINT NOT NULL, idle_expires_ms BIGINT NOT NULL,
             absolute_expires_ms BIGINT NOT NULL);
         CREATE INDEX sluice_session_user ON sluice_session (lower(user_name));
         CREATE INDEX sluice_session_idle ON sluice_session (idle_expires_ms);"
            .to_owned(),
        // 6: the console's saved filters, per account (its user name exactly as stored), one
        // name once per account.
        "CREATE TABLE sluice_saved_filter (
             id TEXT COLLATE \"C\" PRIMARY KEY, user_name TEXT COLLATE \"C\" NOT NULL,
             name TEXT COLLATE \"C\" NOT NULL, query TEXT COLLATE \"C\" NOT NULL, sort TEXT COLLATE \"C\" NOT NULL,
             saved_ms BIGINT NOT NULL, UNIQUE (user_name, name));"
            .to_owned(),
        // 7: incidents newest first (the console's and most lists' order) without sorting them
        // all; ties in insertion order.
        "CREATE INDEX incident_created ON incident (lower(sys_created_on), sluice_rowid);
         CREATE INDEX incident_updated ON incident (lower(sys_updated_on), sluice_rowid);"
            .to_owned(),
        // 8: a token bound to one integration is that integration's routing key (PagerDuty
        // Events API v2), never a Bearer token; '' for the others.
        "ALTER TABLE sluice_api_token ADD COLUMN integration TEXT COLLATE \"C\" NOT NULL DEFAULT '';".to_owned(),
        // 9: the forwarding outbox: one row per forwarded record, due rows found by state and
        // time; workers of every node lease rows (FOR UPDATE SKIP LOCKED).
        "CREATE TABLE sluice_outbox (
             integration TEXT COLLATE \"C\" NOT NULL, record_sys_id TEXT COLLATE \"C\" NOT NULL,
             table_name TEXT NOT NULL, staging_sys_id TEXT NOT NULL, state TEXT COLLATE \"C\" NOT NULL,
             version BIGINT NOT NULL, attempts INTEGER NOT NULL, next_attempt_ms BIGINT NOT NULL,
             lease_owner TEXT NOT NULL DEFAULT '', lease_until_ms BIGINT NOT NULL DEFAULT 0,
             last_error TEXT NOT NULL DEFAULT '', upstream_number TEXT NOT NULL DEFAULT '',
             upstream_sys_id TEXT NOT NULL DEFAULT '', created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,
             PRIMARY KEY (integration, record_sys_id));
         CREATE INDEX sluice_outbox_due ON sluice_outbox (state, next_attempt_ms);"
            .to_owned(),
        // 10: an integration's due rows in the claim's order (time, then queueing), pending rows
        // only: a claim reads its few rows off the index instead of sorting every due row (which
        // made a drain of 60,000 rows take minutes), whatever the planner's statistics say.
        "DROP INDEX sluice_outbox_due;
         CREATE INDEX sluice_outbox_due ON sluice_outbox (integration, next_attempt_ms, created_ms)
             WHERE state = 'pending';"
            .to_owned(),
    ]
}

/// Adds the `sys_choice` rows of every choice field that has none yet (at every start, so new
/// choices in a newer version appear).
async fn seed_choices(c: &mut PgConnection, catalog: &Catalog) -> Result<(), sqlx::Error> {
    let Some(choice) = catalog.get(tables::SYS_CHOICE) else { return Ok(()) };
    let actor = Actor { user_name: "system".into(), sys_id: SysId::generate() };
    let now = DateTime::now();
    let insert = format!("{} ON CONFLICT (name, element, value) DO NOTHING", records::insert_sql(choice));
    for table in catalog.tables() {
        for field in table.fields.iter().filter(|f| !f.choices.is_empty()) {
            for (i, ch) in field.choices.iter().enumerate() {
                let sequence = (i * 100).to_string();
                let record = rules::insert_simple(
                    choice,
                    &[
                        ("name", &table.name),
                        ("element", &field.name),
                        ("value", &ch.value),
                        ("label", &ch.label),
                        ("sequence", &sequence),
                        ("inactive", "false"),
                        ("language", "en"),
                    ],
                    &actor,
                    now,
                );
                let mut q = records::sql(insert.clone());
                for f in choice.stored_fields() {
                    q = q.bind(record.get(&f.name).cloned().unwrap_or_default());
                }
                q.execute(&mut *c).await?;
            }
        }
    }
    Ok(())
}

/// Brings the schema up to date; the caller runs it in a transaction.
pub async fn migrate(c: &mut PgConnection, salt: &str, catalog: &Catalog) -> Result<(), sqlx::Error> {
    lock(c, &[(salt, "ddl")]).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS sluice_migrations (step INTEGER PRIMARY KEY, applied_on TEXT NOT NULL)")
        .execute(&mut *c)
        .await?;
    for table in catalog.tables() {
        ensure_table(c, table).await?;
    }
    let done: i32 =
        sqlx::query("SELECT COALESCE(MAX(step), 0) FROM sluice_migrations").fetch_one(&mut *c).await?.try_get(0)?;
    for (i, step) in steps().into_iter().enumerate().skip(done.max(0) as usize) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(step)).execute(&mut *c).await?;
        sqlx::query("INSERT INTO sluice_migrations (step, applied_on) VALUES ($1, $2)")
            .bind(i as i32 + 1)
            .bind(DateTime::now().to_string())
            .execute(&mut *c)
            .await?;
    }
    seed_choices(c, catalog).await
}
