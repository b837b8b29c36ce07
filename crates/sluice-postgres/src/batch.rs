//! A batch of imports in one transaction (group commit, see `writer.rs`), in few statements:
//! the caller has taken every coalesce lock of the batch (sorted) with `BEGIN`; then the
//! idempotency keys are claimed (sorted), every coalesce target is searched for in one query per
//! target table, reference lookups are remembered for the batch, and each job is settled in order
//! in memory. Numbers for new records and staging rows come in one round trip, then every
//! incident, audit row, staging row and idempotency answer of the batch goes in one statement
//! (a multi-row `INSERT` per table over `unnest` arrays, joined as `WITH` parts; fixed text, so
//! the prepared statement is reused). About six round trips per batch instead of nine per import.
//!
//! Jobs see each other's writes as if they ran one after the other: a job whose search the
//! earlier jobs' writes could change (same record, or a record matching its coalesce values)
//! writes what is pending first and searches again. Updates of existing records and records
//! created by reference lookups are written at once.

use std::collections::{BTreeMap, HashMap};

use sluice_core::Record;
use sluice_core::number;
use sluice_core::rules::Applied;
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_core::transform::{Lookup, Plan};
use sluice_store::audit_set::Source;
use sluice_store::settle::{RowContext, RowTransaction, settle};
use sqlx::{PgConnection, Row};

use crate::history::{self, Audited};
use crate::import::{self, ImportSet, PgTx, ReferenceCache};
use crate::query::ident;
use crate::records::{Column, Combined};
use crate::{Ctx, idempotency, records};
use crate::{Error, Result};
use sluice_store::idempotency::encode;
use sluice_store::{ImportJob, ImportOutcome, StoreError};

/// A settled job whose rows are not written yet.
struct Pending {
    index: usize,
    outcome: ImportOutcome,
    /// The target record changed by the job: inserted (`true`, numbered when written) or
    /// updated (already written; its audit rows are pending).
    write: Option<(Applied, bool)>,
    /// The `sys_audit` reason of its changes.
    reason: String,
}

struct Batch<'a> {
    jobs: &'a [&'a ImportJob],
    sets: &'a [ImportSet],
    results: Vec<Option<Result<ImportOutcome>>>,
    pending: Vec<Pending>,
    /// Every target record the batch wrote (its latest values), for the coalesce checks.
    written: Vec<(String, Record)>,
    /// Outbox rows to write with the records.
    queued: crate::outbox::QueuedMany,
}

/// Runs the jobs (with `sets[i]` the import set of `jobs[i]`) in the caller's transaction; an
/// `Err` means the transaction must be rolled back (a job's own refusal, such as a reused
/// idempotency key, is that job's result).
pub(crate) async fn run(
    c: &mut PgConnection,
    ctx: &Ctx,
    jobs: &[&ImportJob],
    sets: &[ImportSet],
) -> Result<Vec<Result<ImportOutcome>>> {
    let mut batch = Batch {
        jobs,
        sets,
        results: jobs.iter().map(|_| None).collect(),
        pending: Vec::with_capacity(jobs.len()),
        written: Vec::new(),
        queued: crate::outbox::QueuedMany::default(),
    };
    batch.claim(c).await?;
    let mut found = batch.search(c).await?;
    let mut references = ReferenceCache::new();
    for (i, job) in jobs.iter().enumerate() {
        if batch.results[i].is_some() {
            continue;
        }
        let reason = job.audit_reason();
        let row = job.row(&reason);
        let outcome = ImportOutcome::unsettled(sets[i].number.clone(), job.staging_sys_id.clone());
        let pg = PgTx { c: &mut *c, ctx, coalesce_locked: true, cache: Some(&mut references) };
        let mut tx = BatchTx { pg, batch: &mut batch, found: found.remove(&i) };
        let settled = settle(&mut tx, &row, &ctx.catalog, &job.verdict, None, outcome).await?;
        let write = settled.written.map(|w| {
            batch.written.push((job.target.name.clone(), w.applied.record.clone()));
            (w.applied, w.inserted)
        });
        batch.pending.push(Pending { index: i, outcome: settled.outcome, write, reason });
    }
    batch.flush(c).await?;
    Ok(batch.results.into_iter().map(|r| r.unwrap_or_else(|| Err(StoreError::Closed.into()))).collect())
}

