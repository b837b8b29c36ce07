//! One incident: its fields and the activity stream, field changes (`sys_audit`) and work notes
//! and comments (`sys_journal_field`) merged newest first; a change an import made links to the
//! staging row that caused it. Read-only for now: the edit form is still to come.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use sluice_core::DateTime;
use sluice_core::account::{Access, may};
use sluice_core::query::{self, OrderBy};
use sluice_store::ListQuery;

use super::layout::{self, Frame};
use super::session::Console;
use crate::AppState;

/// Field changes shown at most (the newest).
const MAX_CHANGES: u64 = 500;

pub struct FieldValue {
    pub label: String,
    pub value: String,
}

/// One entry of the activity stream.
pub struct Activity {
    pub when: String,
    pub who: String,
    /// `change`, `work_notes` or `comments`.
    pub kind: String,
    pub field: String,
    pub old: String,
    pub new: String,
    /// The staging row an import change came from.
    pub staging_row: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/incident.html")]
pub struct IncidentPage {
    pub frame: Option<Frame>,
    pub number: String,
    pub short_description: String,
    pub fields: Vec<FieldValue>,
    pub activity: Vec<Activity>,
}

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub async fn page(State(state): State<AppState>, console: Console, Path(sys_id): Path<String>) -> Response {
    if !may(&console.account.roles, "incident", Access::Read) {
        return layout::forbidden(&console);
    }
    let registry = state.registry();
    let (Some(schema), Some(audit)) = (registry.catalog.get("incident"), registry.catalog.get("sys_audit")) else {
        return layout::not_found(&console);
    };
    if !is_sys_id(&sys_id) {
        return layout::not_found(&console);
    }
    let record = match state.store.get(schema.clone(), sys_id.clone()).await {
        Ok(Some(r)) => r,
        Ok(None) => return layout::not_found(&console),
        Err(e) => return layout::unavailable(&e),
    };
    let mut filter = query::parse("", DateTime::now()).unwrap_or_default();
    filter.and_equals("documentkey", &sys_id);
    filter.order_by.push(OrderBy { field: "sys_created_on".into(), descending: true });
    let changes = match state.store.list(audit.clone(), ListQuery { filter, limit: MAX_CHANGES, offset: 0 }).await {
        Ok(p) => p.records,
        Err(e) => return layout::unavailable(&e),
    };
    let journal = match state.store.journal("incident".into(), vec![sys_id.clone()]).await {
        Ok(j) => j,
        Err(e) => return layout::unavailable(&e),
    };
    let get = |r: &sluice_core::Record, f: &str| r.get(f).cloned().unwrap_or_default();
    let mut activity: Vec<Activity> = changes
        .iter()
        .map(|c| {
            let source_table = get(c, "source_table");
            let source_row = get(c, "source_row");
            Activity {
                when: get(c, "sys_created_on"),
                who: get(c, "user"),
                kind: "change".into(),
                field: get(c, "fieldname"),
                old: get(c, "oldvalue"),
                new: get(c, "newvalue"),
                staging_row: (!source_table.is_empty() && is_sys_id(&source_row)).then_some(source_row),
            }
        })
        .chain(journal.into_iter().map(|j| Activity {
            when: j.created_on,
            who: j.created_by,
            kind: j.element.clone(),
            field: j.element,
            old: String::new(),
            new: j.value,
            staging_row: None,
        }))
        .collect();
    // Both are `YYYY-MM-DD hh:mm:ss` text: sorting the text sorts the times.
    activity.sort_by(|a, b| b.when.cmp(&a.when));
    let fields = schema
        .visible_fields()
        .filter(|f| !f.name.starts_with("sys_") || f.name == "sys_created_on" || f.name == "sys_updated_on")
        .map(|f| FieldValue { label: f.label.clone(), value: get(&record, &f.name) })
        .collect();
    IncidentPage {
        frame: Some(Frame::new(&console, "incidents")),
        number: get(&record, "number"),
        short_description: get(&record, "short_description"),
        fields,
        activity,
    }
    .into_response()
}
