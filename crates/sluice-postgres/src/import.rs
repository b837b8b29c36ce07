//! One imported row: the commit step ([`sluice_store::settle`], through [`PgTx`]), then the
//! staging row with its outcome. Imports are group committed (`writer.rs`, `batch.rs`); this is
//! the row-at-a-time form a batch falls back to when one of its jobs fails, and [`PgTx`] also
//! serves `insertMultiple` rows (`bulk.rs`). Today's import set is remembered per node
//! (`import_set`).
//!
//! Several nodes share the database, so what SQLite's single writer gives for free is made
//! explicit: numbers come from sequences; the records an import may create or coalesce into are
//! claimed with advisory transaction locks (one per coalesce key and per reference value that may
//! be created), taken in a fixed order, so two imports of the same correlation id run one after
//! the other and the second finds and updates the first's incident.

use std::collections::HashMap;

use sluice_core::number;
use sluice_core::rules::{Actor, Applied};
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_core::tables;
use sluice_core::transform::{Lookup, Plan};
use sluice_core::{DateTime, Record, SysId};
pub(crate) use sluice_store::settle::reference_key;
use sluice_store::settle::{self, RowContext, RowTransaction};
use sluice_store::table_write::TableTransaction;
use sqlx::{PgConnection, PgPool, Row};

use crate::Result;
use crate::migrate::{number_sequence, row_sequence};
use crate::query::ident;
use crate::{Ctx, history, idempotency, lock, lock_key, records};
use sluice_store::idempotency::encode;
pub(crate) use sluice_store::staging_row::{outcome_fields, staging_row};
use sluice_store::{ImportJob, ImportOutcome, TableWrite, WriteResult};

pub async fn next_number(c: &mut PgConnection, prefix: &str) -> Result<String, sqlx::Error> {
    let n: i64 =
        records::sql(format!("SELECT nextval('{}')", number_sequence(prefix))).fetch_one(c).await?.try_get(0)?;
    Ok(number::format(prefix, n as u64))
}

/// Today's import set of a staging table (state `loading`) and the base of its row numbers,
/// remembered per node until the day changes (only the first import of a new day closes a
/// `loading` set, so a remembered set stays current all day).
#[derive(Debug, Clone)]
pub(crate) struct ImportSet {
    pub set_id: String,
    pub number: String,
    base: i64,
    day: String,
}

impl ImportSet {
    /// The row number in this set of a value drawn from the staging table's row sequence.
    pub fn row(&self, drawn: i64) -> i64 {
        drawn - self.base - 1
    }
}

const CURRENT_SET_SQL: &str = "SELECT s.sys_id, s.number, s.sys_created_on, b.base
     FROM sys_import_set s JOIN sluice_import_set_base b ON b.import_set = s.sys_id
     WHERE s.table_name = $1 AND s.state = 'loading' ORDER BY s.sluice_rowid DESC LIMIT 1";

/// The set in state `loading` if it is today's, else the stale one's sys_id.
async fn find_set(c: &mut PgConnection, table: &str, day: &str) -> Result<(Option<ImportSet>, Option<String>)> {
    let row = sqlx::query(CURRENT_SET_SQL).bind(table).fetch_optional(c).await?;
    let Some(row) = row else { return Ok((None, None)) };
    let created: String = row.try_get(2)?;
    let set_id: String = row.try_get(0)?;
    if !created.starts_with(day) {
        return Ok((None, Some(set_id)));
    }
    Ok((Some(ImportSet { set_id, number: row.try_get(1)?, base: row.try_get(3)?, day: day.to_owned() }), None))
}

/// The staging table's import set in state `loading`, created when there is none today
/// (ServiceNow closes web-service import sets at midnight). Creating one is serialised across
/// nodes by an advisory lock and committed on its own, so the imports that waited find it.
pub(crate) async fn import_set(
    pool: &PgPool,
    ctx: &Ctx,
    table: &str,
    actor: &Actor,
    now: DateTime,
) -> Result<ImportSet> {
    let day = now.to_string()[..10].to_owned();
    if let Some(set) = ctx.sets.lock().unwrap_or_else(|e| e.into_inner()).get(table).filter(|s| s.day == day) {
        return Ok(set.clone());
    }
    let set = find_or_create_set(pool, ctx, table, actor, now, &day).await?;
    ctx.sets.lock().unwrap_or_else(|e| e.into_inner()).insert(table.to_owned(), set.clone());
    Ok(set)
}

