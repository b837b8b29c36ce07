//! Saved console filters (`sluice_saved_filter`): saves and deletes are writer jobs, so the
//! per-account count and the insert happen in one transaction with no other writer between.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use sluice_store::Result as StoreResult;
use sluice_store::saved_filter::{self, FilterRefusal, MAX_PER_ACCOUNT, SaveFilter, SavedFilter, SavedFilters};

use crate::SqliteStore;
use crate::writer::Job;

/// A saved-filter change, one writer job.
#[derive(Debug)]
pub enum Change {
    Save(SavedFilter),
    Delete { user_name: String, id: String },
}

#[derive(Debug)]
pub enum Answer {
    Saved(SaveFilter),
    Deleted(bool),
}

pub fn apply(conn: &Connection, change: &Change) -> rusqlite::Result<Answer> {
    match change {
        Change::Save(f) => save(conn, f).map(Answer::Saved),
        Change::Delete { user_name, id } => {
            let n = conn
                .prepare_cached("DELETE FROM sluice_saved_filter WHERE user_name = ?1 AND id = ?2")?
                .execute([user_name, id])?;
            Ok(Answer::Deleted(n > 0))
        }
    }
}

fn save(conn: &Connection, f: &SavedFilter) -> rusqlite::Result<SaveFilter> {
    if let Err(refusal) = saved_filter::check(f) {
        return Ok(SaveFilter::Refused(refusal));
    }
    let existing: Option<String> = conn
        .prepare_cached("SELECT id FROM sluice_saved_filter WHERE user_name = ?1 AND name = ?2")?
        .query_row([&f.user_name, &f.name], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        conn.prepare_cached("UPDATE sluice_saved_filter SET query = ?2, sort = ?3, saved_ms = ?4 WHERE id = ?1")?
            .execute(params![id, f.query, f.sort, f.saved_ms])?;
        return Ok(SaveFilter::Saved { id, replaced: true });
    }
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM sluice_saved_filter WHERE user_name = ?1")?
        .query_row([&f.user_name], |r| r.get(0))?;
    if u64::try_from(count).unwrap_or(u64::MAX) >= MAX_PER_ACCOUNT {
        return Ok(SaveFilter::Refused(FilterRefusal::TooMany));
    }
    conn.prepare_cached(
        "INSERT INTO sluice_saved_filter (id, user_name, name, query, sort, saved_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![f.id, f.user_name, f.name, f.query, f.sort, f.saved_ms])?;
    Ok(SaveFilter::Saved { id: f.id.clone(), replaced: false })
}

/// Every filter of an account (deleted with it, inside the account change).
pub fn delete_of(conn: &Connection, user_name: &str) -> rusqlite::Result<u64> {
    let n = conn.prepare_cached("DELETE FROM sluice_saved_filter WHERE user_name = ?1")?.execute([user_name])?;
    Ok(n as u64)
}

fn list(conn: &Connection, user_name: &str) -> rusqlite::Result<Vec<SavedFilter>> {
    conn.prepare_cached(
        "SELECT id, user_name, name, query, sort, saved_ms FROM sluice_saved_filter WHERE user_name = ?1
         ORDER BY name, id",
    )?
    .query_map([user_name], |r| {
        Ok(SavedFilter {
            id: r.get(0)?,
            user_name: r.get(1)?,
            name: r.get(2)?,
            query: r.get(3)?,
            sort: r.get(4)?,
            saved_ms: r.get(5)?,
        })
    })?
    .collect()
}

#[async_trait]
impl SavedFilters for SqliteStore {
    async fn save_filter(&self, filter: SavedFilter) -> StoreResult<SaveFilter> {
        match self.enqueue(|tx| Job::SavedFilter(Box::new(Change::Save(filter)), tx)).await? {
            Answer::Saved(outcome) => Ok(outcome),
            Answer::Deleted(_) => unreachable!("a save answers Saved"),
        }
    }

    async fn saved_filters(&self, user_name: String) -> StoreResult<Vec<SavedFilter>> {
        self.read(move |c| list(c, &user_name)).await
    }

    async fn delete_saved_filter(&self, user_name: String, id: String) -> StoreResult<bool> {
        match self.enqueue(|tx| Job::SavedFilter(Box::new(Change::Delete { user_name, id }), tx)).await? {
            Answer::Deleted(found) => Ok(found),
            Answer::Saved(_) => unreachable!("a delete answers Deleted"),
        }
    }
}
