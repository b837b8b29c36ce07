//! Staged rows processed after the fact: the background worker behind `insertMultiple`, replays
//! of stored rows under the current definition, and the retention purge.
//!
//! A stored row is judged exactly like a single row ([`crate::intake::judge`]): its raw
//! payload is staged again with the integration's current definition, checked against the
//! contract, transformed and given to the `on_before` script; the store then resolves references, finds the target and runs the business rules
//! inside the transaction that also changes the row's state. A row whose state changed meanwhile
//! (another worker, a replay) is left alone, so no row is done twice. A committed row's outcome goes
//! through `on_after` ([`crate::row_scripts::RowScripts::after`]), as a single row's does.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use sluice_core::integration::Integration;
use sluice_core::query::{Clause, Condition, EncodedQuery, FieldPath, Group, Operator};
use sluice_core::rules::Actor;
use sluice_core::staging::{self, RowState, StagedRow};
use sluice_core::{DateTime, Record, SysId};
use sluice_store::{
    ImportOutcome, ListQuery, ProcessJob, PurgeReport, RowFilter, StateCounts, Store, StoreError, StoredRow,
};

use crate::row_scripts::{RowScripts, ScriptHost, Verdict};
use crate::{AppState, Registry, intake};

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

/// One staged row to process: its sys_id, its columns as staged under the current definition,
/// the verdict on them (after `on_before`), the script's note, and who it is processed for.
pub struct RowWork {
    pub sys_id: SysId,
    pub columns: std::collections::BTreeMap<String, String>,
    pub verdict: Verdict,
    pub note: Option<String>,
    pub actor: Actor,
}

impl RowWork {
    /// Judges a staged row ([`intake::judge`]); `payload` is the object it was staged from.
    pub async fn judge(
        host: ScriptHost<'_>,
        integration: &Integration,
        sys_id: SysId,
        payload: Option<&Value>,
        staged: StagedRow,
        actor: Actor,
    ) -> Result<Self, StoreError> {
        let scripts = RowScripts::new(host, integration, &sys_id, &staged.columns);
        let (verdict, note) = intake::judge(&scripts, integration, payload, &staged).await?;
        Ok(Self { sys_id, columns: staged.columns, verdict, note, actor })
    }
}

/// A stored row staged again from its raw payload with the integration's current definition
/// (with that payload); when the payload cannot be read, from the columns it holds.
pub fn restage(integration: &Integration, record: &Record) -> (StagedRow, Option<Value>) {
    let payload = record.get("sys_payload").map(String::as_str).unwrap_or_default();
    match serde_json::from_str::<Value>(payload) {
        Ok(Value::Object(object)) => (staging::stage(integration, &object), Some(Value::Object(object))),
        _ => (
            StagedRow {
                columns: integration
                    .definition
                    .fields
                    .iter()
                    .filter_map(|f| Some((f.name.clone(), record.get(&f.name).filter(|v| !v.is_empty())?.clone())))
                    .collect(),
                ..StagedRow::default()
            },
            None,
        ),
    }
}

/// The accounts rows are processed for (the ones that posted them), looked up once.
#[derive(Default)]
pub struct Actors(HashMap<String, Actor>);

impl Actors {
    pub async fn get(&mut self, store: &dyn Store, user_name: &str) -> Result<Actor, StoreError> {
        if let Some(actor) = self.0.get(user_name) {
            return Ok(actor.clone());
        }
        let actor = match store.account(user_name.to_owned()).await? {
            Some(account) => Actor { user_name: account.user_name, sys_id: account.sys_id },
            // Not an account (any more): the name still shows who sent the row.
            None => Actor { user_name: user_name.to_owned(), sys_id: SysId::generate() },
        };
        self.0.insert(user_name.to_owned(), actor.clone());
        Ok(actor)
    }

    /// The work for stored rows, each for the account that staged it.
    pub async fn work(
        &mut self,
        host: ScriptHost<'_>,
        integration: &Integration,
        rows: &[StoredRow],
    ) -> Result<Vec<RowWork>, StoreError> {
        let mut work = Vec::with_capacity(rows.len());
        for row in rows {
            let record = &row.record;
            let Ok(sys_id) = SysId::parse(record.get("sys_id").map(String::as_str).unwrap_or_default()) else {
                continue;
            };
            let created_by = record.get("sys_created_by").map(String::as_str).unwrap_or_default();
            let actor = self.get(host.store, created_by).await?;
            let (staged, payload) = restage(integration, record);
            work.push(RowWork::judge(host, integration, sys_id, payload.as_ref(), staged, actor).await?);
        }
        Ok(work)
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
    host: ScriptHost<'_>,
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
        for result in host.store.process(jobs).await? {
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
            after(host, integration, w, outcome).await;
        }
    }
    Ok(out)
}

/// Runs `on_after` on a committed row's outcome.
pub async fn after(host: ScriptHost<'_>, integration: &Integration, w: &RowWork, outcome: &mut ImportOutcome) {
    let scripts = RowScripts::new(host, integration, &w.sys_id, &w.columns);
    // The row is committed whatever happens here: a failed read only costs the answer what
    // on_after would have said.
    if let Err(e) = scripts.after(w.note.clone(), outcome).await {
        tracing::warn!(error = %e, staging_sys_id = %w.sys_id, "on_after could not run");
    }
}

