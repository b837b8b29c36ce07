//! Record numbers (`INC…`, `ISET…`) given out by the writer: the counter row of a prefix is read
//! once per transaction and written back once, just before `COMMIT`, instead of being updated
//! for every number (a bulk request of 100 rows took 100 updates of one row).
//!
//! Like the other writer caches, it holds only what this transaction did: [`flush`] empties it,
//! and a rolled-back batch empties it ([`clear`]). A job undone alone (its savepoint rolled back)
//! leaves a gap in the numbers, never a number given twice.

use std::cell::RefCell;
use std::collections::HashMap;

use rusqlite::{Connection, params};
use sluice_core::number;

thread_local! {
    static NEXT: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// The next number of `prefix`.
pub fn next(conn: &Connection, prefix: &str) -> rusqlite::Result<String> {
    NEXT.with(|next| {
        let mut next = next.borrow_mut();
        let n = match next.get_mut(prefix) {
            Some(n) => n,
            None => {
                let stored: i64 = conn
                    .prepare_cached("SELECT next FROM sys_number_counter WHERE prefix = ?1")?
                    .query_row([prefix], |r| r.get(0))?;
                next.entry(prefix.to_owned()).or_insert(stored)
            }
        };
        let taken = *n;
        *n += 1;
        Ok(number::format(prefix, taken as u64))
    })
}

/// Writes the counters this transaction advanced; called right before `COMMIT`.
pub fn flush(conn: &Connection) -> rusqlite::Result<()> {
    let advanced: Vec<(String, i64)> = NEXT.with(|next| next.borrow_mut().drain().collect());
    for (prefix, n) in advanced {
        conn.prepare_cached("UPDATE sys_number_counter SET next = ?2 WHERE prefix = ?1")?
            .execute(params![prefix, n])?;
    }
    Ok(())
}

/// Forgets the counters (the transaction was rolled back).
pub fn clear() {
    NEXT.with(|next| next.borrow_mut().clear());
}
