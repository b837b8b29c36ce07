//! Forwarding: records that integrations with a `[forward]` table commit are queued in the
//! outbox in the commit's own transaction (`sluice_store::settle`); this worker delivers them.
//! Per forwarding integration (a lane) and node: at most `concurrency` deliveries in flight,
//! each row leased first (so across nodes only one delivers it), the record read as it is now,
//! sent ([`upstream`]), and the row finished as delivered, to retry after a backoff, or dead
//! ([`retry`]). Failures that blame the upstream open the lane's circuit breaker. The upstream's
//! number and sys_id are written onto the local record (with history) in the transaction that
//! finishes the row; a crash before it only repeats an idempotent delivery. See
//! docs/forwarding.md.

pub mod retry;
pub mod upstream;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::integration::Integration;
use sluice_core::rules::Actor;
use sluice_core::stats::metric;
use sluice_core::{DateTime, SysId, tables};
use sluice_store::outbox::{Claim, Delivery, Finish, Finished};
use sluice_store::{Store, StoreError, TableWrite, WriteOp};
use tokio::task::JoinSet;

use crate::AppState;
use retry::{Allowance, Breaker, Pace};
use upstream::{Attempt, Upstream};

pub use sluice_core::datetime::now_ms;

/// How often an idle worker looks for due rows (rows queued by other nodes, retries come due).
pub const POLL: Duration = Duration::from_millis(200);

/// Who history names for the upstream's number and sys_id written onto a record.
pub const ACTOR: &str = "system";

/// One forwarding integration on this node.
struct Lane {
    /// The definition this lane was built from: a reload that changes it builds a new client.
    integration: Arc<Integration>,
    upstream: Arc<Upstream>,
    breaker: Breaker,
    /// Deliveries started while the node is busy with senders.
    pace: Pace,
    in_flight: u32,
}

/// How one delivery task ended, for the lane's breaker.
enum Verdict {
    Delivered,
    /// The upstream is in trouble (network, timeout, 5xx, 429).
    Troubled,
    /// This record was refused, or the attempt never reached the upstream.
    Neutral,
}

