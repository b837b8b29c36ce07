//! The forwarding section of an integration's page: where records go (never the credentials),
//! the outbox now (rows by state, the oldest pending one's age) and the rows that need a look
//! (dead first, then pending), and for admins the retry of dead rows
//! ([`crate::routes::outbox::retry_dead`], what `POST …/outbox/retry` runs, audited alike).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use sluice_core::integration::Integration;
use sluice_store::StoreError;
use sluice_store::outbox::{Delivery, DeliveryFilter, DeliveryState};

use super::layout;
use super::replay::{ReplayForm, admin_form_target};
use super::session::Console;
use crate::AppState;

/// Rows of each state the page lists.
const ROWS: u32 = 20;

pub struct DeliveryRow {
    pub record_sys_id: String,
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt: String,
    pub last_error: String,
    pub upstream_number: String,
    pub updated_on: String,
}

impl DeliveryRow {
    fn of(d: &Delivery) -> Self {
        let time = |ms: i64| sluice_core::DateTime::from_unix_ms(ms).to_string();
        Self {
            record_sys_id: d.record_sys_id.clone(),
            state: d.state.as_str(),
            attempts: d.attempts,
            next_attempt: if d.state == DeliveryState::Pending { time(d.next_attempt_ms) } else { String::new() },
            last_error: d.last_error.clone(),
            upstream_number: d.upstream_number.clone(),
            updated_on: time(d.updated_ms),
        }
    }
}

pub struct ForwardView {
    pub kind: &'static str,
    pub endpoint: String,
    pub auth: String,
    pub concurrency: u32,
    pub busy_rate: u32,
    pub max_attempts: u32,
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    pub oldest_pending: String,
    /// Dead rows, then pending ones, newest change first.
    pub rows: Vec<DeliveryRow>,
}

/// The section of a forwarding integration; `None` for one that does not forward.
pub async fn view(state: &AppState, integration: &Integration) -> Result<Option<ForwardView>, StoreError> {
    let Some(f) = &integration.forward else { return Ok(None) };
    let name = integration.name().to_owned();
    let counts = state.store.outbox_counts(Some(name.clone())).await?;
    let mut rows = Vec::new();
    for wanted in [DeliveryState::Dead, DeliveryState::Pending] {
        let filter = DeliveryFilter { integration: Some(name.clone()), state: Some(wanted), limit: ROWS };
        rows.extend(state.store.deliveries(filter).await?.iter().map(DeliveryRow::of));
    }
    let oldest_pending = counts
        .oldest_pending_ms
        .map(|ms| format!("{} s", (crate::forward::now_ms() - ms).max(0) / 1000))
        .unwrap_or_else(|| "none pending".into());
    Ok(Some(ForwardView {
        kind: f.kind.as_str(),
        endpoint: f.endpoint(),
        auth: f.auth.describe(),
        concurrency: f.concurrency,
        busy_rate: f.busy_rate,
        max_attempts: f.max_attempts,
        pending: counts.pending,
        delivered: counts.delivered,
        dead: counts.dead,
        oldest_pending,
        rows,
    }))
}

/// `POST /console/integrations/{name}/outbox/retry` (admins): queues every dead row again, then
/// back to the page's forwarding section.
pub async fn retry(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ReplayForm>,
) -> Response {
    let integration = match admin_form_target(&state, &console, &headers, &form, &name) {
        Ok(i) => i,
        Err(page) => return *page,
    };
    if integration.forward.is_none() {
        return layout::not_found(&console);
    }
    if let Err(e) = crate::routes::outbox::retry_dead(&state, &console.account.user_name, &name, None).await {
        tracing::error!(integration = %name, error = ?e, "console: dead deliveries could not be queued again");
        return layout::unavailable(&"the dead deliveries could not be queued again");
    }
    Redirect::to(&format!("/console/integrations/{name}#forward-h")).into_response()
}
