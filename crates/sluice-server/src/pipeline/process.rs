//! Staged rows processed after the fact: the background worker behind `insertMultiple`, and the
//! store call that replays use too.
//!
//! A stored row is judged exactly like a single row ([`Pipeline::judge`]): its raw payload is
//! staged again with the integration's current definition, checked against the contract,
//! transformed and given to the `on_before` script; the store then settles it inside the
//! transaction that also changes the row's state. A row whose state changed meanwhile (another
//! worker, a replay) is left alone, so no row is done twice. A committed row's outcome goes
//! through `on_after`, as a single row's does.

use std::collections::HashMap;
use std::time::Duration;

use sluice_core::DateTime;
use sluice_core::integration::Integration;
use sluice_core::staging::RowState;
use sluice_store::{ImportOutcome, ProcessJob, RowFilter, StoreError};

use super::{Actors, Pipeline, RowWork};
use crate::AppState;

/// Rows per batch of the worker, of sync mode and of replays.
pub const DEFAULT_BATCH_ROWS: usize = 500;

/// `insertMultiple` requests whose bodies are read and rows staged and processed at the same
/// time; the others wait their turn (within the request time-out) with their bodies unread.
pub const CONCURRENT_REQUESTS: usize = 8;

/// How the background worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Pending rows claimed per batch.
    pub batch_rows: usize,
    /// How often it looks for pending rows when nobody woke it.
    pub poll: Duration,
    /// A pause after each batch (for tests that need to catch it midway).
    pub pause: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self { batch_rows: DEFAULT_BATCH_ROWS, poll: Duration::from_secs(2), pause: Duration::ZERO }
    }
}

fn job(integration: &Integration, work: &RowWork, expected: RowState, replay: Option<&str>) -> ProcessJob {
    let definition = &integration.definition;
    ProcessJob {
        staging: integration.staging.clone(),
        target: integration.target.clone(),
        transform_map: definition.transform.name.clone(),
        integration_version: definition.version.clone(),
        staging_sys_id: work.sys_id.clone(),
        expected,
        columns: work.columns.clone(),
        verdict: work.verdict.clone(),
        actor: work.actor.clone(),
        now: DateTime::now(),
        replay: replay.map(str::to_owned),
    }
}

/// Processes rows in order, in one store call, sending again (in order) what the full write queue
/// refused; each committed outcome then goes through `on_after`. Per row: its outcome, `None`
/// when it was gone or no longer `expected`, or the store's error for that row (the row keeps its
/// state). `Closed` ends it all.
pub async fn process(
    pipeline: Pipeline<'_>,
    integration: &Integration,
    work: &[RowWork],
    expected: RowState,
    replay: Option<&str>,
) -> Result<Vec<Result<Option<ImportOutcome>, StoreError>>, StoreError> {
    let mut out = Vec::with_capacity(work.len());
    let mut waited = Duration::from_millis(5);
    while out.len() < work.len() {
        let jobs = work[out.len()..].iter().map(|w| job(integration, w, expected, replay)).collect();
        let mut refused = false;
        for result in pipeline.store.process(jobs).await? {
            match result {
                Err(StoreError::Busy) => {
                    refused = true;
                    break;
                }
                Err(StoreError::Closed) => return Err(StoreError::Closed),
                other => out.push(other),
            }
        }
        if refused {
            tokio::time::sleep(waited).await;
            waited = (waited * 2).min(Duration::from_millis(200));
        }
    }
    for (result, w) in out.iter_mut().zip(work) {
        if let Ok(Some(outcome)) = result {
            pipeline.after(integration, w, outcome).await;
        }
    }
    Ok(out)
}

/// How often a row the commit left `pending` for a race is judged again before the bulk worker
/// is left to do it.
const RACE_ATTEMPTS: usize = 3;

/// A row the commit left `pending` because a concurrent row changed its target record between
/// `on_before` and the commit ([`sluice_core::transform::RACED`]): judged again from the row as
/// stored and processed, a few times, `on_after` included. `false`: `outcome` was not such a
/// row (it is left as it is, for the caller's `on_after`). One that still races stays `pending`
/// for the bulk worker, which judges pending rows the same way.
pub async fn settle_raced(
    pipeline: Pipeline<'_>,
    integration: &Integration,
    outcome: &mut ImportOutcome,
) -> Result<bool, StoreError> {
    if outcome.state != RowState::Pending {
        return Ok(false);
    }
    let mut actors = Actors::default();
    for _ in 0..RACE_ATTEMPTS {
        let sys_id = outcome.staging_sys_id.to_string();
        let Some(record) = pipeline.store.get(integration.staging.clone(), sys_id).await? else { break };
        let rows = [sluice_store::StoredRow { position: 0, record }];
        let work = actors.work(pipeline, integration, &rows).await?;
        match process(pipeline, integration, &work, RowState::Pending, None).await?.pop() {
            Some(Ok(Some(settled))) => *outcome = settled,
            // Settled meanwhile by someone else (the worker): its outcome is stored.
            Some(Ok(None)) | None => break,
            Some(Err(e)) => return Err(e),
        }
        if outcome.state != RowState::Pending {
            break;
        }
    }
    Ok(true)
}

