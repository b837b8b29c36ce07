//! Replays: the integration's current definition run again on its stored rows in one state,
//! e.g. after a mapping fix. Each row's payload is staged again, judged, and settled in place by
//! the store ([`super::process`]); the audit trail names who asked.

use serde_json::{Value, json};
use sluice_core::DateTime;
use sluice_core::SysId;
use sluice_core::integration::Integration;
use sluice_core::query::{Clause, Condition, EncodedQuery, FieldPath, Group, Operator};
use sluice_core::staging::RowState;
use sluice_store::{ListQuery, RowFilter, StateCounts, StoreError, StoredRow};

use super::process::{DEFAULT_BATCH_ROWS, process_logged};
use super::{Actors, Pipeline};

/// Which stored rows a replay runs again.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub state: RowState,
    /// Only rows staged at or after this time.
    pub since: Option<DateTime>,
    /// Who asked, for the audit trail.
    pub requested_by: String,
    pub batch_rows: usize,
    /// Only this staged row (when it is in `state`): the console's replay of one row.
    pub row: Option<SysId>,
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
    let mut query = EncodedQuery { groups: vec![Group { clauses }], ..EncodedQuery::default() };
    if let Some(row) = &request.row {
        query.and_equals("sys_id", row.as_str());
    }
    query
}

impl Pipeline<'_> {
    /// Runs the integration's current definition again on its stored rows in one state: each row's
    /// payload is staged again, validated, transformed and committed; the row's state, target and
    /// errors are updated and the audit trail names the replay. A row that already produced a
    /// target record updates that record, so replaying twice creates nothing twice. `progress` is
    /// called after every batch.
    pub async fn replay(
        self,
        integration: &Integration,
        request: &ReplayRequest,
        mut progress: impl FnMut(&ReplaySummary),
    ) -> Result<ReplaySummary, StoreError> {
        let pipeline = self;
        let store = pipeline.store;
        let staging = integration.staging.clone();
        let limit = u64::from(request.row.is_some());
        let count = store
            .list(staging.clone(), ListQuery { filter: replay_query(request), limit, offset: 0, count_up_to: None })
            .await?;
        let mut summary = ReplaySummary { matched: count.total, ..ReplaySummary::default() };
        // One row was read with the count; all of them are read in batches.
        let mut single = request
            .row
            .as_ref()
            .map(|_| count.records.into_iter().map(|record| StoredRow { position: 0, record }).collect::<Vec<_>>());
        let mut actors = Actors::default();
        let mut after = 0;
        loop {
            let rows = match &mut single {
                Some(rows) => std::mem::take(rows),
                None => {
                    let filter = RowFilter {
                        state: request.state,
                        since: request.since,
                        after,
                        limit: request.batch_rows.max(1) as u64,
                    };
                    store.staged_rows(staging.clone(), filter).await?
                }
            };
            let Some(last) = rows.last() else { break };
            after = last.position;
            let work = actors.work(pipeline, integration, &rows).await?;
            let outcomes =
                process_logged(pipeline, integration, &work, request.state, Some(&request.requested_by)).await?;
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
}

/// Why the texts of a replay's selection were refused (the message says what is allowed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error(
        "state {0:?}: replay error, skipped, ignored, inserted or updated rows (pending rows are processed by the bulk worker)"
    )]
    State(String),
    #[error("since {0:?} is not a date-time yyyy-MM-dd HH:mm:ss (UTC)")]
    Since(String),
}

impl ReplayRequest {
    /// The rows a replay runs again, parsed from the texts of `state` (`error` when absent;
    /// case ignored) and `since`, as the API and the command line give them.
    pub fn parse(state: Option<&str>, since: Option<&str>, requested_by: String) -> Result<Self, SelectionError> {
        let state = match state {
            None => RowState::Error,
            Some(s) => match s.to_ascii_lowercase().parse::<RowState>() {
                Ok(RowState::Pending) | Err(_) => return Err(SelectionError::State(s.to_owned())),
                Ok(state) => state,
            },
        };
        let since = since.map(|s| DateTime::parse(s).map_err(|_| SelectionError::Since(s.to_owned()))).transpose()?;
        Ok(Self { state, since, requested_by, batch_rows: DEFAULT_BATCH_ROWS, row: None })
    }
}

impl ReplaySummary {
    /// The summary as the API answers it and the command line prints it.
    pub fn to_json(&self, integration: &Integration, request: &ReplayRequest) -> Value {
        let o = &self.outcomes;
        json!({
            "integration": integration.name(),
            "version": integration.definition.version,
            "state": request.state.as_str(),
            "since": request.since.map(|t| t.to_string()),
            "matched": self.matched,
            "replayed": self.replayed,
            "not_replayed": self.not_replayed,
            "inserted": o.inserted,
            "updated": o.updated,
            "ignored": o.ignored,
            "skipped": o.skipped,
            "error": o.error,
        })
    }
}
