//! The admin audit: every account change (recorded by the store with the change), every
//! integration reload and every replay of stored rows, readable by admins at
//! `GET /api/sluice/v1/admin_audit`, newest first, paged with `sysparm_limit`/`sysparm_offset`,
//! of one `action` when given, and counted in `X-Total-Count`. The console's admin audit page
//! reads through [`page`] too.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use sluice_core::DateTime;
use sluice_core::integration::Integration;
use sluice_store::{AdminAuditEntry, StoreError};

use crate::authenticate::Caller;
use crate::error::ApiResult;
use crate::pipeline::replay::{ReplayRequest, ReplaySummary};
use crate::receive::QueryPairs;
use crate::{AppState, Registry, ReloadError};

const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

/// A page of entries, newest first, of one action when given (empty: all); the total count.
pub async fn page(
    state: &AppState,
    action: &str,
    limit: u64,
    offset: u64,
) -> Result<(Vec<AdminAuditEntry>, u64), sluice_store::StoreError> {
    let action = (!action.is_empty()).then(|| action.to_owned());
    state.store.admin_audit(action, limit.clamp(1, MAX_LIMIT), offset).await
}

/// Records an administrative action; a failure is logged (the action itself already happened).
pub async fn record(state: &AppState, actor: &str, action: &str, target: &str, details: Value) {
    let entry = AdminAuditEntry {
        id: 0,
        created_on: DateTime::now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        details,
    };
    if let Err(e) = state.store.record_admin_audit(entry).await {
        tracing::error!(error = %e, action, "the admin audit entry could not be written");
    }
}

/// Records an integration reload (API or SIGHUP) and its outcome.
pub async fn record_reload(state: &AppState, actor: &str, result: &Result<std::sync::Arc<Registry>, ReloadError>) {
    let details = match result {
        Ok(registry) => {
            json!({"outcome": "reloaded", "integrations": registry.integrations.keys().collect::<Vec<_>>()})
        }
        Err(ReloadError::Invalid(problems)) => json!({"outcome": "refused", "problems": problems.len()}),
        Err(ReloadError::Store(_)) => json!({"outcome": "failed"}),
    };
    record(state, actor, "integrations.reload", "integrations", details).await;
}

/// Records a replay of an integration's stored rows (API or console) and its outcome: the
/// summary as the API answers it, or `failed`.
pub async fn record_replay(
    state: &AppState,
    actor: &str,
    integration: &Integration,
    request: &ReplayRequest,
    result: &Result<ReplaySummary, StoreError>,
) {
    let details = match result {
        Ok(summary) => {
            let mut details = summary.to_json(integration, request);
            details["outcome"] = json!("replayed");
            details
        }
        Err(_) => json!({"outcome": "failed", "state": request.state.as_str()}),
    };
    record(state, actor, "integrations.replay", integration.name(), details).await;
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    crate::routes::accounts::require_admin(&caller, "Reading the admin audit")?;
    let number = |names: [&str; 2]| {
        pairs.iter().rev().find(|(k, _)| names.contains(&k.as_str())).and_then(|(_, v)| v.trim().parse::<u64>().ok())
    };
    let limit = number(["sysparm_limit", "limit"]).unwrap_or(DEFAULT_LIMIT);
    let offset = number(["sysparm_offset", "offset"]).unwrap_or(0);
    let action = pairs.iter().rev().find(|(k, _)| k == "action").map_or("", |(_, v)| v.trim());
    let (entries, total) = page(&state, action, limit, offset).await?;
    let result: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "created_on": e.created_on.to_string(),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "details": e.details,
            })
        })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    Ok((headers, Json(json!({ "result": result }))))
}
