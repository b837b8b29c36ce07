//! The accounts pages (admins only): every account with its policy, token count and when it was
//! last seen, and one account's details, tokens, last-day statistics and forms. They read
//! through what the account API reads (`Accounts`, [`routes::accounts::record_times`],
//! [`routes::stats::account_totals`]); the forms are in [`super::account_forms`].

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sluice_core::DateTime;
use sluice_core::account::Account;
use sluice_core::stats::Summary;
use sluice_store::StatsFilter;

use super::layout::{self, Frame};
use super::session::Console;
use crate::error::ApiError;
use crate::stats::{Window, summarise};
use crate::{AppState, routes};

/// One account of the list.
pub struct AccountRow {
    pub name: String,
    pub roles: String,
    pub interactive: bool,
    pub active: bool,
    pub networks: String,
    pub rate: String,
    pub tokens: usize,
    pub last_seen: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/accounts.html")]
pub struct ListPage {
    pub frame: Option<Frame>,
    pub csrf: String,
    pub accounts: Vec<AccountRow>,
    /// Why the account-create form was refused.
    pub errors: Vec<String>,
}

pub struct TokenRow {
    pub id: String,
    pub label: String,
    /// What the token is taken as: a Bearer token, or one integration's routing key.
    pub usage: String,
    pub created_on: String,
    pub created_by: String,
}

/// One line of counters (all integrations, or one).
pub struct StatsRow {
    pub integration: String,
    pub received: u64,
    pub inserted: u64,
    pub updated: u64,
    pub ignored: u64,
    pub skipped: u64,
    pub error: u64,
    pub refused: u64,
    pub throttled: u64,
    pub last_seen: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/account.html")]
pub struct AccountPage {
    pub frame: Option<Frame>,
    pub csrf: String,
    pub row: AccountRow,
    pub sys_id: String,
    pub created_on: String,
    pub created_by: String,
    pub updated_on: String,
    pub credentials_changed_at: String,
    pub tokens: Vec<TokenRow>,
    /// The last day: every integration together first, then each.
    pub stats: Vec<StatsRow>,
    /// Why the last form was refused.
    pub errors: Vec<String>,
    /// What the last form did (e.g. a token revoked).
    pub notice: Option<String>,
}

/// Unix milliseconds as `YYYY-MM-DD hh:mm:ss` (UTC), or a dash.
pub fn time_ms(ms: Option<i64>) -> String {
    ms.map_or_else(|| "—".to_owned(), |ms| DateTime::from_unix_ms(ms).to_string())
}

fn row(account: &Account, tokens: usize, last_seen: Option<i64>) -> AccountRow {
    let roles = account.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
    let networks = if account.policy.networks.is_empty() {
        "anywhere".to_owned()
    } else {
        account.policy.networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    let rate = account
        .policy
        .rate
        .map_or_else(|| "server default".to_owned(), |r| format!("{}/s, burst {}", r.per_second, r.burst));
    AccountRow {
        name: account.user_name.clone(),
        roles: if roles.is_empty() { "(none)".into() } else { roles },
        interactive: !account.web_service_only,
        active: account.active,
        networks,
        rate,
        tokens,
        last_seen: time_ms(last_seen),
    }
}

/// What an API function's refusal says on a console page; `None` for a server-side failure,
/// which gets the unavailable page instead (its cause logged, never shown).
pub fn refusal(e: &ApiError) -> Option<String> {
    if e.status().is_server_error() {
        return None;
    }
    Some(e.detail().map_or_else(|| e.message().into_owned(), |d| d.into_owned()))
}

pub async fn list(State(state): State<AppState>, console: Console) -> Response {
    list_page(&state, &console, Vec::new()).await
}

/// The list, with the refusal of the create form just posted.
pub async fn list_page(state: &AppState, console: &Console, errors: Vec<String>) -> Response {
    if !console.is_admin() {
        return layout::forbidden(console);
    }
    let accounts = match state.store.accounts().await {
        Ok(a) => a,
        Err(e) => return layout::unavailable(&e),
    };
    // Last seen: the latest request the statistics still hold, per account.
    let filter = StatsFilter { since_minute: Window::All.since_minute_now(), account: None, integration: None };
    let totals = match state.stats.read(state.store.as_ref(), filter).await {
        Ok(t) => t,
        Err(e) => return layout::unavailable(&e),
    };
    let mut last_seen = BTreeMap::<&str, i64>::new();
    for t in &totals {
        let seen = last_seen.entry(t.account.as_str()).or_insert(t.last_seen);
        *seen = (*seen).max(t.last_seen);
    }
    let mut rows = Vec::with_capacity(accounts.len());
    for account in &accounts {
        let tokens = match state.store.tokens(account.user_name.clone()).await {
            Ok(t) => t.len(),
            Err(e) => return layout::unavailable(&e),
        };
        rows.push(row(account, tokens, last_seen.get(account.user_name.as_str()).copied()));
    }
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = ListPage {
        frame: Some(Frame::new(console, "accounts")),
        csrf: console.session.csrf.clone(),
        accounts: rows,
        errors,
    };
    (status, page).into_response()
}

pub async fn page(State(state): State<AppState>, console: Console, Path(name): Path<String>) -> Response {
    render(&state, &console, &name, Vec::new(), None).await
}

fn stats_row(integration: &str, s: &Summary) -> StatsRow {
    StatsRow {
        integration: integration.to_owned(),
        received: s.received,
        inserted: s.inserted,
        updated: s.updated,
        ignored: s.ignored,
        skipped: s.skipped,
        error: s.error,
        refused: s.unauthorized + s.forbidden,
        throttled: s.throttled,
        last_seen: time_ms(s.last_seen),
    }
}

/// The account page, with the refusal or the outcome of a form just posted.
pub async fn render(
    state: &AppState,
    console: &Console,
    name: &str,
    errors: Vec<String>,
    notice: Option<String>,
) -> Response {
    if !console.is_admin() {
        return layout::forbidden(console);
    }
    let account = match state.store.account(name.to_owned()).await {
        Ok(Some(a)) => a,
        Ok(None) => return layout::not_found(console),
        Err(e) => return layout::unavailable(&e),
    };
    let tokens = match state.store.tokens(account.user_name.clone()).await {
        Ok(t) => t,
        Err(e) => return layout::unavailable(&e),
    };
    let times = match routes::accounts::record_times(state, &account).await {
        Ok(t) => t,
        Err(e) => return layout::unavailable(&e),
    };
    let totals = match routes::stats::account_totals(state, &account.user_name, Window::Day).await {
        Ok(t) => t,
        Err(e) => return layout::unavailable(&e),
    };
    let all = summarise(&totals, |_| "").remove("").unwrap_or_default();
    let mut stats = vec![stats_row("All integrations", &all)];
    let each = summarise(totals.iter().filter(|t| !t.integration.is_empty()), |t| &t.integration);
    stats.extend(each.iter().map(|(name, s)| stats_row(name, s)));
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let (created_on, created_by, updated_on, credentials_changed_at) =
        times.map(|t| (t.created_on, t.created_by, t.updated_on, t.credentials_changed_at)).unwrap_or_default();
    let page = AccountPage {
        frame: Some(Frame::new(console, "accounts")),
        csrf: console.session.csrf.clone(),
        row: row(&account, tokens.len(), all.last_seen),
        sys_id: account.sys_id.as_str().to_owned(),
        created_on,
        created_by,
        updated_on,
        credentials_changed_at,
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                label: t.label,
                usage: match t.integration {
                    Some(integration) => format!("Routing key of {integration}"),
                    None => "API token (Bearer)".to_owned(),
                },
                created_on: t.created_on.to_string(),
                created_by: t.created_by,
            })
            .collect(),
        stats,
        errors,
        notice,
    };
    (status, page).into_response()
}
