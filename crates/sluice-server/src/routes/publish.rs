//! Publishing an integration's contract under `/api/sluice/v1/integrations/{name}`: its payload
//! schema (`schema.json`) and its plan (`plan`), readable by admins and by the accounts the
//! integration names (others get 404, as for `show`); and a dry run (`validate`), allowed to
//! whoever may post to the integration; and the OpenAPI document of every route.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sluice_core::integration::Integration;
use sluice_core::rules::Actor;
use sluice_core::staging::RowState;
use sluice_store::settle::{Reference, Settled};

use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Pipeline;
use crate::pipeline::dry_run::DryRunAnswer;
use crate::receive::{BaseUrl, JsonObject, PeerAddr};
use crate::routes::integrations::find;
use crate::{AppState, integration_plan};

/// `GET .../{name}/schema.json`: the payload's JSON Schema, with its own URL as `$id`.
pub async fn schema(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    BaseUrl(base): BaseUrl,
) -> ApiResult<Response> {
    let integration = find(&state, &caller, &name)?;
    let mut document = Map::new();
    if let Value::Object(schema) = integration.contract.schema() {
        for (k, v) in schema {
            document.insert(k.clone(), v.clone());
            if k == "$schema" {
                document.insert("$id".into(), json!(format!("{base}/api/sluice/v1/integrations/{name}/schema.json")));
            }
        }
    }
    let body = serde_json::to_vec_pretty(&Value::Object(document)).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("application/schema+json"))], body).into_response())
}

/// `GET /api/sluice/v1/openapi.json`: every route, and the payload schemas of the integrations
/// this account may see (as `schema.json` does: admins and the accounts an integration names).
pub async fn openapi(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    let registry = state.registry();
    let visible: Vec<&Integration> =
        registry.integrations.values().map(|i| &**i).filter(|i| super::integrations::visible(&caller, i)).collect();
    Json(crate::openapi::document(&visible))
}

/// `GET .../{name}/plan`: the integration plan, Markdown unless the client prefers HTML.
pub async fn plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let integration = find(&state, &caller, &name)?;
    let config = &state.config;
    let settings = integration_plan::Settings {
        base_url: base,
        listen: config.listen.clone(),
        https: config.https,
        max_body_bytes: config.max_body_bytes,
        request_timeout: config.request_timeout,
    };
    let document = integration_plan::document(&integration, &settings);
    let accept = headers.get(ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("");
    let (content_type, body) = if integration_plan::prefers_html(accept) {
        ("text/html; charset=utf-8", integration_plan::html(&document))
    } else {
        ("text/markdown; charset=utf-8", integration_plan::markdown(&document))
    };
    Ok(([(CONTENT_TYPE, HeaderValue::from_static(content_type)), (VARY, HeaderValue::from_static("Accept"))], body)
        .into_response())
}

/// The integration by name, if this caller may post to it from this address (as the Import Set
/// API decides for its staging table).
pub(crate) fn postable(
    state: &AppState,
    caller: &Caller,
    peer: Option<std::net::IpAddr>,
    name: &str,
) -> ApiResult<Arc<Integration>> {
    let integration =
        state.registry().integrations.values().find(|i| i.name() == name).cloned().ok_or(ApiError::RecordNotFound)?;
    super::import::may_post(&integration, caller, peer, "ACL Exception Insert Failed due to security constraints")?;
    Ok(integration)
}

/// `POST .../{name}/validate`: what posting this payload would do; nothing is written.
pub async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    PeerAddr(peer): PeerAddr,
    Path(name): Path<String>,
    body: Result<JsonObject, ApiError>,
) -> ApiResult<Json<Value>> {
    let integration = postable(&state, &caller, peer, &name)?;
    let body = body?;
    let actor = Actor { user_name: caller.0.user_name.clone(), sys_id: caller.0.sys_id.clone() };
    let registry = state.registry();
    let answer = Pipeline::of(&state, &registry).dry_run(&integration, actor, body.object).await?;
    Ok(Json(json!({ "result": dry_run_json(&integration, &answer) })))
}

/// A dry run's `result`: `status` (`would_insert`, `would_update`, `would_ignore`,
/// `would_skip`, `error`), the target, the values after the business rules, the changes, what
/// each reference lookup found, and every error with its path.
pub(crate) fn dry_run_json(integration: &Integration, answer: &DryRunAnswer) -> Value {
    let Settled { outcome, references, written } = &answer.settled;
    let references: Vec<Value> = answer
        .lookups
        .iter()
        .zip(references)
        .filter_map(|(lookup, reference)| {
            let (result, sys_id) = match reference {
                Reference::Found(id) => ("found", Some(id)),
                Reference::Created(id) => ("created", Some(id)),
                Reference::WouldCreate => ("would_create", None),
                Reference::Ignored => ("ignored", None),
                Reference::Rejected => ("rejected", None),
                Reference::Skipped => return None,
            };
            Some(json!({
                "field": lookup.target_field,
                "source": lookup.source_field,
                "table": lookup.table,
                "value": lookup.value,
                "result": result,
                "sys_id": sys_id,
            }))
        })
        .collect();
    let target = &integration.target;
    let inserted = written.as_ref().is_some_and(|w| w.inserted);
    // A record to insert has neither a sys_id nor a number yet.
    let existing = outcome.target_sys_id.as_ref().filter(|_| !inserted);
    let mut result = json!({
        "status": match outcome.state {
            RowState::Inserted => "would_insert",
            RowState::Updated => "would_update",
            RowState::Ignored => "would_ignore",
            RowState::Skipped => "would_skip",
            RowState::Error | RowState::Pending => "error",
        },
        "target_table": target.name,
        "target_sys_id": existing,
        "number": existing.and(outcome.display_value.as_ref()),
        "values": {},
        "references": references,
        "errors": outcome.errors,
    });
    if let Some(written) = written {
        let values: BTreeMap<&String, &String> =
            written.applied.record.iter().filter(|(k, v)| !v.is_empty() && !k.starts_with("sys_")).collect();
        let changes: Vec<Value> =
            written.applied.changes.iter().map(|c| json!({"field": c.field, "old": c.old, "new": c.new})).collect();
        result["values"] = json!(values);
        result["changes"] = json!(changes);
    } else if outcome.state == RowState::Ignored {
        result["changes"] = json!([]);
    }
    if !outcome.errors.is_empty() {
        result["error_message"] = json!(sluice_core::validate::summary(&outcome.errors));
    }
    if let Some(message) = &outcome.status_message {
        result["status_message"] = json!(message);
    }
    result
}
