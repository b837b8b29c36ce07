//! The error body as typed structs: ServiceNow's envelope `{"error": {"message", "detail"},
//! "status": "failure"}` with sluice's additions. The `Error` component schema of the OpenAPI
//! document (`openapi/schemas.rs`) is checked against bodies serialised from these
//! (`openapi::tests`), field for field.

use std::borrow::Cow;

use serde::Serialize;
use sluice_core::validate::FieldError;

use super::ErrorKind;

/// The whole body.
#[derive(Debug, Serialize)]
pub struct ErrorEnvelope<'a> {
    pub error: ErrorBody<'a>,
    /// Always `"failure"`.
    pub status: &'static str,
}

/// What `error` holds. Field order is the order of the elements in XML answers.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// ServiceNow's text ([`ErrorKind::message`]).
    pub message: Cow<'a, str>,
    /// ServiceNow's detail where it has one, `null` otherwise.
    pub detail: Option<Cow<'a, str>>,
    /// The stable code.
    pub code: ErrorKind,
    /// The request's id, also in `X-Request-Id` and the log line.
    pub request_id: &'a str,
    /// The code's entry in docs/errors.md ([`ErrorKind::link`]).
    pub link: &'static str,
    /// The fields at fault (`data_policy`, `invalid_field_values`) or the definition problems
    /// (`invalid_definition`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Problems<'a>>,
    /// The limit that refused the request (`rate_limited`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitBody>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Problems<'a> {
    Fields(&'a [FieldError]),
    Definitions(Vec<DefinitionError<'a>>),
}

/// One problem of an integration definition.
#[derive(Debug, Serialize)]
pub struct DefinitionError<'a> {
    /// Always [`ErrorKind::InvalidDefinition`].
    pub code: ErrorKind,
    pub file: &'a str,
    pub key: &'a str,
    pub message: &'a str,
}

/// A rate limit, as `rate_limited` names it.
#[derive(Debug, Serialize)]
pub struct LimitBody {
    /// `ip`, `account`, `login_account` or `login_address`.
    pub scope: &'static str,
    pub requests_per_second: f64,
    pub burst: f64,
    pub retry_after_ms: u64,
}
