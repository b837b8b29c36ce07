//! ServiceNow's Batch API, `POST /api/now/v1/batch`: several REST calls in one request. Each
//! inner request is a relative URL of this API (no nesting), runs as the outer caller through the
//! same router (same authentication, roles, limits and logs), and its answer is returned with a
//! base64 body.
//!
//! What the batch holds in memory is bounded: the body (with every inner body) by
//! `--max-body-bytes`, the number of inner requests by [`MAX_REQUESTS`], and the inner answers
//! together by `--max-batch-answer-bytes`. The answer that does not fit is replaced by a
//! `batch_answer_too_large` error item (its request did run) and, as ServiceNow does when a batch
//! reaches a limit, the requests after it are not run and are listed in `unserviced_requests`.

use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes, HttpBody, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::receive::{JsonObject, PeerAddr, PeerSocket};

/// Most inner requests in one batch.
pub const MAX_REQUESTS: usize = 1000;

#[derive(Deserialize)]
struct InnerHeader {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct InnerRequest {
    id: Value,
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<InnerHeader>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    exclude_response_headers: bool,
}

#[derive(Deserialize)]
struct BatchRequest {
    #[serde(default)]
    batch_request_id: Value,
    rest_requests: Vec<InnerRequest>,
}

fn id_text(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        Value::Null => json!(""),
        other => json!(other.to_string()),
    }
}

/// Only this API's own relative URLs, and never the batch endpoint itself.
fn allowed(url: &str) -> bool {
    let path = url.split('?').next().unwrap_or("");
    path.starts_with("/api/now/") && !path.contains("..") && !path.trim_end_matches('/').ends_with("/batch")
}

pub async fn run(
    State(state): State<AppState>,
    _caller: Caller,
    PeerSocket(peer): PeerSocket,
    PeerAddr(client): PeerAddr,
    headers: HeaderMap,
    body: JsonObject,
) -> ApiResult<Json<Value>> {
    let batch: BatchRequest = serde_json::from_value(Value::Object(body.object))
        .map_err(|e| ApiError::MalformedJson(format!("not a batch request: {e}")))?;
    if batch.rest_requests.len() > MAX_REQUESTS {
        return Err(ApiError::TooManyRequests(MAX_REQUESTS));
    }
    let authorization = headers.get(header::AUTHORIZATION).cloned();
    let app = crate::app(state.clone());
    let mut serviced = Vec::new();
    let mut unserviced = Vec::new();
    let mut budget = AnswerBudget { total: state.config.max_batch_answer_bytes, used: 0 };
    let mut requests = batch.rest_requests.into_iter();
    while let Some(inner) = requests.next() {
        let started = Instant::now();
        let method = Method::from_bytes(inner.method.to_ascii_uppercase().as_bytes());
        let body = match inner.body.as_deref().map(|b| STANDARD.decode(b.trim())) {
            None => Ok(Vec::new()),
            Some(decoded) => decoded,
        };
        let (Ok(method), Ok(body), true) = (method, body, allowed(&inner.url)) else {
            unserviced.push(id_text(&inner.id));
            continue;
        };
        let mut request = Request::builder().method(method).uri(&inner.url);
        for h in &inner.headers {
            let name = h.name.to_ascii_lowercase();
            if !matches!(name.as_str(), "authorization" | "host" | "content-length" | "transfer-encoding") {
                request = request.header(h.name.as_str(), h.value.as_str());
            }
        }
        if let Some(auth) = &authorization {
            request = request.header(header::AUTHORIZATION, auth.clone());
        }
        let Ok(mut request) = request.body(Body::from(body)) else {
            unserviced.push(id_text(&inner.id));
            continue;
        };
        // Inner requests come from the same peer as the batch (network rules apply to them too).
        if let Some(addr) = peer {
            request.extensions_mut().insert(axum::extract::ConnectInfo(addr));
        }
        // ... and from the batch's client address: an inner X-Forwarded-For is not read again.
        if let Some(ip) = client {
            request.extensions_mut().insert(crate::client::ClientAddr(ip));
        }
        let response = app.clone().oneshot(request).await.map_err(|e| ApiError::Internal(e.to_string()))?;
        let id = id_text(&inner.id);
        match budget.take(response, inner.exclude_response_headers).await {
            Ok(answer) => serviced.push(answer.item(id, started)),
            Err(status) => {
                serviced.push(over_budget(id, status, budget.total, started));
                unserviced.extend(requests.by_ref().map(|r| id_text(&r.id)));
            }
        }
    }
    Ok(Json(json!({
        "batch_request_id": id_text(&batch.batch_request_id),
        "serviced_requests": serviced,
        "unserviced_requests": unserviced,
    })))
}

