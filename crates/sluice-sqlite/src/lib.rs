//! The embedded SQLite store: one data folder, one database file in WAL mode, a group-commit
//! writer thread for every write and a small pool of read connections that never wait for it.

mod accounts;
mod aggregate;
mod attachments;
mod checkpoint;
mod history;
pub(crate) mod idempotency;
mod import;
mod import_slot;
pub(crate) mod migrate;
mod numbers;
mod outbox;
mod query;
mod records;
mod reference_cache;
mod saved_filters;
mod sessions;
mod staged;
mod stats;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sluice_core::Record;
use sluice_core::account::Account;
use sluice_core::schema::TableSchema;
use sluice_core::tables::Catalog;
use tokio::sync::oneshot;

use sluice_store::Result as StoreResult;
use sluice_store::aggregate_sql;
use sluice_store::settle::{self, ReadOnly, Settled};
use sluice_store::{
    AccountChange, Accounts, AdminAudit, AdminAuditEntry, AggregateQuery, AggregateRow, ApiToken, DryRun, HourTotal,
    ImportJob, ImportOutcome, Imports, JournalEntry, ListQuery, Maintenance, NewAccount, Page, ProcessJob, PurgeReport,
    Records, RowFilter, Session, Sessions, StageBatch, StagedSet, StateCounts, Stats, StatsDelta, StatsFilter,
    StatsTotal, StoreError, StoredRow, TableWrite, TokenMatch, WriteResult,
};
use std::collections::HashMap;
use writer::Job;

pub use migrate::SCHEMA_VERSION;

pub const DATABASE_FILE: &str = "sluice.db";

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Jobs waiting for the writer before new writes are refused with [`StoreError::Busy`].
    pub queue_capacity: usize,
    /// Most jobs committed in one transaction.
    pub max_batch: usize,
    /// `synchronous=FULL` (durable across power loss) or `NORMAL` (durable across crashes only).
    pub synchronous_full: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { queue_capacity: 4096, max_batch: 512, synchronous_full: true }
    }
}

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<SyncSender<Job>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<checkpoint::Checkpointer>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// The built-in tables, for following references in queries (`caller_id.user_name=...`).
    catalog: Arc<Catalog>,
}

fn configure(conn: &Connection, synchronous_full: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -16000; PRAGMA temp_store = MEMORY;",
        if synchronous_full { "FULL" } else { "NORMAL" }
    ))?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

/// The writer's connection: checkpoints are [`checkpoint::Checkpointer`]'s job, not the commit's.
fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {};",
        checkpoint::WAL_SIZE_LIMIT
    ))
}

impl SqliteStore {
    /// Opens (creating when needed) the database in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path, options: SqliteOptions) -> StoreResult<Self> {
        Ok(Self::start(data_dir, options)?)
    }

    fn start(data_dir: &Path, options: SqliteOptions) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(DATABASE_FILE);
        let mut conn = Connection::open(&path)?;
        configure(&conn, options.synchronous_full)?;
        let catalog = Catalog::builtin();
        migrate::migrate(&mut conn, &catalog)?;
        configure_writer(&conn)?;
        let gate = Arc::new(checkpoint::RewindGate::default());
        let checkpointer =
            checkpoint::Checkpointer::start(&path, options.synchronous_full, checkpoint::REWIND_FRAMES, gate.clone())?;
        let shared = Arc::new(catalog.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(options.queue_capacity);
        let max_batch = options.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("sluice-writer".into())
            .spawn(move || writer::run(conn, catalog, rx, max_batch, &gate))?;
        Ok(Self {
            path,
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some(checkpointer)),
            readers: Arc::new(Mutex::new(Vec::new())),
            catalog: shared,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn enqueue<T>(&self, make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Job) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        let sender = self.writer.lock().expect("writer lock").clone().ok_or(StoreError::Closed)?;
        match sender.try_send(make(tx)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(StoreError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a pooled read-only connection on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().expect("reader pool").pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(Error::from)?;
                    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(Error::from)?;
                    c.set_prepared_statement_cache_capacity(256);
                    c
                }
            };
            let result = f(&conn);
            let mut pool = readers.lock().expect("reader pool");
            if pool.len() < 16 {
                pool.push(conn);
            }
            result.map_err(|e| StoreError::from(Error::from(e)))
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?
    }
}

#[async_trait]
impl Imports for SqliteStore {
    async fn dry_run(&self, job: DryRun) -> StoreResult<Settled> {
        let catalog = self.catalog.clone();
        // On a reader: the commit step with its writes left out, against committed data.
        self.read(move |conn| {
            let (staging_sys_id, reason) = job.staging_row();
            let row = job.row(&staging_sys_id, &reason);
            let mut tx = ReadOnly(import::SqliteTx { conn, cached: false });
            let outcome = ImportOutcome::unsettled(String::new(), staging_sys_id.clone());
            import::ready(settle::settle(&mut tx, &row, &catalog, &job.verdict, None, outcome))
        })
        .await
    }

