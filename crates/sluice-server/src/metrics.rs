//! Prometheus metrics without a metrics library: request counts and latency histograms by route
//! (the matched route template, so label sets stay bounded) and status, and import outcomes by
//! integration, forwarding attempts and delivery latency by integration (the outbox's depth is
//! read from the store when scraped: [`render_outbox`]). Rendered in the Prometheus text format
//! at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// From the commit to the upstream's answer: sub-second when healthy, hours across an outage.
const DELIVERY_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0];

struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len()], count: 0, sum: 0.0 }
    }

    fn observe(&mut self, secs: f64) {
        for (i, bound) in self.bounds.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    /// `name_bucket`, `name_sum` and `name_count` lines with one label.
    fn render(&self, out: &mut String, name: &str, label: &str, value: &str) {
        let value = escape(value);
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{label}=\"{value}\",le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{label}=\"{value}\"}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {}", self.count);
    }
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    outcomes: BTreeMap<(String, &'static str), u64>,
    lockouts: u64,
    argon2_verifications: u64,
    network_refusals: u64,
    /// Forwarding attempts by integration and how they ended (`delivered`, `retry`, `dead`).
    deliveries: BTreeMap<(String, &'static str), u64>,
    delivery_latency: BTreeMap<String, Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

pub fn record_request(method: &str, route: &str, status: u16, latency: Duration) {
    let mut r = registry().lock().expect("metrics");
    *r.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
    r.latency.entry(route.to_owned()).or_insert_with(|| Histogram::new(BUCKETS)).observe(latency.as_secs_f64());
}

/// One forwarding attempt's end; `latency` (commit to upstream answer) when it delivered.
pub fn record_delivery(integration: &str, outcome: &'static str, latency: Option<Duration>) {
    let mut r = registry().lock().expect("metrics");
    *r.deliveries.entry((integration.to_owned(), outcome)).or_default() += 1;
    if let Some(latency) = latency {
        r.delivery_latency
            .entry(integration.to_owned())
            .or_insert_with(|| Histogram::new(DELIVERY_BUCKETS))
            .observe(latency.as_secs_f64());
    }
}

pub fn record_outcome(integration: &str, state: &'static str) {
    *registry().lock().expect("metrics").outcomes.entry((integration.to_owned(), state)).or_default() += 1;
}

pub fn record_lockout() {
    registry().lock().expect("metrics").lockouts += 1;
}

/// One argon2 password verification started (the CPU a login costs).
pub fn record_argon2_verification() {
    registry().lock().expect("metrics").argon2_verifications += 1;
}

/// A request refused because its account may not call from the client's address.
pub fn record_network_refusal() {
    registry().lock().expect("metrics").network_refusals += 1;
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render() -> String {
    let r = registry().lock().expect("metrics");
    let mut out = String::new();
    out.push_str("# HELP sluice_http_requests_total HTTP requests by method, route and status.\n");
    out.push_str("# TYPE sluice_http_requests_total counter\n");
    for ((method, route, status), n) in &r.requests {
        let _ = writeln!(
            out,
            "sluice_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
            escape(method),
            escape(route)
        );
    }
    out.push_str("# HELP sluice_http_request_duration_seconds Time to answer, by route.\n");
    out.push_str("# TYPE sluice_http_request_duration_seconds histogram\n");
    for (route, h) in &r.latency {
        h.render(&mut out, "sluice_http_request_duration_seconds", "route", route);
    }
    out.push_str("# HELP sluice_login_lockouts_total Logins locked after repeated failures.\n");
    out.push_str("# TYPE sluice_login_lockouts_total counter\n");
    let _ = writeln!(out, "sluice_login_lockouts_total {}", r.lockouts);
    out.push_str("# HELP sluice_argon2_verifications_total Password verifications run (argon2id).\n");
    out.push_str("# TYPE sluice_argon2_verifications_total counter\n");
    let _ = writeln!(out, "sluice_argon2_verifications_total {}", r.argon2_verifications);
    out.push_str("# HELP sluice_network_refusals_total Requests refused: account used outside its networks.\n");
    out.push_str("# TYPE sluice_network_refusals_total counter\n");
    let _ = writeln!(out, "sluice_network_refusals_total {}", r.network_refusals);
    out.push_str("# HELP sluice_import_rows_total Imported rows by integration and outcome.\n");
    out.push_str("# TYPE sluice_import_rows_total counter\n");
    for ((integration, state), n) in &r.outcomes {
        let _ =
            writeln!(out, "sluice_import_rows_total{{integration=\"{}\",status=\"{state}\"}} {n}", escape(integration));
    }
    out.push_str("# HELP sluice_forward_attempts_total Deliveries to upstreams by integration and outcome.\n");
    out.push_str("# TYPE sluice_forward_attempts_total counter\n");
    for ((integration, outcome), n) in &r.deliveries {
        let _ = writeln!(
            out,
            "sluice_forward_attempts_total{{integration=\"{}\",outcome=\"{outcome}\"}} {n}",
            escape(integration)
        );
    }
    out.push_str("# HELP sluice_forward_delivery_seconds From the commit that queued a record to its delivery.\n");
    out.push_str("# TYPE sluice_forward_delivery_seconds histogram\n");
    for (integration, h) in &r.delivery_latency {
        h.render(&mut out, "sluice_forward_delivery_seconds", "integration", integration);
    }
    out
}

/// The outbox of each forwarding integration, as the store counts it now: rows by state and the
/// age of the oldest pending one.
pub fn render_outbox(out: &mut String, counts: &[(String, sluice_store::outbox::OutboxCounts)], now_ms: i64) {
    out.push_str("# HELP sluice_outbox_rows Outbox rows by integration and state (pending is the depth).\n");
    out.push_str("# TYPE sluice_outbox_rows gauge\n");
    for (integration, c) in counts {
        let integration = escape(integration);
        for (state, n) in [("pending", c.pending), ("delivered", c.delivered), ("dead", c.dead)] {
            let _ = writeln!(out, "sluice_outbox_rows{{integration=\"{integration}\",state=\"{state}\"}} {n}");
        }
    }
    out.push_str("# HELP sluice_outbox_oldest_pending_seconds Age of the oldest undelivered row (0: none).\n");
    out.push_str("# TYPE sluice_outbox_oldest_pending_seconds gauge\n");
    for (integration, c) in counts {
        let age = c.oldest_pending_ms.map_or(0.0, |ms| (now_ms - ms).max(0) as f64 / 1000.0);
        let _ = writeln!(out, "sluice_outbox_oldest_pending_seconds{{integration=\"{}\"}} {age}", escape(integration));
    }
}
