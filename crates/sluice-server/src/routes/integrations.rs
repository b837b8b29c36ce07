//! Sluice's own integration API under `/api/sluice/v1/integrations`: list and show the active
//! definitions (admins, and the accounts bound to each integration), and reload them (admins).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use sluice_core::account::Role;
use sluice_core::integration::Integration;

use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, ReloadError};

fn is_admin(caller: &Caller) -> bool {
    caller.0.roles.contains(&Role::Admin)
}

/// Admins see every integration; other accounts those that name them in `accounts`.
pub(crate) fn visible(caller: &Caller, integration: &Integration) -> bool {
    is_admin(caller) || integration.definition.accounts.iter().any(|a| *a == caller.0.user_name)
}

fn summary(i: &Integration) -> Value {
    let d = &i.definition;
    json!({
        "name": d.name,
        "description": d.description,
        "version": d.version,
        "staging_table": d.staging_table,
        "target_table": d.target_table,
        "endpoint": format!("/api/now/import/{}", d.staging_table),
        "transform_map": d.transform.name,
        "contact": d.contact.as_ref().map(|c| json!({"name": c.name, "email": c.email, "phone": c.phone})),
        "accounts": d.accounts,
        "networks": d.networks,
        "protocols": d.protocols,
        "forward": i.forward.as_ref().map(|f| json!({
            "kind": f.kind.as_str(), "endpoint": f.endpoint(), "auth": f.auth.describe(),
            "outbox": format!("/api/sluice/v1/integrations/{}/outbox", d.name),
        })),
    })
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    let registry = state.registry();
    let result: Vec<Value> =
        registry.integrations.values().filter(|i| visible(&caller, i)).map(|i| summary(i)).collect();
    Json(json!({ "result": result }))
}

pub(crate) fn find(state: &AppState, caller: &Caller, name: &str) -> ApiResult<Arc<Integration>> {
    state
        .registry()
        .integrations
        .values()
        .find(|i| i.name() == name && visible(caller, i))
        .cloned()
        .ok_or(ApiError::RecordNotFound)
}

pub async fn show(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let integration = find(&state, &caller, &name)?;
    Ok(Json(json!({ "result": contract(&integration) })))
}

/// The integration's summary with its fields and their rules, as `show` answers it (and the
/// console's integration page shows it).
pub(crate) fn contract(integration: &Integration) -> Value {
    let mut out = summary(integration);
    let fields: Vec<Value> = integration
        .definition
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name, "label": f.label, "type": f.kind, "required": f.required,
                "max_length": f.max_length, "choices": f.choices, "default": f.default,
                "pattern": f.pattern, "source": f.source,
            })
        })
        .collect();
    out["fields"] = json!(fields);
    out
}

pub async fn reload(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    if !is_admin(&caller) {
        return Err(ApiError::forbidden("Reloading integrations needs the admin role"));
    }
    let reloaded = state.reload().await;
    crate::routes::admin_audit::record_reload(&state, &caller.0.user_name, &reloaded).await;
    match reloaded {
        Ok(registry) => {
            let loaded: Vec<Value> = registry.integrations.values().map(|i| summary(i)).collect();
            tracing::info!(account = %caller.0.user_name, count = loaded.len(), "integrations reloaded");
            Ok(Json(json!({ "result": { "reloaded": true, "integrations": loaded } })))
        }
        Err(ReloadError::Invalid(problems)) => {
            tracing::warn!(problems = problems.len(), "integration reload refused; previous definitions stay active");
            Err(ApiError::InvalidDefinitions(problems))
        }
        Err(ReloadError::Store(e)) => Err(e.into()),
    }
}
