//! Liveness and readiness for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// 200 while the process serves requests.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the database answers, 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"})))
        }
    }
}

/// Prometheus metrics (admins: scrape with basic auth).
pub async fn metrics(
    State(state): State<AppState>,
    caller: crate::authenticate::Caller,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), crate::error::ApiError> {
    if !caller.0.roles.contains(&sluice_core::account::Role::Admin) {
        return Err(crate::error::ApiError::forbidden("Metrics need the admin role"));
    }
    let mut text = crate::metrics::render();
    let mut outboxes = Vec::new();
    for integration in state.registry().integrations.values().filter(|i| i.forward.is_some()) {
        let counts = state.store.outbox_counts(Some(integration.name().to_owned())).await?;
        outboxes.push((integration.name().to_owned(), counts));
    }
    crate::metrics::render_outbox(&mut text, &outboxes, crate::forward::now_ms());
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