/// Processes rows and logs the ones that failed in the store; returns how many were done.
async fn process_logged(
    host: ScriptHost<'_>,
    integration: &Integration,
    work: &[RowWork],
    expected: RowState,
    replay: Option<&str>,
) -> Result<Vec<Option<ImportOutcome>>, StoreError> {
    let results = process(host, integration, work, expected, replay).await?;
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
    let host = ScriptHost::of(state, &registry);
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
        let mut work = actors.work(host, integration, &rows).await?;
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
                let next_work = actors.work(host, integration, &next_rows).await?;
                Ok::<_, StoreError>((next_rows, next_last, next_work))
            };
            let (outcomes, next) =
                tokio::join!(process_logged(host, integration, &work, RowState::Pending, None), next);
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

/// Which stored rows a replay runs again.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub state: RowState,
    /// Only rows staged at or after this time.
    pub since: Option<DateTime>,
    /// Who asked, for the audit trail.
    pub requested_by: String,
    pub batch_rows: usize,
}

/// What a replay did, so far or in the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Rows in the requested state: counted when the replay started (the progress goal), raised
    /// when rows come into the state while it runs (they are replayed too).
    pub matched: u64,
    /// Rows run again.
    pub replayed: u64,
    /// Rows whose state changed meanwhile (left alone) or that failed in the store.
    pub not_replayed: u64,
    /// The replayed rows' new states.
    pub outcomes: StateCounts,
}

/// The filter behind a replay, for counting its rows.
fn replay_query(request: &ReplayRequest) -> EncodedQuery {
    let mut clauses = vec![Clause {
        any_of: vec![Condition {
            field: FieldPath::field("sys_import_state"),
            op: Operator::Eq(request.state.as_str().to_owned()),
        }],
    }];
    if let Some(since) = request.since {
        clauses.push(Clause {
            any_of: vec![Condition { field: FieldPath::field("sys_created_on"), op: Operator::Ge(since.to_string()) }],
        });
    }
    EncodedQuery { groups: vec![Group { clauses }], ..EncodedQuery::default() }
}

/// Runs the integration's current definition again on its stored rows in one state: each row's
/// payload is staged again, validated, transformed and committed; the row's state, target and
/// errors are updated and the audit trail names the replay. A row that already produced a
/// target record updates that record, so replaying twice creates nothing twice. `progress` is
/// called after every batch.
pub async fn replay(
    host: ScriptHost<'_>,
    integration: &Integration,
    request: &ReplayRequest,
    mut progress: impl FnMut(&ReplaySummary),
) -> Result<ReplaySummary, StoreError> {
    let store = host.store;
    let staging = integration.staging.clone();
    let count = store.list(staging.clone(), ListQuery { filter: replay_query(request), limit: 0, offset: 0 }).await?;
    let mut summary = ReplaySummary { matched: count.total, ..ReplaySummary::default() };
    let mut actors = Actors::default();
    let mut after = 0;
    loop {
        let filter =
            RowFilter { state: request.state, since: request.since, after, limit: request.batch_rows.max(1) as u64 };
        let rows = store.staged_rows(staging.clone(), filter).await?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        let work = actors.work(host, integration, &rows).await?;
        let outcomes = process_logged(host, integration, &work, request.state, Some(&request.requested_by)).await?;
        for outcome in outcomes {
            match outcome {
                Some(o) => {
                    summary.replayed += 1;
                    summary.outcomes.add(o.state, 1);
                }
                None => summary.not_replayed += 1,
            }
        }
        // Rows that came into the state while the replay ran are replayed too.
        summary.matched = summary.matched.max(summary.replayed + summary.not_replayed);
        progress(&summary);
    }
    Ok(summary)
}

/// Deletes the staging rows of every active integration staged more than `retention_days` ago
/// and not pending, and the import sets left empty.
pub async fn purge_expired(
    store: &dyn Store,
    registry: &Registry,
    retention_days: u64,
    now: DateTime,
) -> Result<(PurgeReport, DateTime), StoreError> {
    const CHUNK: u64 = 5_000;
    let keep = i64::try_from(retention_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
    let before = DateTime::from_unix(now.unix().saturating_sub(keep));
    let mut total = PurgeReport::default();
    for integration in registry.integrations.values() {
        loop {
            let report = store.purge_staging(integration.staging.clone(), before, CHUNK).await?;
            total.rows += report.rows;
            total.import_sets += report.import_sets;
            if report.rows < CHUNK {
                break;
            }
        }
    }
    Ok((total, before))
}

/// Purges once at start and then hourly.
pub fn spawn_retention(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let registry = state.registry();
            let now = DateTime::now();
            // Statistics are kept as long as staging rows.
            let keep_minutes = i64::try_from(state.config.retention_days.saturating_mul(1440)).unwrap_or(i64::MAX);
            match state.store.purge_stats((now.unix() / 60).saturating_sub(keep_minutes)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(counters = n, "statistics past retention purged"),
                Err(e) => tracing::warn!(error = %e, "statistics purge failed"),
            }
            match purge_expired(state.store.as_ref(), &registry, state.config.retention_days, now).await {
                Ok((report, _)) if report.rows == 0 && report.import_sets == 0 => {}
                Ok((report, before)) => tracing::info!(
                    rows = report.rows,
                    import_sets = report.import_sets,
                    before = %before,
                    "staging rows past retention purged"
                ),
                Err(StoreError::Closed) => break,
                Err(e) => tracing::warn!(error = %e, "staging purge failed"),
            }
        }
    })
}
