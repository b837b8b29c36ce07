//! `GET /api/now/attachment`: attachment metadata. Sluice stores no attachments yet, so the list
//! is empty, but it carries `X-Total-Count` as clients require.

use axum::Json;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::authenticate::Caller;

pub async fn list(_caller: Caller) -> (HeaderMap, Json<Value>) {
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", 0.into());
    (headers, Json(json!({ "result": [] })))
}
