//! Today's import set of each staging table and its next row number, remembered by the writer:
//! otherwise every import searches for the set and for the highest row number in it, two index
//! searches per row inside the single writer.
//!
//! Like the reference cache, it belongs to the writer thread and is right only while it mirrors
//! this writer's own writes: it is emptied when a batch is rolled back, before any job other than
//! a single-row import (bulk loads, purges, table preparation), and every few seconds, so a
//! change by another process on the same data folder is seen soon.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MAX_AGE: Duration = Duration::from_secs(5);

struct Slot {
    set_id: String,
    number: String,
    /// The day (`YYYY-MM-DD`) the set belongs to: web-service sets close at midnight.
    day: String,
    next_row: i64,
}

struct Slots {
    map: HashMap<String, Slot>,
    since: Instant,
}

thread_local! {
    static SLOTS: RefCell<Slots> = RefCell::new(Slots { map: HashMap::new(), since: Instant::now() });
}

/// The set's sys_id and number and a row number for one more row, if the set of `table` for
/// `day` is known.
pub fn take(table: &str, day: &str) -> Option<(String, String, i64)> {
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        if slots.since.elapsed() > MAX_AGE {
            slots.map.clear();
            slots.since = Instant::now();
            return None;
        }
        let slot = slots.map.get_mut(table).filter(|s| s.day == day)?;
        let row = slot.next_row;
        slot.next_row += 1;
        Some((slot.set_id.clone(), slot.number.clone(), row))
    })
}

/// Remembers that `row` was just given out in `set_id` for `day`.
pub fn remember(table: &str, set_id: &str, number: &str, day: &str, row: i64) {
    SLOTS.with(|slots| {
        let slot =
            Slot { set_id: set_id.to_owned(), number: number.to_owned(), day: day.to_owned(), next_row: row + 1 };
        slots.borrow_mut().map.insert(table.to_owned(), slot);
    });
}

pub fn clear() {
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        slots.map.clear();
        slots.since = Instant::now();
    });
}
