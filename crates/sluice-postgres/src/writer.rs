//! Group commit for imports: a few writer tasks per node take every import waiting in a bounded
//! queue (up to a batch limit) into one transaction and answer each job only after `COMMIT`
//! (`synchronous_commit` stays on: an answer means the row is durable). One commit, and a few
//! multi-row statements (`batch.rs`), for many imports instead of nine round trips each.
//!
//! The transaction begins with every coalesce lock of the batch, in key order, so batches of
//! different writers and nodes never wait for each other in a cycle on them. A batch that fails
//! for a reason other than a deadlock or serialisation failure (those run the batch again, as
//! single imports did) is rolled back and run again one job at a time, each in a savepoint,
//! so the failing job is undone alone and the others commit. Two jobs with the same idempotency
//! key never share a batch: the later waits for the next one, and finds the earlier's answer.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::import::{self, ImportSet};
use crate::{Ctx, batch, retrying, transient};
use crate::{Error, Result};
use sluice_store::{ImportJob, ImportOutcome, StoreError};

pub(crate) struct Request {
    job: ImportJob,
    answer: oneshot::Sender<sluice_store::Result<ImportOutcome>>,
}

/// Starts `writers` tasks serving one queue; imports are sent with [`submit`].
pub(crate) fn start(pool: PgPool, ctx: Arc<Ctx>, writers: usize, max_batch: usize) -> mpsc::Sender<Request> {
    let (tx, rx) = mpsc::channel(4096);
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..writers.max(1) {
        tokio::spawn(write(pool.clone(), ctx.clone(), rx.clone(), max_batch.max(1)));
    }
    tx
}

/// Queues an import and waits for its answer, given after its batch committed.
pub(crate) async fn submit(queue: &mpsc::Sender<Request>, job: ImportJob) -> sluice_store::Result<ImportOutcome> {
    let (answer, answered) = oneshot::channel();
    queue.send(Request { job, answer }).await.map_err(|_| StoreError::Closed)?;
    answered.await.map_err(|_| StoreError::Closed)?
}

async fn write(pool: PgPool, ctx: Arc<Ctx>, rx: Arc<Mutex<mpsc::Receiver<Request>>>, max_batch: usize) {
    let mut carried: Vec<Request> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut carried);
        // With jobs carried over, never wait for the queue: another writer may be holding it
        // while it waits for new jobs.
        let queue = if batch.is_empty() { Some(rx.lock().await) } else { rx.try_lock().ok() };
        if let Some(mut rx) = queue {
            if batch.is_empty() {
                match rx.recv().await {
                    Some(request) => batch.push(request),
                    None => return,
                }
            }
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
        }
        let mut keys = HashSet::new();
        let (now, later): (Vec<Request>, Vec<Request>) = batch.into_iter().partition(|r| match &r.job.idempotency {
            Some(idem) => keys.insert((r.job.actor.user_name.clone(), idem.key.clone())),
            None => true,
        });
        carried = later;
        let jobs: Vec<&ImportJob> = now.iter().map(|r| &r.job).collect();
        let results = commit(&pool, &ctx, &jobs).await;
        tracing::trace!(size = now.len(), "import batch settled");
        for (request, result) in now.into_iter().zip(results) {
            // The requester may have gone away; the data is committed anyway.
            let _ = request.answer.send(result.map_err(StoreError::from));
        }
    }
}

/// The same error for every job of a batch that could not run.
fn copy(e: &Error) -> Error {
    Error::Store(match e {
        Error::Store(StoreError::Busy) => StoreError::Busy,
        Error::Store(StoreError::Closed) => StoreError::Closed,
        other => StoreError::Io(std::io::Error::other(other.to_string())),
    })
}

