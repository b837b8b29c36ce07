//! The forwarding outbox on PostgreSQL ([`sluice_store::outbox`]): queued inside the commit's
//! transaction by [`enqueue`]; a lease takes due rows with `FOR UPDATE SKIP LOCKED`, so the
//! workers of several nodes never take the same row, and a finish counts only for the lease's
//! owner.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use sluice_store::Result as StoreResult;
use sluice_store::outbox::{
    Claim, Delivery, DeliveryFilter, DeliveryState, Finish, Finished, Outbox, OutboxCounts, Queued,
};

use crate::{PostgresStore, backend, records};

const COLUMNS: &str = "integration, record_sys_id, table_name, staging_sys_id, state, version, attempts, \
     next_attempt_ms, lease_owner, lease_until_ms, last_error, upstream_number, upstream_sys_id, created_ms, updated_ms";

/// A new pending row; a queued row's version raised; a delivered or dead one pending again from
/// its first attempt.
pub async fn enqueue(c: &mut PgConnection, q: &Queued<'_>) -> Result<(), sqlx::Error> {
    records::sql(format!(
        "INSERT INTO sluice_outbox AS o (integration, record_sys_id, table_name, staging_sys_id, state, version,
             attempts, next_attempt_ms, created_ms, updated_ms)
         VALUES ($1, $2, $3, $4, 'pending', 1, 0, $5, $5, $5) {ON_CONFLICT}"
    ))
    .bind(q.integration)
    .bind(q.record_sys_id)
    .bind(q.table)
    .bind(q.staging_sys_id)
    .bind(q.now_ms)
    .execute(c)
    .await?;
    Ok(())
}

/// The conflict rule of [`enqueue`], shared by [`QueuedMany::take`].
const ON_CONFLICT: &str = "ON CONFLICT (integration, record_sys_id) DO UPDATE SET
             staging_sys_id = EXCLUDED.staging_sys_id, version = o.version + 1, updated_ms = EXCLUDED.updated_ms,
             attempts = CASE WHEN o.state = 'pending' THEN o.attempts ELSE 0 END,
             next_attempt_ms = CASE WHEN o.state = 'pending' THEN o.next_attempt_ms ELSE EXCLUDED.next_attempt_ms END,
             state = 'pending'";

/// Rows queued by a batch of imports, written with its other rows in one statement
/// ([`crate::records::Combined`]); one per record (a record changed twice in the batch is
/// queued once, with its latest staging row: one statement may not update a row twice).
#[derive(Default)]
pub struct QueuedMany {
    keys: std::collections::HashMap<(String, String), usize>,
    columns: [Vec<String>; 4],
    now_ms: Vec<i64>,
}

impl QueuedMany {
    pub fn push(&mut self, q: &Queued<'_>) {
        let key = (q.integration.to_owned(), q.record_sys_id.to_owned());
        if let Some(&i) = self.keys.get(&key) {
            self.columns[3][i] = q.staging_sys_id.to_owned();
            self.now_ms[i] = q.now_ms;
            return;
        }
        self.keys.insert(key, self.now_ms.len());
        for (column, value) in self.columns.iter_mut().zip([q.integration, q.record_sys_id, q.table, q.staging_sys_id])
        {
            column.push(value.to_owned());
        }
        self.now_ms.push(q.now_ms);
    }

    pub fn is_empty(&self) -> bool {
        self.now_ms.is_empty()
    }

    /// The statement's text (parameters from `first`) and its columns; the queue is emptied.
    pub fn take(&mut self, first: usize) -> (String, Vec<crate::records::Column>) {
        let taken = std::mem::take(self);
        let [integration, record, table, staging] = taken.columns;
        let columns = vec![
            crate::records::Column::Text(integration),
            crate::records::Column::Text(record),
            crate::records::Column::Text(table),
            crate::records::Column::Text(staging),
            crate::records::Column::Int(taken.now_ms),
        ];
        let p = |k: usize| first + k;
        let sql = format!(
            "INSERT INTO sluice_outbox AS o (integration, record_sys_id, table_name, staging_sys_id, state, version,
                 attempts, next_attempt_ms, created_ms, updated_ms)
             SELECT u.integration, u.record_sys_id, u.table_name, u.staging_sys_id, 'pending', 1, 0, u.now_ms, u.now_ms, u.now_ms
             FROM UNNEST(${}::text[], ${}::text[], ${}::text[], ${}::text[], ${}::bigint[])
                 AS u(integration, record_sys_id, table_name, staging_sys_id, now_ms)
             {ON_CONFLICT}",
            p(0),
            p(1),
            p(2),
            p(3),
            p(4)
        );
        (sql, columns)
    }
}

