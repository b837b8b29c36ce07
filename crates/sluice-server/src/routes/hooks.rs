//! The sender hook: `POST /api/sluice/v1/hooks/{integration}` takes a sender's own body (the
//! integration's `format`: Alertmanager's webhook, generic JSON), splits it into row documents
//! ([`sluice_core::sender`]) and runs them through the pipeline as one synchronous import set
//! ([`Pipeline::import_many`]), committed durably before the answer. Retry semantics for
//! senders (docs/senders.md): 200 only once the rows are committed; 5xx (503 with Retry-After
//! when busy) for trouble a retry can cure; 4xx only when the body itself is wrong, or when
//! every row failed its contract (a retry would fail the same way).

use axum::Json;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use sluice_core::integration::{Integration, SenderFormat, Signature};
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
use crate::routes::import::{admit, idempotency_key, result_entry};
use crate::routes::insert_multiple::{compact_len, declared_length, read_body};
use crate::signature;
use crate::{AppState, ServerConfig};

/// How a request to the hook proves who it is.
enum Credentials {
    /// Basic auth or an API token, already verified.
    Verified(Caller),
    /// The integration's signature, verified once the body is read.
    Signed(Signature),
}

const DENIED: &str = "ACL Exception Insert Failed due to security constraints";

/// An integration that takes a sender format (others are posted to the Import Set API).
fn sender_only(integration: &Integration) -> ApiResult<()> {
    if integration.format().at_hook() {
        return Ok(());
    }
    Err(ApiError::InvalidParameter(format!(
        "integration {} has format {}: post to /api/now/import/{}",
        integration.name(),
        integration.format(),
        integration.definition.staging_table
    )))
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
    PeerAddr(peer): PeerAddr,
    Path(name): Path<String>,
    BaseUrl(base): BaseUrl,
    request: Request,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let (mut parts, body) = request.into_parts();
    let found = state.registry().integrations.values().find(|i| i.name() == name).cloned();
    // Signed when the definition requires it, or allows it and the request carries a signature;
    // otherwise Basic auth or a token, checked first as on every route (so an unknown integration
    // is not told to an unknown caller).
    let signed = found.as_ref().and_then(|i| i.signature.clone());
    let credentials = match signed.filter(|s| s.required || signature::present(s, &parts.headers)) {
        Some(s) => Credentials::Signed(s),
        None => Credentials::Verified(Caller::from_request_parts(&mut parts, &state).await?),
    };
    let integration = found.ok_or(ApiError::NoSuchResource)?;
    // The integration, and the caller's rights when known, are checked before the body is read.
    match &credentials {
        Credentials::Verified(caller) => admit(&integration, caller, peer, DENIED)?,
        Credentials::Signed(s) => {
            crate::observe::note_integration(integration.name());
            signature::refuse_early(&state, s, &parts)?;
        }
    }
    sender_only(&integration)?;
    let format = integration.format();
    let limit = state.config.max_bulk_body_bytes;
    if declared_length(&parts.headers).is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    // Bodies are read one bulk turn at a time, as insertMultiple's are.
    let _turn = state.bulk_turns.acquire().await.map_err(|_| ApiError::Internal("bulk turns closed".into()))?;
    let raw = read_body(&parts.headers, body, limit).await?;
    // A signature is verified over the bytes as sent, before they are parsed.
    let caller = match credentials {
        Credentials::Verified(caller) => caller,
        Credentials::Signed(s) => {
            let now = std::time::SystemTime::now();
            let caller = signature::authenticate(&state, &integration, &s, &parts, &raw, now).await?;
            admit(&integration, &caller, peer, DENIED)?;
            caller
        }
    };
    let array_body = raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let docs = documents(&state.config, format, &raw)?;
    let idempotency = idempotency_key(&parts.headers, &format!("hooks/{name}"), &raw)?;
    // Parsed as JSON, so UTF-8.
    let request_body = String::from_utf8_lossy(&raw).into_owned();
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
        request_body: Some(request_body),
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
