//! One staged row: where it came from, its outcome and errors, and its raw payload exactly as
//! received with each failing field's value marked ([`super::json_span`]). Admins can run the
//! integration's current definition on it again: the API's replay ([`Pipeline::replay`]) with
//! this one row selected.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sluice_core::integration::Integration;
use sluice_core::validate::FieldError;
use sluice_core::{Record, SysId};

use super::import_sets::{readable, target_href};
use super::json_span;
use super::layout::{self, Frame};
use super::session::Console;
use crate::AppState;
use crate::html::escape_into;
use crate::pipeline::Pipeline;
use crate::pipeline::replay::ReplayRequest;
use crate::receive::PeerAddr;

pub struct ErrorLine {
    pub code: &'static str,
    pub path: String,
    pub message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/import_row.html")]
pub struct RowPage {
    pub frame: Option<Frame>,
    pub sys_id: String,
    pub csrf: String,
    pub admin: bool,
    pub integration: String,
    pub version: String,
    pub state: String,
    pub received: String,
    pub sender: String,
    pub import_set: String,
    pub target: String,
    pub target_href: Option<String>,
    pub status_message: String,
    pub errors: Vec<ErrorLine>,
    /// The payload HTML-escaped, failing values wrapped in `<mark class="error-path">`.
    pub payload_html: String,
    /// What the last replay did, after its redirect.
    pub notice: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct RowParams {
    /// Rows the replay ran again (1, or 0 when the row's state changed meanwhile).
    #[serde(default)]
    replayed: Option<u64>,
}

/// The staged row with this sys_id and its integration, searched in every integration's staging
/// table (a row's sys_id does not say which). `Err` is the page to answer instead: 404 when no
/// table holds it, 403 when the account may not read the one that does.
async fn find(
    state: &AppState,
    console: &Console,
    peer: Option<std::net::IpAddr>,
    sys_id: &str,
) -> Result<(Arc<Integration>, Record), Response> {
    let readable = readable(state, console, peer);
    if readable.is_empty() {
        return Err(layout::forbidden(console));
    }
    let Ok(id) = SysId::parse(sys_id) else { return Err(layout::not_found(console)) };
    let integrations: Vec<Arc<Integration>> = state.registry().integrations.values().cloned().collect();
    for integration in integrations {
        match state.store.get(integration.staging.clone(), id.as_str().to_owned()).await {
            Ok(Some(row)) if readable.iter().any(|r| Arc::ptr_eq(r, &integration)) => return Ok((integration, row)),
            Ok(Some(_)) => return Err(layout::forbidden(console)),
            Ok(None) => {}
            Err(e) => return Err(layout::unavailable(&e)),
        }
    }
    Err(layout::not_found(console))
}

pub async fn page(
    State(state): State<AppState>,
    console: Console,
    PeerAddr(peer): PeerAddr,
    Path(sys_id): Path<String>,
    Query(params): Query<RowParams>,
) -> Response {
    let (integration, row) = match find(&state, &console, peer, &sys_id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let outcome = match crate::routes::import::staged_outcome(&state, &integration, &row).await {
        Ok(o) => o,
        Err(e) => return layout::unavailable(&e),
    };
    let field = |name: &str| row.get(name).cloned().unwrap_or_default();
    let target_id = outcome.target_sys_id.clone().unwrap_or_default();
    let version = field("sys_integration_version");
    let notice = params.replayed.map(|n| match n {
        0 => "Not replayed: the row's state changed meanwhile.".to_owned(),
        _ => format!("Replayed with version {version}: {}", outcome.state.as_str()),
    });
    let page = RowPage {
        frame: Some(Frame::new(&console, "import_sets")),
        sys_id: outcome.staging_sys_id.as_str().to_owned(),
        csrf: console.session.csrf.clone(),
        admin: console.is_admin(),
        integration: integration.name().to_owned(),
        version,
        state: outcome.state.as_str().to_owned(),
        received: field("sys_created_on"),
        sender: field("sys_created_by"),
        import_set: outcome.import_set.clone(),
        target: outcome.display_value.clone().unwrap_or_else(|| target_id.clone()),
        target_href: target_href(&integration, &target_id),
        status_message: outcome.status_message.clone().unwrap_or_default(),
        payload_html: marked_payload(&field("sys_payload"), &outcome.errors),
        errors: outcome
            .errors
            .iter()
            .map(|e| ErrorLine {
                code: e.code.as_str(),
                path: e.path.clone().unwrap_or_default(),
                message: e.to_string(),
            })
            .collect(),
        notice,
    };
    page.into_response()
}

/// The payload HTML-escaped, each error's value (found by its JSON Pointer) in a
/// `<mark class="error-path" data-path="…">`. Values of one JSON text nest or are apart, so the
/// marks nest properly; a pointer that names nothing (or a payload that is not JSON) marks nothing.
fn marked_payload(payload: &str, errors: &[FieldError]) -> String {
    let mut spans: Vec<(std::ops::Range<usize>, &str)> = errors
        .iter()
        .filter_map(|e| e.path.as_deref())
        .filter_map(|p| json_span::locate(payload, p).map(|span| (span, p)))
        .collect();
    // Outer spans first at the same start; one mark per span.
    spans.sort_by(|(a, _), (b, _)| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    spans.dedup_by(|(a, _), (b, _)| a == b);
    let mut out = String::with_capacity(payload.len() + 64 * spans.len());
    let mut open: Vec<usize> = Vec::new();
    let mut next = spans.iter().peekable();
    for (i, c) in payload.char_indices() {
        while open.last().is_some_and(|end| *end <= i) {
            open.pop();
            out.push_str("</mark>");
        }
        while let Some((span, path)) = next.next_if(|(s, _)| s.start == i) {
            out.push_str("<mark class=\"error-path\" data-path=\"");
            escape_into(&mut out, path);
            out.push_str("\">");
            open.push(span.end);
        }
        escape_into(&mut out, c.encode_utf8(&mut [0; 4]));
    }
    for _ in open {
        out.push_str("</mark>");
    }
    out
}

/// Runs the integration's current definition on this row again (admin, as the API's replay),
/// then shows the row.
pub async fn replay(
    State(state): State<AppState>,
    console: Console,
    PeerAddr(peer): PeerAddr,
    Path(sys_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<super::replay::ReplayForm>,
) -> Response {
    if let Some(refused) = console.refuse_admin_form(&headers, &form.csrf) {
        return refused;
    }
    let (integration, row) = match find(&state, &console, peer, &sys_id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    // The row is replayed from the state it is in; one that left it meanwhile is left alone.
    let row_state = row.get("sys_import_state").map(String::as_str);
    let mut request = match ReplayRequest::parse(row_state, None, console.account.user_name.clone()) {
        Ok(r) => r,
        Err(e) => return layout::message(StatusCode::BAD_REQUEST, "Not replayed", &e.to_string()),
    };
    let Ok(id) = SysId::parse(&sys_id) else { return layout::not_found(&console) };
    request.row = Some(id);
    let registry = state.registry();
    let summary = match Pipeline::of(&state, &registry).replay(&integration, &request, |_| {}).await {
        Ok(s) => s,
        Err(e) => return layout::unavailable(&e),
    };
    tracing::info!(
        integration = %integration.name(),
        version = %integration.definition.version,
        row = %sys_id,
        replayed = summary.replayed,
        account = %console.account.user_name,
        "staged row replayed from the console"
    );
    Redirect::to(&format!("/console/import_sets/rows/{sys_id}?replayed={}", summary.replayed)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::validate::ErrorCode;

    fn error(path: &str) -> FieldError {
        FieldError { code: ErrorCode::InvalidChoice, field: "f".into(), message: "m".into(), path: Some(path.into()) }
    }

    #[test]
    fn marks_failing_values_and_escapes_everything() {
        let payload = r#"{"u_short_description": "<b>&'x'", "u_impact": "9", "a": {"b": 1}}"#;
        let html = marked_payload(payload, &[error("/u_impact"), error("/a"), error("/a/b"), error("/nowhere")]);
        assert_eq!(
            html,
            "{&quot;u_short_description&quot;: &quot;&lt;b&gt;&amp;&#39;x&#39;&quot;, &quot;u_impact&quot;: \
             <mark class=\"error-path\" data-path=\"/u_impact\">&quot;9&quot;</mark>, &quot;a&quot;: \
             <mark class=\"error-path\" data-path=\"/a\">{&quot;b&quot;: \
             <mark class=\"error-path\" data-path=\"/a/b\">1</mark>}</mark>}"
        );
    }

    #[test]
    fn xml_is_shown_escaped_without_marks() {
        let html = marked_payload("<r><u_impact>9</u_impact></r>", &[error("/u_impact")]);
        assert_eq!(html, "&lt;r&gt;&lt;u_impact&gt;9&lt;/u_impact&gt;&lt;/r&gt;");
    }
}
