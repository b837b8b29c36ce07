//! Saved filters of the incidents list: "Save this filter as" stores the list's encoded query
//! and sort under a name for the logged-in account ([`sluice_store::SavedFilters`], in the
//! database, so every node shows them); the list shows them as links, each with a delete form.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sluice_core::SysId;
use sluice_core::account::{Access, may};
use sluice_store::{SaveFilter, SavedFilter, StoreError};

use super::incidents::{ListParams, SavedLink, list_href, render};
use super::layout;
use super::session::{Console, now_ms};
use crate::AppState;

/// The account's saved filters as links of the list page.
pub async fn links(state: &AppState, console: &Console) -> Result<Vec<SavedLink>, StoreError> {
    let saved = state.store.saved_filters(console.account.user_name.clone()).await?;
    Ok(saved.into_iter().map(|f| SavedLink { href: list_href(&f.query, &f.sort), id: f.id, name: f.name }).collect())
}

#[derive(Deserialize)]
pub struct SaveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    sysparm_query: String,
    #[serde(default)]
    sort: String,
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
}

/// Saves the list's filter and sort under a name (the same name again replaces it), then opens
/// the list it names; a refusal (no name, too long, too many) is the list's alert.
pub async fn save(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    Form(form): Form<SaveForm>,
) -> Response {
    if let Some(refused) = console.refuse_form(&headers, &form.csrf) {
        return refused;
    }
    if !may(&console.account.roles, "incident", Access::Read) {
        return layout::forbidden(&console);
    }
    let filter = SavedFilter {
        id: SysId::generate().into_string(),
        user_name: console.account.user_name.clone(),
        name: form.name.trim().to_owned(),
        query: form.sysparm_query.clone(),
        sort: form.sort.clone(),
        saved_ms: now_ms(),
    };
    match state.store.save_filter(filter).await {
        Ok(SaveFilter::Saved { .. }) => Redirect::to(&list_href(&form.sysparm_query, &form.sort)).into_response(),
        Ok(SaveFilter::Refused(why)) => {
            let params = ListParams { sysparm_query: form.sysparm_query, sort: form.sort, page: None };
            render(&state, &console, params, Some(format!("Not saved: {why}."))).await
        }
        Err(e) => layout::unavailable(&e),
    }
}

/// Deletes one of the account's own filters (another account's id deletes nothing).
pub async fn delete(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DeleteForm>,
) -> Response {
    if let Some(refused) = console.refuse_form(&headers, &form.csrf) {
        return refused;
    }
    match state.store.delete_saved_filter(console.account.user_name.clone(), id).await {
        Ok(true) => Redirect::to("/console/incidents").into_response(),
        Ok(false) => layout::not_found(&console),
        Err(e) => layout::unavailable(&e),
    }
}
