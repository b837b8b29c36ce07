//! Per-request bookkeeping: a request id (echoed as `X-Request-Id` and in error bodies), the
//! request time limit, and one log line per request with id, account, route, status and latency.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or empty outside one.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Filled in while the request is served so its log line names the route and the account.
#[derive(Clone, Default)]
pub struct RequestSlot(Arc<Mutex<(Option<String>, Option<String>)>>);

impl RequestSlot {
    pub fn set_account(&self, user_name: &str) {
        self.0.lock().expect("request slot").0 = Some(user_name.to_owned());
    }

    fn set_route(&self, route: &str) {
        self.0.lock().expect("request slot").1 = Some(route.to_owned());
    }

    fn get(&self) -> (String, String) {
        let slot = self.0.lock().expect("request slot");
        (slot.0.clone().unwrap_or_else(|| "-".into()), slot.1.clone().unwrap_or_else(|| "(unmatched)".into()))
    }
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

/// What the outermost middleware needs: the request time limit and the per-address limit.
#[derive(Clone)]
pub struct Tracking {
    pub timeout: Duration,
    pub throttle: std::sync::Arc<crate::throttle::Throttle>,
}

pub async fn track(State(tracking): State<Tracking>, mut request: Request, next: Next) -> Response {
    let limit = tracking.timeout;
    let started = Instant::now();
    let id = new_request_id();
    let slot = RequestSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = request.method().clone();
    let peer = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let health_check = matches!(request.uri().path(), "/healthz" | "/readyz");
    let refused = match peer {
        Some(ip) if !health_check => tracking.throttle.check_ip(ip).err(),
        _ => None,
    };
    let mut response = REQUEST_ID
        .scope(id.clone(), async move {
            if let Some(refusal) = refused {
                return ApiError::RateLimited(refusal).into_response();
            }
            match tokio::time::timeout(limit, next.run(request)).await {
                Ok(response) => response,
                Err(_) => ApiError::Timeout.into_response(),
            }
        })
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let (account, route) = slot.get();
    crate::metrics::record_request(method.as_str(), &route, response.status().as_u16(), started.elapsed());
    tracing::info!(
        request_id = %id,
        account = %account,
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
