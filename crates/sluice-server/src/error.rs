//! The HTTP error type. Every 4xx/5xx leaves sluice in ServiceNow's envelope
//! `{"error": {"message", "detail"}, "status": "failure"}` ([`ErrorEnvelope`]), extended with a
//! stable `code`, the `request_id`, a `link` to the code's documentation and, where fields are at
//! fault, `errors: [{code, field, message}]`. Internal causes are logged, never sent.
//!
//! Each [`ApiError`] maps to one [`ErrorKind`] ([`ApiError::kind`]); the kinds' codes, statuses,
//! ServiceNow messages and links are one table in `error/kind.rs`.

mod envelope;
mod kind;

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sluice_core::validate::FieldError;
use sluice_store::StoreError;

pub use envelope::{DefinitionError, ErrorBody, ErrorEnvelope, LimitBody, Problems};
pub use kind::ErrorKind;

use crate::observe;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no or invalid credentials")]
    Unauthenticated,
    /// A signed integration's request without its signature header, or without the timestamp
    /// header its definition names (the header).
    #[error("header {0} missing")]
    SignatureMissing(String),
    /// The signature in the header does not match the body as sent (forged, or the wrong secret).
    #[error("signature in {0} does not match")]
    SignatureInvalid(String),
    /// The timestamp header is not Unix seconds within the tolerance of the server's clock.
    #[error("timestamp in {header} outside {tolerance_seconds} s")]
    SignatureStale { header: String, tolerance_seconds: u64 },
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
    /// The store failed or cannot be reached, at a route whose callers retry on 503 (the sender
    /// hook); the cause is logged, never sent.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("rate limit exceeded ({})", .0.scope)]
    RateLimited(crate::throttle::Refusal),
    #[error("invalid Idempotency-Key header")]
    InvalidIdempotencyKey,
    #[error("idempotency key reused for a different request")]
    KeyReused,
    #[error("invalid account request: {0}")]
    InvalidAccount(String),
    /// An account of that name already exists.
    #[error("{0}")]
    AccountExists(String),
    /// The change would leave no active admin account.
    #[error("the last active admin account cannot be disabled, demoted or deleted")]
    LastAdmin,
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
    /// A `sysparm_query` term that cannot be run (unknown operator, unreadable value...).
    #[error("invalid query: {0}")]
    InvalidQuery(#[from] sluice_core::query::QueryError),
    /// An Aggregate API query names a field its table does not let it use.
    #[error("{0}")]
    InvalidAggregate(sluice_store::AggregateProblem),
    /// More inner requests in one batch than allowed.
    #[error("more than {0} requests in the batch")]
    TooManyRequests(usize),
    /// An inner answer of a batch past the batch's answer budget (it stands in for that answer).
    #[error("batch answer over {budget} bytes")]
    BatchAnswerTooLarge { budget: usize, answered: u16 },
    /// One `insertMultiple` record over a single row's limit (depth, fields, size): the
    /// request is refused with that limit's error, naming the record.
    #[error("records[{index}]: {error}")]
    InRecord { index: usize, error: Box<ApiError> },
    /// A required query or form parameter is missing or empty (`table_name`, ...).
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    /// Records of this table take no attachments (`sluice_core::attachment::ATTACHABLE`).
    #[error("records of {0} take no attachments")]
    AttachmentsNotAllowed(String),
    /// The record an attachment is for does not exist.
    #[error("no {table} record {sys_id}")]
    ParentNotFound { table: String, sys_id: String },
    #[error("attachment larger than {0} bytes")]
    AttachmentTooLarge(usize),
    /// A `multipart/form-data` body that cannot be read, lacks its file part or has parts after it.
    #[error("malformed multipart body: {0}")]
    MalformedMultipart(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden { message: ErrorKind::Forbidden.message(), detail: detail.into() }
    }

    /// The error's row of the table ([`kind`]): its code, status, message and link. The one
    /// place an error is mapped to what a client is told of it.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Self::Unauthenticated => K::Unauthenticated,
            Self::SignatureMissing(_) => K::SignatureMissing,
            Self::SignatureInvalid(_) => K::SignatureInvalid,
            Self::SignatureStale { .. } => K::SignatureStale,
            Self::Forbidden { .. } => K::Forbidden,
            Self::SourceNotAllowed => K::SourceNotAllowed,
            Self::NetworkForbidden => K::NetworkForbidden,
            Self::HeadersTooLarge(_) => K::HeadersTooLarge,
            Self::InvalidTable(_) => K::InvalidTable,
            Self::RecordNotFound => K::RecordNotFound,
            Self::NoSuchResource => K::NoSuchResource,
            Self::MethodNotAllowed => K::MethodNotAllowed,
            Self::MalformedJson(_) => K::MalformedJson,
            Self::BodyNotObject => K::BodyNotObject,
            Self::MalformedXml(_) => K::MalformedXml,
            Self::XmlDtd => K::XmlDtd,
            Self::BodyTooLarge(_) => K::BodyTooLarge,
            Self::UnsupportedMediaType => K::UnsupportedMediaType,
            Self::Timeout => K::RequestTimeout,
            Self::DataPolicy { .. } => K::DataPolicy,
            Self::InvalidFields(_) => K::InvalidFieldValues,
            Self::InvalidDefinitions(_) => K::InvalidDefinition,
            Self::Busy => K::Busy,
            Self::StoreUnavailable(_) => K::StoreUnavailable,
            Self::RateLimited(_) => K::RateLimited,
            Self::InvalidIdempotencyKey => K::InvalidIdempotencyKey,
            Self::KeyReused => K::IdempotencyKeyReused,
            Self::InvalidAccount(_) => K::InvalidAccount,
            Self::AccountExists(_) => K::AccountExists,
            Self::LastAdmin => K::LastAdmin,
            Self::JsonTooDeep(_) => K::JsonTooDeep,
            Self::TooManyFields(_) => K::TooManyFields,
            Self::QueryTooLong(_) => K::QueryTooLong,
            Self::InvalidRecords(_) => K::InvalidRecords,
            Self::TooManyRecords(_) => K::TooManyRecords,
            Self::InvalidParameter(_) => K::InvalidParameter,
            Self::InvalidQuery(_) => K::InvalidQuery,
            Self::InvalidAggregate(_) => K::InvalidAggregate,
            Self::InRecord { error, .. } => error.kind(),
            Self::TooManyRequests(_) => K::TooManyRecords,
            Self::BatchAnswerTooLarge { .. } => K::BatchAnswerTooLarge,
            Self::MissingParameter(_) => K::MissingParameter,
            Self::AttachmentsNotAllowed(_) => K::AttachmentsNotAllowed,
            Self::ParentNotFound { .. } => K::ParentNotFound,
            Self::AttachmentTooLarge(_) => K::AttachmentTooLarge,
            Self::MalformedMultipart(_) => K::MalformedMultipart,
            Self::Internal(_) => K::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.kind().status()
    }

    /// The stable, documented code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// ServiceNow's `message`: the kind's, with the table's name for `invalid_table`, and the
    /// read message where a read was refused.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Self::Forbidden { message, .. } => Cow::Borrowed(*message),
            Self::InvalidTable(table) => Cow::Owned(self.kind().message().replace("{table}", table)),
            Self::InRecord { error, .. } => error.message(),
            _ => Cow::Borrowed(self.kind().message()),
        }
    }

    /// ServiceNow's `detail` where it has one: what exactly is wrong, never an internal cause.
    pub fn detail(&self) -> Option<Cow<'_, str>> {
        let fixed = |d: &'static str| Some(Cow::Borrowed(d));
        match self {
            Self::Unauthenticated => fixed("Required to provide Auth information"),
            Self::SignatureMissing(header) => Some(
                format!("This integration takes signed requests: the header {header} is required (docs/senders.md)")
                    .into(),
            ),
            Self::SignatureInvalid(header) => Some(
                format!(
                    "The signature in {header} does not match the body as sent (hex HMAC-SHA256 with the \
                     integration's secret)"
                )
                .into(),
            ),
            Self::SignatureStale { header, tolerance_seconds } => Some(
                format!(
                    "The timestamp in {header} must be Unix seconds within {tolerance_seconds} seconds of the \
                     server's clock"
                )
                .into(),
            ),
            Self::Forbidden { detail, .. } => Some(detail.as_str().into()),
            Self::SourceNotAllowed => fixed("Requests from this network are not allowed for this integration"),
            Self::NetworkForbidden => fixed("Requests from this address are not allowed for this account"),
            Self::HeadersTooLarge(limit) => {
                Some(format!("The request line and headers exceed the limit of {limit} bytes").into())
            }
            Self::InvalidTable(_) | Self::Internal(_) => None,
            Self::RecordNotFound => fixed("Record doesn't exist or ACL restricts the record retrieval"),
            Self::NoSuchResource => fixed("Check the path: /api/now/import/{staging_table} or /api/now/table/{table}"),
            Self::MethodNotAllowed => fixed("The HTTP method is not supported by this resource"),
            Self::MalformedJson(detail) => Some(format!("The payload is not valid JSON: {detail}").into()),
            Self::BodyNotObject => fixed("The payload must be a JSON object of field names and values"),
            Self::MalformedXml(detail) => Some(format!("The payload is not well-formed XML: {detail}").into()),
            Self::XmlDtd => {
                fixed("XML with a document type declaration (<!DOCTYPE>) is not accepted: send the elements only")
            }
            Self::BodyTooLarge(limit) => Some(format!("The body exceeds the limit of {limit} bytes").into()),
            Self::UnsupportedMediaType => {
                fixed("Send the body as application/json (or application/xml to the Import Set and Table APIs)")
            }
            Self::Timeout => fixed("The request took longer than the configured limit"),
            Self::DataPolicy { detail, .. } => Some(detail.as_str().into()),
            Self::InvalidDefinitions(problems) => {
                Some(format!("{} problem(s); the previous definitions stay active", problems.len()).into())
            }
            Self::InvalidFields(errors) => Some(sluice_core::validate::summary(errors).into()),
            Self::Busy => fixed("Too many writes are waiting; retry shortly"),
            Self::StoreUnavailable(_) => fixed("The database is not available; nothing was stored: retry shortly"),
            Self::RateLimited(r) => Some(
                format!(
                    "Rate limit of {} requests per second (burst {}) per {} exceeded",
                    r.rate.per_second, r.rate.burst, r.scope
                )
                .into(),
            ),
            Self::InvalidIdempotencyKey => fixed("An Idempotency-Key is 1 to 255 visible ASCII characters"),
            Self::KeyReused => fixed("This Idempotency-Key was already used by this account for a different request"),
            Self::InvalidAccount(detail) | Self::AccountExists(detail) => Some(detail.as_str().into()),
            Self::LastAdmin => fixed("The last active admin account cannot be disabled, demoted or deleted"),
            Self::JsonTooDeep(limit) => {
                Some(format!("The payload nests objects and arrays deeper than {limit} levels").into())
            }
            Self::TooManyFields(limit) => Some(format!("The payload object has more than {limit} fields").into()),
            Self::QueryTooLong(limit) => Some(format!("The query string exceeds the limit of {limit} bytes").into()),
            Self::InvalidRecords(detail) | Self::InvalidParameter(detail) => Some(detail.as_str().into()),
            Self::InvalidQuery(e) => Some(format!("sysparm_query: {e}").into()),
            Self::InvalidAggregate(problem) => Some(problem.to_string().into()),
            Self::TooManyRequests(max) => {
                Some(format!("At most {max} requests per batch; send the rest in further batches").into())
            }
            Self::BatchAnswerTooLarge { budget, answered } => Some(
                format!(
                    "The request ran and answered {answered}, but its answer does not fit in what is left of the \
                     batch's answer budget of {budget} bytes; the requests after it were not run \
                     (unserviced_requests)"
                )
                .into(),
            ),
            Self::InRecord { index, error } => {
                Some(format!("records[{index}]: {}", error.detail().unwrap_or_default()).into())
            }
            Self::MissingParameter(name) => Some(format!("The parameter {name} is required").into()),
            Self::AttachmentsNotAllowed(table) => Some(
                format!(
                    "Records of {table} take no attachments; these tables do: {}",
                    sluice_core::attachment::ATTACHABLE.join(", ")
                )
                .into(),
            ),
            Self::ParentNotFound { table, sys_id } => {
                Some(format!("No {table} record with sys_id {sys_id:?} to attach to").into())
            }
            Self::AttachmentTooLarge(limit) => {
                Some(format!("The file exceeds the attachment limit of {limit} bytes").into())
            }
            Self::MalformedMultipart(detail) => Some(detail.as_str().into()),
            Self::TooManyRecords(max) => Some(
                format!("At most {max} records per insertMultiple request; send the rest in further requests").into(),
            ),
        }
    }

    /// The response body: ServiceNow's envelope with sluice's additions.
    pub fn envelope<'a>(&'a self, request_id: &'a str) -> ErrorEnvelope<'a> {
        let kind = self.kind();
        let errors = match self {
            Self::DataPolicy { errors, .. } | Self::InvalidFields(errors) => Some(Problems::Fields(errors)),
            Self::InvalidDefinitions(problems) => Some(Problems::Definitions(
                problems
                    .iter()
                    .map(|p| DefinitionError { code: kind, file: &p.file, key: &p.key, message: &p.message })
                    .collect(),
            )),
            _ => None,
        };
        let limit = match self {
            Self::RateLimited(r) => Some(LimitBody {
                scope: r.scope,
                requests_per_second: r.rate.per_second,
                burst: r.rate.burst,
                retry_after_ms: r.retry_after.as_millis() as u64,
            }),
            _ => None,
        };
        ErrorEnvelope {
            error: ErrorBody {
                message: self.message(),
                detail: self.detail(),
                code: kind,
                request_id,
                link: kind.link(),
                errors,
                limit,
            },
            status: "failure",
        }
    }

    /// The response body as JSON.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        serde_json::to_value(self.envelope(request_id)).expect("an error body is plain data")
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

/// What the store's errors tell a client: the few it should act on, otherwise an internal error
/// (its cause logged, never sent).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy => Self::Busy,
            StoreError::KeyReused => Self::KeyReused,
            StoreError::LastAdmin => Self::LastAdmin,
            StoreError::AccountExists(user_name) => Self::AccountExists(format!("account {user_name} already exists")),
            StoreError::InvalidAggregate(problem) => Self::InvalidAggregate(problem),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let request_id = observe::current_request_id();
        let mut response = (status, axum::Json(self.envelope(&request_id))).into_response();
        // For the request's statistics (errors by code).
        response.extensions_mut().insert(ErrorCode(self.code()));
        let headers = response.headers_mut();
        match self {
            Self::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sluice\""));
            }
            Self::SignatureMissing(at) | Self::SignatureInvalid(at) | Self::SignatureStale { header: at, .. } => {
                // RFC 9110: a 401 names a scheme; this one is sluice's, with the header at fault.
                let challenge = format!("HMAC-SHA256 realm=\"sluice\", header=\"{at}\"");
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            Self::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::StoreUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
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

#[cfg(test)]
pub(crate) mod tests;
