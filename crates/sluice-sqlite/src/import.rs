//! One imported row inside the writer's transaction: today's import set and row number, the
//! commit step ([`sluice_store::settle`], through [`SqliteTx`]), then the staging row written
//! once with its outcome. Running inside the single writer makes numbering and coalescing
//! race-free.

use rusqlite::{Connection, OptionalExtension, params};
use sluice_core::number;
use sluice_core::rules::{Actor, Applied};
use sluice_core::schema::TableSchema;
use sluice_core::tables::{self, Catalog};
use sluice_core::transform::{Lookup, Plan};
use sluice_core::validate::FieldError;
use sluice_core::{DateTime, Record, SysId};
use sluice_store::settle::{self, RowContext, RowTransaction};
use sluice_store::table_write::TableTransaction;

use crate::{history, import_slot, records, reference_cache};
pub(crate) use sluice_store::staging_row::outcome_fields;
use sluice_store::{ImportJob, ImportOutcome, TableWrite, WriteResult};

pub fn next_number(conn: &Connection, prefix: &str) -> rusqlite::Result<String> {
    super::numbers::next(conn, prefix)
}

/// The staging table's import set in state `loading`, created when there is none today
/// (ServiceNow closes web-service import sets at midnight).
fn current_import_set(
    conn: &Connection,
    catalog: &Catalog,
    table: &str,
    actor: &Actor,
    now: DateTime,
) -> rusqlite::Result<(String, String)> {
    let today = now.to_string()[..10].to_owned();
    let found: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT sys_id, number, sys_created_on FROM sys_import_set
             WHERE table_name = ?1 AND state = 'loading' ORDER BY rowid DESC LIMIT 1",
        )?
        .query_row([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((sys_id, number, created)) = found {
        if created.starts_with(&today) {
            return Ok((sys_id, number));
        }
        conn.prepare_cached("UPDATE sys_import_set SET state = 'processed', sys_updated_on = ?2 WHERE sys_id = ?1")?
            .execute(params![sys_id, now.to_string()])?;
    }
    let number = next_number(conn, number::IMPORT_SET_PREFIX)?;
    let schema = catalog.get(tables::SYS_IMPORT_SET).expect("built-in table");
    let record = sluice_store::staging_row::synchronous_import_set(schema, &number, table, actor, now);
    records::insert(conn, schema, &record)?;
    Ok((record["sys_id"].clone(), number))
}

/// The writer's transaction as the commit step sees it ([`sluice_store::settle`]). Every call
/// completes at once (rusqlite is synchronous), so the step is run with [`ready`].
pub(crate) struct SqliteTx<'a> {
    pub conn: &'a Connection,
    /// Whether reference lookups go through the writer's [`reference_cache`] (a reader's
    /// connection must not: the cache mirrors the writer's own writes).
    pub cached: bool,
}

impl RowTransaction for SqliteTx<'_> {
    type Error = rusqlite::Error;

    async fn find_reference(&mut self, schema: &TableSchema, lookup: &Lookup) -> rusqlite::Result<Option<String>> {
        if self.cached
            && let Some(sys_id) = reference_cache::get(lookup)
        {
            return Ok(Some(sys_id));
        }
        let found = find_reference(self.conn, schema, lookup)?;
        if self.cached
            && let Some(sys_id) = &found
        {
            reference_cache::put(lookup, sys_id);
        }
        Ok(found)
    }

    async fn create_reference(
        &mut self,
        schema: &TableSchema,
        lookup: &Lookup,
        record: Record,
    ) -> rusqlite::Result<Option<String>> {
        // The single writer: nobody else can have created it since the search.
        records::insert(self.conn, schema, &record)?;
        if self.cached {
            reference_cache::put(lookup, &record["sys_id"]);
        }
        Ok(Some(record["sys_id"].clone()))
    }

    async fn find_coalesce_target(&mut self, target: &TableSchema, plan: &Plan) -> rusqlite::Result<Option<Record>> {
        find_coalesce_target(self.conn, target, plan)
    }

    async fn next_number(&mut self, prefix: &str) -> rusqlite::Result<Option<String>> {
        next_number(self.conn, prefix).map(Some)
    }

    async fn insert(&mut self, target: &TableSchema, record: &Record) -> rusqlite::Result<()> {
        records::insert(self.conn, target, record)
    }

    async fn update(&mut self, target: &TableSchema, applied: &Applied) -> rusqlite::Result<()> {
        records::update(self.conn, target, &applied.record["sys_id"], &applied.update_columns())
    }

    async fn write_history(&mut self, row: &RowContext<'_>, applied: &Applied) -> rusqlite::Result<()> {
        history::audit(self.conn, row.target, applied, row.actor, row.now, &row.source())
    }

    async fn enqueue_delivery(&mut self, queued: &sluice_store::outbox::Queued<'_>) -> rusqlite::Result<()> {
        crate::outbox::enqueue(self.conn, queued)
    }
}

impl TableTransaction for SqliteTx<'_> {
    async fn get_for_update(&mut self, schema: &TableSchema, sys_id: &str) -> rusqlite::Result<Option<Record>> {
        // The single writer: nobody else writes it meanwhile.
        records::get(self.conn, schema, sys_id)
    }

    async fn delete(&mut self, schema: &TableSchema, sys_id: &str) -> rusqlite::Result<bool> {
        if records::get(self.conn, schema, sys_id)?.is_none() {
            return Ok(false);
        }
        self.conn.prepare_cached(&format!("DELETE FROM {} WHERE sys_id = ?1", schema.name))?.execute([sys_id])?;
        Ok(true)
    }

    async fn attachments_of(&mut self, table: &str, sys_id: &str) -> rusqlite::Result<Vec<Record>> {
        crate::attachments::of(self.conn, table, sys_id)
    }

    async fn find_named(
        &mut self,
        schema: &TableSchema,
        value: &str,
        match_fields: &[&str],
    ) -> rusqlite::Result<Option<String>> {
        find_named(self.conn, schema, value, match_fields)
    }
}