async fn claim(c: &mut PgConnection, claim: &Claim) -> Result<Vec<Delivery>, sqlx::Error> {
    // One integration's rows (the worker's claims) come off the index in order; all
    // integrations' rows are sorted.
    let of_integration = if claim.integration.is_some() { "AND integration = $5" } else { "AND $5::text IS NULL" };
    let rows = records::sql(format!(
        "UPDATE sluice_outbox o SET lease_owner = $1, lease_until_ms = $2 + $3
         FROM (SELECT integration, record_sys_id FROM sluice_outbox
               WHERE state = 'pending' AND next_attempt_ms <= $2 AND lease_until_ms <= $2 {of_integration}
               ORDER BY next_attempt_ms, created_ms LIMIT $4 FOR UPDATE SKIP LOCKED) due
         WHERE o.integration = due.integration AND o.record_sys_id = due.record_sys_id
         RETURNING {}",
        COLUMNS.split(", ").map(|c| format!("o.{c}")).collect::<Vec<_>>().join(", ")
    ))
    .bind(&claim.owner)
    .bind(claim.now_ms)
    .bind(claim.lease_ms)
    .bind(i64::from(claim.limit))
    .bind(claim.integration.as_deref())
    .fetch_all(c)
    .await?;
    let mut out = rows.iter().map(delivery).collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|d| (d.next_attempt_ms, d.created_ms));
    Ok(out)
}

async fn finish(c: &mut PgConnection, f: &Finished) -> Result<bool, sqlx::Error> {
    let leased = "WHERE integration = $1 AND record_sys_id = $2 AND lease_owner = $3 AND state = 'pending'";
    let query = match &f.finish {
        Finish::Delivered { upstream_number, upstream_sys_id } => records::sql(format!(
            "UPDATE sluice_outbox SET state = CASE WHEN version = $4 THEN 'delivered' ELSE 'pending' END,
                 attempts = 0, next_attempt_ms = $5, last_error = '', upstream_number = $6, upstream_sys_id = $7,
                 lease_owner = '', lease_until_ms = 0, updated_ms = $5 {leased}"
        ))
        .bind(&f.integration)
        .bind(&f.record_sys_id)
        .bind(&f.owner)
        .bind(f.version)
        .bind(f.now_ms)
        .bind(upstream_number)
        .bind(upstream_sys_id),
        Finish::Retry { at_ms, error } => records::sql(format!(
            "UPDATE sluice_outbox SET attempts = attempts + 1, next_attempt_ms = $5, last_error = $6,
                 lease_owner = '', lease_until_ms = 0, updated_ms = $4 {leased}"
        ))
        .bind(&f.integration)
        .bind(&f.record_sys_id)
        .bind(&f.owner)
        .bind(f.now_ms)
        .bind(at_ms)
        .bind(error),
        Finish::Dead { error } => records::sql(format!(
            "UPDATE sluice_outbox SET state = CASE WHEN version = $4 THEN 'dead' ELSE 'pending' END,
                 attempts = attempts + 1, next_attempt_ms = $5, last_error = $6,
                 lease_owner = '', lease_until_ms = 0, updated_ms = $5 {leased}"
        ))
        .bind(&f.integration)
        .bind(&f.record_sys_id)
        .bind(&f.owner)
        .bind(f.version)
        .bind(f.now_ms)
        .bind(error),
    };
    Ok(query.execute(c).await?.rows_affected() > 0)
}

