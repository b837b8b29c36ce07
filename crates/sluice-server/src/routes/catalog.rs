//! The route catalogue: every route sluice serves, once. The axum router
//! ([`super::router`]) and the OpenAPI document ([`crate::openapi`]) are both built from
//! [`routes`], so a route cannot be served without being documented. Each entry's handler is
//! attached for the entry's own method, so the two cannot disagree on that either.

use axum::routing::{MethodFilter, MethodRouter};

use crate::AppState;
use crate::error::ErrorKind;

mod now;
mod own;

/// Every route, in the order the document lists them.
pub fn routes() -> impl Iterator<Item = &'static Route> {
    now::ROUTES.iter().chain(own::ROUTES)
}

/// Errors any route can answer: limits and faults checked before or around every handler.
pub const EVERY_ROUTE: &[ErrorKind] =
    &[ErrorKind::QueryTooLong, ErrorKind::RequestTimeout, ErrorKind::RateLimited, ErrorKind::Internal];

/// The HTTP methods sluice serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    /// The lower-case name OpenAPI uses as the operation's key.
    pub fn key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

/// Where a route is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// ServiceNow's APIs: served under `/api/now`, `/api/now/v1` and `/api/now/v2` alike.
    Now,
    /// Sluice's own API and operations endpoints: the path as written.
    Own,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (liveness and readiness probes).
    Public,
    /// Any active account (Basic or Bearer); the handler may narrow it further.
    Account,
    /// Accounts with the admin role.
    Admin,
    /// An account, or a request signed with the integration's secret when its definition has a
    /// `[signature]` table (the sender hook, `crate::signature`).
    AccountOrSignature,
}

/// The body a route takes or answers, by schema name (`#/components/schemas/{name}`).
#[derive(Debug, Clone, Copy)]
pub struct Body {
    pub schema: &'static str,
    pub content_type: &'static str,
    /// Whether a request must carry it (some bodies may be left out).
    pub required: bool,
}

pub const fn json(schema: &'static str) -> Body {
    Body { schema, content_type: "application/json", required: true }
}

/// A JSON request body that may be left out.
pub const fn optional_json(schema: &'static str) -> Body {
    Body { schema, content_type: "application/json", required: false }
}

pub(super) const fn other(schema: &'static str, content_type: &'static str) -> Body {
    Body { schema, content_type, required: true }
}

/// One route: method, path, handler and its documentation.
pub struct Route {
    pub verb: Verb,
    pub api: Api,
    /// For [`Api::Now`] relative to the API's prefix (`/import/{table}`), otherwise absolute.
    pub path: &'static str,
    /// The handler, attached for the method it is given.
    pub handler: fn(MethodFilter) -> MethodRouter<AppState>,
    /// Unique per route; the OpenAPI `operationId` (with the version for `/api/now/v1|v2`).
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    /// Documented query parameters (path parameters come from the path).
    pub query: &'static [&'static str],
    pub request: Option<Body>,
    /// The success status and body (`None`: no body, as for 204).
    pub status: u16,
    pub response: Option<Body>,
    /// Errors this route answers beyond the ones every route can ([`EVERY_ROUTE`], and
    /// `unauthenticated` unless public; XML body errors where XML is spoken).
    pub errors: &'static [ErrorKind],
}

/// The prefixes ServiceNow's APIs answer under, with the suffix each adds to an `operationId`.
pub const NOW_PREFIXES: [(&str, &str); 3] = [("/api/now", ""), ("/api/now/v1", "V1"), ("/api/now/v2", "V2")];

impl Route {
    /// Every error this route can answer, in the order documented: its own, the XML body errors
    /// where it takes a body and XML is spoken (`xml`), `unauthenticated` unless it is public,
    /// then [`EVERY_ROUTE`].
    pub fn error_kinds(&self, xml: bool) -> Vec<ErrorKind> {
        let mut kinds = self.errors.to_vec();
        if xml && self.request.is_some() {
            kinds.extend([ErrorKind::MalformedXml, ErrorKind::XmlDtd]);
        }
        if self.auth != Auth::Public {
            kinds.push(ErrorKind::Unauthenticated);
        }
        kinds.extend_from_slice(EVERY_ROUTE);
        kinds
    }

    /// Every full path this route is served at, with its `operationId`.
    pub fn mounts(&self) -> Vec<(String, String)> {
        match self.api {
            Api::Own => vec![(self.path.to_owned(), self.id.to_owned())],
            Api::Now => NOW_PREFIXES
                .iter()
                .map(|(prefix, v)| (format!("{prefix}{}", self.path), format!("{}{v}", self.id)))
                .collect(),
        }
    }
}
