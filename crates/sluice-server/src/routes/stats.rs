//! Statistics endpoints: `GET /api/sluice/v1/accounts/{name}/stats` (admins, or the account
//! itself) and `GET /api/sluice/v1/integrations/{name}/stats` (admins and the integration's
//! accounts), each over `?window=1h|24h|7d|all` (default 24h). Counters come from the database,
//! after this node's pending ones are flushed ([`crate::stats`]).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use sluice_core::account::Role;
use sluice_core::stats::{Summary, UNKNOWN_ACCOUNT};
use sluice_store::StatsFilter;

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::receive::QueryPairs;
use crate::routes::integrations::find;
use crate::stats::{Window, summarise, summary_json};

fn window(pairs: &[(String, String)]) -> ApiResult<Window> {
    match pairs.iter().rev().find(|(k, _)| k == "window") {
        None => Ok(Window::Day),
        Some((_, v)) => Window::parse(v)
            .ok_or_else(|| ApiError::InvalidParameter(format!("window is 1h, 24h, 7d or all, not {v:?}"))),
    }
}

/// The totals and a breakdown (`by` is `integrations` or `accounts`).
fn answer(name_key: &str, name: &str, window: Window, totals: &[sluice_store::StatsTotal], by: &str) -> Value {
    let all: Summary = summarise(totals, |_| "").remove("").unwrap_or_default();
    let breakdown = if by == "integrations" {
        summarise(totals.iter().filter(|t| !t.integration.is_empty()), |t| &t.integration)
    } else {
        summarise(totals, |t| &t.account)
    };
    let mut result = summary_json(&all);
    result[name_key] = json!(name);
    result["window"] = json!(window.as_str());
    result[by] = breakdown.iter().map(|(k, s)| (k.clone(), summary_json(s))).collect::<serde_json::Map<_, _>>().into();
    json!({ "result": result })
}

pub async fn account(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Json<Value>> {
    let is_admin = caller.0.roles.contains(&Role::Admin);
    if !is_admin && caller.0.user_name != name {
        return Err(ApiError::forbidden("Statistics of another account need the admin role"));
    }
    let window = window(&pairs)?;
    let totals = account_totals(&state, &name, window).await?;
    Ok(Json(answer("account", &name, window, &totals, "integrations")))
}

/// An account's counters over `window`, this node's pending ones flushed first (also the
/// console's account page).
pub(crate) async fn account_totals(
    state: &AppState,
    name: &str,
    window: Window,
) -> ApiResult<Vec<sluice_store::StatsTotal>> {
    if name != UNKNOWN_ACCOUNT && state.store.account(name.to_owned()).await?.is_none() {
        return Err(ApiError::RecordNotFound);
    }
    let filter =
        StatsFilter { since_minute: window.since_minute_now(), account: Some(name.to_owned()), integration: None };
    Ok(state.stats.read(state.store.as_ref(), filter).await?)
}

pub async fn integration(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Json<Value>> {
    let integration = find(&state, &caller, &name)?;
    let window = window(&pairs)?;
    let filter = StatsFilter {
        since_minute: window.since_minute_now(),
        account: None,
        integration: Some(integration.name().to_owned()),
    };
    let mut totals = state.stats.read(state.store.as_ref(), filter).await?;
    // Other accounts' numbers are for admins only.
    let forward = crate::stats::forward_summary(&totals);
    if !caller.0.roles.contains(&Role::Admin) {
        totals.retain(|t| t.account == caller.0.user_name);
    }
    let mut answer = answer("integration", integration.name(), window, &totals, "accounts");
    if integration.forward.is_some() {
        let outbox = state.store.outbox_counts(Some(integration.name().to_owned())).await?;
        answer["result"]["forwarding"] = crate::stats::forward_json(&forward, &outbox);
    }
    Ok(Json(answer))
}
