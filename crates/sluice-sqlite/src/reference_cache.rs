//! Reference lookups remembered by the writer: most imports name the same few callers, groups
//! and CIs, and each lookup is an index search per match field inside the single writer.
//!
//! The cache belongs to the writer thread (one per store; nothing else resolves references), so
//! it needs no lock. It is only ever right while it mirrors committed or in-flight data of this
//! one writer: it is emptied whenever a batch is rolled back and before any job that may change
//! a referenced table other than by creating a referenced record (Table API writes, account
//! changes), which the writer sees because every SQLite write goes through it. Another process
//! on the same data folder (`sluice account delete` while the server runs) is not seen, so
//! entries also expire after a few seconds, as verified credentials do.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use sluice_core::transform::Lookup;

/// Beyond this many entries the cache starts again (a bound on memory, not a tuning knob).
const CAPACITY: usize = 16_384;
/// How long an entry may miss another process's change.
const MAX_AGE: Duration = Duration::from_secs(5);

struct Entries {
    map: HashMap<Key, String>,
    since: Instant,
}

thread_local! {
    static ENTRIES: RefCell<Entries> = RefCell::new(Entries { map: HashMap::new(), since: Instant::now() });
}

/// Table, match fields and the value as SQLite's `NOCASE` compares it (ASCII case folded).
#[derive(Hash, PartialEq, Eq)]
struct Key(String, Vec<String>, String);

fn key(lookup: &Lookup) -> Key {
    Key(lookup.table.clone(), lookup.match_fields.clone(), lookup.value.to_ascii_lowercase())
}

pub fn get(lookup: &Lookup) -> Option<String> {
    ENTRIES.with(|entries| {
        let mut entries = entries.borrow_mut();
        if entries.since.elapsed() > MAX_AGE {
            entries.map.clear();
            entries.since = Instant::now();
        }
        entries.map.get(&key(lookup)).cloned()
    })
}

pub fn put(lookup: &Lookup, sys_id: &str) {
    ENTRIES.with(|entries| {
        let mut entries = entries.borrow_mut();
        if entries.map.len() >= CAPACITY {
            entries.map.clear();
        }
        entries.map.insert(key(lookup), sys_id.to_owned());
    });
}

pub fn clear() {
    ENTRIES.with(|entries| {
        let mut entries = entries.borrow_mut();
        entries.map.clear();
        entries.since = Instant::now();
    });
}
