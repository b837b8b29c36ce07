//! The table of error kinds: one row per stable `code`, with its HTTP status, ServiceNow's
//! `message` text and the `link` to its entry in docs/errors.md. [`ErrorKind`] and everything
//! derived from a code (status, message, link, the list of every code) are generated from this
//! one table; [`super::ApiError::kind`] maps each error to its row.
//!
//! Adding an error: a row here (the compiler then asks for it in `ApiError::kind` once a variant
//! answers it), a row with the same status, code and message in docs/errors.md (with its
//! `<a id="code"></a>` anchor; `error::tests` compares the two), and the kind in the route
//! catalogue's `errors` of each route that can answer it.

use axum::http::StatusCode;
use serde::{Serialize, Serializer};

macro_rules! error_kinds {
    ($( $(#[$doc:meta])* $kind:ident = $code:literal, $status:ident, $message:literal; )*) => {
        /// What went wrong, as a client may act on it: one per documented `code`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorKind {
            $( $(#[$doc])* $kind, )*
        }

        impl ErrorKind {
            /// Every kind, in the table's order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind),*];

            /// The stable, documented code.
            pub const fn code(self) -> &'static str {
                match self { $(ErrorKind::$kind => $code,)* }
            }

            pub const fn status(self) -> StatusCode {
                match self { $(ErrorKind::$kind => StatusCode::$status,)* }
            }

            /// ServiceNow's `message` text for this kind (`{table}` stands for the table's name).
            pub const fn message(self) -> &'static str {
                match self { $(ErrorKind::$kind => $message,)* }
            }

            /// Where the code is documented: its anchor in docs/errors.md (relative to sluice's
            /// source tree and release archive).
            pub const fn link(self) -> &'static str {
                match self { $(ErrorKind::$kind => concat!("docs/errors.md#", $code),)* }
            }
        }
    };
}

error_kinds! {
    //                      code                          status                            ServiceNow's message
    NoSuchResource        = "invalid_uri",                BAD_REQUEST,                      "Requested URI does not represent any resource";
    MalformedJson         = "malformed_json",             BAD_REQUEST,                      "Exception while reading request";
    BodyNotObject         = "body_not_object",            BAD_REQUEST,                      "Exception while reading request";
    MalformedXml          = "malformed_xml",              BAD_REQUEST,                      "Exception while reading request";
    XmlDtd                = "xml_dtd_refused",            BAD_REQUEST,                      "Exception while reading request";
    Unauthenticated       = "unauthenticated",            UNAUTHORIZED,                     "User Not Authenticated";
    SignatureMissing      = "signature_missing",          UNAUTHORIZED,                     "User Not Authenticated";
    SignatureInvalid      = "signature_invalid",          UNAUTHORIZED,                     "User Not Authenticated";
    SignatureStale        = "signature_stale",            UNAUTHORIZED,                     "User Not Authenticated";
    InvalidRecords        = "invalid_records",            BAD_REQUEST,                      "Exception while reading request";
    InvalidParameter      = "invalid_parameter",          BAD_REQUEST,                      "Invalid parameter";
    InvalidQuery          = "invalid_query",              BAD_REQUEST,                      "Invalid query";
    InvalidAggregate      = "invalid_aggregate",          BAD_REQUEST,                      "Invalid aggregate query";
    /// Also answered with ServiceNow's read message, "Insufficient rights to query records".
    Forbidden             = "forbidden",                  FORBIDDEN,                        "Operation Failed";
    SourceNotAllowed      = "source_not_allowed",         FORBIDDEN,                        "Operation Failed";
    NetworkForbidden      = "network_forbidden",          FORBIDDEN,                        "Operation Failed";
    HeadersTooLarge       = "headers_too_large",          REQUEST_HEADER_FIELDS_TOO_LARGE,  "Request Header Fields Too Large";
    DataPolicy            = "data_policy",                FORBIDDEN,                        "Operation Failed";
    InvalidFieldValues    = "invalid_field_values",       BAD_REQUEST,                      "Invalid field values";
    InvalidTable          = "invalid_table",              BAD_REQUEST,                      "Invalid table {table}";
    RecordNotFound        = "record_not_found",           NOT_FOUND,                        "No Record found";
    MethodNotAllowed      = "method_not_allowed",         METHOD_NOT_ALLOWED,               "Method not Supported";
    RequestTimeout        = "request_timeout",            REQUEST_TIMEOUT,                  "Transaction cancelled: maximum execution time exceeded";
    BodyTooLarge          = "body_too_large",             PAYLOAD_TOO_LARGE,                "Request entity too large";
    TooManyRecords        = "too_many_records",           PAYLOAD_TOO_LARGE,                "Request entity too large";
    BatchAnswerTooLarge   = "batch_answer_too_large",     PAYLOAD_TOO_LARGE,                "Response entity too large";
    UnsupportedMediaType  = "unsupported_media_type",     UNSUPPORTED_MEDIA_TYPE,           "Unsupported Media Type";
    InvalidIdempotencyKey = "invalid_idempotency_key",    BAD_REQUEST,                      "Invalid Idempotency-Key";
    IdempotencyKeyReused  = "idempotency_key_reused",     UNPROCESSABLE_ENTITY,             "Idempotency key reused";
    RateLimited           = "rate_limited",               TOO_MANY_REQUESTS,                "Rate limit exceeded";
    JsonTooDeep           = "json_too_deep",              BAD_REQUEST,                      "Exception while reading request";
    TooManyFields         = "too_many_fields",            BAD_REQUEST,                      "Exception while reading request";
    QueryTooLong          = "query_too_long",             URI_TOO_LONG,                     "Request-URI Too Long";
    InvalidAccount        = "invalid_account",            BAD_REQUEST,                      "Invalid account request";
    InvalidDefinition     = "invalid_definition",         BAD_REQUEST,                      "Integration definitions refused";
    AccountExists         = "account_exists",             CONFLICT,                         "Operation Failed";
    LastAdmin             = "last_admin",                 CONFLICT,                         "Operation Failed";
    MissingParameter      = "missing_parameter",          BAD_REQUEST,                      "Missing parameter";
    AttachmentsNotAllowed = "attachments_not_allowed",    BAD_REQUEST,                      "Operation Failed";
    ParentNotFound        = "parent_not_found",           NOT_FOUND,                        "No Record found";
    AttachmentTooLarge    = "attachment_too_large",       PAYLOAD_TOO_LARGE,                "Request entity too large";
    MalformedMultipart    = "malformed_multipart",        BAD_REQUEST,                      "Failed to create the attachment. File part might be missing in the request.";
    Internal              = "internal_error",             INTERNAL_SERVER_ERROR,            "Internal server error";
    Busy                  = "busy",                       SERVICE_UNAVAILABLE,              "Service Unavailable";
    StoreUnavailable      = "store_unavailable",          SERVICE_UNAVAILABLE,              "Service Unavailable";
}

impl ErrorKind {
    /// The kind of a documented code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }
}

/// As its code.
impl Serialize for ErrorKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
