//! One imported row: resolve references, find the coalesce target, apply the business rules,
//! write the incident, its audit rows and the staging row with its outcome. Imports are group
//! committed (`writer.rs`, `batch.rs`); this is the row-at-a-time form a batch falls back to when
//! one of its jobs fails, and `settle` serves `insertMultiple` rows (`bulk.rs`). Today's import
//! set is remembered per node (`import_set`).
//!
//! Several nodes share the database, so what SQLite's single writer gives for free is made
//! explicit: numbers come from sequences; the records an import may create or coalesce into are
//! claimed with advisory transaction locks (one per coalesce key and per reference value that may
//! be created), taken in a fixed order, so two imports of the same correlation id run one after
//! the other and the second finds and updates the first's incident.

use std::collections::{BTreeMap, HashMap};

use sluice_core::integration::OnUnknown;
use sluice_core::number;
use sluice_core::rules::{self, Actor};
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_core::staging::RowState;
use sluice_core::tables;
use sluice_core::transform::{Lookup, Plan, TargetSearch};
use sluice_core::validate::{ErrorCode, FieldError};
use sluice_core::{DateTime, Record, SysId};
use sqlx::{PgConnection, PgPool, Row};

use crate::Result;
use crate::migrate::{number_sequence, row_sequence};
use crate::query::ident;
use crate::{Ctx, history, idempotency, lock, lock_key, records};
use sluice_store::idempotency::encode;
pub(crate) use sluice_store::staging_row::{outcome_fields, staging_row};
use sluice_store::{ImportJob, ImportOutcome};

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
    let record = rules::insert_simple(
        schema,
        &[("number", &number), ("table_name", table), ("mode", "synchronous"), ("state", "loading")],
        actor,
        now,
    );
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
        Ok(plan) if plan.ignore.is_none() && plan.coalesce_given() => {
            Some(lock_key(&ctx.salt, &coalesce_key(&job.target, plan)))
        }
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
    let mut outcome = ImportOutcome::unsettled(set.number.clone(), job.staging_sys_id.clone());
    let context = RowContext {
        staging: &job.staging,
        target: &job.target,
        staging_sys_id: job.staging_sys_id.as_str(),
        actor: &job.actor,
        now: job.now,
        reason: import_reason(job),
        coalesce_locked: true,
    };
    settle(c, ctx, &context, &job.verdict, None, &mut outcome).await?;
    let (rows, _) = draw(c, &job.staging.name, 1, number::INCIDENT_PREFIX, 0).await?;
    records::insert(c, &job.staging, &job_staging_row(job, set, set.row(rows[0]), &outcome)).await?;
    if let Some(idem) = &job.idempotency {
        idempotency::record(c, &job.actor.user_name, idem, encode(&outcome)).await?;
    }
    Ok(outcome)
}

/// The `sys_audit` reason of an imported row's changes.
pub(crate) fn import_reason(job: &ImportJob) -> String {
    sluice_store::audit_set::reason(&job.staging.name, &job.staging_sys_id, None)
}

/// Who and what a row's processing is about.
pub(crate) struct RowContext<'a> {
    pub staging: &'a TableSchema,
    pub target: &'a TableSchema,
    pub staging_sys_id: &'a str,
    pub actor: &'a Actor,
    pub now: DateTime,
    /// The `sys_audit` reason of the changes.
    pub reason: String,
    /// The coalesce lock was taken when the transaction began.
    pub coalesce_locked: bool,
}

/// The advisory lock held while searching for (and maybe creating) the coalesce target.
pub(crate) fn coalesce_key(target: &TableSchema, plan: &Plan) -> String {
    let values: Vec<String> = plan.coalesce.iter().map(|(f, v)| format!("{f}={}", v.to_ascii_lowercase())).collect();
    format!("coalesce:{}:{}", target.name, values.join("\u{1f}"))
}

