//! Bulk imports: records staged as `pending` rows of one asynchronous import set in one
//! transaction, processed later one by one (each row's processing and its state change in the
//! same transaction, so a crash leaves a row either pending or done), replays of processed rows,
//! and the retention purge.

use rusqlite::{Connection, OptionalExtension, params};
use sluice_core::number;
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::tables::{self, Catalog};
use sluice_core::{Record, SysId};

use crate::import;
use crate::records;
use sluice_store::{ImportOutcome, ProcessJob, PurgeReport, RowFilter, StageBatch, StagedSet, StateCounts, StoredRow};

/// A new asynchronous import set (state `loaded`) holding every record of the batch as a
/// `pending` row, numbered from 0 in the order given. A record given with a verdict is processed
/// here, as a single import is: its row is written once, with its outcome (no second write of
/// the payload, no pending row for the worker to skip); a set of such rows only is `processed`.
pub fn stage_many(conn: &Connection, catalog: &Catalog, batch: &StageBatch) -> rusqlite::Result<StagedSet> {
    let staging = &batch.staging;
    let number = import::next_number(conn, number::IMPORT_SET_PREFIX)?;
    let multi = batch.multi_import_set.clone().unwrap_or_else(|| SysId::generate().into_string());
    let schema = catalog.get(tables::SYS_IMPORT_SET).expect("built-in table");
    let set = sluice_store::staging_row::asynchronous_import_set(schema, &number, &multi, batch);
    records::insert(conn, schema, &set)?;
    let set_id = set["sys_id"].clone();
    let now = batch.now.to_string();
    let mut insert = conn.prepare_cached(&records::insert_sql(staging))?;
    let mut outcomes = Vec::with_capacity(batch.rows.len());
    for (i, record) in batch.rows.iter().enumerate() {
        let outcome = match &record.verdict {
            Some(verdict) => {
                let reason = batch.audit_reason(record);
                let context = batch.row(record, &reason);
                let outcome = ImportOutcome::unsettled(number.clone(), record.sys_id.clone());
                Some(import::settle(conn, catalog, &context, verdict, None, outcome)?)
            }
            None => None,
        };
        // The outcome's fields come first: they win over the pending state.
        let fields = outcome.as_ref().map(import::outcome_fields).unwrap_or_default();
        let mut set: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (*f, v.as_str())).collect();
        if outcome.is_some() {
            set.push(("sys_integration_version", batch.integration_version.as_str()));
        }
        let row_number = i.to_string();
        set.extend([
            ("sys_import_set", set_id.as_str()),
            ("sys_import_state", RowState::Pending.as_str()),
            ("sys_target_table", batch.target.name.as_str()),
            ("sys_transform_map", batch.transform_map.as_str()),
            ("sys_import_row", row_number.as_str()),
        ]);
        let row = records::NewStagingRow {
            sys_id: record.sys_id.as_str(),
            columns: &record.columns,
            payload: &record.payload,
            set: &set,
        };
        records::insert_staging_row(&mut insert, staging, &row, &batch.actor.user_name, &now)?;
        outcomes.push(outcome);
    }
    Ok(StagedSet { import_set: set_id, number, multi_import_set: multi, replayed: false, outcomes })
}

/// Served by the `{table}_state` index, in rowid (staging) order.
fn staged_rows_sql(staging: &TableSchema) -> String {
    format!(
        "SELECT rowid, {} FROM {} WHERE sys_import_state = ?1 AND rowid > ?2 AND sys_created_on >= ?3
         ORDER BY rowid LIMIT ?4",
        records::columns(staging),
        staging.name
    )
}

pub fn staged_rows(conn: &Connection, staging: &TableSchema, filter: &RowFilter) -> rusqlite::Result<Vec<StoredRow>> {
    let since = filter.since.map(|t| t.to_string()).unwrap_or_default();
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&staged_rows_sql(staging))?;
    let rows = stmt.query_map(params![filter.state.as_str(), filter.after, since, limit], |row| {
        let position: i64 = row.get(0)?;
        let mut record = Record::new();
        for (i, f) in staging.stored_fields().enumerate() {
            record.insert(f.name.clone(), records::text(row.get_ref(i + 1)?));
        }
        Ok(StoredRow { position, record })
    })?;
    rows.collect()
}