fn delivery(r: &PgRow) -> Result<Delivery, sqlx::Error> {
    let state: String = r.try_get(4)?;
    let attempts: i32 = r.try_get(6)?;
    Ok(Delivery {
        integration: r.try_get(0)?,
        record_sys_id: r.try_get(1)?,
        table: r.try_get(2)?,
        staging_sys_id: r.try_get(3)?,
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Pending),
        version: r.try_get(5)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_ms: r.try_get(7)?,
        lease_owner: r.try_get(8)?,
        lease_until_ms: r.try_get(9)?,
        last_error: r.try_get(10)?,
        upstream_number: r.try_get(11)?,
        upstream_sys_id: r.try_get(12)?,
        created_ms: r.try_get(13)?,
        updated_ms: r.try_get(14)?,
    })
}

#[async_trait]
impl Outbox for PostgresStore {
    async fn claim_deliveries(&self, c: Claim) -> StoreResult<Vec<Delivery>> {
        backend(async { Ok(claim(&mut *self.conn().await?, &c).await?) }).await
    }

    async fn finish_delivery(&self, f: Finished) -> StoreResult<bool> {
        if f.note.is_none() {
            return backend(async { Ok(finish(&mut *self.conn().await?, &f).await?) }).await;
        }
        backend(async {
            let (ctx, f) = (self.ctx.clone(), std::sync::Arc::new(f));
            self.in_tx(move |c| {
                let (ctx, f) = (ctx.clone(), f.clone());
                Box::pin(async move {
                    let held = finish(&mut *c, &f).await?;
                    if let (true, Some(note)) = (held, &f.note) {
                        crate::import::table_write(c, &ctx, note).await?;
                    }
                    Ok(held)
                })
            })
            .await
        })
        .await
    }

    async fn retry_deliveries(
        &self,
        integration: String,
        record_sys_id: Option<String>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        backend(async {
            let n = sqlx::query(
                "UPDATE sluice_outbox SET state = 'pending', attempts = 0, next_attempt_ms = $3, updated_ms = $3
                 WHERE state = 'dead' AND integration = $1 AND ($2::text IS NULL OR record_sys_id = $2)",
            )
            .bind(&integration)
            .bind(record_sys_id.as_deref())
            .bind(now_ms)
            .execute(&mut *self.conn().await?)
            .await?;
            Ok(n.rows_affected())
        })
        .await
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        backend(async {
            let rows = records::sql(format!(
                "SELECT {COLUMNS} FROM sluice_outbox WHERE ($1::text IS NULL OR integration = $1)
                 AND ($2::text IS NULL OR state = $2) ORDER BY updated_ms DESC, record_sys_id LIMIT $3"
            ))
            .bind(filter.integration.as_deref())
            .bind(filter.state.map(DeliveryState::as_str))
            .bind(i64::from(filter.limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
            Ok(rows.iter().map(delivery).collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn delivery(&self, integration: String, record_sys_id: String) -> StoreResult<Option<Delivery>> {
        backend(async {
            let row = records::sql(format!(
                "SELECT {COLUMNS} FROM sluice_outbox WHERE integration = $1 AND record_sys_id = $2"
            ))
            .bind(&integration)
            .bind(&record_sys_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
            Ok(row.as_ref().map(delivery).transpose()?)
        })
        .await
    }

    async fn outbox_counts(&self, integration: Option<String>) -> StoreResult<OutboxCounts> {
        backend(async {
            let rows = sqlx::query(
                "SELECT state, COUNT(*), MIN(created_ms) FROM sluice_outbox
                 WHERE ($1::text IS NULL OR integration = $1) GROUP BY state",
            )
            .bind(integration.as_deref())
            .fetch_all(&mut *self.conn().await?)
            .await?;
            let mut counts = OutboxCounts::default();
            for r in &rows {
                let (state, n, oldest): (String, i64, Option<i64>) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                counts.add(&state, u64::try_from(n).unwrap_or(0), oldest);
            }
            Ok(counts)
        })
        .await
    }
}
