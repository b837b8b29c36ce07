//! One incident: its fields and the activity stream, field changes (`sys_audit`) and work notes
//! and comments (`sys_journal_field`) merged newest first; a change an import made links to the
//! staging row that caused it. The form (state, close code and notes, work notes, comments) is
//! written through the Table API's path: [`crate::table_input::parse`] then `Records::write`,
//! so history shows the logged-in account exactly as for an API write.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sluice_core::DateTime;
use sluice_core::account::{Access, may};
use sluice_core::incident::{CLOSE_CODES, STATES};
use sluice_core::query::{self, OrderBy};
use sluice_core::rules::Actor;
use sluice_store::ListQuery;
use sluice_store::{TableWrite, WriteOp, WriteResult};

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
    pub sys_id: String,
    pub csrf: String,
    pub state: String,
    pub close_code: String,
    pub close_notes: String,
    /// A refused save's work note and comment, kept for the next try.
    pub work_notes: String,
    pub comments: String,
    pub states: &'static [(&'static str, &'static str)],
    pub close_codes: &'static [(&'static str, &'static str)],
    /// Why the last save was refused, one line per failing field.
    pub errors: Vec<String>,
    pub number: String,
    pub short_description: String,
    pub fields: Vec<FieldValue>,
    pub activity: Vec<Activity>,
}

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub async fn page(State(state): State<AppState>, console: Console, Path(sys_id): Path<String>) -> Response {
    render(&state, &console, sys_id, None).await
}

/// A save that was refused: why, and what was typed (shown again, not lost).
struct Refused<'a> {
    errors: Vec<String>,
    form: &'a IncidentForm,
}

async fn render(state: &AppState, console: &Console, sys_id: String, refused: Option<Refused<'_>>) -> Response {
    if !may(&console.account.roles, "incident", Access::Read) {
        return layout::forbidden(console);
    }
    let registry = state.registry();
    let (Some(schema), Some(audit)) = (registry.catalog.get("incident"), registry.catalog.get("sys_audit")) else {
        return layout::not_found(console);
    };
    if !is_sys_id(&sys_id) {
        return layout::not_found(console);
    }
    let record = match state.store.get(schema.clone(), sys_id.clone()).await {
        Ok(Some(r)) => r,
        Ok(None) => return layout::not_found(console),
        Err(e) => return layout::unavailable(&e),
    };
    let mut filter = query::parse("", DateTime::now()).unwrap_or_default();
    filter.and_equals("documentkey", &sys_id);
    filter.order_by.push(OrderBy { field: "sys_created_on".into(), descending: true });
    let changes = match state
        .store
        .list(audit.clone(), ListQuery { filter, limit: MAX_CHANGES, offset: 0, count_up_to: None })
        .await
    {
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
    let status = if refused.is_none() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let typed = |value: Option<&String>, field: &str| match value {
        Some(v) if !v.trim().is_empty() => v.clone(),
        _ => get(&record, field),
    };
    let form = refused.as_ref().map(|r| r.form);
    let page = IncidentPage {
        frame: Some(Frame::new(console, "incidents")),
        sys_id,
        csrf: console.session.csrf.clone(),
        state: typed(form.map(|f| &f.state), "state"),
        close_code: typed(form.map(|f| &f.close_code), "close_code"),
        close_notes: typed(form.map(|f| &f.close_notes), "close_notes"),
        work_notes: form.map(|f| f.work_notes.clone()).unwrap_or_default(),
        comments: form.map(|f| f.comments.clone()).unwrap_or_default(),
        states: STATES,
        close_codes: CLOSE_CODES,
        errors: refused.map(|r| r.errors).unwrap_or_default(),
        number: get(&record, "number"),
        short_description: get(&record, "short_description"),
        fields,
        activity,
    };
    (status, page).into_response()
}

#[derive(Deserialize)]
pub struct IncidentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    close_code: String,
    #[serde(default)]
    close_notes: String,
    #[serde(default)]
    work_notes: String,
    #[serde(default)]
    comments: String,
}

/// Saves the form: only the fields given (an empty box changes nothing), through the Table API's
/// parsing and `Records::write` (business rules, audit, journal), as the logged-in account.
pub async fn save(
    State(state): State<AppState>,
    console: Console,
    Path(sys_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<IncidentForm>,
) -> Response {
    if let Some(refused) = console.refuse_form(&headers, &form.csrf) {
        return refused;
    }
    if !may(&console.account.roles, "incident", Access::Write) {
        return layout::forbidden(&console);
    }
    let Some(schema) = state.registry().catalog.get("incident").cloned() else {
        return layout::not_found(&console);
    };
    if !is_sys_id(&sys_id) {
        return layout::not_found(&console);
    }
    let mut body = serde_json::Map::new();
    for (field, value) in [
        ("state", &form.state),
        ("close_code", &form.close_code),
        ("close_notes", &form.close_notes),
        ("work_notes", &form.work_notes),
        ("comments", &form.comments),
    ] {
        if !value.trim().is_empty() {
            body.insert(field.into(), serde_json::Value::String(value.clone()));
        }
    }
    let input = match crate::table_input::parse(&schema, &body, crate::table_input::Choices::AsDeclared) {
        Ok(input) => input,
        Err(problems) => {
            let errors = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
            return render(&state, &console, sys_id, Some(Refused { errors, form: &form })).await;
        }
    };
    let write = TableWrite {
        table: schema,
        op: WriteOp::Update(sys_id.clone()),
        values: input.values,
        journal: input.journal,
        actor: Actor { user_name: console.account.user_name.clone(), sys_id: console.account.sys_id.clone() },
        now: DateTime::now(),
        reason: sluice_store::table_write::REASON,
    };
    match state.store.write(write).await {
        Ok(WriteResult::Written(_)) => Redirect::to(&format!("/console/incidents/{sys_id}")).into_response(),
        Ok(WriteResult::Refused(violation)) => {
            render(&state, &console, sys_id, Some(Refused { errors: vec![violation.to_string()], form: &form })).await
        }
        Ok(WriteResult::NotFound | WriteResult::Deleted) => layout::not_found(&console),
        Err(e) => layout::unavailable(&e),
    }
}
