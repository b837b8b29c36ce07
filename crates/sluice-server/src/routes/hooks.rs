//! The sender hook: `POST /api/sluice/v1/hooks/{integration}` takes a sender's own body (the
//! integration's `format`: Alertmanager's webhook, generic JSON), splits it into row documents
//! ([`sluice_core::sender`]) and runs them through the pipeline as one synchronous import set
//! ([`Pipeline::import_many`]), committed durably before the answer. Retry semantics for
//! senders (docs/senders.md): 200 only once the rows are committed; 5xx (503 with Retry-After
//! when busy) for trouble a retry can cure; 4xx only when the body itself is wrong, or when
//! every row failed its contract (a retry would fail the same way).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use sluice_core::integration::{Integration, SenderFormat};
use sluice_core::payload::{self, PayloadError};
use sluice_core::rules::Actor;
use sluice_core::sender::{self, SenderError};
use sluice_core::staging::RowState;
use sluice_core::validate::FieldError;
use sluice_store::StoreError;

use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Pipeline;
use crate::pipeline::import::{ManyOutcome, ManyRequest};
use crate::receive::{BaseUrl, PeerAddr};
use crate::routes::import::{idempotency_key, may_post, result_entry};
use crate::routes::insert_multiple::{compact_len, declared_length, read_body};
use crate::{AppState, ServerConfig};

/// The integration named in the path, if this caller may post to it from this address and it
/// takes a sender format.
fn sender_integration(
    state: &AppState,
    caller: &Caller,
    peer: Option<std::net::IpAddr>,
    name: &str,
) -> ApiResult<Arc<Integration>> {
    let registry = state.registry();
    let integration =
        registry.integrations.values().find(|i| i.name() == name).cloned().ok_or(ApiError::NoSuchResource)?;
    crate::observe::note_integration(integration.name());
    may_post(&integration, caller, peer, "ACL Exception Insert Failed due to security constraints")?;
    if !integration.format().at_hook() {
        return Err(ApiError::InvalidParameter(format!(
            "integration {name} has format {}: post to /api/now/import/{}",
            integration.format(),
            integration.definition.staging_table
        )));
    }
    Ok(integration)
}

/// The body's row documents, each within a single row's limits (nesting, fields, size).
fn documents(config: &ServerConfig, format: SenderFormat, raw: &[u8]) -> ApiResult<sender::Documents> {
    let value = payload::read_value(raw, payload::PARSER_MAX_DEPTH).map_err(|e| match e {
        PayloadError::TooDeep(_) => ApiError::JsonTooDeep(config.max_json_depth),
        other => other.into(),
    })?;
    let mut docs = sender::split(format, value).map_err(|e| match e {
        SenderError::NotASender(_) => ApiError::Internal(e.to_string()),
        other => ApiError::InvalidRecords(other.to_string()),
    })?;
    if docs.rows.len() > config.max_records {
        return Err(ApiError::TooManyRecords(config.max_records));
    }
    let rows = std::mem::take(&mut docs.rows);
    docs.rows = rows
        .into_iter()
        .enumerate()
        .map(|(index, row)| {
            let in_record = |error: ApiError| ApiError::InRecord { index, error: Box::new(error) };
            let row = Value::Object(row);
            if compact_len(&row) > config.max_body_bytes {
                return Err(in_record(ApiError::BodyTooLarge(config.max_body_bytes)));
            }
            payload::check_object(row, config.max_json_depth, config.max_json_fields).map_err(|e| in_record(e.into()))
        })
        .collect::<ApiResult<Vec<Map<String, Value>>>>()?;
    Ok(docs)
}

/// A store failure as senders should see it: trouble a retry can cure is a 503, so that
/// Alertmanager (which drops a notification on any 4xx, and retries on 5xx) sends it again.
fn unavailable(e: StoreError) -> ApiError {
    match e {
        StoreError::Database(_) | StoreError::Io(_) | StoreError::Closed => ApiError::StoreUnavailable(e.to_string()),
        other => other.into(),
    }
}

/// Where row `index`'s document sits in the body, as a JSON Pointer prefix.
fn row_pointer(format: SenderFormat, index: usize, array_body: bool) -> String {
    match format {
        SenderFormat::Alertmanager => format!("/alerts/{index}"),
        _ if array_body => format!("/{index}"),
        _ => String::new(),
    }
}

pub async fn receive(
    State(state): State<AppState>,
    caller: Caller,
    PeerAddr(peer): PeerAddr,
    Path(name): Path<String>,
    BaseUrl(base): BaseUrl,
    request: Request,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    // The integration and the caller's rights are checked before the body is read.
    let integration = sender_integration(&state, &caller, peer, &name)?;
    let format = integration.format();
    let (parts, body) = request.into_parts();
    let limit = state.config.max_bulk_body_bytes;
    if declared_length(&parts.headers).is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    // Bodies are read one bulk turn at a time, as insertMultiple's are.
    let _turn = state.bulk_turns.acquire().await.map_err(|_| ApiError::Internal("bulk turns closed".into()))?;
    let raw = read_body(&parts.headers, body, limit).await?;
    let array_body = raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let docs = documents(&state.config, format, &raw)?;
    let idempotency = idempotency_key(&parts.headers, &format!("hooks/{name}"), &raw)?;
    drop(raw);

    let actor = Actor { user_name: caller.0.user_name.clone(), sys_id: caller.0.sys_id.clone() };
    let count = docs.rows.len();
    let registry = state.registry();
    let request = ManyRequest {
        records: docs.rows,
        sync: true,
        multi_import_set: None,
        idempotency,
        actor,
        max_records: state.config.max_records,
    };
    let ManyOutcome { set, rows } =
        Pipeline::of(&state, &registry).import_many(&integration, request).await.map_err(unavailable)?;
    let rows = rows.unwrap_or_default();
    let mut out_headers = HeaderMap::new();
    if set.replayed {
        out_headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    } else {
        tracing::info!(import_set = %set.number, rows = count, format = %format, "sender rows committed");
        for o in &rows {
            crate::metrics::record_outcome(integration.name(), o.state.as_str());
            crate::observe::note_row(o.state, &o.errors);
        }
        if docs.truncated_alerts > 0 {
            let metric = sluice_core::stats::metric::TRUNCATED_ALERTS;
            state.stats.record_amount(&caller.0.user_name, integration.name(), metric, docs.truncated_alerts);
        }
    }
    // Every row failed: the sender's payload does not meet the contract, and sending it again
    // cannot help. The rows stay staged as errors for replay once the definition is fixed.
    if !rows.is_empty() && rows.iter().all(|o| o.state == RowState::Error) {
        let errors: Vec<FieldError> = rows
            .iter()
            .enumerate()
            .flat_map(|(i, o)| {
                let at = row_pointer(format, i, array_body);
                let mut errors = o.errors.clone();
                sluice_core::contract::add_paths(&integration, &mut errors);
                errors.into_iter().map(move |mut e| {
                    e.path = Some(format!("{at}{}", e.path.as_deref().unwrap_or("")));
                    e
                })
            })
            .collect();
        return Err(ApiError::InvalidFields(errors));
    }
    let result: Vec<Value> = rows.iter().map(|o| result_entry(&integration, o, &base)).collect();
    let answer = json!({
        "integration": integration.name(),
        "format": format.as_str(),
        "import_set": set.number,
        "staging_table": integration.definition.staging_table,
        "truncated_alerts": docs.truncated_alerts,
        "result": result,
    });
    Ok((StatusCode::OK, out_headers, Json(answer)))
}
