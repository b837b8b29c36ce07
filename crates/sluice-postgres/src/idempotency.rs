//! Idempotency keys across nodes (imports and `insertMultiple`): a key is claimed by inserting its row first (the primary key
//! makes a second request with the same key wait for the first to commit or roll back), and the
//! outcome is written in the same transaction as the import. A retry therefore finds either
//! nothing (the import did not commit) or the committed answer.

use sluice_core::DateTime;
use sqlx::{PgConnection, Row};

use crate::Result;
use sluice_store::idempotency::{decode, decode_set};
use sluice_store::{Idempotency, ImportOutcome, StagedSet, StoreError};

/// Claims the key for this transaction; `Some` is the answer (as recorded) of an earlier request
/// with it, `KeyReused` when that request was a different one.
async fn claim_raw(c: &mut PgConnection, account: &str, idem: &Idempotency, now: DateTime) -> Result<Option<String>> {
    let claimed = sqlx::query(
        "INSERT INTO sluice_idempotency (account, key, fingerprint, outcome, created_on) VALUES ($1, $2, $3, '', $4)
         ON CONFLICT (account, key) DO NOTHING",
    )
    .bind(account)
    .bind(&idem.key)
    .bind(&idem.fingerprint)
    .bind(now.unix())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if claimed == 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT fingerprint, outcome FROM sluice_idempotency WHERE account = $1 AND key = $2")
        .bind(account)
        .bind(&idem.key)
        .fetch_one(c)
        .await?;
    let (fingerprint, answer): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    if fingerprint != idem.fingerprint {
        return Err(StoreError::KeyReused.into());
    }
    Ok(Some(answer))
}

fn unreadable() -> crate::Error {
    StoreError::Corrupt("unreadable idempotency record".into()).into()
}

/// [`claim_raw`] for an import: the earlier import's outcome.
pub async fn claim(
    c: &mut PgConnection,
    account: &str,
    idem: &Idempotency,
    now: DateTime,
) -> Result<Option<ImportOutcome>> {
    match claim_raw(c, account, idem, now).await? {
        None => Ok(None),
        Some(text) => decode(&text).map(Some).ok_or_else(unreadable),
    }
}

/// [`claim_raw`] for an `insertMultiple`: the import set staged the first time.
pub async fn claim_set(
    c: &mut PgConnection,
    account: &str,
    idem: &Idempotency,
    now: DateTime,
) -> Result<Option<StagedSet>> {
    match claim_raw(c, account, idem, now).await? {
        None => Ok(None),
        Some(text) => decode_set(&text).map(Some).ok_or_else(unreadable),
    }
}

/// Records the answer (encoded) under the key claimed by [`claim`] or [`claim_set`].
pub async fn record(c: &mut PgConnection, account: &str, idem: &Idempotency, answer: String) -> Result<()> {
    sqlx::query("UPDATE sluice_idempotency SET outcome = $3 WHERE account = $1 AND key = $2")
        .bind(account)
        .bind(&idem.key)
        .bind(answer)
        .execute(c)
        .await?;
    Ok(())
}

/// The `UPDATE` recording several answers at once, parameters numbered from `first`: accounts,
/// keys and answers (encoded), each key claimed before.
pub fn record_many_sql(first: usize) -> String {
    format!(
        "UPDATE sluice_idempotency s SET outcome = u.outcome
         FROM UNNEST(${}::text[], ${}::text[], ${}::text[]) AS u(account, key, outcome)
         WHERE s.account = u.account AND s.key = u.key",
        first,
        first + 1,
        first + 2
    )
}

pub async fn purge(c: &mut PgConnection, before: DateTime) -> Result<u64> {
    let n = sqlx::query("DELETE FROM sluice_idempotency WHERE created_on < $1").bind(before.unix()).execute(c).await?;
    Ok(n.rows_affected())
}
