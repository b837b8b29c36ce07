//! Request statistics per account and per integration: the counters, the fixed latency buckets
//! and how a summary (totals, errors by code, percentiles, first and last seen) is read back from
//! stored counters. Counters are additive, so every node adds its own and a read sums them.

use std::collections::BTreeMap;

/// Upper bounds of the latency buckets, in milliseconds; a last bucket holds everything slower.
pub const LATENCY_BOUNDS_MS: [u64; 14] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];

/// The account of requests whose credentials name no account (or none at all).
pub const UNKNOWN_ACCOUNT: &str = "(unknown)";

/// Counter names. Errors are counted in `error` and by code in `error:<code>`; latencies in
/// `latency_ms_le:<bound>` (or `latency_ms_le:inf`).
pub mod metric {
    pub const RECEIVED: &str = "received";
    pub const INSERTED: &str = "inserted";
    pub const UPDATED: &str = "updated";
    pub const IGNORED: &str = "ignored";
    pub const SKIPPED: &str = "skipped";
    pub const ERROR: &str = "error";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    pub const THROTTLED: &str = "throttled";
    /// Alerts an Alertmanager left out of its notifications (`truncatedAlerts`), summed.
    pub const TRUNCATED_ALERTS: &str = "truncated_alerts";
    pub const ERROR_PREFIX: &str = "error:";
    pub const LATENCY_PREFIX: &str = "latency_ms_le:";
    /// Forwarding counters (kept apart from the request counters: no request, no `last_seen`):
    /// `forward:delivered`, `forward:retry`, `forward:dead`, and the time from the commit to the
    /// upstream's answer in `forward:latency_ms_le:<bound>`.
    pub const FORWARD_PREFIX: &str = "forward:";
    pub const FORWARD_DELIVERED: &str = "forward:delivered";
    pub const FORWARD_RETRY: &str = "forward:retry";
    pub const FORWARD_DEAD: &str = "forward:dead";
}

/// The forwarding latency counter a delivery `ms` milliseconds after its commit adds to.
pub fn forward_latency_metric(ms: u64) -> String {
    format!("{}{}", metric::FORWARD_PREFIX, latency_metric(ms))
}

/// Whether a counter is a forwarding one ([`ForwardSummary`]), not a request's.
pub fn is_forward_metric(name: &str) -> bool {
    name.starts_with(metric::FORWARD_PREFIX)
}

/// Forwarding totals of one integration over a time window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardSummary {
    pub delivered: u64,
    pub retried: u64,
    pub dead: u64,
    /// Upper bound (ms; `u64::MAX` for the last) → deliveries.
    pub latency_buckets: BTreeMap<u64, u64>,
}

impl ForwardSummary {
    pub fn add(&mut self, name: &str, value: u64) {
        match name {
            metric::FORWARD_DELIVERED => self.delivered += value,
            metric::FORWARD_RETRY => self.retried += value,
            metric::FORWARD_DEAD => self.dead += value,
            _ => {
                if let Some(bound) =
                    name.strip_prefix(metric::FORWARD_PREFIX).and_then(|n| n.strip_prefix(metric::LATENCY_PREFIX))
                {
                    let bound = if bound == "inf" { u64::MAX } else { bound.parse().unwrap_or(u64::MAX) };
                    *self.latency_buckets.entry(bound).or_default() += value;
                }
            }
        }
    }

    pub fn percentiles(&self) -> Percentiles {
        percentiles_of(&self.latency_buckets)
    }
}

/// The latency counter a request of `ms` milliseconds adds to.
pub fn latency_metric(ms: u64) -> String {
    match LATENCY_BOUNDS_MS.iter().find(|b| ms <= **b) {
        Some(bound) => format!("{}{bound}", metric::LATENCY_PREFIX),
        None => format!("{}inf", metric::LATENCY_PREFIX),
    }
}

/// Latency percentiles read from the buckets: each is the upper bound of the bucket that holds
/// it (`None`: slower than the largest bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
}

/// Totals of one account or integration over a time window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub received: u64,
    pub inserted: u64,
    pub updated: u64,
    pub ignored: u64,
    pub skipped: u64,
    pub error: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub unauthorized: u64,
    pub forbidden: u64,
    pub throttled: u64,
    pub truncated_alerts: u64,
    /// Requests per latency bucket bound (`u64::MAX` for the last bucket).
    pub latency_buckets: BTreeMap<u64, u64>,
    /// Unix milliseconds of the first and last request counted.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
}