async fn find_or_create_set(
    pool: &PgPool,
    ctx: &Ctx,
    table: &str,
    actor: &Actor,
    now: DateTime,
    day: &str,
) -> Result<ImportSet> {
    if let (Some(set), _) = find_set(&mut *pool.acquire().await?, table, day).await? {
        return Ok(set);
    }
    let mut tx = pool.begin().await?;
    lock(&mut tx, &[(&ctx.salt, &format!("import_set:{table}"))]).await?;
    let stale = match find_set(&mut tx, table, day).await? {
        (Some(set), _) => {
            tx.commit().await?;
            return Ok(set);
        }
        (None, stale) => stale,
    };
    if let Some(old) = stale {
        sqlx::query("UPDATE sys_import_set SET state = 'processed', sys_updated_on = $2 WHERE sys_id = $1")
            .bind(old)
            .bind(now.to_string())
            .execute(&mut *tx)
            .await?;
    }
    let number = next_number(&mut tx, number::IMPORT_SET_PREFIX).await?;
    let schema = ctx.catalog.get(tables::SYS_IMPORT_SET).expect("built-in table");
    let record = sluice_store::staging_row::synchronous_import_set(schema, &number, table, actor, now);
    records::insert(&mut tx, schema, &record).await?;
    let base: i64 =
        records::sql(format!("SELECT nextval('{}')", row_sequence(table))).fetch_one(&mut *tx).await?.try_get(0)?;
    sqlx::query("INSERT INTO sluice_import_set_base (import_set, base) VALUES ($1, $2)")
        .bind(&record["sys_id"])
        .bind(base)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ImportSet { set_id: record["sys_id"].clone(), number, base, day: day.to_owned() })
}

/// Draws `rows` values from the row sequence of staging table `table` and `numbers` from the
/// sequence of `prefix`, in one round trip; each list ascending.
pub(crate) async fn draw(
    c: &mut PgConnection,
    table: &str,
    rows: usize,
    prefix: &str,
    numbers: usize,
) -> Result<(Vec<i64>, Vec<i64>), sqlx::Error> {
    let text = format!(
        "SELECT ARRAY(SELECT nextval('{}') FROM generate_series(1, $1)),
                ARRAY(SELECT nextval('{}') FROM generate_series(1, $2))",
        row_sequence(table),
        number_sequence(prefix)
    );
    let row = records::sql(text).bind(rows as i64).bind(numbers as i64).fetch_one(c).await?;
    let (mut rows, mut numbers): (Vec<i64>, Vec<i64>) = (row.try_get(0)?, row.try_get(1)?);
    rows.sort_unstable();
    numbers.sort_unstable();
    Ok((rows, numbers))
}

/// The advisory lock key of the coalesce search a job will make, if any.
pub(crate) fn coalesce_lock(ctx: &Ctx, job: &ImportJob) -> Option<i64> {
    match &job.verdict {
        Ok(plan) if plan.searches_target() => Some(lock_key(&ctx.salt, &coalesce_key(&job.target, plan))),
        _ => None,
    }
}

/// The staging row of a job, written once with its outcome (SQLite writes it, then records the
/// outcome).
pub(crate) fn job_staging_row(job: &ImportJob, set: &ImportSet, row: i64, outcome: &ImportOutcome) -> Record {
    let row_index = row.to_string();
    let payload = String::from_utf8_lossy(&job.payload);
    let mut record = staging_row(
        &job.staging,
        &job.staging_sys_id,
        &job.columns,
        &[
            ("sys_import_set", set.set_id.as_str()),
            ("sys_target_table", job.target.name.as_str()),
            ("sys_transform_map", job.transform_map.as_str()),
            ("sys_integration_version", job.integration_version.as_str()),
            ("sys_import_row", &row_index),
            ("sys_payload", &payload),
        ],
        &job.actor,
        job.now,
    );
    for (field, value) in outcome_fields(outcome) {
        record.insert(field.into(), value);
    }
    record
}

