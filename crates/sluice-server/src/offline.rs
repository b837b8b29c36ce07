//! Pipeline work on a store with no server around it: `sluice replay` on the command line. Thin
//! on purpose: the selection is read as the replay endpoint reads it and the rows are replayed by
//! [`crate::bulk::replay`], with scripts run as the server runs them.

use sluice_core::integration::Integration;
use sluice_core::tables::Catalog;
use sluice_store::{Store, StoreError};

use crate::bulk::{self, ReplayRequest, ReplaySummary};
use crate::error::ApiError;
use crate::row_scripts::ScriptHost;

/// Why an offline replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scripts(#[from] sluice_script::ScriptError),
}

/// The rows a replay runs again, from the texts of `state` (`error` when empty) and `since`,
/// checked as the replay endpoint checks them; the error is the message for the user.
pub fn replay_request(state: &str, since: Option<&str>, requested_by: String) -> Result<ReplayRequest, String> {
    let mut query = vec![("state".to_owned(), state.to_owned())];
    query.extend(since.map(|s| ("since".to_owned(), s.to_owned())));
    let (state, since) = crate::routes::bulk::replay_selection(None, &query).map_err(|e| match e {
        ApiError::InvalidParameter(detail) => detail,
        other => other.to_string(),
    })?;
    Ok(ReplayRequest { state, since, requested_by, batch_rows: bulk::DEFAULT_BATCH_ROWS })
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
    let host = ScriptHost { store, engine: &engine, catalog: &catalog };
    Ok(bulk::replay(host, integration, request, progress).await?)
}
