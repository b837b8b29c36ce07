//! Retention: staging rows (not pending) and statistics older than `--retention-days` are
//! deleted once at start and then hourly, and on request (`POST /api/sluice/v1/retention/purge`).

use std::time::Duration;

use sluice_core::DateTime;
use sluice_store::{Maintenance, PurgeReport, StoreError};

use crate::{AppState, Registry};

/// Deletes the staging rows of every active integration staged more than `retention_days` ago
/// and not pending, and the import sets left empty.
pub async fn purge_expired(
    store: &dyn Maintenance,
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
            match state.store.purge_sessions(now.unix().saturating_mul(1000)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "expired console sessions purged"),
                Err(e) => tracing::warn!(error = %e, "console session purge failed"),
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