/// The lock held while a record of `table` named `value` may be created (imports, accounts).
pub(crate) fn reference_key(table: &str, value: &str) -> String {
    format!("ref:{table}:{}", value.to_ascii_lowercase())
}

/// Carries out a row's verdict: the errors, or the plan (references, coalesce, business rules,
/// the target record and its audit rows). `prior_target` is the record an earlier run of the
/// same row produced: it is updated, never a second one created.
pub(crate) async fn settle(
    c: &mut PgConnection,
    ctx: &Ctx,
    context: &RowContext<'_>,
    verdict: &std::result::Result<Plan, Vec<FieldError>>,
    prior_target: Option<Record>,
    outcome: &mut ImportOutcome,
) -> Result<(), sqlx::Error> {
    match verdict {
        Err(errors) => {
            outcome.state = RowState::Error;
            outcome.errors = errors.clone();
            Ok(())
        }
        Ok(plan) if plan.ignore.is_some() => {
            // An on_before script ignored the row: staged, nothing else written.
            outcome.state = RowState::Ignored;
            outcome.status_message = plan.ignore.clone();
            Ok(())
        }
        Ok(plan) => transform(c, ctx, context, plan, prior_target, outcome).await,
    }
}

pub(crate) struct Resolved {
    pub set: BTreeMap<String, String>,
    pub notes: Vec<String>,
    pub rejected: Vec<FieldError>,
}

/// Reference lookups already made in this transaction (a batch's jobs mostly name the same
/// callers): the sys_id found or created, or `None` when there is none.
pub(crate) type ReferenceCache = HashMap<String, Option<String>>;

