//! Prometheus metrics without a metrics library: request counts and latency histograms by route
//! (the matched route template, so label sets stay bounded) and status, and import outcomes by
//! integration. Rendered in the Prometheus text format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    outcomes: BTreeMap<(String, &'static str), u64>,
    lockouts: u64,
    argon2_verifications: u64,
    network_refusals: u64,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

pub fn record_request(method: &str, route: &str, status: u16, latency: Duration) {
    let mut r = registry().lock().expect("metrics");
    *r.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
    let h = r.latency.entry(route.to_owned()).or_default();
    let secs = latency.as_secs_f64();
    for (i, bound) in BUCKETS.iter().enumerate() {
        if secs <= *bound {
            h.counts[i] += 1;
        }
    }
    h.count += 1;
    h.sum += secs;
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
        let route = escape(route);
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                h.counts[i]
            );
        }
        let _ =
            writeln!(out, "sluice_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "sluice_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
        let _ = writeln!(out, "sluice_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
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
    out
}
