//! Receive: the request body as a JSON object, within the size, nesting and field-count limits,
//! with ServiceNow's errors for the wrong content type, malformed JSON or a body that is not an
//! object; and the query-string length limit for every request.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::request::Parts;
use serde_json::{Map, Value};

use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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

/// Whether `raw` nests objects and arrays deeper than `max` levels (`{"a": 1}` is one level).
/// Counted before parsing, so a hostile body costs one pass over its bytes; brackets inside
/// strings do not count.
pub fn nests_deeper_than(raw: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in raw {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Refuses a body nested deeper than `--max-json-depth` (`json_too_deep`).
pub fn check_depth(config: &ServerConfig, raw: &[u8]) -> Result<(), ApiError> {
    if nests_deeper_than(raw, config.max_json_depth) {
        Err(ApiError::JsonTooDeep(config.max_json_depth))
    } else {
        Ok(())
    }
}

/// Refuses a body object with more than `--max-json-fields` fields (`too_many_fields`).
pub fn check_fields(config: &ServerConfig, object: &Map<String, Value>) -> Result<(), ApiError> {
    if object.len() > config.max_json_fields { Err(ApiError::TooManyFields(config.max_json_fields)) } else { Ok(()) }
}

/// A JSON object body within the nesting and field-count limits.
pub fn parse_object(config: &ServerConfig, raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    check_depth(config, raw)?;
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(object)) => {
            check_fields(config, &object)?;
            Ok(object)
        }
        Ok(_) => Err(ApiError::BodyNotObject),
        Err(e) => Err(ApiError::MalformedJson(e.to_string())),
    }
}

/// Middleware: a query string longer than `max` bytes is refused with 414 `query_too_long`
/// before routing, authentication or parsing.
pub async fn limit_query(State(max): State<usize>, request: Request, next: Next) -> Response {
    if request.uri().query().is_some_and(|q| q.len() > max) {
        return ApiError::QueryTooLong(max).into_response();
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

/// The connected peer's address (absent for requests that did not come from a socket).
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
        let info = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Self(info.map(|c| c.0.ip())))
    }
}

#[cfg(test)]
mod tests {
    use super::nests_deeper_than;

    #[test]
    fn nesting_is_counted_outside_strings() {
        assert!(!nests_deeper_than(br#"{"a": 1}"#, 1));
        assert!(nests_deeper_than(br#"{"a": {"b": 1}}"#, 1));
        assert!(!nests_deeper_than(br#"{"a": "[[[[{{{{", "b": "\"[[["}"#, 1));
        // object, array, object, array: four levels.
        assert!(nests_deeper_than(br#"{"a": [[1], {"b": [2]}]}"#, 3));
        assert!(!nests_deeper_than(br#"{"a": [[1], {"b": [2]}]}"#, 4));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(nests_deeper_than(deep.as_bytes(), 32));
        let wide = format!("[{}]", "[],".repeat(10_000) + "[]");
        assert!(!nests_deeper_than(wide.as_bytes(), 2));
    }
}
