//! The forwarding outbox: one row per forwarded record (its integration and sys_id), written in
//! the transaction that commits the record ([`crate::settle`]), so an acknowledged ticket is
//! never forgotten by a crash between the commit and the delivery. Workers lease due rows (on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED`, so the nodes never deliver one row at the same
//! time) and finish them as delivered, to retry, or dead. A change to a record whose row is
//! already queued only raises the row's `version`: the worker always sends the record as it is
//! then, and a delivery that started before the change leaves the row pending for one more.

use crate::Result;

/// The table behind the outbox (both backends); a dump carries it, so queued deliveries move
/// with the deployment.
pub const TABLE: &str = "sluice_outbox";

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// To be delivered (now or at `next_attempt_ms`).
    Pending,
    /// The upstream has the record as it was last changed.
    Delivered,
    /// Given up after the last attempt, or refused for good; `retry_deliveries` queues it again.
    Dead,
}

impl DeliveryState {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub integration: String,
    pub record_sys_id: String,
    /// The table the record is in (`incident`).
    pub table: String,
    /// The staging row whose commit queued it last.
    pub staging_sys_id: String,
    pub state: DeliveryState,
    /// Raised by every change queued; a lease remembers it ([`Finished::version`]).
    pub version: i64,
    /// Failed attempts since the row was last queued or delivered.
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub lease_owner: String,
    pub lease_until_ms: i64,
    pub last_error: String,
    /// The upstream's ticket number and sys_id, once it answered them.
    pub upstream_number: String,
    pub upstream_sys_id: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A committed record to queue, from inside the committing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued<'a> {
    pub integration: &'a str,
    pub table: &'a str,
    pub record_sys_id: &'a str,
    pub staging_sys_id: &'a str,
    pub now_ms: i64,
}

/// Due rows to lease: pending, `next_attempt_ms` reached, not leased (or the lease expired).
#[derive(Debug, Clone)]
pub struct Claim {
    pub owner: String,
    pub now_ms: i64,
    pub lease_ms: i64,
    pub limit: u32,
    /// Only this integration's rows (a worker per upstream); all when `None`.
    pub integration: Option<String>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Delivered {
        upstream_number: String,
        upstream_sys_id: String,
    },
    /// Try again at `at_ms`.
    Retry {
        at_ms: i64,
        error: String,
    },
    /// Refused for good, or the last attempt failed.
    Dead {
        error: String,
    },
}

/// A leased row's attempt, finished by the lease's owner.
#[derive(Debug, Clone)]
pub struct Finished {
    pub integration: String,
    pub record_sys_id: String,
    pub owner: String,
    /// The row's version when it was leased: a row changed since stays pending (delivered or
    /// dead would describe a version the upstream has not seen).
    pub version: i64,
    pub now_ms: i64,
    pub finish: Finish,
    /// A write made in the finish's own transaction, only while the lease is still held (the
    /// upstream's number and sys_id onto the record, with its history): one commit instead of two.
    pub note: Option<crate::TableWrite>,
}

/// Rows to list, newest change first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub integration: Option<String>,
    pub state: Option<DeliveryState>,
    pub limit: u32,
}

/// How many rows are in each state, and when the oldest pending one was queued (for the
/// outbox's depth and age in /metrics and stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    pub oldest_pending_ms: Option<i64>,
}

impl OutboxCounts {
    /// Adds one `GROUP BY state` row (state, count, oldest `created_ms`); unknown states are left out.
    pub fn add(&mut self, state: &str, count: u64, oldest_ms: Option<i64>) {
        match DeliveryState::parse(state) {
            Some(DeliveryState::Pending) => (self.pending, self.oldest_pending_ms) = (count, oldest_ms),
            Some(DeliveryState::Delivered) => self.delivered = count,
            Some(DeliveryState::Dead) => self.dead = count,
            None => {}
        }
    }
}

/// The outbox's reads and writes outside the commit (which queues through
/// [`crate::settle::RowTransaction::enqueue_delivery`]).
#[crate::async_trait]
pub trait Outbox: Send + Sync {
    /// Leases up to `limit` due rows, oldest due first, for `lease_ms`.
    async fn claim_deliveries(&self, claim: Claim) -> Result<Vec<Delivery>>;
    /// Records an attempt's end; `false` when the row is no longer leased by `owner` (the lease
    /// expired and another took it: its answer counts, not this one).
    async fn finish_delivery(&self, finished: Finished) -> Result<bool>;
    /// Queues dead rows again (one record's, or all of the integration's); how many.
    async fn retry_deliveries(&self, integration: String, record_sys_id: Option<String>, now_ms: i64) -> Result<u64>;
    async fn deliveries(&self, filter: DeliveryFilter) -> Result<Vec<Delivery>>;
    /// The row of one record.
    async fn delivery(&self, integration: String, record_sys_id: String) -> Result<Option<Delivery>>;
    async fn outbox_counts(&self, integration: Option<String>) -> Result<OutboxCounts>;
}
