//! PagerDuty Events API v2: `POST /v2/enqueue` (and `/api/sluice/v1/pagerduty/v2/enqueue`).
//! No auth header: the event's `routing_key` is the credential, a token bound to one
//! integration of format `pagerduty-events-v2` ([`crate::authenticate::CredentialCache::authenticate_routing_key`]).
//! The event is checked at the edge ([`sluice_core::sender::pagerduty`]) and becomes one row of
//! a synchronous import set through [`Pipeline::import_many`], like every sender's. The answers
//! are PagerDuty's own, since senders (Zabbix above all) read them: 202 `success` only after
//! the commit, 400 `invalid event` / `Unrecognized object`, 429 with Retry-After, 5xx when a
//! retry can cure it (docs/senders.md).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sluice_core::account::Account;
use sluice_core::integration::{Integration, SenderFormat};
use sluice_core::payload::{self, PayloadError};
use sluice_core::rules::Actor;
use sluice_core::sender::pagerduty;
use sluice_core::staging::RowState;
use sluice_store::StoreError;

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::{ApiError, ErrorCode, ErrorKind};
use crate::pipeline::Pipeline;
use crate::pipeline::import::{ManyOutcome, ManyRequest};
use crate::receive::PeerAddr;
use crate::routes::import::may_post;
use crate::routes::insert_multiple::{compact_len, declared_length, read_body};
use crate::throttle::Refusal;

/// What a refused event is answered, in PagerDuty's shapes.
#[derive(Debug, thiserror::Error)]
pub enum PagerDutyError {
    /// Not JSON, or not a JSON object.
    #[error("event object format is unrecognized")]
    Unrecognized,
    /// The event breaks PagerDuty's rules or the integration's contract.
    #[error("invalid event: {0:?}")]
    Invalid(Vec<String>),
    /// A missing, malformed, unknown or revoked routing key: answered as an invalid event (as
    /// PagerDuty does), counted as refused credentials.
    #[error("refused routing key: {0}")]
    InvalidKey(String),
    #[error("event larger than {0} bytes")]
    TooLarge(usize),
    /// The key's account may not post to its integration (role, bound accounts, networks).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The account's rate, or the address locked after failed keys.
    #[error("throttled ({})", .0.scope)]
    Throttled(Refusal),
    /// Nothing was committed; a retry can cure it (Retry-After says when).
    #[error("unavailable: {cause}")]
    Unavailable { cause: String, retry_after: u64 },
    #[error("internal: {0}")]
    Internal(String),
}

const INVALID_KEY: &str = "Invalid routing key";

impl PagerDutyError {
    /// The kind of sluice error it stands for (docs/errors.md).
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Unrecognized => ErrorKind::MalformedJson,
            Self::Invalid(_) => ErrorKind::InvalidFieldValues,
            Self::InvalidKey(_) => ErrorKind::Unauthenticated,
            Self::TooLarge(_) => ErrorKind::BodyTooLarge,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::Throttled(_) => ErrorKind::RateLimited,
            Self::Unavailable { retry_after: 1, .. } => ErrorKind::Busy,
            Self::Unavailable { .. } => ErrorKind::StoreUnavailable,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<ApiError> for PagerDutyError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Busy => Self::Unavailable { cause: "write queue full".into(), retry_after: 1 },
            ApiError::StoreUnavailable(cause) => Self::Unavailable { cause, retry_after: 5 },
            ApiError::RateLimited(r) => Self::Throttled(r),
            ApiError::BodyTooLarge(n) => Self::TooLarge(n),
            ApiError::Forbidden { .. } | ApiError::SourceNotAllowed | ApiError::NetworkForbidden => {
                Self::Forbidden(e.detail().map(|d| d.into_owned()).unwrap_or_default())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for PagerDutyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy => Self::Unavailable { cause: e.to_string(), retry_after: 1 },
            StoreError::Database(_) | StoreError::Io(_) | StoreError::Closed => {
                Self::Unavailable { cause: e.to_string(), retry_after: 5 }
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

fn body(status: &str, message: &str, errors: Vec<String>) -> Value {
    json!({"status": status, "message": message, "errors": errors})
}

impl IntoResponse for PagerDutyError {
    fn into_response(self) -> Response {
        let invalid = |errors| body("invalid event", "Event object is invalid", errors);
        let (status, answer, retry_after) = match &self {
            Self::Unrecognized => (
                StatusCode::BAD_REQUEST,
                body("Unrecognized object", "Event object format is unrecognized", vec!["JSON parse error".into()]),
                None,
            ),
            Self::Invalid(errors) => (StatusCode::BAD_REQUEST, invalid(errors.clone()), None),
            Self::InvalidKey(error) => (StatusCode::BAD_REQUEST, invalid(vec![error.clone()]), None),
            Self::TooLarge(limit) => {
                (StatusCode::PAYLOAD_TOO_LARGE, invalid(vec![format!("The event is larger than {limit} bytes")]), None)
            }
            Self::Forbidden(reason) => (StatusCode::FORBIDDEN, invalid(vec![reason.clone()]), None),
            Self::Throttled(r) => (
                StatusCode::TOO_MANY_REQUESTS,
                body(
                    "throttle event",
                    "Requests for this service are arriving too quickly. Please retry later.",
                    vec![format!("rate limit ({})", r.scope)],
                ),
                Some(r.retry_after.as_secs_f64().ceil().max(1.0) as u64),
            ),
            Self::Unavailable { retry_after, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                body("unavailable", "The event was not stored; retry shortly", Vec::new()),
                Some(*retry_after),
            ),
            Self::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, body("error", "Internal error; retry later", Vec::new()), None)
            }
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "PagerDuty event failed");
        }
        let mut response = (status, Json(answer)).into_response();
        // Sluice's stable code, for the statistics (and so the body is not re-enveloped).
        response.extensions_mut().insert(ErrorCode(self.kind().code()));
        if let Some(wait) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        response
    }
}

