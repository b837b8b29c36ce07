//! The accounts pages' forms (admins only, each with the session's CSRF token): create an
//! account, rotate the password, create and revoke API tokens, deactivate and activate. Each
//! calls what the account API calls ([`routes::accounts::create_account`],
//! [`routes::accounts::rotate_password`], [`routes::accounts::add_token`],
//! [`routes::accounts::apply`]), as the logged-in admin, so the admin audit records the same
//! entries. A new password or token is shown once, on the answer page, never stored.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sluice_store::AccountAction;

use super::accounts::{list_page, refusal, render};
use super::layout::{self, Frame};
use super::session::Console;
use crate::authenticate::Caller;
use crate::error::ApiError;
use crate::{AppState, routes};

/// The page that shows a new secret once.
#[derive(Template, WebTemplate)]
#[template(path = "console/account_secret.html")]
pub struct SecretPage {
    pub frame: Option<Frame>,
    pub name: String,
    /// `password` or `token`.
    pub kind: &'static str,
    pub label: String,
    pub secret: String,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf: String,
    /// Empty: a generated password (as the API without `password`).
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

#[derive(Deserialize)]
pub struct ActiveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    active: String,
}

/// The account-create form. Roles are check boxes; the rate limit is the server's default
/// (set another through the API or the CLI).
#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role_admin: Option<String>,
    #[serde(default)]
    role_itil: Option<String>,
    #[serde(default)]
    role_import_set_loader: Option<String>,
    /// `true` (the API's default) or `false` (interactive: the console too).
    #[serde(default)]
    web_service_only: String,
    /// Source networks, one a line or comma-separated; empty: anywhere.
    #[serde(default)]
    networks: String,
    /// Empty: a generated password, shown once.
    #[serde(default)]
    password: String,
}

pub async fn create(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Response {
    if let Some(refused) = console.refuse_admin_form(&headers, &form.csrf) {
        return refused;
    }
    let roles =
        [("admin", &form.role_admin), ("itil", &form.role_itil), ("import_set_loader", &form.role_import_set_loader)]
            .iter()
            .filter(|(_, checked)| checked.is_some())
            .map(|(role, _)| (*role).to_owned())
            .collect();
    let body = routes::accounts::NewAccountBody {
        name: form.name.trim().to_owned(),
        roles,
        password: (!form.password.is_empty()).then_some(form.password),
        web_service_only: Some(form.web_service_only != "false"),
        networks: form
            .networks
            .split([',', '\n'])
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
        rate: None,
    };
    match routes::accounts::create_account(&state, &caller(&console), body).await {
        Ok((account, Some(generated))) => {
            secret_page(&console, &account.user_name, "password", String::new(), generated)
        }
        Ok((account, None)) => Redirect::to(&account_path(&account.user_name)).into_response(),
        Err(e) => match refusal(&e) {
            Some(message) => list_page(&state, &console, vec![message]).await,
            None => layout::unavailable(&e),
        },
    }
}

fn caller(console: &Console) -> Caller {
    Caller(console.account.clone())
}

fn account_path(name: &str) -> String {
    format!("/console/accounts/{}", super::incidents::encode(name))
}

/// The account page again with the refusal in its alert (or the 404 / unavailable page).
async fn refused(state: &AppState, console: &Console, name: &str, e: ApiError) -> Response {
    if matches!(e, ApiError::RecordNotFound) {
        return layout::not_found(console);
    }
    match refusal(&e) {
        Some(message) => render(state, console, name, vec![message], None).await,
        None => layout::unavailable(&e),
    }
}

fn secret_page(console: &Console, name: &str, kind: &'static str, label: String, secret: String) -> Response {
    let page = SecretPage { frame: Some(Frame::new(console, "accounts")), name: name.to_owned(), kind, label, secret };
    // A secret shown once must not be kept by the browser or a proxy.
    ([(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], page).into_response()
}

pub async fn rotate(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<RotateForm>,
) -> Response {
    if let Some(refused) = console.refuse_admin_form(&headers, &form.csrf) {
        return refused;
    }
    let given = (!form.password.is_empty()).then_some(form.password);
    match routes::accounts::rotate_password(&state, &caller(&console), &name, given).await {
        Ok((account, Some(generated))) => {
            secret_page(&console, &account.user_name, "password", String::new(), generated)
        }
        Ok((_, None)) => render(&state, &console, &name, Vec::new(), Some("The password was changed.".into())).await,
        Err(e) => refused(&state, &console, &name, e).await,
    }
}

pub async fn create_token(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Some(refused) = console.refuse_admin_form(&headers, &form.csrf) {
        return refused;
    }
    match routes::accounts::add_token(&state, &caller(&console), &name, form.label.trim().to_owned()).await {
        Ok((token, secret)) => secret_page(&console, &token.user_name, "token", token.label, secret),
        Err(e) => refused(&state, &console, &name, e).await,
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    console: Console,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = console.refuse_admin_form(&headers, &form.csrf) {
        return refused;
    }
    match routes::accounts::apply(&state, &caller(&console), &name, AccountAction::RevokeToken { id }).await {
        Ok(_) => Redirect::to(&account_path(&name)).into_response(),
        // The account may still exist: its page says the token is gone.
        Err(ApiError::RecordNotFound) => {
            render(&state, &console, &name, vec!["This account has no such token (already revoked?).".into()], None)
                .await
        }
        Err(e) => refused(&state, &console, &name, e).await,
    }
}

pub async fn set_active(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActiveForm>,
) -> Response {
    if let Some(refused) = console.refuse_admin_form(&headers, &form.csrf) {
        return refused;
    }
    let active = match form.active.as_str() {
        "true" => true,
        "false" => false,
        _ => return render(&state, &console, &name, vec!["active: choose true or false".into()], None).await,
    };
    let action =
        AccountAction::Update { active: Some(active), roles: None, web_service_only: None, networks: None, rate: None };
    match routes::accounts::apply(&state, &caller(&console), &name, action).await {
        Ok(_) => Redirect::to(&account_path(&name)).into_response(),
        Err(e) => refused(&state, &console, &name, e).await,
    }
}
