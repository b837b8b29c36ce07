//! The forwarding outbox of an integration under `/api/sluice/v1/integrations/{name}/outbox`:
//! its depth and rows (admins and the integration's accounts), one record's delivery (so a
//! sender can see the upstream's ticket number), and the manual retry of dead rows (admins).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use sluice_core::DateTime;
use sluice_core::integration::Integration;
use sluice_store::outbox::{Delivery, DeliveryFilter, DeliveryState, OutboxCounts};

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::forward::now_ms;
use crate::receive::QueryPairs;

/// Rows listed when no `limit` is given, and the most a request may ask for.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

fn time(ms: i64) -> String {
    DateTime::from_unix_ms(ms).to_string()
}

pub(crate) fn delivery_json(d: &Delivery) -> Value {
    json!({
        "record_sys_id": d.record_sys_id,
        "table": d.table,
        "staging_sys_id": d.staging_sys_id,
        "state": d.state.as_str(),
        "version": d.version,
        "attempts": d.attempts,
        "next_attempt": (d.state == DeliveryState::Pending).then(|| time(d.next_attempt_ms)),
        "last_error": d.last_error,
        "upstream_number": d.upstream_number,
        "upstream_sys_id": d.upstream_sys_id,
        "queued_on": time(d.created_ms),
        "updated_on": time(d.updated_ms),
    })
}

pub(crate) fn counts_json(c: &OutboxCounts) -> Value {
    let age = c.oldest_pending_ms.map(|ms| (now_ms() - ms).max(0) / 1000);
    json!({"pending": c.pending, "delivered": c.delivered, "dead": c.dead, "oldest_pending_age_seconds": age})
}

/// A visible integration that forwards.
fn forwarding(state: &AppState, caller: &Caller, name: &str) -> ApiResult<Arc<Integration>> {
    let integration = crate::routes::integrations::find(state, caller, name)?;
    if integration.forward.is_none() {
        return Err(ApiError::InvalidParameter(format!(
            "integration {name} does not forward: it has no [forward] table"
        )));
    }
    Ok(integration)
}

/// `GET …/outbox?state=pending|delivered|dead&limit=N`: counts and the rows, newest change first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryPairs(query): QueryPairs,
) -> ApiResult<Json<Value>> {
    let integration = forwarding(&state, &caller, &name)?;
    let mut filter = DeliveryFilter { integration: Some(name.clone()), state: None, limit: DEFAULT_LIMIT };
    for (key, value) in &query {
        match key.as_str() {
            "state" if !value.is_empty() => {
                filter.state = Some(DeliveryState::parse(value).ok_or_else(|| {
                    ApiError::InvalidParameter(format!("state {value:?}: use pending, delivered or dead"))
                })?)
            }
            "limit" => {
                filter.limit = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| ApiError::InvalidParameter(format!("limit must be 1 to {MAX_LIMIT}")))?
            }
            _ => {}
        }
    }
    let counts = state.store.outbox_counts(Some(name.clone())).await?;
    let rows = state.store.deliveries(filter).await?;
    let forward = integration.forward.as_ref().expect("checked by forwarding()");
    Ok(Json(json!({"result": {
        "integration": name,
        "upstream": {"kind": forward.kind.as_str(), "endpoint": forward.endpoint()},
        "counts": counts_json(&counts),
        "deliveries": rows.iter().map(delivery_json).collect::<Vec<_>>(),
    }})))
}

/// `GET …/outbox/{sys_id}`: one record's delivery.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, sys_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    forwarding(&state, &caller, &name)?;
    let found = state.store.delivery(name, sys_id).await?.ok_or(ApiError::RecordNotFound)?;
    Ok(Json(json!({"result": delivery_json(&found)})))
}

/// `POST …/outbox/retry` (admin), optional body `{"record_sys_id": "…"}`: dead rows queued
/// again from their first attempt.
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    crate::routes::accounts::require_admin(&caller, "Retrying deliveries")?;
    forwarding(&state, &caller, &name)?;
    let mut record = None;
    if !body.iter().all(u8::is_ascii_whitespace) {
        for (key, value) in crate::receive::parse_object(&state.config, &body)? {
            match (key.as_str(), value) {
                ("record_sys_id", Value::String(s)) => record = Some(s),
                ("record_sys_id", Value::Null) => {}
                ("record_sys_id", other) => {
                    return Err(ApiError::InvalidParameter(format!("record_sys_id must be a string, not {other}")));
                }
                (other, _) => {
                    return Err(ApiError::InvalidParameter(format!("unknown key {other:?}: use record_sys_id")));
                }
            }
        }
    }
    let queued = retry_dead(&state, &caller.0.user_name, &name, record.clone()).await?;
    Ok(Json(json!({"result": {"integration": name, "record_sys_id": record, "queued": queued}})))
}

/// Queues dead rows again and records it in the admin audit (the API and the console).
pub(crate) async fn retry_dead(
    state: &AppState,
    actor: &str,
    integration: &str,
    record: Option<String>,
) -> ApiResult<u64> {
    let queued = state.store.retry_deliveries(integration.to_owned(), record.clone(), now_ms()).await?;
    tracing::info!(%integration, queued, account = %actor, "dead deliveries queued again");
    let details = json!({"record_sys_id": record, "queued": queued});
    crate::routes::admin_audit::record(state, actor, "integrations.outbox.retry", integration, details).await;
    Ok(queued)
}