/// Processes one staged row if it is still in the state the job expects.
pub fn process(conn: &Connection, catalog: &Catalog, job: &ProcessJob) -> rusqlite::Result<Option<ImportOutcome>> {
    let staging = &job.staging;
    let found: Option<(String, String, String, i64, i64)> = conn
        .prepare_cached(&format!(
            "SELECT sys_import_set, sys_import_state, sys_target_sys_id, sys_import_row, sys_mod_count
             FROM {} WHERE sys_id = ?1",
            staging.name
        ))?
        .query_row([job.staging_sys_id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    let Some((set_id, state, prior, row_index, mod_count)) = found else { return Ok(None) };
    if state != job.expected.as_str() {
        return Ok(None);
    }
    let set: Option<(String, String)> = conn
        .prepare_cached("SELECT number, mode FROM sys_import_set WHERE sys_id = ?1")?
        .query_row([&set_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (set_number, mode) = set.unwrap_or_default();
    let prior_target = if prior.is_empty() { None } else { records::get(conn, &job.target, &prior)? };
    let reason = job.audit_reason();
    let context = job.row(&reason);
    let outcome = ImportOutcome::unsettled(set_number, job.staging_sys_id.clone());
    let outcome = import::settle(conn, catalog, &context, &job.verdict, prior_target, outcome)?;

    let fields = sluice_store::staging_row::processed_fields(job, &outcome, mod_count);
    let set: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (*f, v.as_str())).collect();
    records::update(conn, staging, job.staging_sys_id.as_str(), &set)?;
    let now = job.now.to_string();

    if job.expected == RowState::Pending && mode == "asynchronous" && !has_pending(conn, staging, &set_id, row_index)? {
        conn.prepare_cached(
            "UPDATE sys_import_set SET state = 'processed', sys_updated_on = ?2, sys_mod_count = sys_mod_count + 1
             WHERE sys_id = ?1 AND state != 'processed'",
        )?
        .execute(params![set_id, now])?;
    }
    Ok(Some(outcome))
}

fn pending_in_set_sql(table: &str, comparison: &str) -> String {
    format!(
        "SELECT 1 FROM {table} INDEXED BY {table}_set_row
         WHERE sys_import_set = ?1 AND sys_import_row {comparison} ?2 AND sys_import_state = 'pending' LIMIT 1"
    )
}

/// Whether the import set still has a pending row. Rows are processed in order, so the row
/// after this one is usually pending and the search stops there; only the last rows of a set
/// look further.
fn has_pending(conn: &Connection, staging: &TableSchema, set_id: &str, row_index: i64) -> rusqlite::Result<bool> {
    for comparison in [">", "<"] {
        if conn
            .prepare_cached(&pending_in_set_sql(&staging.name, comparison))?
            .query_row(params![set_id, row_index], |_| Ok(()))
            .optional()?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The set's rows only (left alone, SQLite would walk the whole table in state order).
fn counts_sql(table: &str) -> String {
    format!(
        "SELECT sys_import_state, COUNT(*) FROM {table} INDEXED BY {table}_set_row
         WHERE sys_import_set = ?1 GROUP BY sys_import_state"
    )
}

pub fn state_counts(conn: &Connection, staging: &TableSchema, set_id: &str) -> rusqlite::Result<StateCounts> {
    let mut stmt = conn.prepare_cached(&counts_sql(&staging.name))?;
    let mut counts = StateCounts::default();
    for row in stmt.query_map([set_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (state, n) = row?;
        // A row in an unknown state counts as pending: it is not done.
        counts.add(state.parse().unwrap_or(RowState::Pending), n as u64);
    }
    Ok(counts)
}

/// Deletes old rows that are not pending (at most `limit`), then the old import sets of the table
/// that have no rows left.
pub fn purge(
    conn: &Connection,
    staging: &TableSchema,
    before: sluice_core::DateTime,
    limit: u64,
) -> rusqlite::Result<PurgeReport> {
    let table = &staging.name;
    let before = before.to_string();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .prepare_cached(&format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table}
             WHERE sys_created_on < ?1 AND sys_import_state != 'pending' ORDER BY rowid LIMIT ?2)"
        ))?
        .execute(params![before, limit])?;
    let import_sets = conn
        .prepare_cached(&format!(
            "DELETE FROM sys_import_set WHERE table_name = ?1 AND sys_created_on < ?2
             AND NOT EXISTS (SELECT 1 FROM {table} WHERE {table}.sys_import_set = sys_import_set.sys_id)"
        ))?
        .execute(params![table, before])?;
    Ok(PurgeReport { rows: rows as u64, import_sets: import_sets as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::integration::Integration;

    /// The worker's scan, the progress counts and the end-of-set check search by index, never by
    /// walking the staging table.
    #[test]
    fn bulk_queries_use_the_indexes() {
        let catalog = Catalog::builtin();
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        crate::migrate::migrate(&mut conn, &catalog).expect("migrate");
        let staging = Integration::builtin_default(&catalog).staging.clone();
        crate::migrate::ensure_table(&conn, &staging).expect("staging table");
        crate::migrate::staging_indexes(&conn, &staging.name).expect("staging indexes");
        let plan = |sql: &str, params: usize| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("prepare");
            let values: Vec<i64> = (0..params as i64).collect();
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| r.get::<_, String>(3));
            rows.expect("plan").collect::<rusqlite::Result<Vec<_>>>().expect("plan").join("; ")
        };
        let t = "u_incident_import";
        let pending = plan(&staged_rows_sql(&staging), 4);
        assert_eq!(pending, format!("SEARCH {t} USING INDEX {t}_state (sys_import_state=? AND rowid>?)"));
        let counts = plan(&counts_sql(t), 1);
        assert!(counts.starts_with(&format!("SEARCH {t} USING INDEX {t}_set_row (sys_import_set=?)")), "{counts}");
        for comparison in [">", "<"] {
            let check = plan(&pending_in_set_sql(t, comparison), 2);
            let expected =
                format!("SEARCH {t} USING INDEX {t}_set_row (sys_import_set=? AND sys_import_row{comparison}?)");
            assert_eq!(check, expected);
        }
    }
}
