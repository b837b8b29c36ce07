//! Bulk imports on PostgreSQL: records staged as `pending` rows of one asynchronous import set
//! in one transaction (a synchronous request's rows processed in it as they are staged); each
//! pending row processed in its own transaction that first claims the row with
//! `FOR UPDATE SKIP LOCKED`, so the workers of several nodes share pending rows without running
//! one twice; replays; and the retention purge (which skips rows another node holds).

use sluice_core::number;
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::tables;
use sluice_core::{DateTime, SysId};
use sqlx::{PgConnection, PgPool, Row};

use crate::Result;
use crate::import::{self, PgTx, outcome_fields};
use crate::query::ident;
use crate::{Ctx, idempotency, records};
use sluice_store::idempotency::encode_set;
use sluice_store::settle::settle;
use sluice_store::{ImportOutcome, ProcessJob, PurgeReport, RowFilter, StageBatch, StagedSet, StateCounts, StoredRow};

/// A new asynchronous import set (state `loaded`) holding every record of the batch as a
/// `pending` row, numbered from 0 in the order given.
pub async fn stage_many(pool: &PgPool, ctx: &Ctx, batch: &StageBatch) -> Result<StagedSet> {
    let staging = &batch.staging;
    let mut tx = pool.begin().await?;
    if let Some(idem) = &batch.idempotency
        && let Some(earlier) = idempotency::claim_set(&mut tx, &batch.actor.user_name, idem, batch.now).await?
    {
        // Ended here, not by dropping it: a dropped transaction is rolled back only when its
        // connection is next flushed, holding its locks until then.
        tx.rollback().await?;
        return Ok(earlier);
    }
    let number = import::next_number(&mut tx, number::IMPORT_SET_PREFIX).await?;
    let multi = batch.multi_import_set.clone().unwrap_or_else(|| SysId::generate().into_string());
    let schema = ctx.catalog.get(tables::SYS_IMPORT_SET).expect("built-in table");
    let set = sluice_store::staging_row::asynchronous_import_set(schema, &number, &multi, batch);
    records::insert(&mut tx, schema, &set).await?;
    let set_id = set["sys_id"].clone();
    let mut outcomes = Vec::with_capacity(batch.rows.len());
    for (i, record) in batch.rows.iter().enumerate() {
        let payload = String::from_utf8_lossy(&record.payload);
        let mut row = import::staging_row(
            staging,
            &record.sys_id,
            &record.columns,
            &[
                ("sys_import_set", set_id.as_str()),
                ("sys_import_state", RowState::Pending.as_str()),
                ("sys_target_table", batch.target.name.as_str()),
                ("sys_transform_map", batch.transform_map.as_str()),
                ("sys_import_row", &i.to_string()),
                ("sys_payload", &payload),
            ],
            &batch.actor,
            batch.now,
        );
        // A row given with a verdict is processed as it is staged (written once, with its
        // outcome), as a single import is; its coalesce lock is held to the end of the request's
        // transaction, and a deadlock with another request's retries the transaction.
        let outcome = match &record.verdict {
            Some(verdict) => {
                let reason = batch.audit_reason(record);
                let context = batch.row(record, &reason);
                let outcome = ImportOutcome::unsettled(number.clone(), record.sys_id.clone());
                let mut pg = PgTx { c: &mut tx, ctx, coalesce_locked: false, cache: None };
                let outcome = settle(&mut pg, &context, &ctx.catalog, verdict, None, outcome).await?.outcome;
                for (field, value) in outcome_fields(&outcome) {
                    row.insert(field.into(), value);
                }
                row.insert("sys_integration_version".into(), batch.integration_version.clone());
                Some(outcome)
            }
            None => None,
        };
        records::insert(&mut tx, staging, &row).await?;
        outcomes.push(outcome);
    }
    let set = StagedSet { import_set: set_id, number, multi_import_set: multi, replayed: false, outcomes };
    if let Some(idem) = &batch.idempotency {
        idempotency::record(&mut tx, &batch.actor.user_name, idem, encode_set(&set)).await?;
    }
    tx.commit().await?;
    Ok(set)
}

pub async fn staged_rows(c: &mut PgConnection, staging: &TableSchema, filter: &RowFilter) -> Result<Vec<StoredRow>> {
    let text = format!(
        "SELECT sluice_rowid, {} FROM {} WHERE \"sys_import_state\" = $1 AND sluice_rowid > $2
         AND \"sys_created_on\" >= $3 ORDER BY sluice_rowid LIMIT $4",
        records::columns(staging),
        ident(&staging.name)
    );
    let rows = records::sql(text)
        .bind(filter.state.as_str())
        .bind(filter.after)
        .bind(filter.since.map(|t| t.to_string()).unwrap_or_default())
        .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
        .fetch_all(c)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(StoredRow { position: row.try_get(0)?, record: records::from_row(staging, row, 1)? });
    }
    Ok(out)
}

