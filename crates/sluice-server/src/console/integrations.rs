//! The integrations list and one integration's page: its contract (as the API's `show` answers
//! it), the state counts of its staged rows, per-hour charts of the last day from the shared
//! statistics (what `/api/sluice/v1/integrations/{name}/stats` reads), the dry-run form
//! ([`super::dry_run`]), the forwarding outbox ([`super::outbox`]) and, for admins, the replay
//! of its errored rows ([`super::replay`]).
//! Rights as the API's: the accounts an integration names and admins see it; whoever may post
//! to it may dry-run it.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sluice_core::integration::Integration;
use sluice_core::query::EncodedQuery;
use sluice_core::staging::RowState;
use sluice_store::{ListQuery, StatsFilter, StatsTotal};

use super::chart::{Chart, Series, Style};
use super::dry_run::DryRunView;
use super::layout::{self, Frame};
use super::paging::COUNT_UP_TO;
use super::session::{Console, now_ms};
use crate::AppState;
use crate::authenticate::Caller;
use crate::receive::PeerAddr;
use crate::routes::integrations::{contract, visible};
use crate::stats::{Hour, Window, hourly, summarise};

/// Hours the charts cover.
const HOURS: usize = 24;

pub struct ListRow {
    pub name: String,
    pub description: String,
    pub staging_table: String,
    pub version: String,
    pub target_table: String,
    pub accepted: u64,
    pub rejected: u64,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/integrations.html")]
pub struct ListPage {
    pub frame: Option<Frame>,
    pub rows: Vec<ListRow>,
}

/// The statistics an account may read: admins every account's, others their own (as the API).
fn own_numbers(console: &Console) -> impl Fn(&StatsTotal) -> bool + use<> {
    let admin = console.is_admin();
    let me = console.account.user_name.clone();
    move |t| admin || t.account == me
}

pub async fn list(State(state): State<AppState>, console: Console) -> Response {
    let caller = Caller(console.account.clone());
    let registry = state.registry();
    let filter = StatsFilter { since_minute: Window::Hour.since_minute_now(), account: None, integration: None };
    let totals = match state.stats.read(state.store.as_ref(), filter).await {
        Ok(t) => t,
        Err(e) => return layout::unavailable(&e),
    };
    let keep = own_numbers(&console);
    let hour = summarise(totals.iter().filter(|t| keep(t)), |t| &t.integration);
    let rows = registry
        .integrations
        .values()
        .filter(|i| visible(&caller, i))
        .map(|i| {
            let d = &i.definition;
            let s = hour.get(i.name()).cloned().unwrap_or_default();
            ListRow {
                name: d.name.clone(),
                description: d.description.clone(),
                staging_table: d.staging_table.clone(),
                version: d.version.clone(),
                target_table: d.target_table.clone(),
                accepted: s.inserted + s.updated,
                rejected: s.error,
            }
        })
        .collect();
    ListPage { frame: Some(Frame::new(&console, "integrations")), rows }.into_response()
}

/// A field of the contract, each rule as text.
pub struct FieldRow {
    pub name: String,
    pub label: String,
    pub kind: String,
    pub required: bool,
    pub max_length: String,
    pub choices: String,
    pub default: String,
    pub pattern: String,
    pub source: String,
}

pub struct Count {
    pub state: &'static str,
    pub count: u64,
    /// The count as the page says it ("more than 1000" past the bound).
    pub shown: String,
}

/// A chart with its numbers as a table (for screen readers and without SVG).
pub struct ChartView {
    pub id: &'static str,
    pub heading: &'static str,
    pub svg: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/integration.html")]
pub struct IntegrationPage {
    pub frame: Option<Frame>,
    pub csrf: String,
    pub name: String,
    pub description: String,
    pub version: String,
    pub staging_table: String,
    pub target_table: String,
    pub transform_map: String,
    pub contact: String,
    /// The `[signature]` settings of a signed sender (never its secret).
    pub signature: Option<SignatureView>,
    /// The contract, counts and charts: for the accounts that may see the integration.
    pub visible: bool,
    pub fields: Vec<FieldRow>,
    pub counts: Vec<Count>,
    pub errors: String,
    pub charts: Vec<ChartView>,
    pub payload: String,
    pub dry_run: Option<DryRunView>,
    pub dry_run_alert: Option<String>,
    pub admin: bool,
    /// Where records are forwarded and the outbox now ([`super::outbox`]).
    pub forward: Option<super::outbox::ForwardView>,
}

/// How a signed sender signs, as the page shows it.
pub struct SignatureView {
    pub header: String,
    pub prefix: String,
    pub timestamp_header: String,
    pub tolerance_seconds: u64,
    pub account: String,
    pub required: bool,
}

impl SignatureView {
    fn of(s: &sluice_core::integration::Signature) -> Self {
        Self {
            header: s.header.clone(),
            prefix: s.prefix.clone(),
            timestamp_header: s.timestamp_header.clone().unwrap_or_default(),
            tolerance_seconds: s.tolerance.as_secs(),
            account: s.account.clone(),
            required: s.required,
        }
    }
}

/// The integration by name if this account may see it or post to it; with whether it may see it.
pub fn find(
    state: &AppState,
    console: &Console,
    peer: Option<std::net::IpAddr>,
    name: &str,
) -> Option<(Arc<Integration>, bool)> {
    let caller = Caller(console.account.clone());
    let integration = state.registry().integrations.values().find(|i| i.name() == name).cloned()?;
    if visible(&caller, &integration) {
        return Some((integration, true));
    }
    crate::routes::publish::postable(state, &caller, peer, name).ok().map(|i| (i, false))
}

pub async fn page(
    State(state): State<AppState>,
    console: Console,
    PeerAddr(peer): PeerAddr,
    Path(name): Path<String>,
) -> Response {
    let Some((integration, visible)) = find(&state, &console, peer, &name) else {
        return layout::not_found(&console);
    };
    render(&state, &console, &integration, visible, String::new(), None, None).await
}

/// A contract or answer value as text: nothing for null, lists joined with commas.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn fields(integration: &Integration) -> Vec<FieldRow> {
    let contract = contract(integration);
    let Some(fields) = contract["fields"].as_array() else { return Vec::new() };
    fields
        .iter()
        .map(|f| FieldRow {
            name: text(&f["name"]),
            label: text(&f["label"]),
            kind: text(&f["type"]),
            required: f["required"].as_bool().unwrap_or(false),
            max_length: text(&f["max_length"]),
            choices: text(&f["choices"]),
            default: text(&f["default"]),
            pattern: text(&f["pattern"]),
            source: text(&f["source"]),
        })
        .collect()
}

/// The number of staged rows in each state (the store's count, as a replay counts its rows),
/// the six counts read side by side.
async fn counts(state: &AppState, integration: &Integration) -> Result<Vec<Count>, sluice_store::StoreError> {
    let mut reads = tokio::task::JoinSet::new();
    for (at, row_state) in RowState::ALL.into_iter().enumerate() {
        let (store, staging) = (state.store.clone(), integration.staging.clone());
        reads.spawn(async move {
            let mut filter = EncodedQuery::default();
            filter.and_equals("sys_import_state", row_state.as_str());
            let query = ListQuery { filter, limit: 0, offset: 0, count_up_to: Some(COUNT_UP_TO) };
            (at, store.list(staging, query).await.map(|page| page.total))
        });
    }
    let mut totals = [0; RowState::ALL.len()];
    while let Some(read) = reads.join_next().await {
        let (at, total) = read.map_err(|e| sluice_store::StoreError::Database(sluice_store::DatabaseError::new(e)))?;
        totals[at] = total?;
    }
    Ok(RowState::ALL
        .into_iter()
        .zip(totals)
        .map(|(row_state, total)| {
            let shown = super::paging::bounded(total, COUNT_UP_TO);
            Count { state: row_state.as_str(), count: total.min(COUNT_UP_TO), shown }
        })
        .collect())
}

fn hour_label(start_minute: i64) -> String {
    let minute_of_day = start_minute.rem_euclid(24 * 60);
    format!("{:02}:00", minute_of_day / 60)
}

/// The two charts: rows per hour (accepted, rejected, throttled) and latency per hour.
fn charts(hours: &[Hour]) -> Vec<ChartView> {
    let labels: Vec<String> = hours.iter().map(|h| hour_label(h.start_minute)).collect();
    let accepted: Vec<Option<u64>> = hours.iter().map(|h| Some(h.summary.inserted + h.summary.updated)).collect();
    let rejected: Vec<Option<u64>> = hours.iter().map(|h| Some(h.summary.error)).collect();
    let throttled: Vec<Option<u64>> = hours.iter().map(|h| Some(h.summary.throttled)).collect();
    let rows_chart = Chart {
        title: "Rows per hour, last 24 hours (UTC)".into(),
        x_axis: "Hour (UTC)".into(),
        y_axis: "Rows".into(),
        unit: String::new(),
        x_labels: labels.clone(),
        series: vec![
            Series { label: "Accepted (inserted or updated)".into(), style: Style::Solid, values: accepted.clone() },
            Series { label: "Rejected (error)".into(), style: Style::Dashed, values: rejected.clone() },
            Series { label: "Throttled".into(), style: Style::Dotted, values: throttled.clone() },
        ],
    };
    let percentiles: Vec<_> = hours.iter().map(|h| h.summary.percentiles()).collect();
    let p50: Vec<Option<u64>> = percentiles.iter().map(|p| p.p50).collect();
    let p90: Vec<Option<u64>> = percentiles.iter().map(|p| p.p90).collect();
    let latency_chart = Chart {
        title: "Latency per hour, last 24 hours (UTC), bucket upper bounds".into(),
        x_axis: "Hour (UTC)".into(),
        y_axis: "Milliseconds".into(),
        unit: " ms".into(),
        x_labels: labels.clone(),
        series: vec![
            Series { label: "p50 (median)".into(), style: Style::Solid, values: p50.clone() },
            Series { label: "p90".into(), style: Style::Dashed, values: p90.clone() },
        ],
    };
    let cell = |v: &Option<u64>| v.map_or_else(|| "–".to_owned(), |v| v.to_string());
    let rows_table = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), [&accepted, &rejected, &throttled].iter().map(|s| cell(&s[i])).collect()))
        .collect();
    let latency_table =
        labels.iter().enumerate().map(|(i, l)| (l.clone(), vec![cell(&p50[i]), cell(&p90[i])])).collect();
    vec![
        ChartView {
            id: "rows-chart",
            heading: "Rows per hour",
            svg: rows_chart.svg(),
            columns: vec!["Accepted".into(), "Rejected".into(), "Throttled".into()],
            rows: rows_table,
        },
        ChartView {
            id: "latency-chart",
            heading: "Latency per hour",
            svg: latency_chart.svg(),
            columns: vec!["p50 (ms)".into(), "p90 (ms)".into()],
            rows: latency_table,
        },
    ]
}

