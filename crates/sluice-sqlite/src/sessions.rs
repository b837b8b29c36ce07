//! Console sessions (`sluice_session`): written by the writer thread like every other change.

use rusqlite::{Connection, OptionalExtension, params};

use sluice_store::Session;

/// A session change, one writer job.
#[derive(Debug)]
pub enum Change {
    Create(Session),
    Touch { digest: String, now_ms: i64, idle_ms: i64 },
    Delete(String),
    DeleteOf(String),
    Purge(i64),
}

#[derive(Debug)]
pub enum Answer {
    Created,
    Touched(Option<Session>),
    Deleted(u64),
}

const COLUMNS: &str = "digest, user_name, csrf, created_ms, idle_expires_ms, absolute_expires_ms";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        digest: r.get(0)?,
        user_name: r.get(1)?,
        csrf: r.get(2)?,
        created_ms: r.get(3)?,
        idle_expires_ms: r.get(4)?,
        absolute_expires_ms: r.get(5)?,
    })
}

/// The live session with this digest (a reader's query, not a writer job).
pub fn live(conn: &Connection, digest: &str, now_ms: i64) -> rusqlite::Result<Option<Session>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sluice_session WHERE digest = ?1 AND idle_expires_ms > ?2 AND absolute_expires_ms > ?2"
    ))?
    .query_row(params![digest, now_ms], from_row)
    .optional()
}

pub fn apply(conn: &Connection, change: &Change) -> rusqlite::Result<Answer> {
    match change {
        Change::Create(s) => {
            conn.prepare_cached(
                "INSERT INTO sluice_session (digest, user_name, csrf, created_ms, idle_expires_ms, absolute_expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                s.digest,
                s.user_name,
                s.csrf,
                s.created_ms,
                s.idle_expires_ms,
                s.absolute_expires_ms
            ])?;
            Ok(Answer::Created)
        }
        Change::Touch { digest, now_ms, idle_ms } => {
            let session = conn
                .prepare_cached(&format!(
                    "UPDATE sluice_session SET idle_expires_ms = min(?2 + ?3, absolute_expires_ms)
                     WHERE digest = ?1 AND idle_expires_ms > ?2 AND absolute_expires_ms > ?2
                     RETURNING {COLUMNS}"
                ))?
                .query_row(params![digest, now_ms, idle_ms], from_row)
                .optional()?;
            Ok(Answer::Touched(session))
        }
        Change::Delete(digest) => {
            let n = conn.prepare_cached("DELETE FROM sluice_session WHERE digest = ?1")?.execute([digest])?;
            Ok(Answer::Deleted(n as u64))
        }
        Change::DeleteOf(user_name) => {
            let n = conn
                .prepare_cached("DELETE FROM sluice_session WHERE user_name = ?1 COLLATE NOCASE")?
                .execute([user_name])?;
            Ok(Answer::Deleted(n as u64))
        }
        Change::Purge(now_ms) => {
            let n = conn
                .prepare_cached("DELETE FROM sluice_session WHERE idle_expires_ms <= ?1 OR absolute_expires_ms <= ?1")?
                .execute([now_ms])?;
            Ok(Answer::Deleted(n as u64))
        }
    }
}
