//! WAL checkpoints on their own thread and connection. Left to SQLite, the checkpoint runs inside
//! whichever commit crosses the 1,000-page mark, i.e. on the group-commit writer, which then
//! copies the WAL into the database (and fsyncs it) while every waiting request waits too. Here
//! the writer only appends to the WAL and this thread copies it back in the background
//! (`PASSIVE`: never blocks the writer or readers); SQLite rewinds the WAL on the writer's next
//! transaction once everything has been copied.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back: often enough that it stays a few MB under full load.
const INTERVAL: Duration = Duration::from_millis(200);

pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path, synchronous_full: bool) -> crate::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA wal_autocheckpoint = 0;",
            if synchronous_full { "FULL" } else { "NORMAL" }
        ))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("sluice-checkpoint".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::park_timeout(INTERVAL);
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                }
            }
            // Last one, after the writer has stopped: leave a small WAL behind.
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "final WAL checkpoint failed");
            }
        })?;
        Ok(Self { stop, thread: Some(thread) })
    }

    /// Runs a last checkpoint and waits for the thread (call after the writer has stopped).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_len(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("t.db-wal")).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn copies_the_wal_back_while_the_writer_only_appends_and_truncates_it_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (v TEXT NOT NULL);",
            )
            .unwrap();
        // One transaction per call: the writer's next transaction is where the WAL rewinds.
        let write = |n: usize| {
            writer.execute_batch("BEGIN").unwrap();
            for _ in 0..n {
                writer.execute("INSERT INTO t (v) VALUES (hex(randomblob(512)))", []).unwrap();
            }
            writer.execute_batch("COMMIT").unwrap();
        };
        write(2_000);
        let grown = wal_len(dir.path());
        assert!(grown > 1_000_000, "the writer alone never checkpoints: {grown}");

        let mut checkpointer = Checkpointer::start(&path, true).unwrap();
        // Once everything is copied back, the writer's next transaction rewinds the WAL, so it
        // stops growing however long writing goes on.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (log, done): (i64, i64) =
                writer.query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| Ok((r.get(1)?, r.get(2)?))).unwrap_or((1, 0));
            if log > 0 && log == done {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the checkpointer did not copy the WAL back");
            std::thread::sleep(Duration::from_millis(50));
        }
        for _ in 0..5 {
            write(100);
            std::thread::sleep(INTERVAL * 2);
        }
        assert!(wal_len(dir.path()) <= grown, "the WAL kept growing: {} > {grown}", wal_len(dir.path()));

        drop(writer);
        checkpointer.stop();
        assert_eq!(wal_len(dir.path()), 0, "stop leaves an empty WAL");
        let conn = Connection::open(&path).unwrap();
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 2_500);
    }
}
