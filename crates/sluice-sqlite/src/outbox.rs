//! The forwarding outbox on SQLite ([`sluice_store::outbox`]): queued inside the commit's
//! transaction by [`enqueue`]; leases and finishes are writer jobs ([`Change`]), so one writer
//! orders them; lists and counts are reads.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use sluice_store::Result as StoreResult;
use sluice_store::outbox::{
    Claim, Delivery, DeliveryFilter, DeliveryState, Finish, Finished, Outbox, OutboxCounts, Queued,
};

use sluice_core::tables::Catalog;

use crate::SqliteStore;
use crate::writer::Job;

const COLUMNS: &str = "integration, record_sys_id, table_name, staging_sys_id, state, version, attempts, \
     next_attempt_ms, lease_owner, lease_until_ms, last_error, upstream_number, upstream_sys_id, created_ms, updated_ms";

/// A new pending row; a queued row's version raised; a delivered or dead one pending again from
/// its first attempt.
pub fn enqueue(conn: &Connection, q: &Queued<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sluice_outbox (integration, record_sys_id, table_name, staging_sys_id, state, version, attempts,
             next_attempt_ms, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, 'pending', 1, 0, ?5, ?5, ?5)
         ON CONFLICT (integration, record_sys_id) DO UPDATE SET
             staging_sys_id = excluded.staging_sys_id, version = version + 1, updated_ms = excluded.updated_ms,
             attempts = CASE WHEN state = 'pending' THEN attempts ELSE 0 END,
             next_attempt_ms = CASE WHEN state = 'pending' THEN next_attempt_ms ELSE excluded.next_attempt_ms END,
             state = 'pending'",
    )?
    .execute(params![q.integration, q.record_sys_id, q.table, q.staging_sys_id, q.now_ms])?;
    Ok(())
}

/// The writer's outbox jobs.
#[derive(Debug)]
pub enum Change {
    Claim(Claim),
    Finish(Box<Finished>),
    Retry { integration: String, record_sys_id: Option<String>, now_ms: i64 },
}

#[derive(Debug)]
pub enum Answer {
    Claimed(Vec<Delivery>),
    Finished(bool),
    Retried(u64),
}

pub fn apply(conn: &Connection, catalog: &Catalog, change: &Change) -> rusqlite::Result<Answer> {
    match change {
        Change::Claim(c) => claim(conn, c).map(Answer::Claimed),
        Change::Finish(f) => {
            let held = finish(conn, f)?;
            if let (true, Some(note)) = (held, &f.note) {
                crate::import::table_write(conn, catalog, note)?;
            }
            Ok(Answer::Finished(held))
        }
        Change::Retry { integration, record_sys_id, now_ms } => {
            let n = conn
                .prepare_cached(
                    "UPDATE sluice_outbox SET state = 'pending', attempts = 0, next_attempt_ms = ?3, updated_ms = ?3
                     WHERE state = 'dead' AND integration = ?1 AND (?2 IS NULL OR record_sys_id = ?2)",
                )?
                .execute(params![integration, record_sys_id, now_ms])?;
            Ok(Answer::Retried(n as u64))
        }
    }
}

fn claim(conn: &Connection, c: &Claim) -> rusqlite::Result<Vec<Delivery>> {
    let mut statement = conn.prepare_cached(&format!(
        "UPDATE sluice_outbox SET lease_owner = ?1, lease_until_ms = ?2 + ?3
         WHERE (integration, record_sys_id) IN (
             SELECT integration, record_sys_id FROM sluice_outbox
             WHERE state = 'pending' AND next_attempt_ms <= ?2 AND lease_until_ms <= ?2
               AND (?5 IS NULL OR integration = ?5)
             ORDER BY next_attempt_ms, created_ms LIMIT ?4)
         RETURNING {COLUMNS}"
    ))?;
    let mut rows: Vec<Delivery> = statement
        .query_map(params![c.owner, c.now_ms, c.lease_ms, c.limit, c.integration], delivery)?
        .collect::<rusqlite::Result<_>>()?;
    // RETURNING gives no order.
    rows.sort_by_key(|d| (d.next_attempt_ms, d.created_ms));
    Ok(rows)
}