/// The integration's page, with a dry run's answer or alert when there is one.
pub async fn render(
    state: &AppState,
    console: &Console,
    integration: &Integration,
    visible: bool,
    payload: String,
    dry_run: Option<DryRunView>,
    dry_run_alert: Option<String>,
) -> Response {
    let d = &integration.definition;
    let mut page = IntegrationPage {
        frame: Some(Frame::new(console, "integrations")),
        csrf: console.session.csrf.clone(),
        name: d.name.clone(),
        description: d.description.clone(),
        version: d.version.clone(),
        staging_table: d.staging_table.clone(),
        target_table: d.target_table.clone(),
        transform_map: d.transform.name.clone(),
        contact: d
            .contact
            .as_ref()
            .map(|c| {
                [Some(c.name.as_str()), c.email.as_deref(), c.phone.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        signature: integration.signature.as_ref().map(SignatureView::of),
        visible,
        fields: Vec::new(),
        counts: Vec::new(),
        errors: "0".into(),
        charts: Vec::new(),
        payload,
        dry_run,
        dry_run_alert,
        admin: console.is_admin(),
        forward: None,
    };
    if visible {
        page.fields = fields(integration);
        // The counts and the hours are read side by side: two databases reads, one wait.
        let keep = own_numbers(console);
        let (counts, hours) = tokio::join!(
            counts(state, integration),
            hourly(&state.stats, state.store.as_ref(), integration.name(), keep, HOURS, now_ms())
        );
        page.counts = match counts {
            Ok(c) => c,
            Err(e) => return layout::unavailable(&e),
        };
        let errored = page.counts.iter().find(|c| c.state == RowState::Error.as_str());
        page.errors = errored.map_or_else(|| "0".into(), |c| c.shown.clone());
        let hours = match hours {
            Ok(h) => h,
            Err(e) => return layout::unavailable(&e),
        };
        page.charts = charts(&hours);
        page.forward = match super::outbox::view(state, integration).await {
            Ok(v) => v,
            Err(e) => return layout::unavailable(&e),
        };
    }
    let status = if page.dry_run_alert.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (status, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_labelled_in_utc() {
        assert_eq!(hour_label(0), "00:00");
        assert_eq!(hour_label(13 * 60), "13:00");
        assert_eq!(hour_label(25 * 60), "01:00");
    }
}