    async fn prepare_staging(&self, staging: Arc<TableSchema>) -> StoreResult<()> {
        self.enqueue(|tx| Job::PrepareStaging(staging, tx)).await
    }

    async fn import(&self, job: ImportJob) -> StoreResult<ImportOutcome> {
        self.enqueue(|tx| Job::Import(Box::new(job), tx)).await
    }

    async fn stage_many(&self, batch: StageBatch) -> StoreResult<StagedSet> {
        self.enqueue(|tx| Job::StageMany(Box::new(batch), tx)).await
    }

    async fn staged_rows(&self, staging: Arc<TableSchema>, filter: RowFilter) -> StoreResult<Vec<StoredRow>> {
        self.read(move |c| staged::staged_rows(c, &staging, &filter)).await
    }

    async fn process(&self, jobs: Vec<ProcessJob>) -> StoreResult<Vec<StoreResult<Option<ImportOutcome>>>> {
        // Each row is its own writer job, queued in order: the writer commits them in group
        // transactions and undoes a failing one alone. After a refusal (queue full, closed) the
        // later rows are not queued, so the order holds when they are sent again.
        let sender = self.writer.lock().expect("writer lock").clone().ok_or(StoreError::Closed)?;
        let mut waiting = Vec::with_capacity(jobs.len());
        let mut refused = None;
        for job in jobs {
            if let Some(busy) = refused {
                waiting.push(Err(busy));
                continue;
            }
            let (tx, rx) = oneshot::channel();
            match sender.try_send(Job::Process(Box::new(job), tx)) {
                Ok(()) => waiting.push(Ok(rx)),
                Err(e) => {
                    let busy = matches!(e, TrySendError::Full(_));
                    refused = Some(busy);
                    waiting.push(Err(busy));
                }
            }
        }
        drop(sender);
        let mut out = Vec::with_capacity(waiting.len());
        for w in waiting {
            out.push(match w {
                Ok(rx) => rx.await.map_err(|_| StoreError::Closed).and_then(|r| r),
                Err(true) => Err(StoreError::Busy),
                Err(false) => Err(StoreError::Closed),
            });
        }
        Ok(out)
    }

    async fn state_counts(&self, staging: Arc<TableSchema>, import_set: String) -> StoreResult<StateCounts> {
        self.read(move |c| staged::state_counts(c, &staging, &import_set)).await
    }
}

#[async_trait]
impl Records for SqliteStore {
    async fn get(&self, table: Arc<TableSchema>, sys_id: String) -> StoreResult<Option<Record>> {
        self.read(move |c| records::get(c, &table, &sys_id)).await
    }

    async fn list(&self, table: Arc<TableSchema>, query: ListQuery) -> StoreResult<Page> {
        let catalog = self.catalog.clone();
        self.read(move |c| {
            let (records, total) = records::list(c, &catalog, &table, &query)?;
            Ok(Page { records, total })
        })
        .await
    }

    async fn write(&self, write: TableWrite) -> StoreResult<WriteResult> {
        self.enqueue(|tx| Job::Write(Box::new(write), tx)).await
    }

    async fn aggregate(&self, table: Arc<TableSchema>, query: AggregateQuery) -> StoreResult<Vec<AggregateRow>> {
        let statement = aggregate_sql::statement::<query::Sqlite>(&self.catalog, &table, &query)?;
        self.read(move |c| aggregate::run(c, &table, &query, &statement)).await
    }

