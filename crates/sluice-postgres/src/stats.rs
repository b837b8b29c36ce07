//! Request statistics (`sluice_stats`) on PostgreSQL: additive upserts of per-minute counters
//! (several nodes flushing the same minute add up) and sums over a window.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use sluice_store::{HourTotal, StatsDelta, StatsFilter, StatsTotal};

/// All deltas in one statement; keys repeated within one flush are summed first (an upsert may
/// not touch one row twice) and upserted in key order (two nodes flushing never deadlock).
pub async fn add(c: &mut PgConnection, deltas: &[StatsDelta]) -> Result<(), sqlx::Error> {
    if deltas.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&StatsDelta) -> i64| deltas.iter().map(f).collect::<Vec<i64>>();
    let text = |f: fn(&StatsDelta) -> &str| deltas.iter().map(|d| f(d).to_owned()).collect::<Vec<String>>();
    sqlx::query(
        "INSERT INTO sluice_stats (minute, account, integration, metric, value, first_seen, last_seen)
         SELECT minute, account, integration, metric, SUM(value), MIN(first_seen), MAX(last_seen)
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
              AS d(minute, account, integration, metric, value, first_seen, last_seen)
         GROUP BY minute, account, integration, metric ORDER BY minute, account, integration, metric
         ON CONFLICT (minute, account, integration, metric) DO UPDATE SET
             value = sluice_stats.value + excluded.value,
             first_seen = LEAST(sluice_stats.first_seen, excluded.first_seen),
             last_seen = GREATEST(sluice_stats.last_seen, excluded.last_seen)",
    )
    .bind(column(|d| d.minute))
    .bind(text(|d| &d.account))
    .bind(text(|d| &d.integration))
    .bind(text(|d| &d.metric))
    .bind(column(|d| d.value))
    .bind(column(|d| d.first_seen))
    .bind(column(|d| d.last_seen))
    .execute(c)
    .await?;
    Ok(())
}

pub async fn purge(c: &mut PgConnection, before_minute: i64) -> Result<u64, sqlx::Error> {
    let n = sqlx::query("DELETE FROM sluice_stats WHERE minute < $1").bind(before_minute).execute(c).await?;
    Ok(n.rows_affected())
}

pub async fn read(c: &mut PgConnection, filter: &StatsFilter) -> Result<Vec<StatsTotal>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT account, integration, metric, SUM(value)::bigint, MIN(first_seen), MAX(last_seen) FROM sluice_stats
         WHERE minute >= $1 AND ($2::text IS NULL OR account = $2) AND ($3::text IS NULL OR integration = $3)
         GROUP BY account, integration, metric ORDER BY account, integration, metric",
    )
    .bind(filter.since_minute)
    .bind(filter.account.clone())
    .bind(filter.integration.clone())
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| total_at(r, 0)).collect()
}

/// A sum's columns from `at` on: account, integration, metric, sum, first and last seen.
fn total_at(r: &PgRow, at: usize) -> Result<StatsTotal, sqlx::Error> {
    Ok(StatsTotal {
        account: r.try_get(at)?,
        integration: r.try_get(at + 1)?,
        metric: r.try_get(at + 2)?,
        value: r.try_get(at + 3)?,
        first_seen: r.try_get(at + 4)?,
        last_seen: r.try_get(at + 5)?,
    })
}

pub async fn per_hour(c: &mut PgConnection, filter: &StatsFilter) -> Result<Vec<HourTotal>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT (minute / 60) * 60 AS hour, account, integration, metric, SUM(value)::bigint, MIN(first_seen),
                MAX(last_seen)
         FROM sluice_stats
         WHERE minute >= $1 AND ($2::text IS NULL OR account = $2) AND ($3::text IS NULL OR integration = $3)
         GROUP BY hour, account, integration, metric ORDER BY hour, account, integration, metric",
    )
    .bind(filter.since_minute)
    .bind(filter.account.clone())
    .bind(filter.integration.clone())
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok(HourTotal { start_minute: r.try_get(0)?, total: total_at(r, 1)? })).collect()
}