/// What is left of the batch's answer budget (`--max-batch-answer-bytes`): inner bodies and
/// headers, before base64.
struct AnswerBudget {
    total: usize,
    used: usize,
}

/// One inner answer, within the budget.
struct InnerAnswer {
    status: StatusCode,
    headers: Vec<Value>,
    body: Bytes,
}

impl AnswerBudget {
    /// The inner answer, read only as far as the budget allows; its status when it does not fit.
    async fn take(&mut self, response: Response, exclude_headers: bool) -> Result<InnerAnswer, StatusCode> {
        let status = response.status();
        let headers: Vec<Value> = if exclude_headers {
            Vec::new()
        } else {
            response
                .headers()
                .iter()
                .filter_map(|(k, v)| v.to_str().ok().map(|v| json!({"name": k.as_str(), "value": v})))
                .collect()
        };
        let header_bytes: usize = headers
            .iter()
            .map(|h| h["name"].as_str().map_or(0, str::len) + h["value"].as_str().map_or(0, str::len))
            .sum();
        let left = self.total.saturating_sub(self.used).checked_sub(header_bytes).ok_or(status)?;
        if response.body().size_hint().lower() > left as u64 {
            return Err(status);
        }
        let body = to_bytes(response.into_body(), left).await.map_err(|_| status)?;
        self.used += header_bytes + body.len();
        Ok(InnerAnswer { status, headers, body })
    }
}

impl InnerAnswer {
    fn item(self, id: Value, started: Instant) -> Value {
        json!({
            "id": id,
            "status_code": self.status.as_u16(),
            "status_text": self.status.canonical_reason().unwrap_or(""),
            "headers": self.headers,
            "body": STANDARD.encode(&self.body),
            "execution_time": started.elapsed().as_millis() as u64,
        })
    }
}

/// The item in place of an answer that did not fit: the `batch_answer_too_large` error as its
/// body, and the status the request really answered in `error_message` (a write did happen).
fn over_budget(id: Value, answered: StatusCode, budget: usize, started: Instant) -> Value {
    let error = ApiError::BatchAnswerTooLarge { budget, answered: answered.as_u16() };
    let status = error.status();
    let envelope = error.body(&crate::observe::current_request_id());
    json!({
        "id": id,
        "status_code": status.as_u16(),
        "status_text": status.canonical_reason().unwrap_or(""),
        "headers": [],
        "body": STANDARD.encode(envelope.to_string()),
        "error_message": error.detail().unwrap_or_default(),
        "execution_time": started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_relative_urls_of_this_api_and_no_nesting() {
        assert!(super::allowed("/api/now/table/incident?sysparm_query=a%3Db"));
        assert!(super::allowed("/api/now/v2/table/incident/abc"));
        assert!(!super::allowed("https://evil.example/api/now/table/incident"));
        assert!(!super::allowed("/api/now/v1/batch"));
        assert!(!super::allowed("/api/now/batch/"));
        assert!(!super::allowed("/healthz"));
        assert!(!super::allowed("/api/now/../healthz"));
    }
}