async fn commit(pool: &PgPool, ctx: &Ctx, all: &[&ImportJob]) -> Vec<Result<ImportOutcome>> {
    // The import set first (its own short transaction when one must be created); a job whose
    // set cannot be had fails alone.
    let mut results: Vec<Option<Result<ImportOutcome>>> = all.iter().map(|_| None).collect();
    let (mut jobs, mut sets, mut at) = (Vec::new(), Vec::new(), Vec::new());
    for (i, job) in all.iter().enumerate() {
        match import::import_set(pool, ctx, &job.staging.name, &job.actor, job.now).await {
            Ok(set) => {
                jobs.push(*job);
                sets.push(set);
                at.push(i);
            }
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    for (i, result) in at.into_iter().zip(settle(pool, ctx, &jobs, &sets).await) {
        results[i] = Some(result);
    }
    results.into_iter().map(|r| r.unwrap_or(Err(StoreError::Closed.into()))).collect()
}

async fn settle(pool: &PgPool, ctx: &Ctx, jobs: &[&ImportJob], sets: &[ImportSet]) -> Vec<Result<ImportOutcome>> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let mut locks: Vec<i64> = jobs.iter().filter_map(|job| import::coalesce_lock(ctx, job)).collect();
    locks.sort_unstable();
    locks.dedup();
    let failed = match retrying(|| together(pool, ctx, jobs, sets, &locks)).await {
        Ok(results) => return results,
        Err(e @ Error::Store(StoreError::Busy | StoreError::Closed)) => e,
        Err(e) => {
            tracing::warn!(error = %e, size = jobs.len(), "import batch failed; its jobs run one at a time");
            match retrying(|| one_by_one(pool, ctx, jobs, sets, &locks)).await {
                Ok(results) => return results,
                Err(e) => e,
            }
        }
    };
    tracing::error!(error = %failed, size = jobs.len(), "import batch not committed");
    jobs.iter().map(|_| Err(copy(&failed))).collect()
}

/// `BEGIN` with the batch's coalesce locks, in one round trip.
async fn begin(pool: &PgPool, locks: &[i64]) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    if locks.is_empty() {
        return Ok(pool.begin().await?);
    }
    let keys = locks.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    // Integers only; a plain scan of unnest yields them in array (key) order.
    let text = format!("BEGIN; SELECT pg_advisory_xact_lock(k) FROM unnest(ARRAY[{keys}]::bigint[]) AS k");
    Ok(pool.begin_with(sqlx::AssertSqlSafe(text)).await?)
}

/// Commits the transaction when `result` is good, else ends it here: a dropped transaction
/// keeps its locks until its connection is next used.
async fn finish(
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    result: Result<Vec<Result<ImportOutcome>>>,
) -> Result<Vec<Result<ImportOutcome>>> {
    match result {
        Ok(results) => {
            tx.commit().await?;
            Ok(results)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

async fn together(
    pool: &PgPool,
    ctx: &Ctx,
    jobs: &[&ImportJob],
    sets: &[ImportSet],
    locks: &[i64],
) -> Result<Vec<Result<ImportOutcome>>> {
    let mut tx = begin(pool, locks).await?;
    let result = batch::run(&mut tx, ctx, jobs, sets).await;
    finish(tx, result).await
}

async fn one_by_one(
    pool: &PgPool,
    ctx: &Ctx,
    jobs: &[&ImportJob],
    sets: &[ImportSet],
    locks: &[i64],
) -> Result<Vec<Result<ImportOutcome>>> {
    let mut tx = begin(pool, locks).await?;
    let result = in_savepoints(&mut tx, ctx, jobs, sets).await;
    finish(tx, result).await
}

/// Each job in its own savepoint: a failing job is undone alone; a transient failure (deadlock,
/// serialization) ends the whole attempt, to be retried.
async fn in_savepoints(
    tx: &mut sqlx::PgConnection,
    ctx: &Ctx,
    jobs: &[&ImportJob],
    sets: &[ImportSet],
) -> Result<Vec<Result<ImportOutcome>>> {
    let mut results = Vec::with_capacity(jobs.len());
    for (job, set) in jobs.iter().zip(sets) {
        sqlx::raw_sql("SAVEPOINT job").execute(&mut *tx).await?;
        match import::run_one(tx, ctx, job, set).await {
            Err(e) if transient(&e) => return Err(e),
            Err(e) => {
                if matches!(e, Error::Postgres(_)) {
                    tracing::error!(error = %e, "import job failed");
                }
                sqlx::raw_sql("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job").execute(&mut *tx).await?;
                results.push(Err(e));
            }
            Ok(outcome) => {
                sqlx::raw_sql("RELEASE SAVEPOINT job").execute(&mut *tx).await?;
                results.push(Ok(outcome));
            }
        }
    }
    Ok(results)
}
