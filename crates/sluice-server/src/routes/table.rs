//! Read access through ServiceNow's Table API shape: `{"result": ...}`, string values,
//! `{link, value}` references, `X-Total-Count`. Filters from `sysparm_query` (an encoded query,
//! see `sluice_core::query`) ANDed with plain `field=value` parameters; unknown fields are ignored
//! as ServiceNow does. The full Table API (writes, display values) builds on this.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use sluice_core::account::{Access, may};
use sluice_core::query;
use sluice_core::schema::TableSchema;
use sluice_store::ListQuery;

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::receive::{BaseUrl, QueryPairs};
use crate::wire::{self, Encoding};

const DEFAULT_LIMIT: u64 = 10_000;

fn readable(state: &AppState, caller: &Caller, table: &str) -> ApiResult<Arc<TableSchema>> {
    let schema = state.catalog.get(table).cloned().ok_or_else(|| ApiError::InvalidTable(table.to_owned()))?;
    if !may(&caller.0.roles, table, Access::Read) {
        return Err(ApiError::Forbidden {
            message: "Insufficient rights to query records",
            detail: "ACL Exception Read Failed due to security constraints".into(),
        });
    }
    Ok(schema)
}

/// ServiceNow booleans arrive in any case (`True`, `false`); empty means absent.
fn flag(pairs: &[(String, String)], name: &str) -> bool {
    param(pairs, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
}

fn fields_param(pairs: &[(String, String)]) -> Option<Vec<String>> {
    param(pairs, "sysparm_fields")
        .map(|f| f.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(table): Path<String>,
    BaseUrl(base): BaseUrl,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let schema = readable(&state, &caller, &table)?;
    let mut filter = query::parse(param(&pairs, "sysparm_query").unwrap_or_default());
    for (k, v) in &pairs {
        if !k.starts_with("sysparm_") && schema.visible_field(k).is_some() {
            filter.and_equals(k, v);
        }
    }
    let number = |name: &str, default: u64| param(&pairs, name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(default);
    let query =
        ListQuery { filter, limit: number("sysparm_limit", DEFAULT_LIMIT), offset: number("sysparm_offset", 0) };
    let page = state.store.list(schema.clone(), query).await?;
    let fields = fields_param(&pairs);
    let enc = Encoding {
        base_url: &base,
        fields: fields.as_deref(),
        exclude_reference_link: flag(&pairs, "sysparm_exclude_reference_link"),
    };
    let result: Vec<Value> = page.records.iter().map(|r| wire::encode(&schema, r, &enc)).collect();
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(page.total));
    Ok((headers, Json(json!({ "result": result }))))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((table, sys_id)): Path<(String, String)>,
    BaseUrl(base): BaseUrl,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Json<Value>> {
    let schema = readable(&state, &caller, &table)?;
    let record = state.store.get(schema.clone(), sys_id).await?.ok_or(ApiError::RecordNotFound)?;
    let fields = fields_param(&pairs);
    let enc = Encoding {
        base_url: &base,
        fields: fields.as_deref(),
        exclude_reference_link: flag(&pairs, "sysparm_exclude_reference_link"),
    };
    Ok(Json(json!({ "result": wire::encode(&schema, &record, &enc) })))
}
