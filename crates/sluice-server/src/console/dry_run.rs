//! The dry-run form of an integration's page: the payload judged and settled exactly as the API's
//! `POST /api/sluice/v1/integrations/{name}/validate` does ([`Pipeline::dry_run`], answered by
//! the same [`crate::routes::publish::dry_run_json`]); nothing is written. Allowed to whoever may
//! post to the integration, as that route.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use sluice_core::rules::Actor;

use super::integrations::{find, render, text};
use super::layout;
use super::session::Console;
use crate::AppState;
use crate::authenticate::Caller;
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::receive::PeerAddr;

#[derive(Deserialize)]
pub struct DryRunForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    payload: String,
}

pub struct ErrorRow {
    pub code: String,
    pub field: String,
    pub path: String,
    pub message: String,
}

/// A dry run's answer as the page shows it.
pub struct DryRunView {
    /// `would_insert`, `would_update`, `would_ignore`, `would_skip` or `error`.
    pub status: String,
    /// The status in words.
    pub verdict: String,
    pub failed: bool,
    pub target: String,
    pub status_message: String,
    pub errors: Vec<ErrorRow>,
    /// The target record's fields after the business rules.
    pub values: Vec<(String, String)>,
    pub changes: Vec<(String, String, String)>,
    /// Each reference lookup: field, value, what it found.
    pub references: Vec<(String, String, String)>,
}

impl DryRunView {
    /// From the API's answer (`result` of `validate`).
    pub fn of(result: &Value, target_table: &str) -> Self {
        let status = text(&result["status"]);
        let target = result["number"].as_str().or(result["target_sys_id"].as_str()).unwrap_or("").to_owned();
        let verdict = match status.as_str() {
            "would_insert" => format!("Would insert a new {target_table} record."),
            "would_update" => format!("Would update {target_table} {target}."),
            "would_ignore" => "Would be ignored (nothing would change).".to_owned(),
            "would_skip" => "Would be skipped.".to_owned(),
            _ => "Would fail: the row would be staged as an error.".to_owned(),
        };
        let list = |key: &str| result[key].as_array().cloned().unwrap_or_default();
        Self {
            failed: status == "error",
            verdict,
            status,
            target,
            status_message: text(&result["status_message"]),
            errors: list("errors")
                .iter()
                .map(|e| ErrorRow {
                    code: text(&e["code"]),
                    field: text(&e["field"]),
                    path: text(&e["path"]),
                    message: text(&e["message"]),
                })
                .collect(),
            values: result["values"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                .unwrap_or_default(),
            changes: list("changes").iter().map(|c| (text(&c["field"]), text(&c["old"]), text(&c["new"]))).collect(),
            references: list("references")
                .iter()
                .map(|r| (text(&r["field"]), text(&r["value"]), text(&r["result"])))
                .collect(),
        }
    }
}

pub async fn run(
    State(state): State<AppState>,
    console: Console,
    PeerAddr(peer): PeerAddr,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DryRunForm>,
) -> Response {
    if let Some(refused) = console.refuse_form(&headers, &form.csrf) {
        return refused;
    }
    let Some((_, visible)) = find(&state, &console, peer, &name) else {
        return layout::not_found(&console);
    };
    let caller = Caller(console.account.clone());
    let integration = match crate::routes::publish::postable(&state, &caller, peer, &name) {
        Ok(i) => i,
        Err(ApiError::RecordNotFound) => return layout::not_found(&console),
        Err(_) => return layout::forbidden(&console),
    };
    let config = &state.config;
    let object =
        match sluice_core::payload::read_object(form.payload.as_bytes(), config.max_json_depth, config.max_json_fields)
        {
            Ok(o) => o,
            Err(e) => {
                let alert = format!(
                    "The payload could not be read ({e}). Enter one JSON object, e.g. {{\"u_field\": \"value\"}}."
                );
                return render(&state, &console, &integration, visible, form.payload, None, Some(alert)).await;
            }
        };
    let actor = Actor { user_name: console.account.user_name.clone(), sys_id: console.account.sys_id.clone() };
    let registry = state.registry();
    let answer = match Pipeline::of(&state, &registry).dry_run(&integration, actor, object).await {
        Ok(a) => a,
        Err(e) => return layout::unavailable(&e),
    };
    let result = crate::routes::publish::dry_run_json(&integration, &answer);
    let view = DryRunView::of(&result, &integration.target.name);
    render(&state, &console, &integration, visible, form.payload, Some(view), None).await
}