/// Starts the worker; it runs until aborted (deliveries in flight are abandoned, their leases
/// expire and another attempt repeats them).
pub fn spawn_forwarder(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // One owner name per process: leases this node holds.
        let owner = format!("node-{}", SysId::generate());
        let mut lanes: HashMap<String, Lane> = HashMap::new();
        let mut tasks: JoinSet<(String, Verdict)> = JoinSet::new();
        loop {
            let registry = state.registry();
            for integration in registry.integrations.values() {
                let Some(forward) = &integration.forward else { continue };
                let name = integration.name().to_owned();
                let stale = lanes.get(&name).is_none_or(|l| !Arc::ptr_eq(&l.integration, integration));
                if stale {
                    let upstream = match Upstream::new(forward.clone()) {
                        Ok(u) => Arc::new(u),
                        Err(e) => {
                            tracing::error!(integration = %name, error = %e, "forwarding: cannot build the HTTP client");
                            continue;
                        }
                    };
                    let in_flight = lanes.get(&name).map_or(0, |l| l.in_flight);
                    let breaker = Breaker::new(forward.breaker_failures, forward.breaker_cooldown);
                    let pace = Pace::new(forward.busy_rate, forward.concurrency);
                    lanes.insert(
                        name.clone(),
                        Lane { integration: integration.clone(), upstream, breaker, pace, in_flight },
                    );
                }
                let lane = lanes.get_mut(&name).expect("inserted above");
                let free = forward.concurrency.saturating_sub(lane.in_flight);
                // Leases come in batches: one claim per half of the slots, not one per delivery
                // (each claim is a write, and under load the writer is what senders wait for).
                if lane.in_flight > 0 && free * 2 < forward.concurrency {
                    continue;
                }
                let now = Instant::now();
                let mut limit = match lane.breaker.allowance(now) {
                    Allowance::All => free,
                    Allowance::One => free.min(1),
                    Allowance::Wait => 0,
                };
                // Senders waiting on this node come first: a delivery costs a record read, a
                // request and a write on the same cores (docs/forwarding.md, "Under load").
                if state.load.busy() {
                    limit = lane.pace.take(limit, now);
                } else {
                    lane.pace.idle();
                }
                if limit == 0 {
                    continue;
                }
                // Long enough for a Table API lookup and the write, each within the timeout.
                let lease_ms = (forward.timeout.as_millis() as i64) * 2 + 5_000;
                let claim =
                    Claim { owner: owner.clone(), now_ms: now_ms(), lease_ms, limit, integration: Some(name.clone()) };
                let claimed = match state.store.claim_deliveries(claim).await {
                    Ok(rows) => rows,
                    Err(StoreError::Closed) => return,
                    Err(e) => {
                        tracing::warn!(integration = %name, error = %e, "forwarding: due rows could not be leased");
                        continue;
                    }
                };
                if lane.breaker.is_open() && !claimed.is_empty() {
                    lane.breaker.start_trial();
                }
                for delivery in claimed {
                    lane.in_flight += 1;
                    let job = Job {
                        store: state.store.clone(),
                        stats: state.stats.clone(),
                        upstream: lane.upstream.clone(),
                        integration: integration.clone(),
                        owner: owner.clone(),
                    };
                    tasks.spawn(async move { (job.integration.name().to_owned(), job.run(delivery).await) });
                }
            }
            lanes.retain(|name, lane| lane.in_flight > 0 || registry.integrations.values().any(|i| i.name() == name));
            tokio::select! {
                Some(done) = tasks.join_next() => {
                    let Ok((name, verdict)) = done else { continue };
                    if let Some(lane) = lanes.get_mut(&name) {
                        lane.in_flight = lane.in_flight.saturating_sub(1);
                        match verdict {
                            Verdict::Delivered => lane.breaker.succeeded(),
                            Verdict::Troubled => lane.breaker.failed(Instant::now()),
                            Verdict::Neutral => lane.breaker.neutral(),
                        }
                    }
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

/// One delivery: what it needs, owned (it runs as its own task).
struct Job {
    store: Arc<dyn Store>,
    stats: Arc<crate::stats::StatsRecorder>,
    upstream: Arc<Upstream>,
    integration: Arc<Integration>,
    owner: String,
}

impl Job {
    async fn run(&self, d: Delivery) -> Verdict {
        let name = self.integration.name();
        let table = self.integration.target.clone();
        let record = match self.store.get(table.clone(), d.record_sys_id.clone()).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                let error = "the record no longer exists".to_owned();
                self.finish(&d, Finish::Dead { error }).await;
                self.count(metric::FORWARD_DEAD, None);
                return Verdict::Neutral;
            }
            Err(e) => {
                // Not the upstream's fault: the lease expires and the row comes back.
                tracing::warn!(integration = %name, record = %d.record_sys_id, error = %e, "forwarding: cannot read the record");
                return Verdict::Neutral;
            }
        };
        let key = format!("sluice-{}-{}", d.record_sys_id, d.version);
        let attempt = self.upstream.deliver(&record, &d.upstream_sys_id, &key).await;
        let forward = self.upstream.forward();
        match attempt {
            Attempt::Delivered { number, sys_id } => {
                let queued_ms = if d.attempts == 0 { d.updated_ms } else { d.created_ms };
                let latency = Duration::from_millis((now_ms() - queued_ms).max(0) as u64);
                tracing::debug!(integration = %name, record = %d.record_sys_id, upstream = %number, "delivered");
                let note = self.note_upstream(&record, &number, &sys_id);
                self.finish_with(&d, Finish::Delivered { upstream_number: number, upstream_sys_id: sys_id }, note)
                    .await;
                self.count(metric::FORWARD_DELIVERED, Some(latency));
                Verdict::Delivered
            }
            Attempt::Retry { error, after } => {
                let failures = d.attempts + 1;
                if failures >= forward.max_attempts {
                    let error = format!("gave up after {failures} attempts: {error}");
                    tracing::warn!(integration = %name, record = %d.record_sys_id, %error, "forwarding: dead letter");
                    self.finish(&d, Finish::Dead { error }).await;
                    self.count(metric::FORWARD_DEAD, None);
                } else {
                    let mut random = [0u8; 8];
                    getrandom::fill(&mut random).expect("the operating system's random source failed");
                    let wait = retry::backoff(
                        failures,
                        forward.backoff_initial,
                        forward.backoff_max,
                        u64::from_le_bytes(random),
                    )
                    .max(after.unwrap_or_default());
                    tracing::info!(integration = %name, record = %d.record_sys_id, %error, wait_ms = wait.as_millis() as u64, "forwarding: will retry");
                    let at_ms = now_ms() + wait.as_millis() as i64;
                    self.finish(&d, Finish::Retry { at_ms, error }).await;
                    self.count(metric::FORWARD_RETRY, None);
                }
                Verdict::Troubled
            }
            Attempt::Refused { error } => {
                tracing::warn!(integration = %name, record = %d.record_sys_id, %error, "forwarding: refused by the upstream, dead letter");
                self.finish(&d, Finish::Dead { error }).await;
                self.count(metric::FORWARD_DEAD, None);
                Verdict::Neutral
            }
        }
    }

    /// One attempt's end in /metrics and the integration's statistics.
    fn count(&self, outcome: &'static str, latency: Option<Duration>) {
        let name = self.integration.name();
        crate::metrics::record_delivery(name, outcome.trim_start_matches(metric::FORWARD_PREFIX), latency);
        self.stats.record_amount(ACTOR, name, outcome, 1);
        if let Some(latency) = latency {
            let ms = latency.as_millis().min(u128::from(u64::MAX)) as u64;
            self.stats.record_amount(ACTOR, name, &sluice_core::stats::forward_latency_metric(ms), 1);
        }
    }

    async fn finish(&self, d: &Delivery, finish: Finish) {
        self.finish_with(d, finish, None).await
    }

    /// Records the attempt's end, with `note` written in the same transaction.
    async fn finish_with(&self, d: &Delivery, finish: Finish, note: Option<TableWrite>) {
        let finished = Finished {
            integration: d.integration.clone(),
            record_sys_id: d.record_sys_id.clone(),
            owner: self.owner.clone(),
            version: d.version,
            now_ms: now_ms(),
            finish,
            note,
        };
        match self.store.finish_delivery(finished).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(record = %d.record_sys_id, "forwarding: the lease expired before the answer; another attempt counts")
            }
            Err(e) => {
                tracing::warn!(record = %d.record_sys_id, error = %e, "forwarding: the attempt could not be recorded")
            }
        }
    }

    /// The write of the upstream's number and sys_id onto the local record, when they are new.
    fn note_upstream(&self, record: &sluice_core::Record, number: &str, sys_id: &str) -> Option<TableWrite> {
        let same = |field: &str, value: &str| value.is_empty() || record.get(field).is_some_and(|v| v == value);
        if same(tables::UPSTREAM_NUMBER, number) && same(tables::UPSTREAM_SYS_ID, sys_id) {
            return None;
        }
        let values = [(tables::UPSTREAM_NUMBER, number), (tables::UPSTREAM_SYS_ID, sys_id)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(TableWrite {
            table: self.integration.target.clone(),
            op: WriteOp::Update(record["sys_id"].clone()),
            values,
            journal: Vec::new(),
            actor: Actor { user_name: ACTOR.to_owned(), sys_id: SysId::generate() },
            now: DateTime::now(),
            reason: REASON,
        })
    }
}

/// The `sys_audit` reason of the upstream's number and sys_id written onto a record.
pub const REASON: &str = "Forwarding";