/// Imports one row inside the caller's transaction (one savepoint of a batch that holds every
/// coalesce lock of its jobs already): the row-at-a-time path a batch falls back to when one of
/// its jobs fails.
pub(crate) async fn run_one(
    c: &mut PgConnection,
    ctx: &Ctx,
    job: &ImportJob,
    set: &ImportSet,
) -> Result<ImportOutcome> {
    if let Some(idem) = &job.idempotency
        && let Some(earlier) = idempotency::claim(c, &job.actor.user_name, idem, job.now).await?
    {
        return Ok(earlier);
    }
    let reason = job.audit_reason();
    let context = job.row(&reason);
    let outcome = ImportOutcome::unsettled(set.number.clone(), job.staging_sys_id.clone());
    let mut tx = PgTx { c: &mut *c, ctx, coalesce_locked: true, cache: None };
    let outcome = settle::settle(&mut tx, &context, &ctx.catalog, &job.verdict, None, outcome).await?.outcome;
    let (rows, _) = draw(c, &job.staging.name, 1, number::INCIDENT_PREFIX, 0).await?;
    records::insert(c, &job.staging, &job_staging_row(job, set, set.row(rows[0]), &outcome)).await?;
    if let Some(idem) = &job.idempotency {
        idempotency::record(c, &job.actor.user_name, idem, encode(&outcome)).await?;
    }
    Ok(outcome)
}

/// The advisory lock held while searching for (and maybe creating) the coalesce target.
pub(crate) fn coalesce_key(target: &TableSchema, plan: &Plan) -> String {
    let values: Vec<String> = plan.coalesce.iter().map(|(f, v)| format!("{f}={}", v.to_ascii_lowercase())).collect();
    format!("coalesce:{}:{}", target.name, values.join("\u{1f}"))
}

/// Reference lookups already made in this transaction (a batch's jobs mostly name the same
/// callers): the sys_id found or created, or `None` when there is none.
pub(crate) type ReferenceCache = HashMap<String, Option<String>>;

async fn find_reference(
    c: &mut PgConnection,
    schema: &TableSchema,
    lookup: &Lookup,
) -> Result<Option<String>, sqlx::Error> {
    find_named(c, schema, &lookup.value, &lookup.match_fields).await
}

