//! Pipeline work on a store with no server around it: `sluice replay` on the command line. The
//! same [`Pipeline`] as the server's, with its own script engine.

use sluice_core::integration::Integration;
use sluice_core::tables::Catalog;
use sluice_store::{Store, StoreError};

use crate::pipeline::Pipeline;
use crate::pipeline::replay::{ReplayRequest, ReplaySummary};

/// Why an offline replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scripts(#[from] sluice_script::ScriptError),
}

/// Replays `integration`'s stored rows on `store` (its staging table prepared first), with the
/// default script limits on one worker; `progress` is called after every batch.
pub async fn replay(
    store: &dyn Store,
    integration: &Integration,
    request: &ReplayRequest,
    progress: impl FnMut(&ReplaySummary),
) -> Result<ReplaySummary, OfflineError> {
    store.prepare_staging(integration.staging.clone()).await?;
    let engine = sluice_script::ScriptEngine::new(sluice_script::Limits::default(), 1)?;
    let catalog = Catalog::builtin();
    let pipeline = Pipeline { store, engine: &engine, catalog: &catalog };
    Ok(pipeline.replay(integration, request, progress).await?)
}

/// `sluice load`: records from a file through the Import Set pipeline, as `insertMultiple`
/// with `sysparm_sluice_sync=true` takes them (contract, transform, rules, history, each row's
/// outcome), in batches that are each one durable transaction, all in one multi import set.
/// Each batch counts in the account's and integration's statistics as one such request would.
pub struct Loader<'a> {
    stats: crate::stats::StatsRecorder,
    store: &'a dyn Store,
    integration: &'a Integration,
    engine: sluice_script::ScriptEngine,
    catalog: Catalog,
    actor: sluice_core::rules::Actor,
    multi_import_set: Option<String>,
}

impl<'a> Loader<'a> {
    /// Rows will be staged as sent by `user_name` (an account, or just the name when it is not
    /// one, as replays name the rows' senders).
    pub async fn new(
        store: &'a dyn Store,
        integration: &'a Integration,
        user_name: &str,
    ) -> Result<Self, OfflineError> {
        store.prepare_staging(integration.staging.clone()).await?;
        let engine = sluice_script::ScriptEngine::new(sluice_script::Limits::default(), 1)?;
        let actor = crate::pipeline::Actors::default().get(store, user_name).await?;
        Ok(Self {
            stats: crate::stats::StatsRecorder::default(),
            store,
            integration,
            engine,
            catalog: Catalog::builtin(),
            actor,
            multi_import_set: None,
        })
    }

    /// One batch: staged, judged and committed; each row's outcome, in order.
    pub async fn batch(
        &mut self,
        records: Vec<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Vec<sluice_store::ImportOutcome>, OfflineError> {
        let pipeline = Pipeline { store: self.store, engine: &self.engine, catalog: &self.catalog };
        let request = crate::pipeline::import::ManyRequest {
            max_records: records.len(),
            records,
            sync: true,
            multi_import_set: self.multi_import_set.clone(),
            idempotency: None,
            actor: self.actor.clone(),
            request_body: None,
        };
        let outcome = pipeline.import_many(self.integration, request).await?;
        self.multi_import_set = Some(outcome.set.multi_import_set.clone());
        let rows = outcome.rows.unwrap_or_default();
        let event = |metrics| crate::stats::Event {
            account: self.actor.user_name.clone(),
            integration: self.integration.name().to_owned(),
            metrics,
        };
        self.stats.record(&event(vec![sluice_core::stats::metric::RECEIVED.to_owned()]));
        for row in &rows {
            self.stats.record(&event(crate::stats::row_metrics(row.state, &row.errors)));
        }
        self.stats.flush(self.store).await?;
        Ok(rows)
    }

    /// The multi import set every batch joined (after the first batch).
    pub fn multi_import_set(&self) -> Option<&str> {
        self.multi_import_set.as_deref()
    }
}
