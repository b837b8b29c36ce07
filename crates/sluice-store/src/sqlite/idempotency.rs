//! Idempotency keys: the first answer of an import or an `insertMultiple` is kept under
//! (account, key) in the same transaction as the import or the staging itself, so a retry after any failure, restart or on another node
//! finds either nothing (the import did not commit) or the committed answer.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sluice_core::staging::RowState;
use sluice_core::validate::FieldError;
use sluice_core::{DateTime, SysId};

use crate::{Idempotency, ImportJob, ImportOutcome, StageBatch, StagedSet, StoreError};

pub(crate) fn encode(o: &ImportOutcome) -> String {
    json!({
        "import_set": o.import_set,
        "staging_sys_id": o.staging_sys_id.as_str(),
        "state": o.state.as_str(),
        "target_sys_id": o.target_sys_id,
        "display_value": o.display_value,
        "status_message": o.status_message,
        "errors": o.errors,
    })
    .to_string()
}

pub(crate) fn decode(text: &str) -> Option<ImportOutcome> {
    let v: Value = serde_json::from_str(text).ok()?;
    let state = [
        RowState::Pending,
        RowState::Inserted,
        RowState::Updated,
        RowState::Ignored,
        RowState::Skipped,
        RowState::Error,
    ]
    .into_iter()
    .find(|s| Some(s.as_str()) == v["state"].as_str())?;
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    Some(ImportOutcome {
        import_set: text("import_set")?,
        staging_sys_id: SysId::parse(v["staging_sys_id"].as_str()?).ok()?,
        state,
        target_sys_id: text("target_sys_id"),
        display_value: text("display_value"),
        status_message: text("status_message"),
        errors: serde_json::from_value::<Vec<FieldError>>(v["errors"].clone()).ok()?,
        replayed: true,
    })
}

/// Runs `import` unless the job's key was seen: then answers the recorded outcome (same
/// request) or refuses (different request).
pub fn guarded(
    conn: &Connection,
    job: &ImportJob,
    import: impl FnOnce() -> rusqlite::Result<ImportOutcome>,
) -> Result<ImportOutcome, StoreError> {
    remembered(conn, &job.actor.user_name, job.idempotency.as_ref(), job.now, encode, decode, import)
}

pub(crate) fn encode_set(s: &StagedSet) -> String {
    json!({"insert_multiple": {"import_set": s.import_set, "number": s.number, "multi_import_set": s.multi_import_set}})
        .to_string()
}

pub(crate) fn decode_set(text: &str) -> Option<StagedSet> {
    let v: Value = serde_json::from_str(text).ok()?;
    let set = &v["insert_multiple"];
    let text = |k: &str| set[k].as_str().map(str::to_owned);
    Some(StagedSet {
        import_set: text("import_set")?,
        number: text("number")?,
        multi_import_set: text("multi_import_set")?,
        replayed: true,
        outcomes: Vec::new(),
    })
}

/// Stages `batch` unless its key was seen: then answers the import set staged the first time
/// (same request) or refuses (different request).
pub fn guarded_batch(
    conn: &Connection,
    batch: &StageBatch,
    stage: impl FnOnce() -> rusqlite::Result<StagedSet>,
) -> Result<StagedSet, StoreError> {
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
) -> Result<T, StoreError> {
    let Some(idem) = idem else { return Ok(run()?) };
    let seen: Option<(String, String)> = conn
        .prepare_cached("SELECT fingerprint, outcome FROM sluice_idempotency WHERE account = ?1 AND key = ?2")?
        .query_row(params![account, idem.key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((fingerprint, answer)) = seen {
        if fingerprint != idem.fingerprint {
            return Err(StoreError::KeyReused);
        }
        return decode(&answer).ok_or_else(|| StoreError::Io(std::io::Error::other("unreadable idempotency record")));
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
