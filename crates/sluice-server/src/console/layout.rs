//! What every console page shares: the frame (header, main navigation, logout form) and the
//! message pages (403, CSRF refused, rate limited, store unavailable). Message pages carry the
//! request id, as the API's error bodies do; internal causes go to the log only.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::session::Console;

/// The header, navigation and logout form of a logged-in page.
pub struct Frame {
    pub user_name: String,
    pub admin: bool,
    pub csrf: String,
    /// Which navigation entry is the current page (`aria-current`).
    pub current: &'static str,
}

impl Frame {
    pub fn new(console: &Console, current: &'static str) -> Self {
        Self {
            user_name: console.account.user_name.clone(),
            admin: console.is_admin(),
            csrf: console.session.csrf.clone(),
            current,
        }
    }
}

/// A page that only says something: an error, a refusal.
#[derive(Template, WebTemplate)]
#[template(path = "console/message.html")]
pub struct MessagePage {
    pub frame: Option<Frame>,
    pub title: String,
    pub text: String,
    pub request_id: String,
}

pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    message_in(None, status, title, text)
}

fn message_in(frame: Option<Frame>, status: StatusCode, title: &str, text: &str) -> Response {
    let page = MessagePage {
        frame,
        title: title.to_owned(),
        text: text.to_owned(),
        request_id: crate::observe::current_request_id(),
    };
    (status, page).into_response()
}

pub fn csrf_refused() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Form refused",
        "This form did not carry this session's security token (or came from another site). Reload the page and try again.",
    )
}

pub fn forbidden(console: &Console) -> Response {
    message_in(
        Some(Frame::new(console, "")),
        StatusCode::FORBIDDEN,
        "Not allowed",
        "Your account does not have the role this page needs.",
    )
}

pub fn not_found(console: &Console) -> Response {
    message_in(Some(Frame::new(console, "")), StatusCode::NOT_FOUND, "Not found", "There is no such page or record.")
}

/// A path under `/console` that is no page (with or without a session: it names nothing).
pub async fn no_such_page() -> Response {
    message(StatusCode::NOT_FOUND, "Not found", "There is no such page in the console.")
}

/// A 404 page that says why (e.g. a replay another node runs).
pub fn not_found_because(console: &Console, text: &str) -> Response {
    message_in(Some(Frame::new(console, "")), StatusCode::NOT_FOUND, "Not found", text)
}

pub fn rate_limited(retry_after: Duration) -> Response {
    let text = format!("Too many requests or failed logins. Try again in {} seconds.", retry_after.as_secs().max(1));
    message(StatusCode::TOO_MANY_REQUESTS, "Slow down", &text)
}

pub fn unavailable(cause: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %cause, "console page failed");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The database did not answer. Try again in a moment; if it persists, tell the operators the request id below.",
    )
}
