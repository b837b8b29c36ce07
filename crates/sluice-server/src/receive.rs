//! Receive: the request body as a JSON object, within the size, nesting and field-count limits,
//! with ServiceNow's errors for the wrong content type, malformed JSON or a body that is not an
//! object; and the query-string length limit for every request.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::request::Parts;
use serde_json::{Map, Value};
use sluice_core::payload::{self, PayloadError};

use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use crate::error::ApiError;
use crate::{AppState, ServerConfig};

/// A received JSON object and the bytes it was parsed from (stored as the raw payload).
pub struct JsonObject {
    pub raw: Bytes,
    pub object: Map<String, Value>,
}

pub fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // A missing Content-Type is read as JSON: the Import Set API speaks nothing else.
        if let Some(ct) = request.headers().get(CONTENT_TYPE)
            && !ct.to_str().is_ok_and(is_json)
        {
            return Err(ApiError::UnsupportedMediaType);
        }
        let raw = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge(state.config.max_body_bytes)
            } else {
                ApiError::MalformedJson(rejection.body_text())
            }
        })?;
        let object = parse_object(&state.config, &raw)?;
        Ok(Self { raw, object })
    }
}

impl From<PayloadError> for ApiError {
    fn from(e: PayloadError) -> Self {
        match e {
            PayloadError::TooDeep(limit) => ApiError::JsonTooDeep(limit),
            PayloadError::TooManyFields(limit) => ApiError::TooManyFields(limit),
            PayloadError::NotObject => ApiError::BodyNotObject,
            PayloadError::Malformed(detail) => ApiError::MalformedJson(detail),
        }
    }
}

/// Any JSON body nested at most `--max-json-depth` levels (`json_too_deep` beyond, also past
/// the parser's own limit).
pub fn parse_value(config: &ServerConfig, raw: &[u8]) -> Result<Value, ApiError> {
    Ok(payload::read_value(raw, config.max_json_depth)?)
}

/// Refuses a body object with more than `--max-json-fields` fields (`too_many_fields`).
pub fn check_fields(config: &ServerConfig, object: &Map<String, Value>) -> Result<(), ApiError> {
    if object.len() > config.max_json_fields { Err(ApiError::TooManyFields(config.max_json_fields)) } else { Ok(()) }
}

/// A JSON object body within the nesting and field-count limits ([`payload::read_object`]).
pub fn parse_object(config: &ServerConfig, raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    Ok(payload::read_object(raw, config.max_json_depth, config.max_json_fields)?)
}

/// Middleware: a query string longer than `max` bytes is refused with 414 `query_too_long`
/// before routing, authentication or parsing.
pub async fn limit_query(State(max): State<usize>, request: Request, next: Next) -> Response {
    if request.uri().query().is_some_and(|q| q.len() > max) {
        return ApiError::QueryTooLong(max).into_response();
    }
    next.run(request).await
}

/// Middleware: a body whose declared `Content-Length` is over the limit (`--max-body-bytes`,
/// `--max-bulk-body-bytes` for `insertMultiple` and SOAP, `--max-attachment-bytes` for attachment
/// uploads) is refused with 413 at once, without waiting for bytes that may never come.
pub async fn limit_declared_length(State(config): State<Arc<ServerConfig>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let attachment = crate::routes::attachment::upload::body_limit(&config, path);
    let limit = match attachment {
        Some(limit) => limit,
        // SOAP envelopes may carry insertMultiple (`/{table}.do?SOAP`, crate::soap).
        None if path.ends_with("/insertMultiple") || path.ends_with(".do") => config.max_bulk_body_bytes,
        None => config.max_body_bytes,
    };
    let declared = request.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    if declared.and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|n| n > limit as u64) {
        return match attachment {
            Some(_) => ApiError::AttachmentTooLarge(config.max_attachment_bytes),
            None => ApiError::BodyTooLarge(limit),
        }
        .into_response();
    }
    next.run(request).await
}

/// Middleware: a request line and headers over `max` bytes (each header counted as
/// `name: value` and its line end) are refused with 431 `headers_too_large` before routing or
/// authentication. Far larger headers never get here: hyper refuses them itself (see
/// `crate::serve`).
pub async fn limit_headers(State(max): State<usize>, request: Request, next: Next) -> Response {
    let target = request.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let line = request.method().as_str().len() + target + 12;
    let headers: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if line + headers > max {
        return ApiError::HeadersTooLarge(max).into_response();
    }
    next.run(request).await
}

/// The query string as ordered pairs (each split on its first `=`; `+` and `%XX` decoded).
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NoSuchResource)?;
        Ok(Self(pairs))
    }
}

/// The absolute base URL for links in responses: `--public-url` when set, else the request's
/// `Host` over http, or https when served over TLS.
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(url) = &state.config.public_url {
            return Ok(Self(url.trim_end_matches('/').to_owned()));
        }
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .map(str::to_owned)
            .unwrap_or_else(|| state.config.listen.clone());
        let scheme = if state.config.https { "https" } else { "http" };
        Ok(Self(format!("{scheme}://{host}")))
    }
}

/// The client's address ([`crate::client::ClientAddr`]: the peer, or behind a trusted proxy the
/// address it forwards); absent for requests that did not come from a socket.
pub struct PeerAddr(pub Option<std::net::IpAddr>);

/// The connected peer's socket address, to hand on to inner requests (batch).
pub struct PeerSocket(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerSocket {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let info = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Self(info.map(|c| c.0)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<crate::client::ClientAddr>().map(|c| c.0)))
    }
}