impl Summary {
    /// Adds one stored counter (its name, value, and first and last time seen).
    pub fn add(&mut self, name: &str, value: u64, first_seen: i64, last_seen: i64) {
        use metric::*;
        match name {
            RECEIVED => self.received += value,
            INSERTED => self.inserted += value,
            UPDATED => self.updated += value,
            IGNORED => self.ignored += value,
            SKIPPED => self.skipped += value,
            ERROR => self.error += value,
            UNAUTHORIZED => self.unauthorized += value,
            FORBIDDEN => self.forbidden += value,
            THROTTLED => self.throttled += value,
            TRUNCATED_ALERTS => self.truncated_alerts += value,
            _ => {
                if let Some(code) = name.strip_prefix(ERROR_PREFIX) {
                    *self.errors_by_code.entry(code.to_owned()).or_default() += value;
                } else if let Some(bound) = name.strip_prefix(LATENCY_PREFIX) {
                    let bound = if bound == "inf" { u64::MAX } else { bound.parse().unwrap_or(u64::MAX) };
                    *self.latency_buckets.entry(bound).or_default() += value;
                }
            }
        }
        if value > 0 {
            self.first_seen = Some(self.first_seen.map_or(first_seen, |f| f.min(first_seen)));
            self.last_seen = Some(self.last_seen.map_or(last_seen, |l| l.max(last_seen)));
        }
    }

    pub fn percentiles(&self) -> Percentiles {
        percentiles_of(&self.latency_buckets)
    }
}

/// Percentiles read from latency buckets (upper bound → count).
fn percentiles_of(buckets: &BTreeMap<u64, u64>) -> Percentiles {
    let total: u64 = buckets.values().sum();
    let at = |p: u64| -> Option<u64> {
        if total == 0 {
            return None;
        }
        // The rank of the p-th percentile: ceil(total * p / 100), at least 1.
        let rank = (total * p).div_ceil(100).max(1);
        let mut seen = 0;
        for (bound, n) in buckets {
            seen += n;
            if seen >= rank {
                return (*bound != u64::MAX).then_some(*bound);
            }
        }
        None
    };
    Percentiles { p50: at(50), p90: at(90), p99: at(99) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_counters_sum_apart_from_requests() {
        let mut f = ForwardSummary::default();
        f.add(metric::FORWARD_DELIVERED, 3);
        f.add(metric::FORWARD_DEAD, 1);
        f.add(&forward_latency_metric(20), 2);
        f.add(&forward_latency_metric(90_000), 1);
        f.add(metric::RECEIVED, 7);
        assert_eq!((f.delivered, f.retried, f.dead), (3, 0, 1));
        assert_eq!(f.percentiles(), Percentiles { p50: Some(25), p90: None, p99: None });
        assert!(is_forward_metric(&forward_latency_metric(1)) && !is_forward_metric(metric::RECEIVED));
    }

    #[test]
    fn latencies_land_in_their_bucket() {
        assert_eq!(latency_metric(0), "latency_ms_le:1");
        assert_eq!(latency_metric(3), "latency_ms_le:5");
        assert_eq!(latency_metric(30_000), "latency_ms_le:30000");
        assert_eq!(latency_metric(30_001), "latency_ms_le:inf");
    }

    #[test]
    fn a_summary_adds_counters_and_reads_percentiles_from_buckets() {
        let mut s = Summary::default();
        s.add("received", 100, 50, 60);
        s.add("received", 0, 1, 1_000);
        s.add("error", 3, 40, 70);
        s.add("error:required", 2, 40, 70);
        s.add("error:required", 1, 40, 70);
        for (ms, n) in [(1, 50), (10, 40), (100, 9), (40_000, 1)] {
            s.add(&latency_metric(ms), n, 50, 60);
        }
        assert_eq!((s.received, s.error), (100, 3));
        assert_eq!(s.errors_by_code["required"], 3);
        assert_eq!((s.first_seen, s.last_seen), (Some(40), Some(70)));
        assert_eq!(s.percentiles(), Percentiles { p50: Some(1), p90: Some(10), p99: Some(100) });
        s.add(&latency_metric(40_000), 10, 50, 60);
        assert_eq!(s.percentiles().p99, None);
        assert_eq!(Summary::default().percentiles(), Percentiles::default());
    }
}
