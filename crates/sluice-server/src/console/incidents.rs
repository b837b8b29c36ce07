//! The incidents list: an encoded-query filter box (the Table API's parser,
//! [`sluice_core::query::parse`], and the store's list), a sort column and pages, and the
//! account's saved filters ([`super::saved_filters`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sluice_core::DateTime;
use sluice_core::account::{Access, may};
use sluice_core::query::{self, OrderBy};
use sluice_store::ListQuery;

use super::layout::{self, Frame};
use super::paging::{Counted, PAGE_SIZE, Pager, Window};
use super::session::Console;
use crate::AppState;

/// The columns shown, which are also the columns one may sort by.
pub const COLUMNS: [(&str, &str); 6] = [
    ("number", "Number"),
    ("short_description", "Short description"),
    ("state", "State"),
    ("priority", "Priority"),
    ("urgency", "Urgency"),
    ("sys_updated_on", "Updated"),
];

#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    pub sysparm_query: String,
    /// A column, `-` before it for descending.
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub page: Option<u64>,
}

pub struct Row {
    pub sys_id: String,
    /// (column label, value): the label heads the value where the table stacks (phone width).
    pub cells: Vec<(&'static str, String)>,
}

pub struct Column {
    pub name: &'static str,
    pub label: &'static str,
    /// Where a click on the heading goes: the same filter sorted by this column (toggling the
    /// direction when it is already the sort).
    pub href: String,
    /// `ascending`, `descending` or `none` (`aria-sort`).
    pub aria_sort: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/incidents.html")]
pub struct ListPage {
    pub frame: Option<Frame>,
    pub csrf: String,
    pub saved: Vec<SavedLink>,
    /// Why "Save this filter as" was refused.
    pub save_error: Option<String>,
    pub sysparm_query: String,
    pub sort: String,
    pub error: Option<String>,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub pager: Pager,
}

/// One of the account's saved filters: its name and the list it opens.
pub struct SavedLink {
    pub id: String,
    pub name: String,
    pub href: String,
}

/// The list's address for a filter and a sort.
pub fn list_href(sysparm_query: &str, sort: &str) -> String {
    format!("/console/incidents?sysparm_query={}&sort={}", encode(sysparm_query), encode(sort))
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A cell as people read it: a choice's label ("In Progress", not "2"), other values as stored.
fn shown(schema: &sluice_core::schema::TableSchema, field: &str, value: Option<&String>) -> String {
    let value = value.cloned().unwrap_or_default();
    let choice = schema.field(field).and_then(|f| f.choices.iter().find(|c| c.value == value));
    choice.map_or(value, |c| c.label.clone())
}

/// The sort asked for, if it names a column: (field, descending).
fn parse_sort(sort: &str) -> Option<(&'static str, bool)> {
    let (field, descending) = match sort.strip_prefix('-') {
        Some(f) => (f, true),
        None => (sort, false),
    };
    COLUMNS.iter().find(|(c, _)| *c == field).map(|(c, _)| (*c, descending))
}

pub async fn list(State(state): State<AppState>, console: Console, Query(params): Query<ListParams>) -> Response {
    render(&state, &console, params, None).await
}

/// The list page; `save_error`: why the filter just posted was not saved.
pub async fn render(state: &AppState, console: &Console, params: ListParams, save_error: Option<String>) -> Response {
    if !may(&console.account.roles, "incident", Access::Read) {
        return layout::forbidden(console);
    }
    let Some(schema) = state.registry().catalog.get("incident").cloned() else {
        return layout::not_found(console);
    };
    let sort = parse_sort(&params.sort);
    let window = Window::of(params.page);
    let mut error = None;
    let mut filter = match query::parse(&params.sysparm_query, DateTime::now()) {
        Ok(f) => f,
        Err(e) => {
            error = Some(format!("The filter could not be read: {e}"));
            query::EncodedQuery::default()
        }
    };
    if let Some((field, descending)) = sort {
        filter.order_by.insert(0, OrderBy { field: field.into(), descending });
    } else if filter.order_by.is_empty() {
        filter.order_by.push(OrderBy { field: "sys_created_on".into(), descending: true });
    }
    // A filter that could not be read lists nothing: the rest of it alone would list more.
    let (records, total) = if error.is_some() {
        (Vec::new(), 0)
    } else {
        match state
            .store
            .list(
                schema.clone(),
                ListQuery { filter, limit: PAGE_SIZE, offset: window.offset, count_up_to: Some(window.count_up_to) },
            )
            .await
        {
            Ok(p) => (p.records, p.total),
            Err(e) => return layout::unavailable(&e),
        }
    };
    let rows = records
        .iter()
        .map(|r| Row {
            sys_id: r.get("sys_id").cloned().unwrap_or_default(),
            cells: COLUMNS.iter().map(|(c, label)| (*label, shown(&schema, c, r.get(*c)))).collect(),
        })
        .collect();
    let columns = COLUMNS
        .iter()
        .map(|(name, label)| {
            let (next_sort, aria_sort) = match sort {
                Some((f, false)) if f == *name => (format!("-{name}"), "ascending"),
                Some((f, true)) if f == *name => ((*name).to_owned(), "descending"),
                _ => ((*name).to_owned(), "none"),
            };
            let href = format!("?sysparm_query={}&sort={}", encode(&params.sysparm_query), encode(&next_sort));
            Column { name, label, href, aria_sort }
        })
        .collect();
    let status = if error.is_some() || save_error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let saved = match super::saved_filters::links(state, console).await {
        Ok(s) => s,
        Err(e) => return layout::unavailable(&e),
    };
    let sort = sort.map(|(f, d)| if d { format!("-{f}") } else { f.to_owned() }).unwrap_or_default();
    let query = format!("?sysparm_query={}&sort={}", encode(&params.sysparm_query), encode(&sort));
    let pager = Pager::new(window, Counted::of(total, window.count_up_to), records.len(), query);
    let page = ListPage {
        frame: Some(Frame::new(console, "incidents")),
        csrf: console.session.csrf.clone(),
        saved,
        save_error,
        sysparm_query: params.sysparm_query,
        sort,
        error,
        columns,
        rows,
        pager,
    };
    (status, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_name_columns_only() {
        assert_eq!(parse_sort("number"), Some(("number", false)));
        assert_eq!(parse_sort("-sys_updated_on"), Some(("sys_updated_on", true)));
        assert_eq!(parse_sort("password_hash"), None);
        assert_eq!(parse_sort(""), None);
        assert_eq!(encode("active=true^ORDERBYnumber"), "active%3Dtrue%5EORDERBYnumber");
    }
}
