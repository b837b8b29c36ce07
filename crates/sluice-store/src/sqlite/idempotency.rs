//! Idempotency keys: the first outcome of an import is kept under (account, key) in the same
//! transaction as the import itself, so a retry after any failure, restart or on another node
//! finds either nothing (the import did not commit) or the committed answer.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sluice_core::staging::RowState;
use sluice_core::validate::FieldError;
use sluice_core::{DateTime, SysId};

use crate::{ImportJob, ImportOutcome, StoreError};

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
    let Some(idem) = &job.idempotency else { return Ok(import()?) };
    let account = &job.actor.user_name;
    let seen: Option<(String, String)> = conn
        .prepare_cached("SELECT fingerprint, outcome FROM sluice_idempotency WHERE account = ?1 AND key = ?2")?
        .query_row(params![account, idem.key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((fingerprint, outcome)) = seen {
        if fingerprint != idem.fingerprint {
            return Err(StoreError::KeyReused);
        }
        return decode(&outcome).ok_or_else(|| StoreError::Io(std::io::Error::other("unreadable idempotency record")));
    }
    let outcome = import()?;
    conn.prepare_cached(
        "INSERT INTO sluice_idempotency (account, key, fingerprint, outcome, created_on) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![account, idem.key, idem.fingerprint, encode(&outcome), job.now.unix()])?;
    Ok(outcome)
}

pub fn purge(conn: &Connection, before: DateTime) -> rusqlite::Result<u64> {
    let n = conn.prepare_cached("DELETE FROM sluice_idempotency WHERE created_on < ?1")?.execute([before.unix()])?;
    Ok(n as u64)
}
