//! The admin audit page (admins only): account changes and integration reloads, newest first,
//! 50 a page, optionally of one action; read through the API's [`routes::admin_audit::page`].

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::incidents::encode;
use super::layout::{self, Frame};
use super::session::Console;
use crate::{AppState, routes};

const PAGE_SIZE: u64 = 50;
/// The actions sluice records (docs/accounts.md), offered by the filter.
pub const ACTIONS: [&str; 7] = [
    "account.create",
    "account.update",
    "account.rotate_password",
    "account.delete",
    "account.token_create",
    "account.token_revoke",
    "integrations.reload",
];

#[derive(Deserialize, Default)]
pub struct AuditParams {
    #[serde(default)]
    action: String,
    #[serde(default)]
    page: Option<u64>,
}

pub struct EntryRow {
    pub when: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/admin_audit.html")]
pub struct AuditPage {
    pub frame: Option<Frame>,
    pub action: String,
    /// The filter's choices: the known actions, and the one asked for if it is another.
    pub actions: Vec<String>,
    pub entries: Vec<EntryRow>,
    pub total: u64,
    pub page: u64,
    pub pages: u64,
}

impl AuditPage {
    pub fn page_link(&self, page: &u64) -> String {
        format!("?action={}&page={page}", encode(&self.action))
    }
}

pub async fn page(State(state): State<AppState>, console: Console, Query(params): Query<AuditParams>) -> Response {
    if !console.is_admin() {
        return layout::forbidden(&console);
    }
    let action = params.action.trim().to_owned();
    let page = params.page.unwrap_or(1).max(1);
    let offset = (page - 1).saturating_mul(PAGE_SIZE);
    let (entries, total) = match routes::admin_audit::page(&state, &action, PAGE_SIZE, offset).await {
        Ok(found) => found,
        Err(e) => return layout::unavailable(&e),
    };
    let mut actions: Vec<String> = ACTIONS.iter().map(|a| (*a).to_owned()).collect();
    if !action.is_empty() && !actions.contains(&action) {
        actions.push(action.clone());
    }
    let entries = entries
        .into_iter()
        .map(|e| EntryRow {
            when: e.created_on.to_string(),
            actor: e.actor,
            action: e.action,
            target: e.target,
            details: if e.details.as_object().is_some_and(serde_json::Map::is_empty) {
                String::new()
            } else {
                e.details.to_string()
            },
        })
        .collect();
    AuditPage {
        frame: Some(Frame::new(&console, "admin_audit")),
        action,
        actions,
        entries,
        total,
        page,
        pages: total.div_ceil(PAGE_SIZE).max(1),
    }
    .into_response()
}
