//! WAL checkpoints on their own thread and connection. Left to SQLite, the checkpoint runs inside
//! whichever commit crosses the 1,000-page mark, i.e. on the group-commit writer, which then
//! copies the WAL into the database (and fsyncs it) while every waiting request waits too. Here
//! the writer only appends to the WAL and this thread copies it back in the background
//! (`PASSIVE`: never blocks the writer or readers).
//!
//! SQLite starts the WAL over on the writer's next transaction only when every frame has been
//! copied, which a busy writer never allows (its next commit lands before the copy ends), and
//! it takes the write lock back too quickly for a `RESTART` checkpoint to ever get it. So once
//! the WAL holds [`REWIND_FRAMES`], the checkpointer asks the writer through a [`RewindGate`] to
//! wait before its next transaction, copies the few frames the passive pass left (`RESTART`),
//! and lets it go: the writer's next transaction starts the WAL over, in the same file blocks.
//! Measured: without it the WAL grew to 1 GB in two minutes under load, and a tenth of the
//! writer's time went to the file system zeroing the new blocks it appended.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back: often enough that it stays a few MB under full load.
const INTERVAL: Duration = Duration::from_millis(200);

/// WAL frames (page + 24 bytes) after which the writer is made to start the WAL over: ~33 MB.
pub const REWIND_FRAMES: i64 = 8_192;

/// The WAL file is cut back to this when it starts over (`journal_size_limit`). Above
/// [`REWIND_FRAMES`]' size, so the usual rewind reuses the file's blocks instead of growing it.
pub const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// How long a rewind waits for the write lock and for readers before it gives up until the
/// next round.
const RESTART_WAIT: Duration = Duration::from_millis(100);

/// The longest the writer waits for a rewind; past it, it writes on (the WAL just grows).
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// How the checkpointer holds the writer between two transactions.
#[derive(Default)]
pub struct RewindGate {
    wanted: AtomicBool,
    closed: Mutex<bool>,
    opened: Condvar,
}

impl RewindGate {
    /// Called by the writer before each transaction; returns at once unless a rewind is wanted.
    pub fn pass(&self) {
        if !self.wanted.load(Ordering::Acquire) {
            return;
        }
        let closed = self.closed.lock().expect("rewind gate");
        let _ = self.opened.wait_timeout_while(closed, MAX_PAUSE, |closed| *closed);
    }

    fn close(&self) {
        *self.closed.lock().expect("rewind gate") = true;
        self.wanted.store(true, Ordering::Release);
    }

    fn open(&self) {
        self.wanted.store(false, Ordering::Release);
        *self.closed.lock().expect("rewind gate") = false;
        self.opened.notify_all();
    }
}

pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(
        path: &Path,
        synchronous_full: bool,
        rewind_frames: i64,
        gate: Arc<RewindGate>,
    ) -> crate::Result<Self> {
        let conn = Connection::open(path)?;
        // A RESTART holds the write lock while it waits for readers to leave the WAL: a long
        // reader (a backup, an export) must cost the writer a moment, not seconds.
        conn.busy_timeout(RESTART_WAIT)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA wal_autocheckpoint = 0;",
            if synchronous_full { "FULL" } else { "NORMAL" }
        ))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("sluice-checkpoint".into()).spawn(move || {
            let checkpoint = |mode: &str| -> rusqlite::Result<i64> {
                conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
            };
            while !flag.load(Ordering::Relaxed) {
                std::thread::park_timeout(INTERVAL);
                match checkpoint("PASSIVE") {
                    Ok(frames) if frames >= rewind_frames => {
                        // A second pass copies what was written during the first, so the
                        // writer is held only for the frames of the last moments.
                        let _ = checkpoint("PASSIVE");
                        gate.close();
                        let restart = checkpoint("RESTART");
                        gate.open();
                        if let Err(e) = restart {
                            tracing::warn!(error = %e, frames, "WAL restart failed; retrying");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
                }
            }
            // Last one, after the writer has stopped: leave a small WAL behind.
            let _ = conn.busy_timeout(Duration::from_secs(5));
            if let Err(e) = checkpoint("TRUNCATE") {
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

    /// A writer as the store configures it (WAL, no checkpoints of its own) on a new table `t`.
    fn writer(path: &Path, wal_size_limit: i64) -> Connection {
        let writer = Connection::open(path).unwrap();
        writer.busy_timeout(Duration::from_secs(5)).unwrap();
        writer
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {wal_size_limit};
                 CREATE TABLE t (v TEXT NOT NULL);"
            ))
            .unwrap();
        writer
    }

    /// One transaction of `rows` rows of `bytes` random bytes, through the gate as the writer does.
    fn write(writer: &Connection, gate: &RewindGate, rows: usize, bytes: i64) {
        gate.pass();
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        for _ in 0..rows {
            writer.execute("INSERT INTO t (v) VALUES (hex(randomblob(?1)))", [bytes]).unwrap();
        }
        writer.execute_batch("COMMIT").unwrap();
    }

    fn count(path: &Path) -> i64 {
        Connection::open(path).unwrap().query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn copies_the_wal_back_while_the_writer_only_appends_and_truncates_it_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = writer(&path, -1);
        let gate = Arc::new(RewindGate::default());
        // One transaction per call: the writer's next transaction is where the WAL rewinds.
        let write = |n: usize| write(&writer, &gate, n, 512);
        write(2_000);
        let grown = wal_len(dir.path());
        assert!(grown > 1_000_000, "the writer alone never checkpoints: {grown}");

        let mut checkpointer = Checkpointer::start(&path, true, REWIND_FRAMES, gate.clone()).unwrap();
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
        assert_eq!(count(&path), 2_500);
    }

    #[test]
    fn a_writer_that_never_pauses_still_gets_the_wal_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = writer(&path, 256 * 4096);
        let gate = Arc::new(RewindGate::default());
        let mut checkpointer = Checkpointer::start(&path, true, 256, gate.clone()).unwrap();
        // ~40 MB through the WAL in back-to-back transactions: without the restart the WAL
        // would hold all of it.
        for _ in 0..400 {
            write(&writer, &gate, 100, 512);
        }
        // Without the restart the WAL ends near 60 MB; with it, it holds what was written since
        // the last rewind (a few intervals' worth in a debug build on a busy machine).
        let wal = wal_len(dir.path());
        assert!(wal < 30 << 20, "the WAL grew with the writes: {wal} bytes");
        drop(writer);
        checkpointer.stop();
        assert_eq!(count(&path), 40_000);
    }

    #[test]
    fn a_long_reader_costs_the_writer_a_moment_not_its_whole_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = writer(&path, -1);
        writer.execute("INSERT INTO t (v) VALUES ('first')", []).unwrap();
        // A reader (a backup, say) keeps one snapshot for 3 s: no rewind can happen meanwhile.
        let reader_path = path.clone();
        let reader = std::thread::spawn(move || {
            let conn = Connection::open(&reader_path).unwrap();
            conn.execute_batch("BEGIN").unwrap();
            let _: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
            std::thread::sleep(Duration::from_secs(3));
            conn.execute_batch("COMMIT").unwrap();
        });
        let gate = Arc::new(RewindGate::default());
        let mut checkpointer = Checkpointer::start(&path, true, 64, gate.clone()).unwrap();
        let started = std::time::Instant::now();
        let mut slowest = Duration::ZERO;
        while started.elapsed() < Duration::from_secs(3) {
            let one = std::time::Instant::now();
            write(&writer, &gate, 50, 256);
            slowest = slowest.max(one.elapsed());
        }
        reader.join().unwrap();
        drop(writer);
        checkpointer.stop();
        assert!(slowest < Duration::from_secs(1), "a write waited {slowest:?} behind the reader");
    }
}
