//! Where log lines go: standard error, in blocks. One `write` per line was a tenth of the request
//! threads' time under load (every request logs one line), so lines are gathered in memory and
//! written at most [`INTERVAL`] later, or at once when [`BLOCK`] is full. Warnings and errors
//! (and everything after [`flush`] at exit) are written straight away, after what is waiting,
//! so nothing is reordered and nothing that explains a failure waits.

use std::io::Write;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The longest a line waits before it reaches standard error.
const INTERVAL: Duration = Duration::from_millis(100);
/// Waiting lines are written at once past this size.
const BLOCK: usize = 64 * 1024;

static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static FLUSHER: OnceLock<()> = OnceLock::new();

fn pending() -> MutexGuard<'static, Vec<u8>> {
    // A panic while holding the lock leaves whole lines behind: keep logging.
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes everything waiting. Called by the flusher thread, and by `main` before it returns.
pub fn flush() {
    let block = std::mem::take(&mut *pending());
    write_out(&block);
}

fn write_out(block: &[u8]) {
    if !block.is_empty() {
        let _ = std::io::stderr().lock().write_all(block);
    }
}

/// The `MakeWriter` for `tracing_subscriber::fmt`: buffered for info and below, direct above.
#[derive(Clone, Copy, Default)]
pub struct LogSink;

impl LogSink {
    /// Starts the thread that writes waiting lines every [`INTERVAL`].
    pub fn start() -> Self {
        FLUSHER.get_or_init(|| {
            let spawned = std::thread::Builder::new().name("sluice-log".into()).spawn(|| {
                loop {
                    std::thread::sleep(INTERVAL);
                    flush();
                }
            });
            if let Err(e) = spawned {
                eprintln!("log flusher not started ({e}); logging line by line");
            }
        });
        Self
    }
}

/// One event's bytes: the formatter writes a whole line through it.
pub struct Line {
    direct: bool,
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut pending = pending();
        pending.extend_from_slice(bytes);
        if self.direct || pending.len() >= BLOCK || FLUSHER.get().is_none() {
            let block = std::mem::take(&mut *pending);
            drop(pending);
            write_out(&block);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { direct: true }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line { direct: *meta.level() <= Level::WARN }
    }
}