/// A job of the batch settling: writes behind. New records, their numbers and every change set
/// are written by [`Batch::flush`] from what the step returns ([`sluice_store::settle::Written`]);
/// updates of existing records are written at once; a coalesce search comes from the batch's
/// one query unless an earlier job's writes could change it.
struct BatchTx<'t, 'a> {
    pg: PgTx<'t>,
    batch: &'t mut Batch<'a>,
    /// This job's coalesce target as the batch's search found it.
    found: Option<Record>,
}

impl RowTransaction for BatchTx<'_, '_> {
    type Error = Error;

    async fn find_reference(&mut self, schema: &TableSchema, lookup: &Lookup) -> Result<Option<String>> {
        Ok(self.pg.find_reference(schema, lookup).await?)
    }

    async fn create_reference(
        &mut self,
        schema: &TableSchema,
        lookup: &Lookup,
        record: Record,
    ) -> Result<Option<String>> {
        Ok(self.pg.create_reference(schema, lookup, record).await?)
    }

    async fn find_coalesce_target(&mut self, target: &TableSchema, plan: &Plan) -> Result<Option<Record>> {
        if !self.batch.stale(target, plan, self.found.as_ref()) {
            return Ok(self.found.take());
        }
        self.batch.flush(self.pg.c).await?;
        Ok(import::find_coalesce_target(self.pg.c, target, plan).await?)
    }

    async fn next_number(&mut self, _: &str) -> Result<Option<String>> {
        Ok(None)
    }

    async fn insert(&mut self, _: &TableSchema, _: &Record) -> Result<()> {
        Ok(())
    }

    async fn update(&mut self, target: &TableSchema, applied: &Applied) -> Result<()> {
        Ok(self.pg.update(target, applied).await?)
    }

    async fn write_history(&mut self, _: &RowContext<'_>, _: &Applied) -> Result<()> {
        Ok(())
    }

    /// Behind, with the records at the flush (the same transaction; the outbox row refers to
    /// its record by sys_id only).
    async fn enqueue_delivery(&mut self, queued: &sluice_store::outbox::Queued<'_>) -> Result<()> {
        self.batch.queued.push(queued);
        Ok(())
    }
}