fn finish(conn: &Connection, f: &Finished) -> rusqlite::Result<bool> {
    let n = match &f.finish {
        Finish::Delivered { upstream_number, upstream_sys_id } => conn
            .prepare_cached(
                "UPDATE sluice_outbox SET state = CASE WHEN version = ?4 THEN 'delivered' ELSE 'pending' END,
                     attempts = 0, next_attempt_ms = ?5, last_error = '', upstream_number = ?6, upstream_sys_id = ?7,
                     lease_owner = '', lease_until_ms = 0, updated_ms = ?5
                 WHERE integration = ?1 AND record_sys_id = ?2 AND lease_owner = ?3 AND state = 'pending'",
            )?
            .execute(params![
                f.integration,
                f.record_sys_id,
                f.owner,
                f.version,
                f.now_ms,
                upstream_number,
                upstream_sys_id
            ])?,
        Finish::Retry { at_ms, error } => conn
            .prepare_cached(
                "UPDATE sluice_outbox SET attempts = attempts + 1, next_attempt_ms = ?5, last_error = ?6,
                     lease_owner = '', lease_until_ms = 0, updated_ms = ?4
                 WHERE integration = ?1 AND record_sys_id = ?2 AND lease_owner = ?3 AND state = 'pending'",
            )?
            .execute(params![f.integration, f.record_sys_id, f.owner, f.now_ms, at_ms, error])?,
        Finish::Dead { error } => conn
            .prepare_cached(
                "UPDATE sluice_outbox SET state = CASE WHEN version = ?4 THEN 'dead' ELSE 'pending' END,
                     attempts = attempts + 1, next_attempt_ms = ?5, last_error = ?6,
                     lease_owner = '', lease_until_ms = 0, updated_ms = ?5
                 WHERE integration = ?1 AND record_sys_id = ?2 AND lease_owner = ?3 AND state = 'pending'",
            )?
            .execute(params![f.integration, f.record_sys_id, f.owner, f.version, f.now_ms, error])?,
    };
    Ok(n > 0)
}

pub fn list(conn: &Connection, filter: &DeliveryFilter) -> rusqlite::Result<Vec<Delivery>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sluice_outbox WHERE (?1 IS NULL OR integration = ?1) AND (?2 IS NULL OR state = ?2)
         ORDER BY updated_ms DESC, record_sys_id LIMIT ?3"
    ))?;
    let state = filter.state.map(DeliveryState::as_str);
    statement.query_map(params![filter.integration, state, filter.limit], delivery)?.collect()
}

pub fn get(conn: &Connection, integration: &str, record_sys_id: &str) -> rusqlite::Result<Option<Delivery>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM sluice_outbox WHERE integration = ?1 AND record_sys_id = ?2"))?
        .query_row([integration, record_sys_id], delivery)
        .optional()
}

pub fn counts(conn: &Connection, integration: Option<&str>) -> rusqlite::Result<OutboxCounts> {
    let mut statement = conn.prepare_cached(
        "SELECT state, COUNT(*), MIN(created_ms) FROM sluice_outbox WHERE (?1 IS NULL OR integration = ?1)
         GROUP BY state",
    )?;
    let mut counts = OutboxCounts::default();
    let rows = statement
        .query_map([integration], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?)))?;
    for row in rows {
        let (state, n, oldest) = row?;
        counts.add(&state, u64::try_from(n).unwrap_or(0), oldest);
    }
    Ok(counts)
}

fn delivery(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    let state: String = r.get(4)?;
    Ok(Delivery {
        integration: r.get(0)?,
        record_sys_id: r.get(1)?,
        table: r.get(2)?,
        staging_sys_id: r.get(3)?,
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Pending),
        version: r.get(5)?,
        attempts: r.get(6)?,
        next_attempt_ms: r.get(7)?,
        lease_owner: r.get(8)?,
        lease_until_ms: r.get(9)?,
        last_error: r.get(10)?,
        upstream_number: r.get(11)?,
        upstream_sys_id: r.get(12)?,
        created_ms: r.get(13)?,
        updated_ms: r.get(14)?,
    })
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn claim_deliveries(&self, claim: Claim) -> StoreResult<Vec<Delivery>> {
        match self.enqueue(|tx| Job::Outbox(Box::new(Change::Claim(claim)), tx)).await? {
            Answer::Claimed(rows) => Ok(rows),
            _ => unreachable!("a claim answers Claimed"),
        }
    }

    async fn finish_delivery(&self, finished: Finished) -> StoreResult<bool> {
        match self.enqueue(|tx| Job::Outbox(Box::new(Change::Finish(Box::new(finished))), tx)).await? {
            Answer::Finished(done) => Ok(done),
            _ => unreachable!("a finish answers Finished"),
        }
    }

    async fn retry_deliveries(
        &self,
        integration: String,
        record_sys_id: Option<String>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        match self.enqueue(|tx| Job::Outbox(Box::new(Change::Retry { integration, record_sys_id, now_ms }), tx)).await?
        {
            Answer::Retried(n) => Ok(n),
            _ => unreachable!("a retry answers Retried"),
        }
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        self.read(move |c| list(c, &filter)).await
    }

    async fn delivery(&self, integration: String, record_sys_id: String) -> StoreResult<Option<Delivery>> {
        self.read(move |c| get(c, &integration, &record_sys_id)).await
    }

    async fn outbox_counts(&self, integration: Option<String>) -> StoreResult<OutboxCounts> {
        self.read(move |c| counts(c, integration.as_deref())).await
    }
}
