//! Request statistics, kept in the database so every node and every page sees the same numbers.
//! Each node adds its requests to in-memory deltas per (minute, account, integration, counter)
//! and flushes them every second as additive upserts ([`Stats::add_stats`]); reads sum the
//! stored minutes of a window. A read first flushes this node's pending deltas, so what it
//! answers includes every request this node has finished.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::datetime::now_ms;
use sluice_core::staging::RowState;
use sluice_core::stats::{Summary, metric};
use sluice_core::validate::FieldError;
use sluice_store::{Stats, StatsDelta, StatsFilter, StatsTotal, StoreError};

/// How often pending deltas are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Most distinct pending keys before new ones are dropped (the database is down for long).
const MAX_PENDING: usize = 200_000;

/// The counters one imported row adds to: its outcome and, for an error, each distinct code.
pub fn row_metrics(state: RowState, errors: &[FieldError]) -> Vec<String> {
    let name = match state {
        RowState::Inserted => metric::INSERTED,
        RowState::Updated => metric::UPDATED,
        RowState::Ignored => metric::IGNORED,
        RowState::Skipped => metric::SKIPPED,
        RowState::Error => metric::ERROR,
        RowState::Pending => return Vec::new(),
    };
    let mut codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    std::iter::once(name.to_owned()).chain(codes.into_iter().map(|c| format!("{}{c}", metric::ERROR_PREFIX))).collect()
}

/// One finished request: whom it is counted for and which counters it adds one to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub account: String,
    /// The integration's name, or empty.
    pub integration: String,
    pub metrics: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    minute: i64,
    account: String,
    integration: String,
    metric: String,
}

#[derive(Clone, Copy)]
struct Cell {
    value: i64,
    first_seen: i64,
    last_seen: i64,
}

#[derive(Default)]
pub struct StatsRecorder {
    pending: Mutex<HashMap<Key, Cell>>,
    /// One flush at a time: a read that flushes waits for a periodic flush in progress, so it
    /// never misses deltas that were taken but not yet written.
    flushing: tokio::sync::Mutex<()>,
}

impl StatsRecorder {
    pub fn record(&self, event: &Event) {
        self.record_at(event, now_ms());
    }

    /// Adds `amount` to one counter (e.g. the alerts a sender left out of its body).
    pub fn record_amount(&self, account: &str, integration: &str, metric: &str, amount: u64) {
        let at_ms = now_ms();
        let key = Key {
            minute: at_ms.div_euclid(60_000),
            account: account.to_owned(),
            integration: integration.to_owned(),
            metric: metric.to_owned(),
        };
        let amount = i64::try_from(amount).unwrap_or(i64::MAX);
        self.add_at(&mut self.pending.lock().expect("statistics"), key, amount, at_ms);
    }

    fn record_at(&self, event: &Event, at_ms: i64) {
        let minute = at_ms.div_euclid(60_000);
        let mut pending = self.pending.lock().expect("statistics");
        for name in &event.metrics {
            let key = Key {
                minute,
                account: event.account.clone(),
                integration: event.integration.clone(),
                metric: name.clone(),
            };
            if !self.add_at(&mut pending, key, 1, at_ms) {
                return;
            }
        }
    }

    /// `false`: dropped (too many pending keys).
    fn add_at(&self, pending: &mut HashMap<Key, Cell>, key: Key, amount: i64, at_ms: i64) -> bool {
        if pending.len() >= MAX_PENDING && !pending.contains_key(&key) {
            tracing::warn!("statistics not flushed for long: dropping new counters");
            return false;
        }
        let cell = pending.entry(key).or_insert(Cell { value: 0, first_seen: at_ms, last_seen: at_ms });
        cell.value = cell.value.saturating_add(amount);
        cell.first_seen = cell.first_seen.min(at_ms);
        cell.last_seen = cell.last_seen.max(at_ms);
        true
    }