impl Batch<'_> {
    /// Claims the idempotency keys in key order (two batches never wait for each other in a
    /// cycle); a key used before answers its job here.
    async fn claim(&mut self, c: &mut PgConnection) -> Result<()> {
        let mut keyed: Vec<usize> = (0..self.jobs.len()).filter(|&i| self.jobs[i].idempotency.is_some()).collect();
        keyed.sort_by_key(|&i| {
            let job = self.jobs[i];
            (&job.actor.user_name, job.idempotency.as_ref().map(|k| &k.key))
        });
        for i in keyed {
            let job = self.jobs[i];
            let idem = job.idempotency.as_ref().expect("keyed");
            match idempotency::claim(c, &job.actor.user_name, idem, job.now).await {
                Ok(None) => {}
                Ok(Some(earlier)) => self.results[i] = Some(Ok(earlier)),
                Err(e @ crate::Error::Postgres(_)) => return Err(e),
                Err(refused) => self.results[i] = Some(Err(refused)),
            }
        }
        Ok(())
    }

    /// The coalesce target of every job that searches for one (oldest match, locked), one query
    /// per target table and coalesce fields.
    async fn search(&self, c: &mut PgConnection) -> Result<HashMap<usize, Record>, sqlx::Error> {
        let mut groups: BTreeMap<(&str, Vec<&str>, bool, bool), Vec<usize>> = BTreeMap::new();
        for (i, job) in self.jobs.iter().enumerate() {
            let Ok(plan) = &job.verdict else { continue };
            if self.results[i].is_some()
                || !plan.searches_target()
                || plan.coalesce.iter().any(|(_, v)| v.contains('\0'))
            {
                continue;
            }
            let fields = plan.coalesce.iter().map(|(f, _)| f.as_str()).collect();
            let active = plan.coalesce_active_only && job.target.field("active").is_some();
            let unresolved = plan.skips_resolved(&job.target);
            groups.entry((job.target.name.as_str(), fields, active, unresolved)).or_default().push(i);
        }
        let mut found = HashMap::new();
        for ((_, fields, active, unresolved), members) in groups {
            let schema: &TableSchema = &self.jobs[members[0]].target;
            let mut q = records::sql(search_sql(schema, &fields, active, unresolved));
            for (f, _) in fields.iter().enumerate() {
                let values: Vec<String> = members
                    .iter()
                    .map(|&i| match &self.jobs[i].verdict {
                        Ok(plan) => plan.coalesce[f].1.to_ascii_lowercase(),
                        Err(_) => String::new(),
                    })
                    .collect();
                q = q.bind(values);
            }
            for row in q.fetch_all(&mut *c).await? {
                let at: i64 = row.try_get(0)?;
                found.insert(members[at as usize - 1], records::from_row(schema, &row, 1)?);
            }
        }
        Ok(found)
    }

    /// Whether an earlier job of the batch wrote the record found for `plan` or a record its
    /// coalesce values match: then the search is made again, after the pending writes.
    fn stale(&self, target: &TableSchema, plan: &Plan, found: Option<&Record>) -> bool {
        self.written.iter().any(|(table, record)| {
            table == &target.name
                && (found.is_some_and(|f| f.get("sys_id") == record.get("sys_id"))
                    || plan.coalesce.iter().all(|(f, v)| record.get(f).is_some_and(|r| r.eq_ignore_ascii_case(v))))
        })
    }

    /// Writes the pending jobs: numbers for new records and staging rows (one round trip per
    /// staging table), then one statement per table for records, audit rows, staging rows and
    /// idempotency records.
    async fn flush(&mut self, c: &mut PgConnection) -> Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        let jobs = self.jobs;
        // Numbers, in job order; the first staging table's draw brings the record numbers along.
        let mut staging_tables: Vec<&str> = Vec::new();
        for p in &pending {
            let name = jobs[p.index].staging.name.as_str();
            if !staging_tables.contains(&name) {
                staging_tables.push(name);
            }
        }
        let inserts = pending.iter().filter(|p| matches!(p.write, Some((_, true)))).count();
        let mut rows: HashMap<&str, std::vec::IntoIter<i64>> = HashMap::new();
        let mut numbers = Vec::new().into_iter();
        for (k, table) in staging_tables.iter().enumerate() {
            let count = pending.iter().filter(|p| jobs[p.index].staging.name == *table).count();
            let wanted = if k == 0 { inserts } else { 0 };
            let (drawn, drawn_numbers) = import::draw(c, table, count, number::INCIDENT_PREFIX, wanted).await?;
            rows.insert(table, drawn.into_iter());
            if k == 0 {
                numbers = drawn_numbers.into_iter();
            }
        }
        for p in &mut pending {
            if let Some((applied, true)) = &mut p.write {
                let n = numbers.next().ok_or_else(|| StoreError::Io(std::io::Error::other("too few numbers")))?;
                applied.assign_number(&number::format(number::INCIDENT_PREFIX, n as u64));
                p.outcome.display_value = applied.record.get(&jobs[p.index].target.display_field).cloned();
            }
        }
        // Everything else in one statement: target records and staging rows per table, audit
        // rows, idempotency records.
        let mut statement = Combined::default();
        let mut targets: Vec<(&TableSchema, Vec<&Record>)> = Vec::new();
        for p in &pending {
            if let Some((applied, true)) = &p.write {
                push_grouped(&mut targets, &jobs[p.index].target, &applied.record);
            }
        }
        for (schema, list) in &targets {
            statement
                .add(records::insert_many_sql(schema, statement.next()), records::insert_many_columns(schema, list));
        }
        let sources: Vec<Source<'_>> = pending
            .iter()
            .map(|p| {
                let job = jobs[p.index];
                Source { table: &job.staging.name, row: job.staging_sys_id.as_str(), reason: &p.reason }
            })
            .collect();
        let audited: Vec<Audited<'_>> = pending
            .iter()
            .zip(&sources)
            .filter_map(|(p, source)| {
                let job = jobs[p.index];
                let (applied, _) = p.write.as_ref()?;
                let audit = matches!(&job.verdict, Ok(plan) if plan.audit);
                audit.then_some(Audited { table: &job.target.name, applied, actor: &job.actor, now: job.now, source })
            })
            .collect();
        if let Some(columns) = history::audit_columns(&audited) {
            statement.add(history::audit_sql(statement.next()), columns);
        }
        let mut staged: Vec<(usize, Record)> = Vec::with_capacity(pending.len());
        for p in &pending {
            let job = jobs[p.index];
            let drawn = rows.get_mut(job.staging.name.as_str()).and_then(Iterator::next).unwrap_or_default();
            let set = &self.sets[p.index];
            staged.push((p.index, import::job_staging_row(job, set, set.row(drawn), &p.outcome)));
        }
        let mut by_table: Vec<(&TableSchema, Vec<&Record>)> = Vec::new();
        for (index, row) in &staged {
            push_grouped(&mut by_table, &jobs[*index].staging, row);
        }
        for (schema, list) in &by_table {
            statement
                .add(records::insert_many_sql(schema, statement.next()), records::insert_many_columns(schema, list));
        }
        let mut answers: [Vec<String>; 3] = Default::default();
        for p in &pending {
            let job = jobs[p.index];
            if let Some(idem) = &job.idempotency {
                answers[0].push(job.actor.user_name.clone());
                answers[1].push(idem.key.clone());
                answers[2].push(encode(&p.outcome));
            }
        }
        if !answers[0].is_empty() {
            statement
                .add(idempotency::record_many_sql(statement.next()), answers.into_iter().map(Column::Text).collect());
        }
        if !self.queued.is_empty() {
            let (sql, columns) = self.queued.take(statement.next());
            statement.add(sql, columns);
        }
        statement.execute(c).await?;
        for p in pending {
            self.results[p.index] = Some(Ok(p.outcome));
        }
        Ok(())
    }
}

