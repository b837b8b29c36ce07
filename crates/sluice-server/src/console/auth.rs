//! Login and logout. Login takes the API's path: the address lockout and account pacing of
//! [`crate::lockout`], argon2 through the [`crate::CredentialCache`], the account's networks.
//! Before a session exists there is no synchronizer token: a login form is protected by
//! `Sec-Fetch-Site` (a cross-site POST is refused) and the session cookie's `SameSite=Strict`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::layout::{self, Frame};
use super::session::{self, Console};
use crate::AppState;
use crate::client::ClientAddr;

#[derive(Template, WebTemplate)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub frame: Option<Frame>,
    pub error: Option<String>,
    pub user_name: String,
}

pub const BAD_CREDENTIALS: &str = "Wrong user name or password.";
pub const WEB_SERVICE_ONLY: &str =
    "This account is for web services only (API access); it cannot log in to the console.";

pub async fn login_page(headers: HeaderMap, State(state): State<AppState>) -> Response {
    // Already logged in: straight to the home page.
    if let Some(token) = session::token(&headers) {
        let digest = crate::authenticate::token_digest(&token);
        let idle = i64::try_from(state.config.console_session_idle.as_millis()).unwrap_or(i64::MAX);
        if let Ok(Some(_)) = state.store.touch_session(digest, session::now_ms(), idle).await {
            return Redirect::to("/console").into_response();
        }
    }
    LoginPage { frame: None, error: None, user_name: String::new() }.into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    password: String,
}

fn refused(status: StatusCode, error: &str, user_name: &str) -> Response {
    let user_name = if user_name.len() <= 100 { user_name.to_owned() } else { String::new() };
    (status, LoginPage { frame: None, error: Some(error.to_owned()), user_name }).into_response()
}

pub async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if session::cross_site(&headers) {
        return layout::csrf_refused();
    }
    let user = form.user_name.trim();
    if user.is_empty() || user.len() > 100 || form.password.len() > 1024 {
        return refused(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS, user);
    }
    let client = client.map(|c| c.0.0);
    if let Err(refusal) = state.lockout.check(client) {
        crate::observe::note_attempted(user);
        return layout::rate_limited(refusal.retry_after);
    }
    let pause = state.lockout.failure_pause(user);
    let account = match state.credentials.authenticate(&state, user, form.password.as_bytes(), pause).await {
        Ok(Some(account)) => account,
        Ok(None) => {
            state.lockout.failed(user, client);
            return refused(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS, user);
        }
        Err(crate::error::ApiError::RateLimited(refusal)) => return layout::rate_limited(refusal.retry_after),
        Err(e) => return layout::unavailable(&format!("{e:?}")),
    };
    state.lockout.succeeded(user);
    // Only now, the password verified, may the page say what kind of account this is.
    if account.web_service_only {
        return refused(StatusCode::FORBIDDEN, WEB_SERVICE_ONLY, user);
    }
    if !client.map_or(account.policy.networks.is_empty(), |ip| account.allows_source(ip)) {
        return refused(StatusCode::FORBIDDEN, session::NETWORK_REFUSED, user);
    }
    let token = match session::start(&state, &account.user_name).await {
        Ok(token) => token,
        Err(e) => return layout::unavailable(&e),
    };
    tracing::info!(account = %account.user_name, "console login");
    let mut response = Redirect::to("/console").into_response();
    response.headers_mut().insert(header::SET_COOKIE, session::cookie(&state, Some(&token)));
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = console.refuse_form(&headers, &form.csrf) {
        return refused;
    }
    if let Err(e) = state.store.delete_session(console.session.digest.clone()).await {
        return layout::unavailable(&e);
    }
    tracing::info!(account = %console.account.user_name, "console logout");
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, session::cookie(&state, None));
    response
}