    fn put_back(&self, deltas: Vec<StatsDelta>) {
        let mut pending = self.pending.lock().expect("statistics");
        for d in deltas {
            let key = Key { minute: d.minute, account: d.account, integration: d.integration, metric: d.metric };
            let cell =
                pending.entry(key).or_insert(Cell { value: 0, first_seen: d.first_seen, last_seen: d.last_seen });
            cell.value += d.value;
            cell.first_seen = cell.first_seen.min(d.first_seen);
            cell.last_seen = cell.last_seen.max(d.last_seen);
        }
    }

    /// Writes the pending deltas; on failure they are kept for the next flush.
    pub async fn flush(&self, store: &dyn Stats) -> Result<(), StoreError> {
        let _one_at_a_time = self.flushing.lock().await;
        let deltas: Vec<StatsDelta> = std::mem::take(&mut *self.pending.lock().expect("statistics"))
            .into_iter()
            .map(|(k, c)| StatsDelta {
                minute: k.minute,
                account: k.account,
                integration: k.integration,
                metric: k.metric,
                value: c.value,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
            })
            .collect();
        if deltas.is_empty() {
            return Ok(());
        }
        match store.add_stats(deltas.clone()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.put_back(deltas);
                Err(e)
            }
        }
    }

    /// Flushes this node's deltas, then sums the stored counters.
    pub async fn read(&self, store: &dyn Stats, filter: StatsFilter) -> Result<Vec<StatsTotal>, StoreError> {
        self.flush(store).await?;
        store.stats(filter).await
    }
}

/// Flushes every [`FLUSH_EVERY`] until aborted ([`crate::startup::Application`] stops it and
/// flushes once more after the last request).
pub fn spawn_flusher(stats: Arc<StatsRecorder>, store: Arc<dyn Stats>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = stats.flush(store.as_ref()).await {
                tracing::warn!(error = %e, "statistics flush failed; kept for the next one");
            }
        }
    })
}

/// A time window of the statistics endpoints and `sluice stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Hour,
    Day,
    Week,
    All,
}

impl Window {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "1h" => Some(Self::Hour),
            "24h" => Some(Self::Day),
            "7d" => Some(Self::Week),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::All => "all",
        }
    }

    /// The first minute counted (whole minutes: a window may reach up to a minute further back).
    pub fn since_minute(self, now_ms: i64) -> i64 {
        let minutes = match self {
            Self::Hour => 60,
            Self::Day => 24 * 60,
            Self::Week => 7 * 24 * 60,
            Self::All => return 0,
        };
        now_ms.div_euclid(60_000) - minutes + 1
    }

    pub fn since_minute_now(self) -> i64 {
        self.since_minute(now_ms())
    }
}

/// Sums stored totals into one summary per key (`by` picks the account or the integration).
pub fn summarise<'a>(
    totals: impl IntoIterator<Item = &'a StatsTotal>,
    by: impl Fn(&StatsTotal) -> &str,
) -> std::collections::BTreeMap<String, Summary> {
    let mut out = std::collections::BTreeMap::<String, Summary>::new();
    // Forwarding counters are no request's ([`forward_summary`]).
    for t in totals.into_iter().filter(|t| !sluice_core::stats::is_forward_metric(&t.metric)) {
        out.entry(by(t).to_owned()).or_default().add(&t.metric, t.value.max(0) as u64, t.first_seen, t.last_seen);
    }
    out
}

/// One hour of an integration's statistics: the unix minute it starts at and its totals.
pub struct Hour {
    pub start_minute: i64,
    pub summary: Summary,
}

