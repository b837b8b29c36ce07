//! Idempotency keys across nodes: a key is claimed by inserting its row first (the primary key
//! makes a second request with the same key wait for the first to commit or roll back), and the
//! outcome is written in the same transaction as the import. A retry therefore finds either
//! nothing (the import did not commit) or the committed answer.

use sluice_core::DateTime;
use sqlx::{PgConnection, Row};

use crate::sqlite::idempotency::{decode, encode};
use crate::{Idempotency, ImportOutcome, Result, StoreError};

/// Claims the key for this transaction; `Some` is the answer of an earlier request with it.
pub async fn claim(
    c: &mut PgConnection,
    account: &str,
    idem: &Idempotency,
    now: DateTime,
) -> Result<Option<ImportOutcome>> {
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
    let (fingerprint, outcome): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    if fingerprint != idem.fingerprint {
        return Err(StoreError::KeyReused);
    }
    decode(&outcome).map(Some).ok_or_else(|| StoreError::Io(std::io::Error::other("unreadable idempotency record")))
}

/// Records the outcome under the key claimed by [`claim`].
pub async fn record(c: &mut PgConnection, account: &str, idem: &Idempotency, outcome: &ImportOutcome) -> Result<()> {
    sqlx::query("UPDATE sluice_idempotency SET outcome = $3 WHERE account = $1 AND key = $2")
        .bind(account)
        .bind(&idem.key)
        .bind(encode(outcome))
        .execute(c)
        .await?;
    Ok(())
}

pub async fn purge(c: &mut PgConnection, before: DateTime) -> Result<u64> {
    let n = sqlx::query("DELETE FROM sluice_idempotency WHERE created_on < $1").bind(before.unix()).execute(c).await?;
    Ok(n.rows_affected())
}
