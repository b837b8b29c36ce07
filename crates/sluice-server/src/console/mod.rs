//! The web console under `/console`: server-rendered HTML (askama templates compiled into the
//! binary, `templates/console/`), readable without JavaScript. Not part of the route catalogue
//! (HTML, not API): [`router`] is merged beside it by [`crate::app`]. Every page needs a session
//! ([`session::Console`]); every POST carries the session's CSRF token ([`session::Console::refuse_form`]).

pub mod account_forms;
pub mod accounts;
pub mod admin_audit;
pub mod assets;
pub mod auth;
pub mod chart;
pub mod dry_run;
pub mod home;
pub mod import_row;
pub mod import_sets;
pub mod incident;
pub mod incidents;
pub mod integrations;
pub mod json_span;
pub mod layout;
pub mod outbox;
pub mod paging;
pub mod replay;
pub mod replay_jobs;
pub mod saved_filters;
pub mod session;

use axum::Router;
use axum::routing::get;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home::page))
        .route("/console/", get(home::page))
        .route("/console/incidents", get(incidents::list))
        .route("/console/incidents/filters", axum::routing::post(saved_filters::save))
        .route("/console/incidents/filters/{id}/delete", axum::routing::post(saved_filters::delete))
        .route("/console/incidents/{sys_id}", get(incident::page).post(incident::save))
        .route("/console/import_sets", get(import_sets::list))
        .route("/console/import_sets/rows/{sys_id}", get(import_row::page))
        .route("/console/import_sets/rows/{sys_id}/replay", axum::routing::post(import_row::replay))
        .route("/console/integrations", get(integrations::list))
        .route("/console/integrations/{name}", get(integrations::page))
        .route("/console/integrations/{name}/dry_run", axum::routing::post(dry_run::run))
        .route("/console/integrations/{name}/replay", axum::routing::post(replay::start))
        .route("/console/integrations/{name}/outbox/retry", axum::routing::post(outbox::retry))
        .route("/console/integrations/{name}/replays/{id}", get(replay::progress))
        .route("/console/accounts", get(accounts::list).post(account_forms::create))
        .route("/console/accounts/{name}", get(accounts::page))
        .route("/console/accounts/{name}/rotate", axum::routing::post(account_forms::rotate))
        .route("/console/accounts/{name}/tokens", axum::routing::post(account_forms::create_token))
        .route("/console/accounts/{name}/tokens/{id}/revoke", axum::routing::post(account_forms::revoke_token))
        .route("/console/accounts/{name}/active", axum::routing::post(account_forms::set_active))
        .route("/console/admin_audit", get(admin_audit::page))
        .route("/console/login", get(auth::login_page).post(auth::login))
        .route("/console/logout", axum::routing::post(auth::logout))
        .route("/console/assets/console.css", get(assets::css))
        // Any other path under /console: an HTML page, not the API's JSON error.
        .route("/console/{*rest}", axum::routing::any(layout::no_such_page))
}