/// The last `hours` hours of one integration (the last is the hour in progress), oldest first,
/// counting the totals `keep` lets through, from one read of the store's sums per hour.
pub async fn hourly(
    recorder: &StatsRecorder,
    store: &dyn Stats,
    integration: &str,
    keep: impl Fn(&StatsTotal) -> bool,
    hours: usize,
    now_ms: i64,
) -> Result<Vec<Hour>, StoreError> {
    let this_hour = now_ms.div_euclid(3_600_000) * 60;
    let starts: Vec<i64> = (0..hours).rev().map(|back| this_hour - 60 * back as i64).collect();
    let Some(&first) = starts.first() else { return Ok(Vec::new()) };
    // One flush for the counters waiting (a durable write), then one read grouped by hour.
    recorder.flush(store).await?;
    let filter = StatsFilter { since_minute: first, account: None, integration: Some(integration.to_owned()) };
    let mut summaries: HashMap<i64, Summary> = starts.iter().map(|start| (*start, Summary::default())).collect();
    let hours = store.stats_per_hour(filter).await?;
    for hour in hours.iter().filter(|h| keep(&h.total) && !sluice_core::stats::is_forward_metric(&h.total.metric)) {
        if let Some(summary) = summaries.get_mut(&hour.start_minute) {
            summary.add(&hour.total.metric, hour.total.value.max(0) as u64, 0, 0);
        }
    }
    Ok(starts
        .iter()
        .map(|start| Hour { start_minute: *start, summary: summaries.remove(start).unwrap_or_default() })
        .collect())
}

/// The forwarding counters among `totals`, summed.
pub fn forward_summary<'a>(totals: impl IntoIterator<Item = &'a StatsTotal>) -> sluice_core::stats::ForwardSummary {
    let mut out = sluice_core::stats::ForwardSummary::default();
    for t in totals.into_iter().filter(|t| sluice_core::stats::is_forward_metric(&t.metric)) {
        out.add(&t.metric, t.value.max(0) as u64);
    }
    out
}

/// A forwarding summary and the outbox now, as the API answers them.
pub fn forward_json(
    f: &sluice_core::stats::ForwardSummary,
    outbox: &sluice_store::outbox::OutboxCounts,
) -> serde_json::Value {
    let p = f.percentiles();
    let mut out = serde_json::json!({
        "delivered": f.delivered, "retried": f.retried, "dead_lettered": f.dead,
        "delivery_latency_ms": {"p50": p.p50, "p90": p.p90, "p99": p.p99},
    });
    out["outbox"] = crate::routes::outbox::counts_json(outbox);
    out
}

