//! The HTTP error type. Every 4xx/5xx leaves sluice in ServiceNow's envelope
//! `{"error": {"message", "detail"}, "status": "failure"}`, extended with a stable `code`, the
//! `request_id` and, where fields are at fault, `errors: [{code, field, message}]`. Internal
//! causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_core::validate::FieldError;
use sluice_store::StoreError;

use crate::observe;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no or invalid credentials")]
    Unauthenticated,
    #[error("{detail}")]
    Forbidden { message: &'static str, detail: String },
    #[error("source address not allowed")]
    SourceNotAllowed,
    /// The account may not call from the client's address (its own source networks).
    #[error("the account may not call from this address")]
    NetworkForbidden,
    #[error("request headers larger than {0} bytes")]
    HeadersTooLarge(usize),
    #[error("invalid table {0}")]
    InvalidTable(String),
    #[error("record not found")]
    RecordNotFound,
    #[error("requested URI does not represent any resource")]
    NoSuchResource,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("the body is not a JSON object")]
    BodyNotObject,
    #[error("malformed XML: {0}")]
    MalformedXml(String),
    /// An XML body with a document type declaration (entity definitions are never expanded).
    #[error("XML document type declarations are not accepted")]
    XmlDtd,
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("unsupported content type")]
    UnsupportedMediaType,
    #[error("request took too long")]
    Timeout,
    #[error("{detail}")]
    DataPolicy { detail: String, errors: Vec<FieldError> },
    #[error("invalid field values")]
    InvalidFields(Vec<FieldError>),
    #[error("invalid integration definitions")]
    InvalidDefinitions(Vec<sluice_core::integration::DefinitionProblem>),
    #[error("the write queue is full")]
    Busy,
    #[error("rate limit exceeded ({})", .0.scope)]
    RateLimited(crate::throttle::Refusal),
    #[error("invalid Idempotency-Key header")]
    InvalidIdempotencyKey,
    #[error("idempotency key reused for a different request")]
    KeyReused,
    #[error("invalid account request: {0}")]
    InvalidAccount(String),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("JSON nested deeper than {0} levels")]
    JsonTooDeep(usize),
    #[error("more than {0} fields in the body")]
    TooManyFields(usize),
    #[error("query string longer than {0} bytes")]
    QueryTooLong(usize),
    /// An `insertMultiple` body that is not `{"records": [objects]}`.
    #[error("invalid records: {0}")]
    InvalidRecords(String),
    /// More records in one `insertMultiple` request than allowed.
    #[error("more than {0} records")]
    TooManyRecords(usize),
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden { message: "Operation Failed", detail: detail.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } | Self::SourceNotAllowed | Self::NetworkForbidden => StatusCode::FORBIDDEN,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::DataPolicy { .. } | Self::InvalidFields(_) | Self::InvalidDefinitions(_) => StatusCode::BAD_REQUEST,
            Self::InvalidTable(_) | Self::RecordNotFound => StatusCode::NOT_FOUND,
            Self::NoSuchResource | Self::MalformedJson(_) | Self::BodyNotObject => StatusCode::BAD_REQUEST,
            Self::MalformedXml(_) | Self::XmlDtd => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            Self::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidAccount(_) | Self::JsonTooDeep(_) | Self::TooManyFields(_) => StatusCode::BAD_REQUEST,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::QueryTooLong(_) => StatusCode::URI_TOO_LONG,
            Self::InvalidRecords(_) | Self::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            Self::TooManyRecords(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, documented code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden { .. } => "forbidden",
            Self::SourceNotAllowed => "source_not_allowed",
            Self::NetworkForbidden => "network_forbidden",
            Self::HeadersTooLarge(_) => "headers_too_large",
            Self::InvalidTable(_) => "invalid_table",
            Self::RecordNotFound => "record_not_found",
            Self::NoSuchResource => "invalid_uri",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MalformedJson(_) => "malformed_json",
            Self::BodyNotObject => "body_not_object",
            Self::MalformedXml(_) => "malformed_xml",
            Self::XmlDtd => "xml_dtd_refused",
            Self::BodyTooLarge(_) => "body_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Timeout => "request_timeout",
            Self::DataPolicy { .. } => "data_policy",
            Self::InvalidFields(_) => "invalid_field_values",
            Self::InvalidDefinitions(_) => "invalid_definition",
            Self::Busy => "busy",
            Self::RateLimited(_) => "rate_limited",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::KeyReused => "idempotency_key_reused",
            Self::InvalidAccount(_) => "invalid_account",
            Self::Conflict { code, .. } => code,
            Self::JsonTooDeep(_) => "json_too_deep",
            Self::TooManyFields(_) => "too_many_fields",
            Self::QueryTooLong(_) => "query_too_long",
            Self::InvalidRecords(_) => "invalid_records",
            Self::TooManyRecords(_) => "too_many_records",
            Self::InvalidParameter(_) => "invalid_parameter",
            Self::Internal(_) => "internal_error",
        }
    }

    /// ServiceNow's `message` and `detail` texts where it has them.
    fn texts(&self) -> (String, Option<String>) {
        let s = |m: &str, d: &str| (m.to_owned(), Some(d.to_owned()));
        match self {
            Self::Unauthenticated => s("User Not Authenticated", "Required to provide Auth information"),
            Self::Forbidden { message, detail } => ((*message).to_owned(), Some(detail.clone())),
            Self::SourceNotAllowed => {
                s("Operation Failed", "Requests from this network are not allowed for this integration")
            }
            Self::NetworkForbidden => {
                s("Operation Failed", "Requests from this address are not allowed for this account")
            }
            Self::HeadersTooLarge(limit) => (
                "Request Header Fields Too Large".into(),
                Some(format!("The request line and headers exceed the limit of {limit} bytes")),
            ),
            Self::InvalidTable(t) => (format!("Invalid table {t}"), None),
            Self::RecordNotFound => s("No Record found", "Record doesn't exist or ACL restricts the record retrieval"),
            Self::NoSuchResource => s(
                "Requested URI does not represent any resource",
                "Check the path: /api/now/import/{staging_table} or /api/now/table/{table}",
            ),
            Self::MethodNotAllowed => s("Method not Supported", "The HTTP method is not supported by this resource"),
            Self::MalformedJson(detail) => {
                ("Exception while reading request".into(), Some(format!("The payload is not valid JSON: {detail}")))
            }
            Self::BodyNotObject => {
                s("Exception while reading request", "The payload must be a JSON object of field names and values")
            }
            Self::MalformedXml(detail) => (
                "Exception while reading request".into(),
                Some(format!("The payload is not well-formed XML: {detail}")),
            ),
            Self::XmlDtd => s(
                "Exception while reading request",
                "XML with a document type declaration (<!DOCTYPE>) is not accepted: send the elements only",
            ),
            Self::BodyTooLarge(limit) => {
                ("Request entity too large".into(), Some(format!("The body exceeds the limit of {limit} bytes")))
            }
            Self::UnsupportedMediaType => s(
                "Unsupported Media Type",
                "Send the body as application/json (or application/xml to the Import Set and Table APIs)",
            ),
            Self::Timeout => s(
                "Transaction cancelled: maximum execution time exceeded",
                "The request took longer than the configured limit",
            ),
            Self::DataPolicy { detail, .. } => ("Operation Failed".into(), Some(detail.clone())),
            Self::InvalidDefinitions(problems) => (
                "Integration definitions refused".into(),
                Some(format!("{} problem(s); the previous definitions stay active", problems.len())),
            ),
            Self::InvalidFields(errors) => {
                ("Invalid field values".into(), Some(sluice_core::validate::summary(errors)))
            }
            Self::Busy => s("Service Unavailable", "Too many writes are waiting; retry shortly"),
            Self::RateLimited(r) => (
                "Rate limit exceeded".into(),
                Some(format!(
                    "Rate limit of {} requests per second (burst {}) per {} exceeded",
                    r.rate.per_second, r.rate.burst, r.scope
                )),
            ),
            Self::InvalidIdempotencyKey => {
                s("Invalid Idempotency-Key", "An Idempotency-Key is 1 to 255 visible ASCII characters")
            }
            Self::KeyReused => s(
                "Idempotency key reused",
                "This Idempotency-Key was already used by this account for a different request",
            ),
            Self::InvalidAccount(detail) => ("Invalid account request".into(), Some(detail.clone())),
            Self::Conflict { detail, .. } => ("Operation Failed".into(), Some(detail.clone())),
            Self::JsonTooDeep(limit) => (
                "Exception while reading request".into(),
                Some(format!("The payload nests objects and arrays deeper than {limit} levels")),
            ),
            Self::TooManyFields(limit) => (
                "Exception while reading request".into(),
                Some(format!("The payload object has more than {limit} fields")),
            ),
            Self::QueryTooLong(limit) => {
                ("Request-URI Too Long".into(), Some(format!("The query string exceeds the limit of {limit} bytes")))
            }
            Self::InvalidRecords(detail) => ("Exception while reading request".into(), Some(detail.clone())),
            Self::TooManyRecords(max) => (
                "Request entity too large".into(),
                Some(format!("At most {max} records per insertMultiple request; send the rest in further requests")),
            ),
            Self::InvalidParameter(detail) => ("Invalid parameter".into(), Some(detail.clone())),
            Self::Internal(_) => ("Internal server error".into(), None),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy => Self::Busy,
            StoreError::KeyReused => Self::KeyReused,
            StoreError::LastAdmin => Self::Conflict {
                code: "last_admin",
                detail: "The last active admin account cannot be disabled, demoted or deleted".into(),
            },
            StoreError::AccountExists(user_name) => {
                Self::Conflict { code: "account_exists", detail: format!("account {user_name} already exists") }
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    /// The response body: ServiceNow's envelope with sluice's additions.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        let (message, detail) = self.texts();
        let mut error = json!({
            "message": message,
            "detail": detail,
            "code": self.code(),
            "request_id": request_id,
        });
        if let Self::DataPolicy { errors, .. } | Self::InvalidFields(errors) = self {
            error["errors"] = json!(errors);
        }
        if let Self::RateLimited(r) = self {
            error["limit"] = json!({
                "scope": r.scope,
                "requests_per_second": r.rate.per_second,
                "burst": r.rate.burst,
                "retry_after_ms": r.retry_after.as_millis() as u64,
            });
        }
        if let Self::InvalidDefinitions(problems) = self {
            error["errors"] = problems
                .iter()
                .map(|p| json!({"code": "invalid_definition", "file": p.file, "key": p.key, "message": p.message}))
                .collect();
        }
        json!({ "error": error, "status": "failure" })
    }

    /// One error of every kind (each `code` once), for the OpenAPI document.
    pub fn every_kind() -> Vec<Self> {
        let rate = crate::throttle::Rate { per_second: 1.0, burst: 1.0 };
        let refusal = crate::throttle::Refusal { scope: "ip", rate, retry_after: std::time::Duration::ZERO };
        let conflict = |code| Self::Conflict { code, detail: String::new() };
        vec![
            Self::Unauthenticated,
            Self::forbidden(""),
            Self::SourceNotAllowed,
            Self::NetworkForbidden,
            Self::HeadersTooLarge(0),
            Self::InvalidTable(String::new()),
            Self::RecordNotFound,
            Self::NoSuchResource,
            Self::MethodNotAllowed,
            Self::MalformedJson(String::new()),
            Self::BodyNotObject,
            Self::MalformedXml(String::new()),
            Self::XmlDtd,
            Self::BodyTooLarge(0),
            Self::UnsupportedMediaType,
            Self::Timeout,
            Self::DataPolicy { detail: String::new(), errors: Vec::new() },
            Self::InvalidFields(Vec::new()),
            Self::InvalidDefinitions(Vec::new()),
            Self::Busy,
            Self::RateLimited(refusal),
            Self::InvalidIdempotencyKey,
            Self::KeyReused,
            Self::InvalidAccount(String::new()),
            conflict("account_exists"),
            conflict("last_admin"),
            Self::JsonTooDeep(0),
            Self::TooManyFields(0),
            Self::QueryTooLong(0),
            Self::InvalidRecords(String::new()),
            Self::TooManyRecords(0),
            Self::InvalidParameter(String::new()),
            Self::Internal(String::new()),
        ]
    }

    /// One error of each kind an Import Set sender can meet, for integration plans.
    pub fn sender_catalogue(max_body_bytes: usize) -> Vec<Self> {
        vec![
            Self::MalformedJson("expected value at line 1 column 1".into()),
            Self::BodyNotObject,
            Self::InvalidIdempotencyKey,
            Self::Unauthenticated,
            Self::forbidden("ACL Exception Insert Failed due to security constraints"),
            Self::SourceNotAllowed,
            Self::NetworkForbidden,
            Self::InvalidTable("u_example".into()),
            Self::MethodNotAllowed,
            Self::Timeout,
            Self::BodyTooLarge(max_body_bytes),
            Self::UnsupportedMediaType,
            Self::KeyReused,
            Self::Internal(String::new()),
            Self::Busy,
        ]
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = self.body(&observe::current_request_id());
        let mut response = (status, axum::Json(body)).into_response();
        // For the request's statistics (errors by code).
        response.extensions_mut().insert(ErrorCode(self.code()));
        let headers = response.headers_mut();
        match self {
            Self::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sluice\""));
            }
            Self::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::RateLimited(r) => {
                let wait = r.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                let reset =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
                        + wait;
                headers.insert(header::RETRY_AFTER, HeaderValue::from(wait));
                headers.insert("x-ratelimit-limit", HeaderValue::from(r.rate.burst as u64));
                headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
                let rule = match r.scope {
                    "ip" => "sluice-per-ip",
                    "account" => "sluice-per-account",
                    _ => "sluice-login-lockout",
                };
                headers.insert("x-ratelimit-rule", HeaderValue::from_static(rule));
            }
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The stable code of an error response, kept in the response's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);