/// The routing key's account and integration, or `Invalid` (counted against the address, as a
/// wrong password is).
async fn authenticate(
    state: &AppState,
    peer: Option<std::net::IpAddr>,
    event: &Map<String, Value>,
) -> Result<(Arc<Account>, Arc<Integration>), PagerDutyError> {
    state.lockout.check(peer).map_err(PagerDutyError::Throttled)?;
    let refuse = |message: String| {
        state.lockout.failed_address(peer);
        PagerDutyError::InvalidKey(message)
    };
    let key = pagerduty::routing_key(event).map_err(refuse)?;
    let Some((account, name)) = state.credentials.authenticate_routing_key(state, key).await? else {
        return Err(refuse(INVALID_KEY.into()));
    };
    crate::observe::note_account(&account.user_name);
    let registry = state.registry();
    let integration = registry.integrations.values().find(|i| i.name() == name).cloned();
    let Some(integration) = integration.filter(|i| i.format() == SenderFormat::PagerdutyEventsV2) else {
        // The key outlived its integration (a reload removed it or changed its format).
        tracing::warn!(account = %account.user_name, integration = %name, "routing key of no PagerDuty integration");
        return Err(PagerDutyError::InvalidKey(INVALID_KEY.into()));
    };
    crate::observe::note_integration(integration.name());
    let allowed = match peer {
        Some(ip) => account.allows_source(ip),
        None => account.policy.networks.is_empty(),
    };
    if !allowed {
        crate::metrics::record_network_refusal();
        return Err(ApiError::NetworkForbidden.into());
    }
    let caller = Caller(account.clone());
    may_post(&integration, &caller, peer, "This routing key's account may not post events to its integration")?;
    state.throttle.check_account(&account.user_name, account.policy.rate).map_err(PagerDutyError::Throttled)?;
    Ok((account, integration))
}

pub async fn enqueue(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    request: Request,
) -> Result<(StatusCode, Json<Value>), PagerDutyError> {
    let (parts, raw) = request.into_parts();
    let config = &state.config;
    if declared_length(&parts.headers).is_some_and(|n| n > config.max_body_bytes) {
        return Err(PagerDutyError::TooLarge(config.max_body_bytes));
    }
    let raw = read_body(&parts.headers, raw, config.max_body_bytes).await?;
    let event = match payload::read_value(&raw, config.max_json_depth) {
        Ok(Value::Object(event)) => event,
        Ok(_) | Err(PayloadError::Malformed(_)) => return Err(PagerDutyError::Unrecognized),
        Err(e) => return Err(PagerDutyError::Invalid(vec![e.to_string()])),
    };
    drop(raw);
    let (account, integration) = authenticate(&state, peer, &event).await?;
    let event = pagerduty::parse(event).map_err(PagerDutyError::Invalid)?;
    let document = Value::Object(event.document);
    if compact_len(&document) > config.max_body_bytes {
        return Err(PagerDutyError::TooLarge(config.max_body_bytes));
    }
    let document = payload::check_object(document, config.max_json_depth, config.max_json_fields)
        .map_err(|e| PagerDutyError::Invalid(vec![e.to_string()]))?;

    let request = ManyRequest {
        records: vec![document],
        sync: true,
        multi_import_set: None,
        idempotency: None,
        actor: Actor { user_name: account.user_name.clone(), sys_id: account.sys_id.clone() },
        max_records: 1,
        // Not kept: the body carries the routing key, a credential.
        request_body: None,
    };
    let registry = state.registry();
    let ManyOutcome { set, rows } = Pipeline::of(&state, &registry).import_many(&integration, request).await?;
    let Some(row) = rows.unwrap_or_default().into_iter().next() else {
        return Err(PagerDutyError::Internal("a synchronous import answered no row".into()));
    };
    crate::metrics::record_outcome(integration.name(), row.state.as_str());
    crate::observe::note_row(row.state, &row.errors);
    tracing::info!(import_set = %set.number, state = %row.state.as_str(), dedup_key = %event.dedup_key,
        "PagerDuty event committed");
    if row.state == RowState::Error {
        // Staged as an error row (replayable after a definition fix); a retry cannot help.
        let mut errors = row.errors;
        sluice_core::contract::add_paths(&integration, &mut errors);
        let errors = errors
            .into_iter()
            .map(|e| match e.path {
                Some(path) => format!("{} ({path}): {}", e.field, e.message),
                None => format!("{}: {}", e.field, e.message),
            })
            .collect();
        return Err(PagerDutyError::Invalid(errors));
    }
    let answer = json!({"status": "success", "message": "Event processed", "dedup_key": event.dedup_key});
    Ok((StatusCode::ACCEPTED, Json(answer)))
}