/// Resolves reference values: a sys_id of an existing record, else the first record whose match
/// field equals the value (case-insensitive), else the lookup's `on_unknown` action. A record
/// about to be created is searched for again under its advisory lock (another node may have just
/// created it); lookups run in lock-key order, after the coalesce lock (the one lock a
/// transaction takes before any other), so two imports never wait for each other in a cycle. Existing records (the usual case) need no lock.
pub(crate) async fn resolve(
    c: &mut PgConnection,
    ctx: &Ctx,
    plan: &Plan,
    actor: &Actor,
    now: DateTime,
    mut cache: Option<&mut ReferenceCache>,
) -> Result<Resolved, sqlx::Error> {
    // Searched (and created) in lock-key order; reported in the plan's order. `None`: a table
    // the catalog does not have (the lookup is skipped).
    let keys: Vec<String> = plan.lookups.iter().map(|l| reference_key(&l.table, &l.value)).collect();
    let mut order: Vec<usize> = (0..plan.lookups.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    let mut found: Vec<Option<Option<String>>> = vec![None; plan.lookups.len()];
    for i in order {
        let lookup = &plan.lookups[i];
        let Some(schema) = ctx.catalog.get(&lookup.table) else { continue };
        let cache_key = format!("{}\u{1f}{}\u{1f}{}", lookup.table, lookup.match_fields.join(","), lookup.value);
        let mut id = match cache.as_ref().and_then(|cache| cache.get(&cache_key)) {
            Some(known) => known.clone(),
            None => find_reference(c, schema, lookup).await?,
        };
        if id.is_none() && lookup.on_unknown == OnUnknown::Create {
            lock(c, &[(&ctx.salt, &keys[i])]).await?;
            id = find_reference(c, schema, lookup).await?;
            if id.is_none() {
                let record = new_referenced(schema, &lookup.value, actor, now);
                records::insert(c, schema, &record).await?;
                id = Some(record["sys_id"].clone());
            }
        }
        if let Some(cache) = cache.as_mut() {
            cache.insert(cache_key, id.clone());
        }
        found[i] = Some(id);
    }
    let mut out = Resolved { set: plan.set.clone(), notes: Vec::new(), rejected: Vec::new() };
    for (lookup, id) in plan.lookups.iter().zip(found) {
        match id {
            None => {}
            Some(Some(sys_id)) => {
                out.set.insert(lookup.target_field.clone(), sys_id);
            }
            Some(None) if lookup.on_unknown == OnUnknown::Reject => out.rejected.push(FieldError {
                code: ErrorCode::UnknownReference,
                field: lookup.source_field.clone(),
                message: format!("no {} matches {:?}", lookup.table, lookup.value),
                path: None,
            }),
            Some(None) => out.notes.push(format!(
                "{}: no {} matches {:?}; {} left empty",
                lookup.source_field, lookup.table, lookup.value, lookup.target_field
            )),
        }
    }
    Ok(out)
}

async fn find_reference(
    c: &mut PgConnection,
    schema: &TableSchema,
    lookup: &Lookup,
) -> Result<Option<String>, sqlx::Error> {
    if SysId::is_valid(&lookup.value) && records::get(c, schema, &lookup.value).await?.is_some() {
        return Ok(Some(lookup.value.clone()));
    }
    for field in &lookup.match_fields {
        if let Some(id) = records::find_by(c, &schema.name, field, &lookup.value).await? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// A referenced record created because an import named one that does not exist yet.
fn new_referenced(schema: &TableSchema, value: &str, actor: &Actor, now: DateTime) -> Record {
    if schema.name == tables::SYS_USER {
        let email = if value.contains('@') { value } else { "" };
        rules::insert_simple(schema, &[("user_name", value), ("name", value), ("email", email)], actor, now)
    } else {
        rules::insert_simple(schema, &[("name", value)], actor, now)
    }
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

async fn transform(
    c: &mut PgConnection,
    ctx: &Ctx,
    context: &RowContext<'_>,
    plan: &Plan,
    prior_target: Option<Record>,
    outcome: &mut ImportOutcome,
) -> Result<(), sqlx::Error> {
    let target = context.target;
    if prior_target.is_none() && plan.coalesce_given() && !context.coalesce_locked {
        lock(c, &[(&ctx.salt, &coalesce_key(target, plan))]).await?;
    }
    let resolved = resolve(c, ctx, plan, context.actor, context.now, None).await?;
    if !resolved.notes.is_empty() {
        outcome.status_message = Some(resolved.notes.join("; "));
    }
    if !resolved.rejected.is_empty() {
        outcome.errors = resolved.rejected;
        return Ok(());
    }
    let existing = match (prior_target, plan.target_search()) {
        (Some(prior), _) => Some(prior),
        (None, TargetSearch::Coalesce) => find_coalesce_target(c, target, plan).await?,
        (None, TargetSearch::Create) => None,
        (None, TargetSearch::Skip(message)) => {
            outcome.state = RowState::Skipped;
            outcome.status_message = Some(message.into());
            return Ok(());
        }
    };
    let mut applied =
        match rules::apply_import(target, existing.as_ref(), &resolved.set, &plan.coalesce, context.actor, context.now)
        {
            Ok(applied) => applied,
            Err(errors) => {
                outcome.errors = errors;
                return Ok(());
            }
        };
    if existing.is_none() {
        applied.assign_number(&next_number(c, number::INCIDENT_PREFIX).await?);
    }
    let sys_id = applied.record["sys_id"].clone();
    outcome.target_sys_id = Some(sys_id.clone());
    outcome.display_value = applied.record.get(&target.display_field).cloned();
    match existing {
        None => {
            records::insert(c, target, &applied.record).await?;
            outcome.state = RowState::Inserted;
        }
        Some(_) if applied.changes.is_empty() => {
            outcome.mark_unchanged();
            return Ok(());
        }
        Some(_) => {
            records::update(c, target, &sys_id, &applied.update_columns()).await?;
            outcome.state = RowState::Updated;
        }
    }
    if !plan.audit {
        return Ok(());
    }
    let source =
        history::Source { table: &context.staging.name, row: context.staging_sys_id, reason: context.reason.clone() };
    history::audit(c, target, &applied, context.actor, context.now, &source).await
}
