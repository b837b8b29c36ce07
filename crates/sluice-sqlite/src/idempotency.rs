//! Idempotency keys: the first answer of an import or an `insertMultiple` is kept under
//! (account, key) in the same transaction as the import or the staging itself, so a retry after any failure, restart or on another node
//! finds either nothing (the import did not commit) or the committed answer.

use rusqlite::{Connection, OptionalExtension, params};
use sluice_core::DateTime;

use crate::Result;
use sluice_store::idempotency::{decode, decode_set, encode, encode_set};
use sluice_store::{Idempotency, ImportJob, ImportOutcome, StageBatch, StagedSet, StoreError};

/// Runs `import` unless the job's key was seen: then answers the recorded outcome (same
/// request) or refuses (different request).
pub fn guarded(
    conn: &Connection,
    job: &ImportJob,
    import: impl FnOnce() -> rusqlite::Result<ImportOutcome>,
) -> Result<ImportOutcome> {
    remembered(conn, &job.actor.user_name, job.idempotency.as_ref(), job.now, encode, decode, import)
}

/// Stages `batch` unless its key was seen: then answers the import set staged the first time
/// (same request) or refuses (different request).
pub fn guarded_batch(
    conn: &Connection,
    batch: &StageBatch,
    stage: impl FnOnce() -> rusqlite::Result<StagedSet>,
) -> Result<StagedSet> {
    remembered(conn, &batch.actor.user_name, batch.idempotency.as_ref(), batch.now, encode_set, decode_set, stage)
}

/// Runs `run` and records its answer under (account, key) in the same transaction, unless the
/// key was seen: then the recorded answer (same fingerprint) or `KeyReused`.
fn remembered<T>(
    conn: &Connection,
    account: &str,
    idem: Option<&Idempotency>,
    now: DateTime,
    encode: fn(&T) -> String,
    decode: fn(&str) -> Option<T>,
    run: impl FnOnce() -> rusqlite::Result<T>,
) -> Result<T> {
    let Some(idem) = idem else { return Ok(run()?) };
    let seen: Option<(String, String)> = conn
        .prepare_cached("SELECT fingerprint, outcome FROM sluice_idempotency WHERE account = ?1 AND key = ?2")?
        .query_row(params![account, idem.key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((fingerprint, answer)) = seen {
        if fingerprint != idem.fingerprint {
            return Err(StoreError::KeyReused.into());
        }
        return decode(&answer).ok_or_else(|| StoreError::Corrupt("unreadable idempotency record".into()).into());
    }
    let answer = run()?;
    conn.prepare_cached(
        "INSERT INTO sluice_idempotency (account, key, fingerprint, outcome, created_on) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![account, idem.key, idem.fingerprint, encode(&answer), now.unix()])?;
    Ok(answer)
}

pub fn purge(conn: &Connection, before: DateTime) -> rusqlite::Result<u64> {
    let n = conn.prepare_cached("DELETE FROM sluice_idempotency WHERE created_on < ?1")?.execute([before.unix()])?;
    Ok(n as u64)
}