/// Processes one staged row if it is still in the state the job expects and no other node holds
/// it, in its own transaction.
pub async fn process(pool: &PgPool, ctx: &Ctx, job: &ProcessJob) -> Result<Option<ImportOutcome>> {
    let staging = &job.staging;
    let mut tx = pool.begin().await?;
    let text = format!(
        "SELECT \"sys_import_set\", \"sys_import_state\", \"sys_target_sys_id\", \"sys_mod_count\"
         FROM {} WHERE \"sys_id\" = $1 FOR UPDATE SKIP LOCKED",
        ident(&staging.name)
    );
    let Some(found) = records::sql(text).bind(job.staging_sys_id.as_str()).fetch_optional(&mut *tx).await? else {
        tx.rollback().await?;
        return Ok(None);
    };
    let (set_id, state, prior): (String, String, String) = (found.try_get(0)?, found.try_get(1)?, found.try_get(2)?);
    let mod_count: i64 = found.try_get::<Option<i64>, _>(3)?.unwrap_or(0);
    if state != job.expected.as_str() {
        // Release the row now: a dropped transaction keeps its lock until the connection is next
        // flushed, and a worker (of any node) would skip the row meanwhile.
        tx.rollback().await?;
        return Ok(None);
    }
    let set = sqlx::query("SELECT number, mode FROM sys_import_set WHERE sys_id = $1")
        .bind(&set_id)
        .fetch_optional(&mut *tx)
        .await?;
    let (set_number, mode): (String, String) = match set {
        Some(r) => (r.try_get(0)?, r.try_get(1)?),
        None => Default::default(),
    };
    let prior_target =
        if prior.is_empty() { None } else { records::get_for_update(&mut tx, &job.target, &prior).await? };
    let reason = job.audit_reason();
    let context = job.row(&reason);
    let outcome = ImportOutcome::unsettled(set_number, job.staging_sys_id.clone());
    let mut pg = PgTx { c: &mut tx, ctx, coalesce_locked: false, cache: None };
    let outcome = settle(&mut pg, &context, &ctx.catalog, &job.verdict, prior_target, outcome).await?.outcome;

    let fields = sluice_store::staging_row::processed_fields(job, &outcome, mod_count);
    let set: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (*f, v.as_str())).collect();
    let now = job.now.to_string();
    records::update(&mut tx, staging, job.staging_sys_id.as_str(), &set).await?;

    if job.expected == RowState::Pending && mode == "asynchronous" {
        // Locking the set first makes the check see the other rows' committed states: of two
        // nodes finishing a set's last rows together, the second one marks it processed.
        sqlx::query("SELECT 1 FROM sys_import_set WHERE sys_id = $1 FOR UPDATE")
            .bind(&set_id)
            .execute(&mut *tx)
            .await?;
        let pending = records::sql(format!(
            "SELECT 1 FROM {} WHERE \"sys_import_set\" = $1 AND \"sys_import_state\" = 'pending' LIMIT 1",
            ident(&staging.name)
        ))
        .bind(&set_id)
        .fetch_optional(&mut *tx)
        .await?;
        if pending.is_none() {
            sqlx::query(
                "UPDATE sys_import_set SET state = 'processed', sys_updated_on = $2,
                 sys_mod_count = COALESCE(sys_mod_count, 0) + 1 WHERE sys_id = $1 AND state <> 'processed'",
            )
            .bind(&set_id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Some(outcome))
}

pub async fn state_counts(c: &mut PgConnection, staging: &TableSchema, set_id: &str) -> Result<StateCounts> {
    let text = format!(
        "SELECT \"sys_import_state\", COUNT(*) FROM {} WHERE \"sys_import_set\" = $1 GROUP BY \"sys_import_state\"",
        ident(&staging.name)
    );
    let mut counts = StateCounts::default();
    for row in records::sql(text).bind(set_id.to_owned()).fetch_all(c).await? {
        let (state, n): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        // A row in an unknown state counts as pending: it is not done.
        counts.add(state.parse().unwrap_or(RowState::Pending), n as u64);
    }
    Ok(counts)
}

/// Deletes old rows that are not pending (at most `limit`, none another node holds), then the old
/// import sets of the table that have no rows left.
pub async fn purge(pool: &PgPool, staging: &TableSchema, before: DateTime, limit: u64) -> Result<PurgeReport> {
    let table = ident(&staging.name);
    let before = before.to_string();
    let mut tx = pool.begin().await?;
    let rows = records::sql(format!(
        "DELETE FROM {table} WHERE sluice_rowid IN (SELECT sluice_rowid FROM {table}
         WHERE \"sys_created_on\" < $1 AND \"sys_import_state\" <> 'pending'
         ORDER BY sluice_rowid LIMIT $2 FOR UPDATE SKIP LOCKED)"
    ))
    .bind(before.clone())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let import_sets = records::sql(format!(
        "DELETE FROM sys_import_set WHERE table_name = $1 AND sys_created_on < $2
         AND NOT EXISTS (SELECT 1 FROM {table} WHERE {table}.\"sys_import_set\" = sys_import_set.sys_id)"
    ))
    .bind(staging.name.clone())
    .bind(before)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(PurgeReport { rows, import_sets })
}
