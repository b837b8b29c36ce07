//! Rows posted to an integration: one (the Import Set API, and the Table API on a staging
//! table) or many (`insertMultiple`), judged and committed by the store.

use serde_json::{Map, Value};
use sluice_core::integration::Integration;
use sluice_core::query::{EncodedQuery, OrderBy};
use sluice_core::rules::Actor;
use sluice_core::staging::RowState;
use sluice_core::{DateTime, SysId, contract, staging};
use sluice_store::staging_row::outcome_of;
use sluice_store::{Idempotency, ImportJob, ImportOutcome, ListQuery, StageBatch, StagedRecord, StagedSet, StoreError};

use super::{Pipeline, RowWork};
use crate::receive::JsonObject;

/// `insertMultiple`'s records and how to take them.
pub struct ManyRequest {
    /// JSON objects keyed by column labels (as ServiceNow sends them) or names.
    pub records: Vec<Map<String, Value>>,
    /// Judge and commit every record before answering (`sysparm_sluice_sync=true`); otherwise
    /// they are staged `pending` for the bulk worker.
    pub sync: bool,
    /// Joins this multi import set; a new one when `None`.
    pub multi_import_set: Option<String>,
    pub idempotency: Option<Idempotency>,
    pub actor: Actor,
    /// Most rows of a replayed request read back ([`ManyOutcome::rows`]).
    pub max_records: usize,
    /// The body as received, kept on the import set (sender hooks: their rows are its parts).
    pub request_body: Option<String>,
}

/// What `insertMultiple` did: the import set, and in sync mode every row's outcome, in order
/// (the first request's rows as they stand now, when the request was a replay).
pub struct ManyOutcome {
    pub set: StagedSet,
    pub rows: Option<Vec<ImportOutcome>>,
}

impl Pipeline<'_> {
    /// One row: staged, judged, committed with its staging row in one durable transaction,
    /// then `on_after`. The errors carry their JSON Pointer paths.
    pub async fn import_one(
        self,
        integration: &Integration,
        actor: Actor,
        body: JsonObject,
        idempotency: Option<Idempotency>,
    ) -> Result<ImportOutcome, StoreError> {
        let staged = staging::stage(integration, &body.object);
        let columns = staged.columns.clone();
        let payload = Value::Object(body.object);
        let work = self.judge(integration, SysId::generate(), Some(&payload), staged, actor).await?;
        let definition = &integration.definition;
        let job = ImportJob {
            staging: integration.staging.clone(),
            target: integration.target.clone(),
            transform_map: definition.transform.name.clone(),
            integration_version: definition.version.clone(),
            staging_sys_id: work.sys_id.clone(),
            payload: body.raw.to_vec(),
            columns,
            verdict: work.verdict.clone(),
            actor: work.actor.clone(),
            now: DateTime::now(),
            idempotency,
        };
        let mut outcome = self.store.import(job).await?;
        if outcome.replayed && outcome.state == RowState::Pending {
            // The first request left its row pending (a race): its answer is the row as it stands.
            let (sys_id, set) = (outcome.staging_sys_id.to_string(), outcome.import_set.clone());
            outcome = ImportOutcome { replayed: true, ..self.stored_outcome(integration, &sys_id, &set).await? };
        }
        if outcome.replayed || !super::process::settle_raced(self, integration, &mut outcome).await? {
            self.after(integration, &work, &mut outcome).await;
        }
        contract::add_paths(integration, &mut outcome.errors);
        Ok(outcome)
    }

    /// Many rows in one durable transaction, as one new import set: staged `pending`, or in
    /// sync mode judged first and settled as they are staged (then `on_after` for each).
    pub async fn import_many(self, integration: &Integration, request: ManyRequest) -> Result<ManyOutcome, StoreError> {
        let ManyRequest { records, sync, multi_import_set, idempotency, actor, max_records, request_body } = request;
        let mut rows = Vec::with_capacity(records.len());
        let mut work: Vec<RowWork> = Vec::new();
        for record in records {
            let record = staging::by_column_names(integration, record);
            let staged = staging::stage(integration, &record);
            let sys_id = SysId::generate();
            let payload = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let columns = staged.columns.clone();
            // A synchronous request's rows are judged (the contract and on_before) before they
            // are staged, as a single import's, so the store settles each as it stages it.
            let verdict = if sync {
                let record = Value::Object(record);
                let mut w = self.judge(integration, sys_id.clone(), Some(&record), staged, actor.clone()).await?;
                let verdict = std::mem::replace(&mut w.verdict, Err(Vec::new()));
                work.push(w);
                Some(verdict)
            } else {
                None
            };
            rows.push(StagedRecord { sys_id, payload, columns, verdict });
        }
        let mut set = self
            .store
            .stage_many(StageBatch {
                staging: integration.staging.clone(),
                target: integration.target.clone(),
                transform_map: integration.definition.transform.name.clone(),
                multi_import_set,
                rows,
                integration_version: integration.definition.version.clone(),
                actor,
                now: DateTime::now(),
                idempotency,
                request_body,
            })
            .await?;
        if !sync {
            return Ok(ManyOutcome { set, rows: None });
        }
        if set.replayed {
            let rows = self.stored_outcomes(integration, &set, max_records).await?;
            return Ok(ManyOutcome { set, rows: Some(rows) });
        }
        let mut outcomes = Vec::with_capacity(work.len());
        for (outcome, w) in std::mem::take(&mut set.outcomes).into_iter().zip(&work) {
            outcomes.push(match outcome {
                Some(mut o) => {
                    if !super::process::settle_raced(self, integration, &mut o).await? {
                        self.after(integration, w, &mut o).await;
                    }
                    o
                }
                // Not expected (the store settles every judged row): report what is stored.
                None => self.stored_outcome(integration, w.sys_id.as_str(), &set.number).await?,
            });
        }
        Ok(ManyOutcome { set, rows: Some(outcomes) })
    }

    /// The outcomes of an import set's rows as stored, in staging order.
    pub async fn stored_outcomes(
        self,
        integration: &Integration,
        set: &StagedSet,
        max_records: usize,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let mut filter = EncodedQuery::default();
        filter.and_equals("sys_import_set", &set.import_set);
        filter.order_by.push(OrderBy { field: "sys_import_row".into(), descending: false });
        let query = ListQuery { filter, limit: max_records as u64, offset: 0, count_up_to: None };
        let page = self.store.list(integration.staging.clone(), query).await?;
        let targets: Vec<String> =
            page.records.iter().filter_map(|r| r.get("sys_target_sys_id").filter(|t| !t.is_empty()).cloned()).collect();
        let displays = self.store.display_values(integration.target.clone(), targets).await?;
        page.records
            .iter()
            .map(|row| {
                let display = row.get("sys_target_sys_id").and_then(|t| displays.get(t)).cloned();
                outcome_of(row, &set.number, display)
            })
            .collect()
    }

    async fn stored_outcome(
        self,
        integration: &Integration,
        sys_id: &str,
        import_set: &str,
    ) -> Result<ImportOutcome, StoreError> {
        let row = self
            .store
            .get(integration.staging.clone(), sys_id.to_owned())
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("staged row {sys_id} is missing")))?;
        let target = row.get("sys_target_sys_id").cloned().unwrap_or_default();
        let display = if target.is_empty() {
            None
        } else {
            let mut values = self.store.display_values(integration.target.clone(), vec![target.clone()]).await?;
            values.remove(&target)
        };
        outcome_of(&row, import_set, display)
    }
}
