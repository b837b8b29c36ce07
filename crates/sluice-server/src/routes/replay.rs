//! Admin work on stored rows: `POST /api/sluice/v1/integrations/{name}/replay` (the current
//! definition run again on stored rows, [`Pipeline::replay`]) and
//! `POST /api/sluice/v1/retention/purge` (the retention purge now, [`crate::retention`]).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Map, Value, json};
use sluice_core::DateTime;
use sluice_core::account::Role;
use sluice_core::integration::Integration;

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Pipeline;
use crate::pipeline::replay::ReplayRequest;
use crate::receive::QueryPairs;

fn require_admin(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.0.roles.contains(&Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("{what} needs the admin role")))
    }
}

/// The rows a replay selects, from the JSON body (optional: `state`, `since`) and the query
/// string (which wins).
fn replay_request(
    body: Option<&Map<String, Value>>,
    query: &[(String, String)],
    requested_by: String,
) -> ApiResult<ReplayRequest> {
    let mut state_text = None;
    let mut since_text = None;
    if let Some(body) = body {
        for (key, value) in body {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => return Err(ApiError::InvalidParameter(format!("{key} must be a string, not {other}"))),
            };
            match key.as_str() {
                "state" => state_text = Some(text),
                "since" => since_text = Some(text),
                _ => return Err(ApiError::InvalidParameter(format!("unknown key {key:?}: use state and since"))),
            }
        }
    }
    for (key, value) in query {
        match key.as_str() {
            "state" if !value.is_empty() => state_text = Some(value.clone()),
            "since" if !value.is_empty() => since_text = Some(value.clone()),
            _ => {}
        }
    }
    ReplayRequest::parse(state_text.as_deref(), since_text.as_deref(), requested_by)
        .map_err(|e| ApiError::InvalidParameter(e.to_string()))
}

fn find_integration(state: &AppState, name: &str) -> ApiResult<Arc<Integration>> {
    let registry = state.registry();
    registry
        .integrations
        .values()
        .find(|i| i.name() == name)
        .or_else(|| registry.integrations.get(name))
        .cloned()
        .ok_or(ApiError::RecordNotFound)
}

/// `POST /api/sluice/v1/integrations/{name}/replay` (admin): runs the current definition again on
/// the integration's stored rows in one state (default `error`), optionally only those staged
/// since a time.
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryPairs(query): QueryPairs,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&caller, "Replaying staged rows")?;
    let integration = find_integration(&state, &name)?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(crate::receive::parse_object(&state.config, &body)?)
    };
    let mut request = replay_request(body.as_ref(), &query, caller.0.user_name.clone())?;
    request.batch_rows = state.config.bulk_batch_rows;
    let registry = state.registry();
    let result = Pipeline::of(&state, &registry).replay(&integration, &request, |_| {}).await;
    crate::routes::admin_audit::record_replay(&state, &caller.0.user_name, &integration, &request, &result).await;
    let summary = result?;
    tracing::info!(
        integration = %integration.name(),
        version = %integration.definition.version,
        state = request.state.as_str(),
        replayed = summary.replayed,
        account = %caller.0.user_name,
        "staged rows replayed"
    );
    Ok(Json(json!({ "result": summary.to_json(&integration, &request) })))
}

/// `POST /api/sluice/v1/retention/purge` (admin): runs the retention purge now.
pub async fn purge(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    require_admin(&caller, "Purging staged rows")?;
    let registry = state.registry();
    let days = state.config.retention_days;
    let (report, before) =
        crate::retention::purge_expired(state.store.as_ref(), &registry, days, DateTime::now()).await?;
    tracing::info!(rows = report.rows, import_sets = report.import_sets, "staging purge requested");
    Ok(Json(json!({
        "result": {
            "retention_days": days,
            "before": before.to_string(),
            "rows": report.rows,
            "import_sets": report.import_sets,
        }
    })))
}
