//! The staged rows of every integration the account may read, newest first, filtered by state and
//! integration. Rows live in one staging table per integration (`Integration::staging`); each
//! table is read with the store's list (as `GET /api/sluice/v1/import_sets/{id}` reads its rows)
//! and the pages are merged by time. Who may read an integration's rows is the Import Set API's
//! rule ([`crate::routes::import::may_post`]: role, bound accounts, source networks).

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sluice_core::integration::Integration;
use sluice_core::query::{EncodedQuery, OrderBy};
use sluice_core::staging::RowState;
use sluice_core::{Record, tables};
use sluice_store::ListQuery;
use sluice_store::staging_row::outcome_of;

use super::layout::{self, Frame};
use super::paging::{Counted, PAGE_SIZE, Pager, Window};
use super::session::Console;
use crate::AppState;
use crate::authenticate::Caller;

/// How deep the merged list of all integrations pages (each table is read up to the page shown);
/// past it, the page asks for one integration.
const MAX_MERGED_OFFSET: u64 = 10_000;

/// The integrations whose staged rows this account may read from this address, by name.
pub fn readable(state: &AppState, console: &Console, peer: Option<std::net::IpAddr>) -> Vec<Arc<Integration>> {
    let caller = Caller(console.account.clone());
    let mut out: Vec<Arc<Integration>> = state
        .registry()
        .integrations
        .values()
        .filter(|i| crate::routes::import::may_post(i, &caller, peer, "").is_ok())
        .cloned()
        .collect();
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

/// The target record's console link, when the target is an incident.
pub fn target_href(integration: &Integration, sys_id: &str) -> Option<String> {
    (integration.target.name == tables::INCIDENT && !sys_id.is_empty()).then(|| format!("/console/incidents/{sys_id}"))
}

#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    state: String,
    #[serde(default)]
    integration: String,
    #[serde(default)]
    page: Option<u64>,
}