/// A summary as the API answers it.
pub fn summary_json(s: &Summary) -> serde_json::Value {
    let time = |ms: Option<i64>| ms.map(|ms| sluice_core::DateTime::from_unix_ms(ms).to_string());
    let p = s.percentiles();
    serde_json::json!({
        "received": s.received,
        "inserted": s.inserted,
        "updated": s.updated,
        "ignored": s.ignored,
        "skipped": s.skipped,
        "error": s.error,
        "errors_by_code": s.errors_by_code,
        "unauthorized": s.unauthorized,
        "forbidden": s.forbidden,
        "throttled": s.throttled,
        "truncated_alerts": s.truncated_alerts,
        "latency_ms": {"p50": p.p50, "p90": p.p90, "p99": p.p99},
        "first_seen": time(s.first_seen),
        "last_seen": time(s.last_seen),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_start_at_whole_minutes() {
        let now = 10 * 60_000 * 60 * 24 + 30_000;
        assert_eq!(Window::All.since_minute(now), 0);
        assert_eq!(Window::Hour.since_minute(now), now / 60_000 - 59);
        assert_eq!(Window::parse("7d"), Some(Window::Week));
        assert_eq!(Window::parse("2h"), None);
    }

    #[test]
    fn events_add_up_per_minute_and_key() {
        let r = StatsRecorder::default();
        let e = Event { account: "a".into(), integration: "i".into(), metrics: vec!["received".into()] };
        r.record_at(&e, 60_000);
        r.record_at(&e, 119_999);
        r.record_at(&e, 120_000);
        let pending = r.pending.lock().unwrap();
        assert_eq!(pending.len(), 2);
        let first = pending.iter().find(|(k, _)| k.minute == 1).unwrap().1;
        assert_eq!((first.value, first.first_seen, first.last_seen), (2, 60_000, 119_999));
    }

    /// A statistics store that refuses its first write, then keeps what it is given: the only
    /// concern the recorder needs, faked to show what a failed flush does.
    #[derive(Default)]
    struct FlakyStats {
        refused: std::sync::atomic::AtomicBool,
        written: Mutex<Vec<StatsDelta>>,
    }

    #[sluice_store::async_trait]
    impl Stats for FlakyStats {
        async fn add_stats(&self, deltas: Vec<StatsDelta>) -> Result<(), StoreError> {
            if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Busy);
            }
            self.written.lock().unwrap().extend(deltas);
            Ok(())
        }

        async fn stats(&self, _: StatsFilter) -> Result<Vec<StatsTotal>, StoreError> {
            Ok(Vec::new())
        }

        async fn stats_per_hour(&self, _: StatsFilter) -> Result<Vec<sluice_store::HourTotal>, StoreError> {
            Ok(Vec::new())
        }

        async fn purge_stats(&self, _: i64) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    #[tokio::test]
    async fn hours_are_summed_per_hour_by_a_real_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = sluice_sqlite::SqliteStore::open(dir.path(), sluice_sqlite::SqliteOptions::default()).unwrap();
        // Now is 10:30; counters at 08:05 and 08:59 (one hour), 10:01 (the hour in progress),
        // another integration at 09:00 and another account at 10:10.
        let now_ms = (10 * 60 + 30) * 60_000 + 24 * 3_600_000;
        let day = 24 * 60;
        let delta = |minute: i64, account: &str, integration: &str, metric: &str, value: i64| StatsDelta {
            minute: day + minute,
            account: account.into(),
            integration: integration.into(),
            metric: metric.into(),
            value,
            first_seen: 0,
            last_seen: 0,
        };
        store
            .add_stats(vec![
                delta(8 * 60 + 5, "a", "u_x", "inserted", 2),
                delta(8 * 60 + 59, "a", "u_x", "inserted", 3),
                delta(8 * 60 + 59, "a", "u_x", "latency_ms_le:10", 5),
                delta(9 * 60, "a", "u_other", "inserted", 7),
                delta(10 * 60 + 1, "a", "u_x", "error", 1),
                delta(10 * 60 + 10, "b", "u_x", "error", 4),
            ])
            .await
            .unwrap();
        let recorder = StatsRecorder::default();
        let hours = hourly(&recorder, &store, "u_x", |_| true, 3, now_ms).await.unwrap();
        let starts: Vec<i64> = hours.iter().map(|h| h.start_minute - day).collect();
        assert_eq!(starts, vec![8 * 60, 9 * 60, 10 * 60], "oldest first, the last is this hour");
        assert_eq!((hours[0].summary.inserted, hours[0].summary.percentiles().p50), (5, Some(10)));
        assert_eq!(hours[1].summary, Summary::default(), "the other integration is not counted");
        assert_eq!(hours[2].summary.error, 5);
        let only_a = hourly(&recorder, &store, "u_x", |t| t.account == "a", 3, now_ms).await.unwrap();
        assert_eq!(only_a[2].summary.error, 1, "the totals kept are the ones counted");
        let none = hourly(&recorder, &store, "u_x", |_| true, 0, now_ms).await.unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn a_failed_flush_keeps_the_counters_for_the_next_one() {
        let r = StatsRecorder::default();
        let store = FlakyStats::default();
        let e = Event { account: "a".into(), integration: "i".into(), metrics: vec!["received".into()] };
        r.record_at(&e, 60_000);
        assert!(matches!(r.flush(&store).await, Err(StoreError::Busy)));
        r.record_at(&e, 61_000);
        r.flush(&store).await.expect("the second flush is written");
        let written = store.written.lock().unwrap().clone();
        assert_eq!(written.len(), 1, "{written:?}");
        assert_eq!((written[0].value, written[0].first_seen, written[0].last_seen), (2, 60_000, 61_000));
        r.flush(&store).await.expect("nothing left to flush");
        assert_eq!(store.written.lock().unwrap().len(), 1);
    }
}
