//! Per-request bookkeeping: a request id (echoed as `X-Request-Id` and in error bodies), the
//! client address ([`crate::client`]), the per-address limit, the request time limit, one log
//! line per request with id, client, account, route, status and latency, and the request's
//! statistics ([`crate::stats`]): what handlers note about it while it is served (account,
//! integration, row outcomes) is kept in a [`RequestSlot`] for the duration of the request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_core::staging::RowState;
use sluice_core::stats::{UNKNOWN_ACCOUNT, metric};

use crate::client::ClientAddr;
use crate::error::{ApiError, ErrorCode};

tokio::task_local! {
    static REQUEST_ID: String;
    static SLOT: RequestSlot;
}

/// The id of the request being served, or empty outside one.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

#[derive(Default)]
struct Noted {
    account: Option<String>,
    /// The existing account named by credentials that were refused.
    attempted: Option<String>,
    route: Option<String>,
    integration: Option<String>,
    /// The counters of each imported row ([`crate::stats::row_metrics`]).
    rows: Vec<String>,
}

/// Filled in while the request is served so its log line and statistics name the route, the
/// account, the integration and the rows' outcomes.
#[derive(Clone, Default)]
pub struct RequestSlot(Arc<Mutex<Noted>>);

impl RequestSlot {
    pub fn set_account(&self, user_name: &str) {
        self.0.lock().expect("request slot").account = Some(user_name.to_owned());
    }

    fn set_route(&self, route: &str) {
        self.0.lock().expect("request slot").route = Some(route.to_owned());
    }
}

fn with_slot(f: impl FnOnce(&mut Noted)) {
    let _ = SLOT.try_with(|slot| f(&mut slot.0.lock().expect("request slot")));
}

/// Refused credentials named this existing account: its statistics count the refusal.
pub fn note_attempted(user_name: &str) {
    with_slot(|n| n.attempted = Some(user_name.to_owned()));
}

/// The request was made by this account (authenticated other than by [`crate::authenticate::Caller`]).
pub fn note_account(user_name: &str) {
    with_slot(|n| n.account = Some(user_name.to_owned()));
}

/// The request concerns this integration (by name).
pub fn note_integration(name: &str) {
    with_slot(|n| n.integration = Some(name.to_owned()));
}

/// One imported row's outcome and the codes of its errors.
/// The status a response counts as in the statistics when it is sent with another (SOAP faults
/// go out as 500 or 400, but count as the 403, 401 or row outcome they stand for).
#[derive(Debug, Clone, Copy)]
pub struct CountedAs(pub StatusCode);

pub fn note_row(state: RowState, errors: &[sluice_core::validate::FieldError]) {
    let metrics = crate::stats::row_metrics(state, errors);
    with_slot(|n| n.rows.extend(metrics));
}

/// Runs after routing (as a route layer) to note which route matched.
pub async fn mark_route(request: Request, next: Next) -> Response {
    if let (Some(slot), Some(path)) =
        (request.extensions().get::<RequestSlot>(), request.extensions().get::<MatchedPath>())
    {
        slot.set_route(path.as_str());
    }
    next.run(request).await
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    sluice_core::id::hex(&bytes)
}

/// What the outermost middleware needs: the time limit, the per-address limit, the trusted
/// proxies and the statistics.
#[derive(Clone)]
pub struct Tracking {
    pub timeout: Duration,
    pub throttle: Arc<crate::throttle::Throttle>,
    pub trusted_proxies: Arc<Vec<sluice_core::account::IpNet>>,
    pub stats: Arc<crate::stats::StatsRecorder>,
    /// To find the integration a request's path names.
    pub state: crate::AppState,
}

/// The integration whose staging table a ServiceNow API path names (import or table API), or
/// that the sender hook names, so that requests refused before their handler (401, 429) count
/// for it too.
fn integration_in_path(state: &crate::AppState, path: &str) -> Option<String> {
    if let Some(name) = path.strip_prefix("/api/sluice/v1/hooks/") {
        return state.registry().integrations.values().find(|i| i.name() == name).map(|i| i.name().to_owned());
    }
    let rest = path.strip_prefix("/api/now/")?;
    let rest = rest.strip_prefix("v1/").or_else(|| rest.strip_prefix("v2/")).unwrap_or(rest);
    let rest = rest.strip_prefix("import/").or_else(|| rest.strip_prefix("table/"))?;
    let table = rest.split('/').next()?;
    state.registry().integrations.get(table).map(|i| i.name().to_owned())
}