pub struct Row {
    pub sys_id: String,
    pub received: String,
    pub integration: String,
    pub state: String,
    /// The first error's code and JSON Pointer (or field).
    pub error: String,
    pub target: String,
    pub target_href: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/import_sets.html")]
pub struct ListPage {
    pub frame: Option<Frame>,
    pub state: String,
    pub integration: String,
    pub states: Vec<&'static str>,
    pub integrations: Vec<String>,
    pub error: Option<String>,
    pub rows: Vec<Row>,
    pub pager: Pager,
}

pub async fn list(
    State(state): State<AppState>,
    console: Console,
    crate::receive::PeerAddr(peer): crate::receive::PeerAddr,
    Query(params): Query<ListParams>,
) -> Response {
    let readable = readable(&state, &console, peer);
    if readable.is_empty() {
        return layout::forbidden(&console);
    }
    let mut error = None;
    let row_state = match params.state.as_str() {
        "" => None,
        s => match s.parse::<RowState>() {
            Ok(r) => Some(r),
            Err(e) => {
                error = Some(format!("The state filter could not be read: {e}"));
                None
            }
        },
    };
    let chosen: Vec<Arc<Integration>> = match params.integration.as_str() {
        "" => readable.clone(),
        name => readable.iter().filter(|i| i.name() == name).cloned().collect(),
    };
    if chosen.is_empty() {
        error = Some(format!("No integration you may read is called {:?}.", params.integration));
    }
    let mut window = Window::of(params.page);
    if chosen.len() > 1 && window.offset > MAX_MERGED_OFFSET {
        error = Some("Pages this deep are listed for one integration at a time: choose one.".to_owned());
        window = Window::first();
    }
    let mut rows = Vec::new();
    let mut counted = Counted::default();
    if error.is_none() {
        match read_rows(&state, &chosen, row_state, window).await {
            Ok((r, c)) => (rows, counted) = (r, c),
            Err(e) => return layout::unavailable(&e),
        }
    }
    let state_name = row_state.map(RowState::as_str).unwrap_or_default().to_owned();
    let integration_name =
        chosen.first().filter(|_| !params.integration.is_empty()).map(|i| i.name().to_owned()).unwrap_or_default();
    let query = format!("?state={state_name}&integration={integration_name}");
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = ListPage {
        frame: Some(Frame::new(&console, "import_sets")),
        state: state_name,
        integration: integration_name,
        states: RowState::ALL.iter().map(|s| s.as_str()).collect(),
        integrations: readable.iter().map(|i| i.name().to_owned()).collect(),
        error,
        pager: Pager::new(window, counted, rows.len(), query),
        rows,
    };
    (status, page).into_response()
}

/// One page of rows of these integrations, newest first, and how many match in all. With
/// several integrations each table is read up to the end of the page and the lists merged.
async fn read_rows(
    state: &AppState,
    integrations: &[Arc<Integration>],
    row_state: Option<RowState>,
    window: Window,
) -> Result<(Vec<Row>, Counted), sluice_store::StoreError> {
    let (offset, count_up_to) = (window.offset, window.count_up_to);
    let (table_offset, limit) = if integrations.len() == 1 { (offset, PAGE_SIZE) } else { (0, offset + PAGE_SIZE) };
    let mut counted = Counted::default();
    let mut found: Vec<(Record, Arc<Integration>)> = Vec::new();
    for integration in integrations {
        let mut filter = EncodedQuery::default();
        if let Some(s) = row_state {
            filter.and_equals("sys_import_state", s.as_str());
        }
        // Ties (rows staged in one second) newest first too: one backward scan of an index.
        filter.order_by.push(OrderBy { field: "sys_created_on".into(), descending: true });
        let page = state
            .store
            .list(
                integration.staging.clone(),
                ListQuery { filter, limit, offset: table_offset, count_up_to: Some(count_up_to) },
            )
            .await?;
        counted = counted.plus(Counted::of(page.total, count_up_to));
        found.extend(page.records.into_iter().map(|r| (r, integration.clone())));
    }
    let created = |r: &Record| r.get("sys_created_on").cloned().unwrap_or_default();
    // `YYYY-MM-DD hh:mm:ss` text sorts as the times do; the sort is stable, so a table's order stays.
    found.sort_by_key(|(r, _)| std::cmp::Reverse(created(r)));
    let skip = usize::try_from(offset - table_offset).unwrap_or(usize::MAX);
    let found: Vec<_> = found.into_iter().skip(skip).take(PAGE_SIZE as usize).collect();
    let mut rows = Vec::with_capacity(found.len());
    for integration in integrations {
        let targets: Vec<String> = found
            .iter()
            .filter(|(_, i)| Arc::ptr_eq(i, integration))
            .filter_map(|(r, _)| r.get("sys_target_sys_id").filter(|t| !t.is_empty()).cloned())
            .collect();
        if targets.is_empty() {
            continue;
        }
        let numbers = state.store.display_values(integration.target.clone(), targets).await?;
        rows.push((integration.clone(), numbers));
    }
    let mut out = Vec::with_capacity(found.len());
    for (record, integration) in &found {
        let numbers = rows.iter().find(|(i, _)| Arc::ptr_eq(i, integration)).map(|(_, n)| n);
        let mut outcome = outcome_of(record, "", None)?;
        sluice_core::contract::add_paths(integration, &mut outcome.errors);
        let target_id = outcome.target_sys_id.clone().unwrap_or_default();
        out.push(Row {
            sys_id: outcome.staging_sys_id.as_str().to_owned(),
            received: created(record),
            integration: integration.name().to_owned(),
            state: outcome.state.as_str().to_owned(),
            error: outcome
                .errors
                .first()
                .map(|e| format!("{} {}", e.code.as_str(), e.path.as_deref().unwrap_or(&e.field)))
                .unwrap_or_default(),
            target: numbers.and_then(|n| n.get(&target_id)).cloned().unwrap_or_else(|| target_id.clone()),
            target_href: target_href(integration, &target_id),
        });
    }
    Ok((out, counted))
}