    async fn display_values(
        &self,
        table: Arc<TableSchema>,
        sys_ids: Vec<String>,
    ) -> StoreResult<HashMap<String, String>> {
        self.read(move |c| {
            let sql = format!("SELECT sys_id, {} FROM {} WHERE sys_id = ?1", table.display_field, table.name);
            let mut stmt = c.prepare_cached(&sql)?;
            let mut out = HashMap::new();
            for id in sys_ids {
                if out.contains_key(&id) {
                    continue;
                }
                if let Some(v) = stmt.query_row([&id], |r| Ok(records::text(r.get_ref(1)?))).optional()? {
                    out.insert(id, v);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn journal(&self, table: String, sys_ids: Vec<String>) -> StoreResult<Vec<JournalEntry>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT element_id, element, value, sys_created_on, sys_created_by FROM sys_journal_field
                 WHERE name = ?1 AND element_id = ?2 ORDER BY rowid DESC",
            )?;
            let mut out = Vec::new();
            for id in sys_ids {
                let rows = stmt.query_map([&table, &id], |r| {
                    Ok(JournalEntry {
                        element_id: r.get(0)?,
                        element: r.get(1)?,
                        value: r.get(2)?,
                        created_on: r.get(3)?,
                        created_by: r.get(4)?,
                    })
                })?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Accounts for SqliteStore {
    async fn account(&self, user_name: String) -> StoreResult<Option<Account>> {
        self.read(move |c| accounts::find(c, &user_name)).await
    }

    async fn accounts(&self) -> StoreResult<Vec<Account>> {
        self.read(accounts::all).await
    }

    async fn change_account(&self, change: AccountChange) -> StoreResult<Option<Account>> {
        self.enqueue(|tx| Job::ChangeAccount(Box::new(change), tx)).await
    }

    async fn tokens(&self, user_name: String) -> StoreResult<Vec<ApiToken>> {
        self.read(move |c| accounts::tokens(c, &user_name)).await
    }

    async fn account_by_token(&self, digest: String) -> StoreResult<Option<TokenMatch>> {
        self.read(move |c| accounts::by_token(c, &digest)).await
    }

    async fn add_account(&self, account: NewAccount) -> StoreResult<Account> {
        self.enqueue(|tx| Job::AddAccount(account, tx)).await
    }
}

#[async_trait]
impl AdminAudit for SqliteStore {
    async fn record_admin_audit(&self, entry: AdminAuditEntry) -> StoreResult<()> {
        self.enqueue(|tx| Job::AdminAudit(Box::new(entry), tx)).await
    }

    async fn admin_audit(
        &self,
        action: Option<String>,
        limit: u64,
        offset: u64,
    ) -> StoreResult<(Vec<AdminAuditEntry>, u64)> {
        self.read(move |c| accounts::audit_page(c, action.as_deref(), limit, offset)).await
    }
}

#[async_trait]
impl Stats for SqliteStore {
    async fn add_stats(&self, deltas: Vec<StatsDelta>) -> StoreResult<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        self.enqueue(|tx| Job::AddStats(deltas, tx)).await
    }

    async fn stats(&self, filter: StatsFilter) -> StoreResult<Vec<StatsTotal>> {
        self.read(move |c| stats::read(c, &filter)).await
    }

    async fn stats_per_hour(&self, filter: StatsFilter) -> StoreResult<Vec<HourTotal>> {
        self.read(move |c| stats::per_hour(c, &filter)).await
    }

    async fn purge_stats(&self, before_minute: i64) -> StoreResult<u64> {
        self.enqueue(|tx| Job::PurgeStats(before_minute, tx)).await
    }
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn create_session(&self, session: Session) -> StoreResult<()> {
        self.session(sessions::Change::Create(session)).await.map(|_| ())
    }

    async fn live_session(&self, digest: String, now_ms: i64) -> StoreResult<Option<Session>> {
        self.read(move |c| sessions::live(c, &digest, now_ms)).await
    }

    async fn touch_session(&self, digest: String, now_ms: i64, idle_ms: i64) -> StoreResult<Option<Session>> {
        match self.session(sessions::Change::Touch { digest, now_ms, idle_ms }).await? {
            sessions::Answer::Touched(session) => Ok(session),
            _ => Ok(None),
        }
    }

    async fn delete_session(&self, digest: String) -> StoreResult<bool> {
        Ok(self.session_count(sessions::Change::Delete(digest)).await? > 0)
    }

    async fn delete_sessions_of(&self, user_name: String) -> StoreResult<u64> {
        self.session_count(sessions::Change::DeleteOf(user_name)).await
    }

    async fn purge_sessions(&self, now_ms: i64) -> StoreResult<u64> {
        self.session_count(sessions::Change::Purge(now_ms)).await
    }
}

impl SqliteStore {
    async fn session(&self, change: sessions::Change) -> StoreResult<sessions::Answer> {
        self.enqueue(|tx| Job::Session(Box::new(change), tx)).await
    }

    async fn session_count(&self, change: sessions::Change) -> StoreResult<u64> {
        match self.session(change).await? {
            sessions::Answer::Deleted(n) => Ok(n),
            _ => Ok(0),
        }
    }
}

#[async_trait]
impl Maintenance for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        let writer_alive =
            self.writer_thread.lock().expect("writer lock").as_ref().is_some_and(|handle| !handle.is_finished());
        if !writer_alive {
            return Err(StoreError::Closed);
        }
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    async fn purge_staging(
        &self,
        staging: Arc<TableSchema>,
        before: sluice_core::DateTime,
        limit: u64,
    ) -> StoreResult<PurgeReport> {
        self.enqueue(|tx| Job::PurgeStaging(staging, before, limit, tx)).await
    }

    async fn purge_idempotency(&self, before: sluice_core::DateTime) -> StoreResult<u64> {
        self.enqueue(|tx| Job::PurgeIdempotency(before, tx)).await
    }

    async fn close(&self) {
        drop(self.writer.lock().expect("writer lock").take());
        let handle = self.writer_thread.lock().expect("writer lock").take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        let checkpointer = self.checkpointer.lock().expect("checkpointer lock").take();
        if let Some(mut checkpointer) = checkpointer {
            let _ = tokio::task::spawn_blocking(move || checkpointer.stop()).await;
        }
    }
}

/// What goes wrong inside this backend; it leaves the crate as a [`StoreError`] (the driver's
/// error wrapped opaquely in [`sluice_store::DatabaseError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Store(StoreError::Io(e))
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            Error::Sqlite(e) => StoreError::Database(sluice_store::DatabaseError::new(e)),
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
