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
