//! HTTP routes, built from the route catalogue ([`catalog::routes`]), which the OpenAPI
//! document is generated from too. ServiceNow's APIs answer under `/api/now`, `/api/now/v1` and
//! `/api/now/v2`.

pub mod accounts;
pub mod admin_audit;
pub mod aggregate;
pub mod answer;
pub mod attachment;
pub mod batch;
pub mod catalog;
pub mod health;
pub mod hooks;
pub mod import;
pub mod insert_multiple;
pub mod integrations;
pub mod outbox;
pub mod pagerduty;
pub mod publish;
pub mod replay;
pub mod stats;
pub mod submissions;
pub mod table;

use axum::Router;

use crate::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for route in catalog::routes() {
        for (path, _) in route.mounts() {
            // Routes on one path are merged by axum, one method each.
            router = router.route(&path, (route.handler)(route.verb.filter()));
        }
    }
    // SOAP (`/{table}.do?SOAP`, `?WSDL`): one path segment at the root, outside the catalogue
    // (the WSDL describes it); static paths still win over this one.
    router = router.route("/{file}", axum::routing::get(crate::soap::get).post(crate::soap::post));
    router
        .route_layer(axum::middleware::from_fn(crate::observe::mark_route))
        .fallback(|| async { ApiError::NoSuchResource })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}