/// `value` when it is the sys_id of a record of `schema`, else the first record (oldest first)
/// whose field equals it, ignoring ASCII case, trying `match_fields` in order.
async fn find_named<F: AsRef<str>>(
    c: &mut PgConnection,
    schema: &TableSchema,
    value: &str,
    match_fields: &[F],
) -> Result<Option<String>, sqlx::Error> {
    if SysId::is_valid(value) && records::get(c, schema, value).await?.is_some() {
        return Ok(Some(value.to_owned()));
    }
    for field in match_fields {
        if let Some(id) = records::find_by(c, &schema.name, field.as_ref(), value).await? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The oldest record matching every coalesce value (ASCII case ignored), locked.
pub(crate) async fn find_coalesce_target(
    c: &mut PgConnection,
    schema: &TableSchema,
    plan: &Plan,
) -> Result<Option<Record>, sqlx::Error> {
    if plan.coalesce.iter().any(|(_, v)| v.contains('\0')) {
        return Ok(None);
    }
    let mut conditions: Vec<String> = plan
        .coalesce
        .iter()
        .enumerate()
        .map(|(i, (field, _))| match schema.field(field).map(|f| &f.kind) {
            Some(FieldKind::Integer) => format!("COALESCE({}::text, '') = ${}", ident(field), i + 1),
            _ => format!("lower({}) = ${}", ident(field), i + 1),
        })
        .collect();
    if plan.coalesce_active_only && schema.field("active").is_some() {
        conditions.push("\"active\" = 'true'".into());
    }
    if plan.skips_resolved(schema) {
        conditions.push(format!("\"state\" IS DISTINCT FROM {}", sluice_core::incident::STATE_RESOLVED));
    }
    let text = format!(
        "SELECT {} FROM {} WHERE {} ORDER BY sluice_rowid LIMIT 1 FOR UPDATE",
        records::columns(schema),
        ident(&schema.name),
        conditions.join(" AND ")
    );
    let mut q = records::sql(text);
    for (_, v) in &plan.coalesce {
        q = q.bind(v.to_ascii_lowercase());
    }
    match q.fetch_optional(c).await? {
        Some(row) => Ok(Some(records::from_row(schema, &row, 0)?)),
        None => Ok(None),
    }
}

/// A PostgreSQL transaction as the commit step sees it ([`sluice_store::settle`]).
pub(crate) struct PgTx<'a> {
    pub c: &'a mut PgConnection,
    pub ctx: &'a Ctx,
    /// The coalesce lock was taken when the transaction began (a batch's `BEGIN`).
    pub coalesce_locked: bool,
    /// Lookups already made in this transaction (a batch's jobs mostly name the same callers).
    pub cache: Option<&'a mut ReferenceCache>,
}

fn cache_key(lookup: &Lookup) -> String {
    format!("{}\u{1f}{}\u{1f}{}", lookup.table, lookup.match_fields.join(","), lookup.value)
}

impl RowTransaction for PgTx<'_> {
    type Error = sqlx::Error;

    async fn claim_coalesce(&mut self, target: &TableSchema, plan: &Plan) -> Result<(), sqlx::Error> {
        if self.coalesce_locked {
            return Ok(());
        }
        lock(self.c, &[(&self.ctx.salt, &coalesce_key(target, plan))]).await
    }

    async fn find_reference(&mut self, schema: &TableSchema, lookup: &Lookup) -> Result<Option<String>, sqlx::Error> {
        if let Some(known) = self.cache.as_ref().and_then(|cache| cache.get(&cache_key(lookup))) {
            return Ok(known.clone());
        }
        let found = find_reference(self.c, schema, lookup).await?;
        if let Some(cache) = self.cache.as_mut() {
            cache.insert(cache_key(lookup), found.clone());
        }
        Ok(found)
    }

    /// Under the value's advisory lock, searched again first: another node may just have
    /// created it. Existing records (the usual case) need no lock.
    async fn create_reference(
        &mut self,
        schema: &TableSchema,
        lookup: &Lookup,
        record: Record,
    ) -> Result<Option<String>, sqlx::Error> {
        lock(self.c, &[(&self.ctx.salt, &reference_key(&lookup.table, &lookup.value))]).await?;
        let id = match find_reference(self.c, schema, lookup).await? {
            Some(id) => id,
            None => {
                records::insert(self.c, schema, &record).await?;
                record["sys_id"].clone()
            }
        };
        if let Some(cache) = self.cache.as_mut() {
            cache.insert(cache_key(lookup), Some(id.clone()));
        }
        Ok(Some(id))
    }

    async fn find_coalesce_target(&mut self, target: &TableSchema, plan: &Plan) -> Result<Option<Record>, sqlx::Error> {
        find_coalesce_target(self.c, target, plan).await
    }

    async fn next_number(&mut self, prefix: &str) -> Result<Option<String>, sqlx::Error> {
        next_number(self.c, prefix).await.map(Some)
    }

    async fn insert(&mut self, target: &TableSchema, record: &Record) -> Result<(), sqlx::Error> {
        records::insert(self.c, target, record).await
    }

    async fn update(&mut self, target: &TableSchema, applied: &Applied) -> Result<(), sqlx::Error> {
        records::update(self.c, target, &applied.record["sys_id"], &applied.update_columns()).await
    }

    async fn write_history(&mut self, row: &RowContext<'_>, applied: &Applied) -> Result<(), sqlx::Error> {
        history::audit(self.c, row.target, applied, row.actor, row.now, &row.source()).await
    }

    async fn enqueue_delivery(&mut self, queued: &sluice_store::outbox::Queued<'_>) -> Result<(), sqlx::Error> {
        crate::outbox::enqueue(self.c, queued).await
    }
}

impl TableTransaction for PgTx<'_> {
    /// Locked (`FOR UPDATE`): concurrent writers of the record on any node take turns.
    async fn get_for_update(&mut self, schema: &TableSchema, sys_id: &str) -> Result<Option<Record>, sqlx::Error> {
        records::get_for_update(self.c, schema, sys_id).await
    }

    async fn delete(&mut self, schema: &TableSchema, sys_id: &str) -> Result<bool, sqlx::Error> {
        let deleted = records::sql(format!("DELETE FROM {} WHERE \"sys_id\" = $1", ident(&schema.name)))
            .bind(sys_id.to_owned())
            .execute(&mut *self.c)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn find_named(
        &mut self,
        schema: &TableSchema,
        value: &str,
        match_fields: &[&str],
    ) -> Result<Option<String>, sqlx::Error> {
        find_named(self.c, schema, value, match_fields).await
    }

    async fn attachments_of(&mut self, table: &str, sys_id: &str) -> Result<Vec<Record>, sqlx::Error> {
        crate::attachments::of(self.c, table, sys_id).await
    }
}

/// A Table API write in one transaction ([`sluice_store::table_write::write`]).
pub(crate) async fn table_write(c: &mut PgConnection, ctx: &Ctx, w: &TableWrite) -> Result<WriteResult, sqlx::Error> {
    let mut tx = PgTx { c, ctx, coalesce_locked: false, cache: None };
    sluice_store::table_write::write(&mut tx, &ctx.catalog, w).await
}
