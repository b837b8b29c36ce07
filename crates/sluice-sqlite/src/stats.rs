//! Request statistics (`sluice_stats`): additive upserts of per-minute counters, and sums over a
//! window. Nodes sharing the database each add their own deltas; a read sums every node's.

use rusqlite::{Connection, params};

use sluice_store::{HourTotal, StatsDelta, StatsFilter, StatsTotal};

pub fn add(conn: &Connection, deltas: &[StatsDelta]) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO sluice_stats (minute, account, integration, metric, value, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (minute, account, integration, metric) DO UPDATE SET
             value = value + excluded.value,
             first_seen = min(first_seen, excluded.first_seen),
             last_seen = max(last_seen, excluded.last_seen)",
    )?;
    for d in deltas {
        stmt.execute(params![d.minute, d.account, d.integration, d.metric, d.value, d.first_seen, d.last_seen])?;
    }
    Ok(())
}

pub fn purge(conn: &Connection, before_minute: i64) -> rusqlite::Result<u64> {
    let n = conn.prepare_cached("DELETE FROM sluice_stats WHERE minute < ?1")?.execute([before_minute])?;
    Ok(n as u64)
}

pub fn read(conn: &Connection, filter: &StatsFilter) -> rusqlite::Result<Vec<StatsTotal>> {
    // `?2 IS NULL OR account = ?2`: one statement for every filter, values always bound.
    let mut stmt = conn.prepare_cached(
        "SELECT account, integration, metric, SUM(value), MIN(first_seen), MAX(last_seen) FROM sluice_stats
         WHERE minute >= ?1 AND (?2 IS NULL OR account = ?2) AND (?3 IS NULL OR integration = ?3)
         GROUP BY account, integration, metric ORDER BY account, integration, metric",
    )?;
    stmt.query_map(params![filter.since_minute, filter.account, filter.integration], |r| total_at(r, 0))?.collect()
}

/// A sum's columns from `at` on: account, integration, metric, sum, first and last seen.
fn total_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<StatsTotal> {
    Ok(StatsTotal {
        account: r.get(at)?,
        integration: r.get(at + 1)?,
        metric: r.get(at + 2)?,
        value: r.get(at + 3)?,
        first_seen: r.get(at + 4)?,
        last_seen: r.get(at + 5)?,
    })
}

pub fn per_hour(conn: &Connection, filter: &StatsFilter) -> rusqlite::Result<Vec<HourTotal>> {
    let mut stmt = conn.prepare_cached(
        "SELECT (minute / 60) * 60 AS hour, account, integration, metric, SUM(value), MIN(first_seen), MAX(last_seen)
         FROM sluice_stats
         WHERE minute >= ?1 AND (?2 IS NULL OR account = ?2) AND (?3 IS NULL OR integration = ?3)
         GROUP BY hour, account, integration, metric ORDER BY hour, account, integration, metric",
    )?;
    stmt.query_map(params![filter.since_minute, filter.account, filter.integration], |r| {
        Ok(HourTotal { start_minute: r.get(0)?, total: total_at(r, 1)? })
    })?
    .collect()
}