pub async fn track(State(tracking): State<Tracking>, mut request: Request, next: Next) -> Response {
    let limit = tracking.timeout;
    let started = Instant::now();
    let id = new_request_id();
    let slot = RequestSlot::default();
    slot.0.lock().expect("request slot").integration = integration_in_path(&tracking.state, request.uri().path());
    request.extensions_mut().insert(slot.clone());
    let method = request.method().clone();
    // An inner batch request carries the batch's client address; others are resolved here.
    let client = match request.extensions().get::<ClientAddr>() {
        Some(c) => Some(c.0),
        None => request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| crate::client::resolve(c.0.ip(), request.headers(), &tracking.trusted_proxies)),
    };
    if let Some(ip) = client {
        request.extensions_mut().insert(ClientAddr(ip));
    }
    let health_check = matches!(request.uri().path(), "/healthz" | "/readyz");
    // The statistics are the senders' (what each integration's accounts sent and got); people
    // reading the console are in /metrics and the log, not in them.
    let console = request.uri().path().starts_with("/console");
    let refused = match client {
        Some(ip) if !health_check => tracking.throttle.check_ip(ip).err(),
        _ => None,
    };
    let max_body = tracking.state.config.max_body_bytes;
    let load = tracking.state.load.clone();
    let _in_flight = (!health_check).then(|| load.enter());
    let mut response = REQUEST_ID
        .scope(
            id.clone(),
            SLOT.scope(slot.clone(), async move {
                if let Some(refusal) = refused {
                    return ApiError::RateLimited(refusal).into_response();
                }
                match tokio::time::timeout(limit, next.run(request)).await {
                    Ok(response) => enveloped(response, max_body),
                    Err(_) => ApiError::Timeout.into_response(),
                }
            }),
        )
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let latency = started.elapsed();
    let noted = std::mem::take(&mut *slot.0.lock().expect("request slot"));
    let route = noted.route.clone().unwrap_or_else(|| "(unmatched)".into());
    let status = response.status();
    crate::metrics::record_request(method.as_str(), &route, status.as_u16(), latency);
    if !health_check && !console {
        let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
        let counted = response.extensions().get::<CountedAs>().map_or(status, |c| c.0);
        tracking.stats.record(&event(&noted, counted, code, latency));
    }
    tracing::info!(
        request_id = %id,
        client = %client.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        account = %noted.account.as_deref().unwrap_or("-"),
        method = %method,
        route = %route,
        status = status.as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// An error answered by the framework rather than by sluice (an extractor's rejection, such as
/// a path segment that is not UTF-8) gets sluice's envelope too, with the same status. The
/// console's HTML error pages (`crate::console::layout`) are already answers for people.
fn enveloped(response: Response, max_body: usize) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || response.extensions().get::<ErrorCode>().is_some() {
        return response;
    }
    let html = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => ApiError::NoSuchResource,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge(max_body),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::REQUEST_TIMEOUT => ApiError::Timeout,
        s if s.is_server_error() => ApiError::Internal(format!("unexpected {s} from the framework")),
        _ => ApiError::InvalidParameter(format!("the request was refused ({status})")),
    };
    let mut out = error.into_response();
    *out.status_mut() = status;
    out
}

/// The statistics of one finished request: who, which integration, and its counters.
fn event(noted: &Noted, status: StatusCode, code: Option<&'static str>, latency: Duration) -> crate::stats::Event {
    let account = noted.account.clone().or_else(|| noted.attempted.clone()).unwrap_or_else(|| UNKNOWN_ACCOUNT.into());
    let mut metrics = vec![metric::RECEIVED.to_owned(), sluice_core::stats::latency_metric(latency.as_millis() as u64)];
    match status {
        StatusCode::UNAUTHORIZED => metrics.push(metric::UNAUTHORIZED.into()),
        StatusCode::FORBIDDEN => metrics.push(metric::FORBIDDEN.into()),
        StatusCode::TOO_MANY_REQUESTS => metrics.push(metric::THROTTLED.into()),
        s if s.is_client_error() || s.is_server_error() => {
            metrics.push(metric::ERROR.into());
            metrics.push(format!("{}{}", metric::ERROR_PREFIX, code.unwrap_or("http_error")));
        }
        _ => metrics.extend(noted.rows.iter().cloned()),
    }
    crate::stats::Event { account, integration: noted.integration.clone().unwrap_or_default(), metrics }
}
