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
