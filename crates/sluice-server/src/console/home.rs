//! The home page: what arrived in the last hour, what failed, and which senders went quiet
//! (seen in the last day, not in the last hour), from the shared statistics ([`sluice_store::Stats`]).

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use sluice_core::stats::metric;
use sluice_store::{StatsFilter, StatsTotal};

use super::layout::{self, Frame};
use super::session::{Console, now_ms};
use crate::AppState;

/// One integration's counters over the last hour.
#[derive(Default)]
pub struct Arrivals {
    pub integration: String,
    pub received: i64,
    pub accepted: i64,
    pub failed: i64,
    pub throttled: i64,
}

/// One error code's count over the last hour, per integration.
pub struct Failure {
    pub integration: String,
    pub code: String,
    pub count: i64,
}

pub struct Quiet {
    pub account: String,
    /// Minutes since the account's last request.
    pub minutes_ago: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/home.html")]
pub struct HomePage {
    pub frame: Option<Frame>,
    pub received: i64,
    pub accepted: i64,
    pub failed: i64,
    pub throttled: i64,
    pub arrivals: Vec<Arrivals>,
    pub failures: Vec<Failure>,
    pub quiet: Vec<Quiet>,
}

pub async fn page(State(state): State<AppState>, console: Console) -> Response {
    // The counters of the last second too (a failed flush shows a slightly older picture).
    let _ = state.stats.flush(state.store.as_ref()).await;
    let now = now_ms();
    let minute = now / 60_000;
    let day = match state.store.stats(StatsFilter { since_minute: minute - 24 * 60, ..StatsFilter::default() }).await {
        Ok(t) => t,
        Err(e) => return layout::unavailable(&e),
    };
    let hour_ago = now - 3_600_000;
    let hour = match state.store.stats(StatsFilter { since_minute: minute - 60, ..StatsFilter::default() }).await {
        Ok(t) => t,
        Err(e) => return layout::unavailable(&e),
    };
    let (arrivals, failures) = summarize(&hour);
    let mut page = HomePage {
        frame: Some(Frame::new(&console, "home")),
        received: arrivals.iter().map(|a| a.received).sum(),
        accepted: arrivals.iter().map(|a| a.accepted).sum(),
        failed: arrivals.iter().map(|a| a.failed).sum(),
        throttled: arrivals.iter().map(|a| a.throttled).sum(),
        arrivals,
        failures,
        quiet: quiet_senders(&day, hour_ago, now),
    };
    page.arrivals.retain(|a| !a.integration.is_empty() || a.received > 0);
    page.into_response()
}

fn summarize(totals: &[StatsTotal]) -> (Vec<Arrivals>, Vec<Failure>) {
    let mut by_integration: BTreeMap<&str, Arrivals> = BTreeMap::new();
    let mut failures: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for t in totals {
        let a = by_integration
            .entry(&t.integration)
            .or_insert_with(|| Arrivals { integration: t.integration.clone(), ..Arrivals::default() });
        match t.metric.as_str() {
            metric::RECEIVED => a.received += t.value,
            metric::INSERTED | metric::UPDATED => a.accepted += t.value,
            metric::ERROR => a.failed += t.value,
            metric::THROTTLED => a.throttled += t.value,
            m => {
                if let Some(code) = m.strip_prefix(metric::ERROR_PREFIX) {
                    *failures.entry((&t.integration, code)).or_default() += t.value;
                }
            }
        }
    }
    let arrivals = by_integration.into_values().filter(|a| a.received + a.failed + a.throttled > 0).collect();
    let mut failures: Vec<Failure> = failures
        .into_iter()
        .map(|((integration, code), count)| Failure { integration: integration.into(), code: code.into(), count })
        .collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.count));
    (arrivals, failures)
}

/// Accounts that sent something in the window but nothing since `since_ms`.
fn quiet_senders(totals: &[StatsTotal], since_ms: i64, now_ms: i64) -> Vec<Quiet> {
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for t in totals.iter().filter(|t| t.metric == metric::RECEIVED && !t.account.is_empty()) {
        let seen = last.entry(&t.account).or_insert(t.last_seen);
        *seen = (*seen).max(t.last_seen);
    }
    last.into_iter()
        .filter(|(account, seen)| *seen < since_ms && *account != sluice_core::stats::UNKNOWN_ACCOUNT)
        .map(|(account, seen)| Quiet { account: account.into(), minutes_ago: (now_ms - seen) / 60_000 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(account: &str, integration: &str, metric: &str, value: i64, last_seen: i64) -> StatsTotal {
        StatsTotal {
            account: account.into(),
            integration: integration.into(),
            metric: metric.into(),
            value,
            first_seen: 0,
            last_seen,
        }
    }

    #[test]
    fn arrivals_failures_and_quiet_senders() {
        let totals = vec![
            t("alerts", "u_a", "received", 5, 100),
            t("alerts", "u_a", "inserted", 3, 100),
            t("alerts", "u_a", "error", 2, 100),
            t("alerts", "u_a", "error:required", 2, 100),
            t("desk", "u_b", "received", 1, 10),
        ];
        let (arrivals, failures) = summarize(&totals);
        assert_eq!(arrivals.len(), 2);
        assert_eq!((arrivals[0].received, arrivals[0].accepted, arrivals[0].failed), (5, 3, 2));
        assert_eq!((failures[0].code.as_str(), failures[0].count), ("required", 2));
        let quiet = quiet_senders(&totals, 50, 60_010);
        assert_eq!(quiet.len(), 1);
        assert_eq!((quiet[0].account.as_str(), quiet[0].minutes_ago), ("desk", 1));
    }
}
