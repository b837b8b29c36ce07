//! HTTP routes. ServiceNow's APIs answer under `/api/now`, `/api/now/v1` and `/api/now/v2`.

pub mod accounts;
pub mod admin_audit;
pub mod attachment;
pub mod batch;
pub mod bulk;
pub mod health;
pub mod import;
pub mod integrations;
pub mod publish;
pub mod stats;
pub mod submissions;
pub mod table;

use axum::Router;
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

fn now_api() -> Router<AppState> {
    Router::new()
        .route("/import/{table}", axum::routing::post(import::create))
        .route("/import/{table}/insertMultiple", axum::routing::post(bulk::insert_multiple))
        .route("/import/{table}/{sys_id}", get(import::show))
        .route("/table/{table}", get(table::list).post(table::create))
        .route("/attachment", get(attachment::list))
        .route("/batch", axum::routing::post(batch::run))
        .route(
            "/table/{table}/{sys_id}",
            get(table::show).put(table::update).patch(table::update).delete(table::delete),
        )
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/api/now", now_api())
        .nest("/api/now/v1", now_api())
        .nest("/api/now/v2", now_api())
        .route("/api/sluice/v1/integrations", get(integrations::list))
        .route("/api/sluice/v1/submissions", get(submissions::list))
        .route("/api/sluice/v1/integrations/reload", axum::routing::post(integrations::reload))
        .route("/api/sluice/v1/integrations/{name}", get(integrations::show))
        .merge(accounts::routes())
        .merge(admin_audit::routes())
        .route("/api/sluice/v1/integrations/{name}/replay", axum::routing::post(bulk::replay))
        .route("/api/sluice/v1/import_sets/{id}", get(bulk::progress))
        .route("/api/sluice/v1/retention/purge", axum::routing::post(bulk::purge))
        .route("/api/sluice/v1/integrations/{name}/schema.json", get(publish::schema))
        .route("/api/sluice/v1/integrations/{name}/plan", get(publish::plan))
        .route("/api/sluice/v1/integrations/{name}/validate", axum::routing::post(publish::validate))
        .route("/api/sluice/v1/integrations/{name}/stats", get(stats::integration))
        .route("/api/sluice/v1/accounts/{name}/stats", get(stats::account))
        .route_layer(axum::middleware::from_fn(crate::observe::mark_route))
        .fallback(|| async { ApiError::NoSuchResource })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}
