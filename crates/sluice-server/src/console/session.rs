//! Console sessions: the cookie, the extractor every page takes, and the CSRF check of every
//! form. The cookie holds a random 256-bit token; the store only its SHA-256
//! ([`sluice_store::Sessions`]), so a stolen database does not hold live cookies.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sluice_core::account::{Account, Role};
use sluice_store::Session;
use subtle::ConstantTimeEq;

use super::layout;
use crate::AppState;
use crate::authenticate::token_digest;
use crate::client::ClientAddr;

pub const COOKIE: &str = "sluice_session";
/// A session ends this long after login, however busy.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);

/// 256 random bits, URL-safe base64 (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

pub use sluice_core::datetime::now_ms;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether cookies must be `Secure`: served over TLS, or behind a proxy at an https URL.
pub fn secure(state: &AppState) -> bool {
    state.config.https || state.config.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
}

/// The `Set-Cookie` value of a new session, or (`token` `None`) one that removes it.
pub fn cookie(state: &AppState, token: Option<&str>) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let value = match token {
        Some(t) => format!("{COOKIE}={t}; Path=/console; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&value).expect("a cookie of URL-safe characters")
}

/// Creates a session for an account that just logged in; the cookie's token.
pub async fn start(state: &AppState, user_name: &str) -> Result<String, sluice_store::StoreError> {
    let token = random_token();
    let now = now_ms();
    let absolute = now.saturating_add(millis(ABSOLUTE));
    let session = Session {
        digest: token_digest(&token),
        user_name: user_name.to_owned(),
        csrf: random_token(),
        created_ms: now,
        idle_expires_ms: now.saturating_add(millis(state.config.console_session_idle)).min(absolute),
        absolute_expires_ms: absolute,
    };
    state.store.create_session(session).await?;
    Ok(token)
}

/// The session token of the request's cookie, if it has one of the right shape.
pub fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|t| t.len() == 43 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// A POST from another site (`Sec-Fetch-Site` sent by every current browser) is refused even
/// before its token is looked at.
pub fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| !matches!(site, "same-origin" | "none"))
}

/// The logged-in account of a console request, with its session (renewed by this request).
pub struct Console {
    pub account: Arc<Account>,
    pub session: Session,
}

impl Console {
    pub fn is_admin(&self) -> bool {
        self.account.roles.contains(&Role::Admin)
    }

    pub fn has(&self, role: Role) -> bool {
        self.is_admin() || self.account.roles.contains(&role)
    }

    /// The 403 page when a form's CSRF token is not the session's (compared in constant time)
    /// or it came from another site; `None` when the form may be acted on.
    pub fn refuse_form(&self, headers: &HeaderMap, csrf: &str) -> Option<Response> {
        let same = bool::from(csrf.as_bytes().ct_eq(self.session.csrf.as_bytes()));
        if !same || cross_site(headers) {
            tracing::warn!(account = %self.account.user_name, "console form refused: CSRF token or origin");
            return Some(layout::csrf_refused());
        }
        None
    }

    /// An admin's form: the CSRF check, then the admin role; `None` when it may be acted on.
    pub fn refuse_admin_form(&self, headers: &HeaderMap, csrf: &str) -> Option<Response> {
        self.refuse_form(headers, csrf).or_else(|| (!self.is_admin()).then(|| layout::forbidden(self)))
    }

    /// The 403 page when the account lacks `role` (admins have every role).
    pub fn refuse_without(&self, role: Role) -> Option<Response> {
        (!self.has(role)).then(|| layout::forbidden(self))
    }
}

/// Whether this use should write the session's new idle expiry: only when it would move by more
/// than a minute (or a tenth of the idle time, if shorter), so page views are reads.
fn renewal_due(session: &Session, now_ms: i64, idle_ms: i64) -> bool {
    let renewed = now_ms.saturating_add(idle_ms).min(session.absolute_expires_ms);
    renewed - session.idle_expires_ms > (idle_ms / 10).min(60_000)
}

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = token(&parts.headers) else { return Err(to_login()) };
        let digest = token_digest(&token);
        let idle = millis(state.config.console_session_idle);
        let now = now_ms();
        let session = match state.store.live_session(digest.clone(), now).await {
            Ok(Some(s)) if !renewal_due(&s, now, idle) => s,
            Ok(Some(_)) => match state.store.touch_session(digest.clone(), now, idle).await {
                Ok(Some(s)) => s,
                Ok(None) => return Err(to_login()),
                Err(e) => return Err(layout::unavailable(&e)),
            },
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(layout::unavailable(&e)),
        };
        // The account as stored now: deactivated, deleted or made API-only, the session ends.
        let account = match state.store.account(session.user_name.clone()).await {
            Ok(Some(a)) if a.active && !a.web_service_only => Arc::new(a),
            Ok(_) => {
                let _ = state.store.delete_session(digest).await;
                return Err(to_login());
            }
            Err(e) => return Err(layout::unavailable(&e)),
        };
        let client = parts.extensions.get::<ClientAddr>().map(|c| c.0);
        if !client.map_or(account.policy.networks.is_empty(), |ip| account.allows_source(ip)) {
            return Err(layout::message(axum::http::StatusCode::FORBIDDEN, "Not from here", NETWORK_REFUSED));
        }
        if let Some(slot) = parts.extensions.get::<crate::observe::RequestSlot>() {
            slot.set_account(&account.user_name);
        }
        if let Err(refusal) = state.throttle.check_account(&account.user_name, account.policy.rate) {
            return Err(layout::rate_limited(refusal.retry_after));
        }
        Ok(Self { account, session })
    }
}

pub const NETWORK_REFUSED: &str = "This account may not be used from your network address.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_written_at_most_once_a_minute() {
        const MIN: i64 = 60_000;
        let session = |idle_expires_ms, absolute_expires_ms| Session {
            digest: "d".into(),
            user_name: "alice".into(),
            csrf: "c".into(),
            created_ms: 0,
            idle_expires_ms,
            absolute_expires_ms,
        };
        let idle = 30 * MIN;
        // Renewed at minute 0 (expires at 30): not again until more than a minute later.
        assert!(!renewal_due(&session(30 * MIN, 720 * MIN), MIN, idle));
        assert!(renewal_due(&session(30 * MIN, 720 * MIN), MIN + 1, idle));
        // Near the absolute expiry there is nothing to move.
        assert!(!renewal_due(&session(720 * MIN, 720 * MIN), 700 * MIN, idle));
        // A short idle time renews after a tenth of it.
        assert!(renewal_due(&session(5 * MIN, 720 * MIN), MIN / 2 + 1, 5 * MIN));
        assert!(!renewal_due(&session(5 * MIN, 720 * MIN), MIN / 2, 5 * MIN));
    }
}