/// Processes rows and logs the ones that failed in the store; returns how many were done.
pub(crate) async fn process_logged(
    pipeline: Pipeline<'_>,
    integration: &Integration,
    work: &[RowWork],
    expected: RowState,
    replay: Option<&str>,
) -> Result<Vec<Option<ImportOutcome>>, StoreError> {
    let results = process(pipeline, integration, work, expected, replay).await?;
    Ok(results
        .into_iter()
        .zip(work)
        .map(|(result, w)| {
            result.unwrap_or_else(|e| {
                tracing::error!(error = %e, staging_sys_id = %w.sys_id, "staged row could not be processed");
                None
            })
        })
        .collect())
}

/// Starts the background worker: it processes pending rows of every active integration in
/// staging order, batch by batch, when woken ([`AppState::wake_worker`]) and every `poll`. Rows
/// left pending by a crash are found the same way after a restart.
pub fn spawn_worker(state: AppState, options: WorkerOptions) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut actors = Actors::default();
        let mut cursors: HashMap<String, i64> = HashMap::new();
        loop {
            match work_once(&state, &options, &mut cursors, &mut actors).await {
                Ok(0) => {
                    tokio::select! {
                        () = state.bulk_wake.notified() => {}
                        () = tokio::time::sleep(options.poll) => {}
                    }
                }
                Ok(_) => {
                    if !options.pause.is_zero() {
                        tokio::time::sleep(options.pause).await;
                    }
                }
                Err(StoreError::Closed) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bulk worker: pending rows could not be read");
                    tokio::time::sleep(options.poll).await;
                }
            }
        }
        tracing::debug!("bulk worker stopped");
    })
}

/// Batches that one integration may run in a row before the next integration's turn.
const BATCHES_PER_TURN: usize = 16;

/// A turn for each integration with pending rows; returns how many rows were processed.
async fn work_once(
    state: &AppState,
    options: &WorkerOptions,
    cursors: &mut HashMap<String, i64>,
    actors: &mut Actors,
) -> Result<usize, StoreError> {
    let registry = state.registry();
    let store = state.store.as_ref();
    let pipeline = Pipeline::of(state, &registry);
    let mut done = 0;
    for integration in registry.integrations.values() {
        let cursor = cursors.entry(integration.staging.name.clone()).or_default();
        // Pending rows after `after` (a sync request's rows are never pending: the store
        // processes them as it stages them), and the position of the last, where the next read
        // starts.
        let read = |after| async move {
            let filter =
                RowFilter { state: RowState::Pending, since: None, after, limit: options.batch_rows.max(1) as u64 };
            let rows = store.staged_rows(integration.staging.clone(), filter).await?;
            let last = rows.last().map(|r| r.position);
            Ok::<_, StoreError>((rows, last))
        };
        let (mut rows, mut last) = read(*cursor).await?;
        if last.is_none() && *cursor > 0 {
            // Start over: rows that failed earlier are tried again.
            (rows, last) = read(0).await?;
        }
        let Some(mut last) = last else {
            *cursor = 0;
            continue;
        };
        let mut work = actors.work(pipeline, integration, &rows).await?;
        for turn in 1.. {
            *cursor = last;
            // While the writer commits this batch, the next one is read and judged (its rows come
            // after this one's, so no row is in both; it is sent only after this one is done).
            let more = turn < BATCHES_PER_TURN && options.pause.is_zero();
            let next = async {
                if !more {
                    return Ok((Vec::new(), None, Vec::new()));
                }
                let (next_rows, next_last) = read(*cursor).await?;
                let next_work = actors.work(pipeline, integration, &next_rows).await?;
                Ok::<_, StoreError>((next_rows, next_last, next_work))
            };
            let (outcomes, next) =
                tokio::join!(process_logged(pipeline, integration, &work, RowState::Pending, None), next);
            let outcomes = outcomes?;
            // Rows staged by insertMultiple count for the account that sent them once settled.
            for (outcome, w) in outcomes.iter().zip(&work) {
                if let Some(o) = outcome {
                    state.stats.record(&crate::stats::Event {
                        account: w.actor.user_name.clone(),
                        integration: integration.name().to_owned(),
                        metrics: crate::stats::row_metrics(o.state, &o.errors),
                    });
                }
            }
            let processed = outcomes.iter().filter(|o| o.is_some()).count();
            tracing::debug!(integration = %integration.name(), rows = rows.len(), processed, "bulk batch");
            done += processed;
            let next_last;
            (rows, next_last, work) = next?;
            match next_last {
                Some(position) => last = position,
                None => break,
            }
        }
    }
    Ok(done)
}
