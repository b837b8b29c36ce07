//! `GET /api/sluice/v1/submissions`: the calling account's own recent submissions across every
//! integration — when, which staging row, the outcome, the ticket and every error — so a sender
//! can see why a payload was rejected without asking anyone. Nothing of other accounts is shown.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sluice_core::query;
use sluice_core::validate::FieldError;
use sluice_store::ListQuery;

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::ApiResult;
use crate::params::TableParams;
use crate::receive::QueryPairs;

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 1000;

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Json<Value>> {
    let params = TableParams::parse(&pairs)?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let registry = state.registry();
    let mut rows: Vec<(String, Value)> = Vec::new();
    for integration in registry.integrations.values() {
        let newest_first = query::OrderBy { field: "sys_created_on".into(), descending: true };
        let mut filter = query::EncodedQuery { order_by: vec![newest_first], ..Default::default() };
        filter.and_equals("sys_created_by", &caller.0.user_name);
        if let Some(s) = pairs.iter().find(|(k, v)| k == "state" && !v.is_empty()).map(|(_, v)| v) {
            filter.and_equals("sys_import_state", s);
        }
        let page = state
            .store
            .list(
                integration.staging.clone(),
                ListQuery { filter, limit: limit + params.offset, offset: 0, count_up_to: None },
            )
            .await?;
        let target_ids: Vec<String> =
            page.records.iter().map(|r| r["sys_target_sys_id"].clone()).filter(|id| !id.is_empty()).collect();
        let numbers = if target_ids.is_empty() {
            Default::default()
        } else {
            state.store.display_values(integration.target.clone(), target_ids).await?
        };
        for r in page.records {
            let errors: Vec<FieldError> = serde_json::from_str(&r["sys_row_errors"]).unwrap_or_default();
            let target = r["sys_target_sys_id"].clone();
            rows.push((
                r["sys_created_on"].clone(),
                json!({
                    "received": r["sys_created_on"],
                    "integration": integration.name(),
                    "staging_table": integration.definition.staging_table,
                    "staging_sys_id": r["sys_id"],
                    "state": r["sys_import_state"],
                    "target_sys_id": target,
                    "number": numbers.get(&target).cloned().unwrap_or_default(),
                    "status_message": r["sys_import_state_comment"],
                    "errors": errors,
                    "integration_version": r["sys_integration_version"],
                }),
            ));
        }
    }
    rows.sort_by(|a, b| b.0.cmp(&a.0));
    let result: Vec<Value> =
        rows.into_iter().skip(params.offset as usize).take(limit as usize).map(|(_, v)| v).collect();
    Ok(Json(json!({ "result": result })))
}
