//! Bulk intake: `POST /api/now/import/{staging_table}/insertMultiple` (records staged durably as
//! `pending`, processed by the background worker, or right away with `sysparm_sluice_sync=true`;
//! [`Pipeline::import_many`]) and `GET /api/sluice/v1/import_sets/{id}` (progress and per-row
//! outcomes).

use axum::Json;
use axum::body::{Body, HttpBody};
use axum::extract::{Path, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use sluice_core::SysId;
use sluice_core::query::{EncodedQuery, OrderBy};
use sluice_core::rules::Actor;
use sluice_core::tables;
use sluice_store::ListQuery;
use sluice_store::staging_row::outcome_of;

use sluice_core::payload::{self, PayloadError};

use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Pipeline;
use crate::pipeline::import::{ManyOutcome, ManyRequest};
use crate::receive::{BaseUrl, PeerAddr, QueryPairs, is_json};
use crate::routes::import::{idempotency_key, integration_for, result_entry};
use crate::{AppState, ServerConfig};

/// Where the progress of an import set is reported.
pub fn progress_path(import_set: &str) -> String {
    format!("/api/sluice/v1/import_sets/{import_set}")
}

fn truthy(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

/// The body's `Content-Length`, when it declares one.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
}

/// Reads the body up to `limit` bytes (this route has its own limit, larger than single rows').
pub(crate) async fn read_body(headers: &HeaderMap, mut body: Body, limit: usize) -> ApiResult<Vec<u8>> {
    if let Some(ct) = headers.get(CONTENT_TYPE)
        && !ct.to_str().is_ok_and(is_json)
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = declared_length(headers);
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ApiError::MalformedJson(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ApiError::BodyTooLarge(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// `{"records": [ {...}, ... ]}`: at least one record, at most `--max-records`, each a JSON
/// object within a single row's limits (nesting, fields, `--max-body-bytes` as compact JSON),
/// refused with that limit's error naming the record: a record that could not be posted alone
/// cannot be posted in a batch either.
fn parse_records(config: &ServerConfig, raw: &[u8]) -> ApiResult<Vec<Map<String, Value>>> {
    // Read as deep as the parser goes: each record's own depth is checked below, so that the
    // error names it. Deeper than that, no record can be within the limit.
    let value = payload::read_value(raw, payload::PARSER_MAX_DEPTH).map_err(|e| match e {
        PayloadError::TooDeep(_) => ApiError::JsonTooDeep(config.max_json_depth),
        other => other.into(),
    })?;
    let shape = || ApiError::InvalidRecords("The payload must be {\"records\": [ {...}, ... ]}".into());
    let Value::Object(mut body) = value else { return Err(shape()) };
    let Some(Value::Array(records)) = body.remove("records") else { return Err(shape()) };
    if records.is_empty() {
        return Err(ApiError::InvalidRecords("records is empty".into()));
    }
    if records.len() > config.max_records {
        return Err(ApiError::TooManyRecords(config.max_records));
    }
    records
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            let in_record = |error: ApiError| ApiError::InRecord { index, error: Box::new(error) };
            if !r.is_object() {
                return Err(ApiError::InvalidRecords(format!(
                    "records[{index}] is not a JSON object of field names and values"
                )));
            }
            if compact_len(&r) > config.max_body_bytes {
                return Err(in_record(ApiError::BodyTooLarge(config.max_body_bytes)));
            }
            payload::check_object(r, config.max_json_depth, config.max_json_fields).map_err(|e| in_record(e.into()))
        })
        .collect()
}

/// The length of a value written as compact JSON, without writing it anywhere.
pub(crate) fn compact_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a parsed value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

pub async fn insert_multiple(
    State(state): State<AppState>,
    caller: Caller,
    PeerAddr(peer): PeerAddr,
    Path(table): Path<String>,
    BaseUrl(base): BaseUrl,
    QueryPairs(query): QueryPairs,
    request: Request,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    // The table and the caller's rights are checked before the body is read.
    let integration =
        integration_for(&state, &caller, peer, &table, "ACL Exception Insert Failed due to security constraints")?;
    let mut sync = false;
    let mut multi_import_set = None;
    for (key, value) in &query {
        match key.as_str() {
            "sysparm_sluice_sync" => sync = truthy(value),
            "multi_import_set_id" if !value.is_empty() => {
                let id = value.to_ascii_lowercase();
                if !SysId::is_valid(&id) {
                    return Err(ApiError::InvalidParameter(format!("multi_import_set_id {value:?} is not a sys_id")));
                }
                multi_import_set = Some(id);
            }
            _ => {}
        }
    }
    // A few bulk requests at a time, each read only when its turn comes: the writer is the bound
    // either way, and 64 parsed bodies of 100 records in flight took the process past 130 MB.
    // And only as many bytes of them as the budget allows: sixteen 40 MB bodies at once took the
    // process to 1.2 GB with turns alone. Over-long declared bodies are refused before waiting.
    let (parts, body) = request.into_parts();
    let declared = declared_length(&parts.headers);
    if declared.is_some_and(|n| n > state.config.max_bulk_body_bytes) {
        return Err(ApiError::BodyTooLarge(state.config.max_bulk_body_bytes));
    }
    let budget = state.bulk_bytes.clone();
    let kib = declared.unwrap_or(state.config.max_bulk_body_bytes).div_ceil(1024).max(1);
    let kib = u32::try_from(kib.min(crate::bulk_budget_kib(state.config.max_bulk_inflight_bytes))).unwrap_or(u32::MAX);
    let _bytes = budget.acquire_many(kib).await.map_err(|_| ApiError::Internal("bulk budget closed".into()))?;
    let _turn = state.bulk_turns.acquire().await.map_err(|_| ApiError::Internal("bulk turns closed".into()))?;
    let raw = read_body(&parts.headers, body, state.config.max_bulk_body_bytes).await?;
    let records = parse_records(&state.config, &raw)?;
    // A retry is the same table, mode, multi import set and body ('/' cannot be in a table name,
    // so no single-row import shares the fingerprint).
    let asked = format!("{table}/insertMultiple?sync={sync}&multi={}", multi_import_set.as_deref().unwrap_or(""));
    let idempotency = idempotency_key(&parts.headers, &asked, &raw)?;
    drop(raw);

    let actor = Actor { user_name: caller.0.user_name.clone(), sys_id: caller.0.sys_id.clone() };
    let count = records.len();
    let registry = state.registry();
    let request = ManyRequest {
        records,
        sync,
        multi_import_set,
        idempotency,
        actor,
        max_records: state.config.max_records,
        request_body: None,
    };
    let ManyOutcome { set, rows } = Pipeline::of(&state, &registry).import_many(&integration, request).await?;
    let mut out_headers = HeaderMap::new();
    if set.replayed {
        out_headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    } else {
        tracing::info!(import_set = %set.number, rows = count, sync, "records staged");
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{base}{}", progress_path(&set.import_set))) {
        out_headers.insert(LOCATION, v);
    }
    let mut answer = json!({ "import_set_id": set.import_set, "multi_import_set_id": set.multi_import_set });
    let Some(rows) = rows else {
        state.wake_worker();
        return Ok((StatusCode::CREATED, out_headers, Json(answer)));
    };
    answer["import_set"] = json!(set.number);
    answer["staging_table"] = json!(table);
    let result: Vec<Value> = rows
        .iter()
        .map(|o| {
            if !set.replayed {
                crate::observe::note_row(o.state, &o.errors);
            }
            result_entry(&integration, o, &base)
        })
        .collect();
    answer["result"] = Value::Array(result);
    Ok((StatusCode::CREATED, out_headers, Json(answer)))
}

fn page_param(query: &[(String, String)], name: &str, default: u64, max: u64) -> ApiResult<u64> {
    match query.iter().rev().find(|(k, v)| k == name && !v.is_empty()) {
        None => Ok(default),
        Some((_, v)) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| ApiError::InvalidParameter(format!("{name} must be a whole number from 0 to {max}"))),
    }
}

/// `GET /api/sluice/v1/import_sets/{id}`: the import set (by sys_id or number), how many of its
/// rows are in each state, and a page of its rows with their outcomes.
pub async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    PeerAddr(peer): PeerAddr,
    Path(id): Path<String>,
    BaseUrl(base): BaseUrl,
    QueryPairs(query): QueryPairs,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let registry = state.registry();
    let set_schema = registry.catalog.get(tables::SYS_IMPORT_SET).expect("built-in table").clone();
    let set = match state.store.get(set_schema.clone(), id.to_ascii_lowercase()).await? {
        Some(set) => set,
        None => {
            let mut filter = EncodedQuery::default();
            filter.and_equals("number", &id);
            let page =
                state.store.list(set_schema, ListQuery { filter, limit: 1, offset: 0, count_up_to: None }).await?;
            page.records.into_iter().next().ok_or(ApiError::RecordNotFound)?
        }
    };
    let field = |name: &str| set.get(name).cloned().unwrap_or_default();
    let table = field("table_name");
    let integration =
        integration_for(&state, &caller, peer, &table, "ACL Exception Read Failed due to security constraints")
            .map_err(|e| if matches!(e, ApiError::InvalidTable(_)) { ApiError::RecordNotFound } else { e })?;
    let limit = page_param(&query, "limit", 100, 10_000)?;
    let offset = page_param(&query, "offset", 0, u64::MAX)?;
    let set_id = field("sys_id");
    let counts = state.store.state_counts(integration.staging.clone(), set_id.clone()).await?;
    // The set was read before its counts: the last row's commit (which also marks the set
    // processed) may have come in between. Read the state again so the two agree.
    let set_state = match field("state") {
        s if counts.pending == 0 && s != "processed" => {
            let set_schema = registry.catalog.get(tables::SYS_IMPORT_SET).expect("built-in table").clone();
            let again = state.store.get(set_schema, set_id.clone()).await?;
            again.and_then(|r| r.get("state").cloned()).unwrap_or(s)
        }
        s => s,
    };
    let mut filter = EncodedQuery::default();
    filter.and_equals("sys_import_set", &set_id);
    filter.order_by.push(OrderBy { field: "sys_import_row".into(), descending: false });
    let page =
        state.store.list(integration.staging.clone(), ListQuery { filter, limit, offset, count_up_to: None }).await?;
    let targets: Vec<String> =
        page.records.iter().filter_map(|r| r.get("sys_target_sys_id").filter(|t| !t.is_empty()).cloned()).collect();
    let numbers = state.store.display_values(integration.target.clone(), targets).await?;
    let mut rows = Vec::with_capacity(page.records.len());
    for record in &page.records {
        let display = record.get("sys_target_sys_id").and_then(|t| numbers.get(t)).cloned();
        let outcome = outcome_of(record, &field("number"), display)?;
        let mut row = json!({
            "staging_sys_id": outcome.staging_sys_id.as_str(),
            "row": record.get("sys_import_row").and_then(|r| r.parse::<u64>().ok()),
            "state": outcome.state.as_str(),
            "integration_version": record.get("sys_integration_version"),
        });
        if let Some(target) = &outcome.target_sys_id {
            row["target_table"] = json!(integration.target.name);
            row["target_sys_id"] = json!(target);
            row["display_value"] = json!(outcome.display_value);
            row["record_link"] = json!(crate::wire::record_link(&base, &integration.target.name, target));
        }
        if let Some(m) = &outcome.status_message {
            row["status_message"] = json!(m);
        }
        if !outcome.errors.is_empty() {
            row["error_message"] = json!(sluice_core::validate::summary(&outcome.errors));
            row["errors"] = json!(outcome.errors);
        }
        rows.push(row);
    }
    let total = counts.total();
    let mut result = json!({
        "import_set_id": set_id,
        "number": field("number"),
        "multi_import_set_id": field("multi_import_set"),
        "staging_table": table,
        "integration": integration.name(),
        "mode": field("mode"),
        "state": set_state,
        "created_on": field("sys_created_on"),
        "complete": counts.pending == 0,
        "total": total,
        "pending": counts.pending,
        "inserted": counts.inserted,
        "updated": counts.updated,
        "ignored": counts.ignored,
        "skipped": counts.skipped,
        "error": counts.error,
        "limit": limit,
        "offset": offset,
        "rows": rows,
    });
    let body = field("request_body");
    if !body.is_empty() {
        result["request_body"] = json!(body);
    }
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    Ok((headers, Json(json!({ "result": result }))))
}
