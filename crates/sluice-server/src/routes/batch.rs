//! ServiceNow's Batch API, `POST /api/now/v1/batch`: several REST calls in one request. Each
//! inner request is a relative URL of this API (no nesting), runs as the outer caller through the
//! same router (same authentication, roles, limits and logs), and its answer is returned with a
//! base64 body.

use std::time::Instant;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, header};
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
        return Err(ApiError::MalformedJson(format!("a batch holds at most {MAX_REQUESTS} requests")));
    }
    let authorization = headers.get(header::AUTHORIZATION).cloned();
    let app = crate::app(state.clone());
    let mut serviced = Vec::new();
    let mut unserviced = Vec::new();
    for inner in batch.rest_requests {
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
        let status = response.status();
        let headers: Vec<Value> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| json!({"name": k.as_str(), "value": v})))
            .collect();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.map_err(|e| ApiError::Internal(e.to_string()))?;
        serviced.push(json!({
            "id": id_text(&inner.id),
            "status_code": status.as_u16(),
            "status_text": status.canonical_reason().unwrap_or(""),
            "headers": headers,
            "body": STANDARD.encode(&bytes),
            "execution_time": started.elapsed().as_millis() as u64,
        }));
    }
    Ok(Json(json!({
        "batch_request_id": id_text(&batch.batch_request_id),
        "serviced_requests": serviced,
        "unserviced_requests": unserviced,
    })))
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