/// A Table API write in the writer's transaction ([`sluice_store::table_write::write`]).
pub(crate) fn table_write(conn: &Connection, catalog: &Catalog, w: &TableWrite) -> rusqlite::Result<WriteResult> {
    ready(sluice_store::table_write::write(&mut SqliteTx { conn, cached: false }, catalog, w))
}

/// The value of a future that never waits: every [`SqliteTx`] call is synchronous, so the
/// commit step completes in its first poll.
pub(crate) fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(output) => output,
        // Only an await on something other than SqliteTx could get here; the writer's job
        // guard turns the panic into that job's error.
        std::task::Poll::Pending => panic!("the SQLite commit step waited"),
    }
}

/// Settles a row's verdict on the writer's connection ([`sluice_store::settle::settle`]).
pub(crate) fn settle(
    conn: &Connection,
    catalog: &Catalog,
    row: &RowContext<'_>,
    verdict: &Result<Plan, Vec<FieldError>>,
    prior_target: Option<Record>,
    outcome: ImportOutcome,
) -> rusqlite::Result<ImportOutcome> {
    let mut tx = SqliteTx { conn, cached: true };
    Ok(ready(settle::settle(&mut tx, row, catalog, verdict, prior_target, outcome))?.outcome)
}

pub(crate) fn find_reference(
    conn: &Connection,
    schema: &TableSchema,
    lookup: &Lookup,
) -> rusqlite::Result<Option<String>> {
    find_named(conn, schema, &lookup.value, &lookup.match_fields)
}

/// `value` when it is the sys_id of a record of `schema`, else the first record (oldest first)
/// whose field equals it, ignoring ASCII case, trying `match_fields` in order.
fn find_named<F: AsRef<str>>(
    conn: &Connection,
    schema: &TableSchema,
    value: &str,
    match_fields: &[F],
) -> rusqlite::Result<Option<String>> {
    if SysId::is_valid(value) && records::get(conn, schema, value)?.is_some() {
        return Ok(Some(value.to_owned()));
    }
    for field in match_fields {
        let sql = format!(
            "SELECT sys_id FROM {} WHERE {} = ?1 COLLATE NOCASE ORDER BY rowid LIMIT 1",
            schema.name,
            field.as_ref()
        );
        if let Some(id) = conn.prepare_cached(&sql)?.query_row([value], |r| r.get(0)).optional()? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

fn find_coalesce_target(conn: &Connection, schema: &TableSchema, plan: &Plan) -> rusqlite::Result<Option<Record>> {
    let mut conditions: Vec<String> = plan
        .coalesce
        .iter()
        .enumerate()
        .map(|(i, (field, _))| format!("{field} = ?{} COLLATE NOCASE", i + 1))
        .collect();
    if plan.coalesce_active_only && schema.field("active").is_some() {
        conditions.push("active = 'true'".into());
    }
    if plan.skips_resolved(schema) {
        conditions.push(format!("state IS NOT {}", sluice_core::incident::STATE_RESOLVED));
    }
    let sql = format!(
        "SELECT {} FROM {} WHERE {} ORDER BY rowid LIMIT 1",
        records::columns(schema),
        schema.name,
        conditions.join(" AND ")
    );
    conn.prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(plan.coalesce.iter().map(|(_, v)| v)), |row| {
            records::from_row(schema, row)
        })
        .optional()
}

/// Runs one import job; the caller wraps it in a savepoint of the batch's transaction.
pub fn run(conn: &Connection, catalog: &Catalog, job: &ImportJob) -> rusqlite::Result<ImportOutcome> {
    let staging = &job.staging;
    let now = job.now.to_string();
    let day = &now[..10];
    let (set_id, set_number, row_index) = match import_slot::take(&staging.name, day) {
        Some(slot) => slot,
        None => {
            let (set_id, number) = current_import_set(conn, catalog, &staging.name, &job.actor, job.now)?;
            let row: i64 = conn
                .prepare_cached(&format!(
                    "SELECT COALESCE(MAX(sys_import_row), -1) + 1 FROM {} WHERE sys_import_set = ?1",
                    staging.name
                ))?
                .query_row([&set_id], |r| r.get(0))?;
            import_slot::remember(&staging.name, &set_id, &number, day, row);
            (set_id, number, row)
        }
    };
    let reason = job.audit_reason();
    let context = job.row(&reason);
    let outcome = ImportOutcome::unsettled(set_number, job.staging_sys_id.clone());
    let outcome = settle(conn, catalog, &context, &job.verdict, None, outcome)?;
    // Written once, with its outcome (nothing in the transaction reads it before): an INSERT
    // then an UPDATE would copy the payload twice.
    let fields = outcome_fields(&outcome);
    let row_number = row_index.to_string();
    let mut set: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (*f, v.as_str())).collect();
    set.extend([
        ("sys_import_set", set_id.as_str()),
        ("sys_target_table", job.target.name.as_str()),
        ("sys_transform_map", job.transform_map.as_str()),
        ("sys_integration_version", job.integration_version.as_str()),
        ("sys_import_row", row_number.as_str()),
    ]);
    let row = records::NewStagingRow {
        sys_id: job.staging_sys_id.as_str(),
        columns: &job.columns,
        payload: &job.payload,
        set: &set,
    };
    let mut insert = conn.prepare_cached(&records::insert_sql(staging))?;
    records::insert_staging_row(&mut insert, staging, &row, &job.actor.user_name, &now)?;
    Ok(outcome)
}