/// Adds `record` to the list of its schema (in first-seen order). The same schema, not the same
/// table name: jobs of an integration before and after a reload may have different columns.
fn push_grouped<'r>(groups: &mut Vec<(&'r TableSchema, Vec<&'r Record>)>, schema: &'r TableSchema, record: &'r Record) {
    match groups.iter_mut().find(|(s, _)| std::ptr::eq(*s, schema)) {
        Some((_, list)) => list.push(record),
        None => groups.push((schema, vec![record])),
    }
}

/// The coalesce search of many jobs: for each row of the unnested values (ordinal first), the
/// oldest record matching them all, locked.
fn search_sql(schema: &TableSchema, fields: &[&str], active: bool, unresolved: bool) -> String {
    let mut conditions: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, field)| match schema.field(field).map(|f| &f.kind) {
            Some(FieldKind::Integer) => format!("COALESCE({}::text, '') = k.v{i}", ident(field)),
            _ => format!("lower({}) = k.v{i}", ident(field)),
        })
        .collect();
    if active {
        conditions.push("\"active\" = 'true'".into());
    }
    if unresolved {
        conditions.push(format!("\"state\" IS DISTINCT FROM {}", sluice_core::incident::STATE_RESOLVED));
    }
    let arrays = (1..=fields.len()).map(|i| format!("${i}::text[]")).collect::<Vec<_>>().join(", ");
    let aliases = (0..fields.len()).map(|i| format!("v{i}")).collect::<Vec<_>>().join(", ");
    format!(
        "SELECT k.i, r.* FROM unnest({arrays}) WITH ORDINALITY AS k({aliases}, i)
         CROSS JOIN LATERAL (SELECT {} FROM {} WHERE {} ORDER BY sluice_rowid LIMIT 1 FOR UPDATE) r",
        records::columns(schema),
        ident(&schema.name),
        conditions.join(" AND ")
    )
}
