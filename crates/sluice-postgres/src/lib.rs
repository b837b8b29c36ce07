//! The PostgreSQL store, for several stateless sluice nodes on one database: a connection pool;
//! imports group committed by a few writer tasks (`writer.rs`: every import waiting goes into one
//! transaction, answered after its `COMMIT`), other writes one transaction each that commits
//! before the call returns; and explicit cross-node coordination where
//! SQLite relies on its single writer: sequences for numbers, advisory transaction locks for
//! coalescing and record creation, a unique key for idempotency, `FOR UPDATE SKIP LOCKED` for
//! background work. See DEVELOPERS.md, "Two backends".

mod accounts;
mod aggregate;
mod attachments;
mod batch;
mod history;
mod idempotency;
mod import;
pub mod migrate;
mod outbox;
pub mod query;
pub mod records;
mod saved_filters;
mod sessions;
mod staged;
mod stats;
mod writer;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sluice_core::account::Account;
use sluice_core::schema::TableSchema;
use sluice_core::tables::Catalog;
use sluice_core::{DateTime, Record};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Row};

use query::ident;
use sluice_store::Result as StoreResult;
use sluice_store::aggregate_sql;
use sluice_store::settle::{self, ReadOnly, Settled};
use sluice_store::{
    AccountChange, Accounts, AdminAudit, AdminAuditEntry, AggregateQuery, AggregateRow, ApiToken, DryRun, HourTotal,
    ImportJob, ImportOutcome, Imports, JournalEntry, ListQuery, Maintenance, NewAccount, Page, ProcessJob, PurgeReport,
    Records, RowFilter, Session, Sessions, StageBatch, StagedSet, StateCounts, Stats, StatsDelta, StatsFilter,
    StatsTotal, StoreError, StoredRow, TableWrite, TokenMatch, WriteResult,
};

#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections in this node's pool.
    pub max_connections: u32,
    /// How long a request waits for a free connection before [`StoreError::Busy`].
    pub acquire_timeout: Duration,
    /// The schema holding sluice's tables (created when missing); the server's search path when
    /// `None`.
    pub schema: Option<String>,
    /// Group-commit tasks for imports (each holds one connection while it writes a batch).
    pub writers: usize,
    /// Imports per transaction at most.
    pub max_batch: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(10), schema: None, writers: 2, max_batch: 64 }
    }
}

/// The work of one transaction, on its connection.
type TxFuture<'c, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'c>>;

/// What every operation needs besides a connection.
pub(crate) struct Ctx {
    pub catalog: Catalog,
    /// Makes advisory lock keys unique per database schema (locks are database-wide).
    pub salt: String,
    /// Today's import set per staging table (see `import::import_set`).
    pub(crate) sets: std::sync::Mutex<HashMap<String, import::ImportSet>>,
}

pub struct PostgresStore {
    pool: PgPool,
    imports: tokio::sync::mpsc::Sender<writer::Request>,
    ctx: Arc<Ctx>,
    closed: AtomicBool,
}

/// A stable 64-bit key (FNV-1a) for an advisory lock; every node computes the same.
pub(crate) fn lock_key(salt: &str, what: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in salt.bytes().chain([0x1f]).chain(what.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// Takes advisory locks held until the transaction ends, in key order, so that two transactions
/// never wait for each other in a cycle.
pub(crate) async fn lock(c: &mut PgConnection, keys: &[(&str, &str)]) -> Result<(), sqlx::Error> {
    let mut keys: Vec<i64> = keys.iter().map(|(salt, what)| lock_key(salt, what)).collect();
    keys.sort_unstable();
    keys.dedup();
    match keys.as_slice() {
        [] => {}
        [key] => {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(*key).execute(&mut *c).await?;
        }
        // One round trip; a plain scan of unnest yields the keys in array order.
        _ => {
            sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k")
                .bind(keys)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

/// Deadlocks and serialization failures are transient: the transaction is run again.
fn transient(e: &Error) -> bool {
    match e {
        Error::Store(_) => false,
        Error::Postgres(sqlx::Error::Database(d)) => matches!(d.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if transient(&e) && tries < 3 => {
                tries += 1;
                tracing::debug!(error = %e, tries, "transaction retried");
            }
            other => return other,
        }
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/database`) and brings the schema up to date.
    pub async fn open(url: &str, options: PostgresOptions) -> StoreResult<Self> {
        Ok(Self::start(url, options).await?)
    }

    async fn start(url: &str, options: PostgresOptions) -> Result<Self> {
        // Notices ("already exists, skipping" at every start) are not worth a log line.
        let mut settings = vec![("client_min_messages", "warning")];
        if let Some(schema) = &options.schema {
            if !sluice_core::schema::is_identifier(schema) {
                return Err(StoreError::InvalidSchemaName(schema.to_owned()).into());
            }
            settings.push(("search_path", schema.as_str()));
        }
        let connect =
            PgConnectOptions::from_str(url)?.application_name("sluice").statement_cache_capacity(256).options(settings);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        let salt: String = match &options.schema {
            Some(schema) => schema.clone(),
            None => sqlx::query("SELECT current_schema()::text").fetch_one(&pool).await?.try_get(0)?,
        };
        let ctx = Arc::new(Ctx { catalog: Catalog::builtin(), salt, sets: Default::default() });
        // Nodes starting together: the first creates and migrates, the others wait and find it done.
        let mut tx = pool.begin().await?;
        lock(&mut tx, &[(&ctx.salt, "ddl")]).await?;
        if let Some(schema) = &options.schema {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema))))
                .execute(&mut *tx)
                .await?;
        }
        migrate::migrate(&mut tx, &ctx.salt, &ctx.catalog).await?;
        tx.commit().await?;
        let imports = writer::start(pool.clone(), ctx.clone(), options.writers, options.max_batch);
        Ok(Self { pool, imports, ctx, closed: AtomicBool::new(false) })
    }

    fn open_pool(&self) -> Result<&PgPool> {
        if self.closed.load(Ordering::Acquire) { Err(StoreError::Closed.into()) } else { Ok(&self.pool) }
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.open_pool()?.acquire().await?)
    }

    /// Runs `f` in a transaction that commits when it succeeds (retried when transient).
    async fn in_tx<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> Fn(&'c mut PgConnection) -> TxFuture<'c, T>,
    {
        let pool = self.open_pool()?;
        retrying(|| async {
            let mut tx = pool.begin().await?;
            let value = f(&mut tx).await?;
            tx.commit().await?;
            Ok(value)
        })
        .await
    }
}

/// A backend call's error as the store's.
async fn backend<T>(work: impl std::future::Future<Output = Result<T>>) -> StoreResult<T> {
    work.await.map_err(StoreError::from)
}

#[async_trait]
impl Imports for PostgresStore {
    async fn dry_run(&self, job: DryRun) -> StoreResult<Settled> {
        backend(async {
            let mut conn = self.conn().await?;
            let (staging_sys_id, reason) = job.staging_row();
            let row = job.row(&staging_sys_id, &reason);
            // Outside a transaction: the coalesce search's row lock ends with its statement.
            let pg = import::PgTx { c: &mut conn, ctx: &self.ctx, coalesce_locked: true, cache: None };
            let outcome = ImportOutcome::unsettled(String::new(), staging_sys_id.clone());
            Ok(settle::settle(&mut ReadOnly(pg), &row, &self.ctx.catalog, &job.verdict, None, outcome).await?)
        })
        .await
    }

    async fn prepare_staging(&self, staging: Arc<TableSchema>) -> StoreResult<()> {
        backend(async {
            let ctx = self.ctx.clone();
            self.in_tx(move |c| {
                let (ctx, staging) = (ctx.clone(), staging.clone());
                Box::pin(async move { Ok(migrate::prepare_staging(c, &ctx.salt, &staging).await?) })
            })
            .await
        })
        .await
    }

    async fn import(&self, job: ImportJob) -> StoreResult<ImportOutcome> {
        self.open_pool()?;
        writer::submit(&self.imports, job).await
    }

    async fn stage_many(&self, batch: StageBatch) -> StoreResult<StagedSet> {
        backend(async {
            let pool = self.open_pool()?;
            retrying(|| staged::stage_many(pool, &self.ctx, &batch)).await
        })
        .await
    }

    async fn staged_rows(&self, staging: Arc<TableSchema>, filter: RowFilter) -> StoreResult<Vec<StoredRow>> {
        backend(async { staged::staged_rows(&mut *self.conn().await?, &staging, &filter).await }).await
    }

    async fn process(&self, jobs: Vec<ProcessJob>) -> StoreResult<Vec<StoreResult<Option<ImportOutcome>>>> {
        backend(async {
            // In order, each row in its own transaction; after a refusal (busy, closed) the later
            // rows are not run, so the order holds when they are sent again.
            let mut out = Vec::with_capacity(jobs.len());
            let mut refused: Option<bool> = None;
            for job in &jobs {
                if let Some(busy) = refused {
                    out.push(Err(if busy { StoreError::Busy } else { StoreError::Closed }));
                    continue;
                }
                let result: StoreResult<_> = match self.open_pool() {
                    Ok(pool) => retrying(|| staged::process(pool, &self.ctx, job)).await.map_err(StoreError::from),
                    Err(e) => Err(e.into()),
                };
                match &result {
                    Err(StoreError::Busy) => refused = Some(true),
                    Err(StoreError::Closed) => refused = Some(false),
                    _ => {}
                }
                out.push(result);
            }
            Ok(out)
        })
        .await
    }

    async fn state_counts(&self, staging: Arc<TableSchema>, import_set: String) -> StoreResult<StateCounts> {
        backend(async { staged::state_counts(&mut *self.conn().await?, &staging, &import_set).await }).await
    }
}

#[async_trait]
impl Records for PostgresStore {
    async fn get(&self, table: Arc<TableSchema>, sys_id: String) -> StoreResult<Option<Record>> {
        backend(async { Ok(records::get(&mut *self.conn().await?, &table, &sys_id).await?) }).await
    }

    async fn list(&self, table: Arc<TableSchema>, query: ListQuery) -> StoreResult<Page> {
        backend(async {
            let mut c = self.conn().await?;
            let (records, total) = records::list(&mut c, &self.ctx.catalog, &table, &query).await?;
            Ok(Page { records, total })
        })
        .await
    }

    async fn write(&self, write: TableWrite) -> StoreResult<WriteResult> {
        backend(async {
            let ctx = self.ctx.clone();
            let write = Arc::new(write);
            self.in_tx(move |c| {
                let (ctx, write) = (ctx.clone(), write.clone());
                Box::pin(async move { Ok(import::table_write(c, &ctx, &write).await?) })
            })
            .await
        })
        .await
    }

    async fn aggregate(&self, table: Arc<TableSchema>, query: AggregateQuery) -> StoreResult<Vec<AggregateRow>> {
        let statement = aggregate_sql::statement::<query::Postgres>(&self.ctx.catalog, &table, &query)?;
        backend(async { Ok(aggregate::run(&mut *self.conn().await?, &table, &query, &statement).await?) }).await
    }

    async fn display_values(
        &self,
        table: Arc<TableSchema>,
        sys_ids: Vec<String>,
    ) -> StoreResult<HashMap<String, String>> {
        backend(async {
            let text = format!(
                "SELECT \"sys_id\", {}::text FROM {} WHERE \"sys_id\" = ANY($1)",
                ident(&table.display_field),
                ident(&table.name)
            );
            let rows = records::sql(text).bind(sys_ids).fetch_all(&mut *self.conn().await?).await?;
            let mut out = HashMap::with_capacity(rows.len());
            for row in rows {
                out.insert(row.try_get(0)?, row.try_get::<Option<String>, _>(1)?.unwrap_or_default());
            }
            Ok(out)
        })
        .await
    }

    async fn journal(&self, table: String, sys_ids: Vec<String>) -> StoreResult<Vec<JournalEntry>> {
        backend(async {
            let mut c = self.conn().await?;
            let mut out = Vec::new();
            for id in sys_ids {
                let rows = sqlx::query(
                    "SELECT element_id, element, value, sys_created_on, sys_created_by FROM sys_journal_field
                     WHERE name = $1 AND element_id = $2 ORDER BY sluice_rowid DESC",
                )
                .bind(&table)
                .bind(&id)
                .fetch_all(&mut *c)
                .await?;
                for r in rows {
                    out.push(JournalEntry {
                        element_id: r.try_get(0)?,
                        element: r.try_get(1)?,
                        value: r.try_get(2)?,
                        created_on: r.try_get(3)?,
                        created_by: r.try_get(4)?,
                    });
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Accounts for PostgresStore {
    async fn account(&self, user_name: String) -> StoreResult<Option<Account>> {
        backend(async { Ok(accounts::find(&mut *self.conn().await?, &user_name).await?) }).await
    }

    async fn accounts(&self) -> StoreResult<Vec<Account>> {
        backend(async { Ok(accounts::all(&mut *self.conn().await?).await?) }).await
    }

    async fn add_account(&self, account: NewAccount) -> StoreResult<Account> {
        backend(async {
            let ctx = self.ctx.clone();
            let account = Arc::new(account);
            self.in_tx(move |c| {
                let (ctx, account) = (ctx.clone(), account.clone());
                Box::pin(async move { accounts::add(c, &ctx, &account).await })
            })
            .await
        })
        .await
    }

    async fn change_account(&self, change: AccountChange) -> StoreResult<Option<Account>> {
        backend(async {
            let ctx = self.ctx.clone();
            let change = Arc::new(change);
            self.in_tx(move |c| {
                let (ctx, change) = (ctx.clone(), change.clone());
                Box::pin(async move { accounts::change_account(c, &ctx, &change).await })
            })
            .await
        })
        .await
    }

    async fn tokens(&self, user_name: String) -> StoreResult<Vec<ApiToken>> {
        backend(async { Ok(accounts::tokens(&mut *self.conn().await?, &user_name).await?) }).await
    }

    async fn account_by_token(&self, digest: String) -> StoreResult<Option<TokenMatch>> {
        backend(async { Ok(accounts::by_token(&mut *self.conn().await?, &digest).await?) }).await
    }
}

#[async_trait]
impl AdminAudit for PostgresStore {
    async fn record_admin_audit(&self, entry: AdminAuditEntry) -> StoreResult<()> {
        backend(async { Ok(accounts::record_audit(&mut *self.conn().await?, &entry).await?) }).await
    }

    async fn admin_audit(
        &self,
        action: Option<String>,
        limit: u64,
        offset: u64,
    ) -> StoreResult<(Vec<AdminAuditEntry>, u64)> {
        backend(async { Ok(accounts::audit_page(&mut *self.conn().await?, action.as_deref(), limit, offset).await?) })
            .await
    }
}

#[async_trait]
impl Stats for PostgresStore {
    async fn add_stats(&self, deltas: Vec<StatsDelta>) -> StoreResult<()> {
        backend(async { Ok(stats::add(&mut *self.conn().await?, &deltas).await?) }).await
    }

    async fn stats(&self, filter: StatsFilter) -> StoreResult<Vec<StatsTotal>> {
        backend(async { Ok(stats::read(&mut *self.conn().await?, &filter).await?) }).await
    }

    async fn stats_per_hour(&self, filter: StatsFilter) -> StoreResult<Vec<HourTotal>> {
        backend(async { Ok(stats::per_hour(&mut *self.conn().await?, &filter).await?) }).await
    }

    async fn purge_stats(&self, before_minute: i64) -> StoreResult<u64> {
        backend(async { Ok(stats::purge(&mut *self.conn().await?, before_minute).await?) }).await
    }
}

#[async_trait]
impl Sessions for PostgresStore {
    async fn create_session(&self, session: Session) -> StoreResult<()> {
        backend(async { Ok(sessions::create(&mut *self.conn().await?, &session).await?) }).await
    }

    async fn live_session(&self, digest: String, now_ms: i64) -> StoreResult<Option<Session>> {
        backend(async { Ok(sessions::live(&mut *self.conn().await?, &digest, now_ms).await?) }).await
    }

    async fn touch_session(&self, digest: String, now_ms: i64, idle_ms: i64) -> StoreResult<Option<Session>> {
        backend(async { Ok(sessions::touch(&mut *self.conn().await?, &digest, now_ms, idle_ms).await?) }).await
    }

    async fn delete_session(&self, digest: String) -> StoreResult<bool> {
        backend(async { Ok(sessions::delete(&mut *self.conn().await?, &digest).await? > 0) }).await
    }

    async fn delete_sessions_of(&self, user_name: String) -> StoreResult<u64> {
        backend(async { Ok(sessions::delete_of(&mut *self.conn().await?, &user_name).await?) }).await
    }

    async fn purge_sessions(&self, now_ms: i64) -> StoreResult<u64> {
        backend(async { Ok(sessions::purge(&mut *self.conn().await?, now_ms).await?) }).await
    }
}

#[async_trait]
impl Maintenance for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        backend(async {
            sqlx::query("SELECT 1").execute(&mut *self.conn().await?).await?;
            Ok(())
        })
        .await
    }

    async fn purge_staging(&self, staging: Arc<TableSchema>, before: DateTime, limit: u64) -> StoreResult<PurgeReport> {
        backend(async {
            let pool = self.open_pool()?;
            retrying(|| staged::purge(pool, &staging, before, limit)).await
        })
        .await
    }

    async fn purge_idempotency(&self, before: DateTime) -> StoreResult<u64> {
        backend(async { idempotency::purge(&mut *self.conn().await?, before).await }).await
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.pool.close().await;
    }
}

/// What goes wrong inside this backend; it leaves the crate as a [`StoreError`] (the driver's
/// error wrapped opaquely in [`sluice_store::DatabaseError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A PostgreSQL error (a full pool is [`StoreError::Busy`], a closed one [`StoreError::Closed`]).
    #[error("PostgreSQL: {0}")]
    Postgres(sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => Self::Store(StoreError::Busy),
            sqlx::Error::PoolClosed => Self::Store(StoreError::Closed),
            other => Self::Postgres(other),
        }
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            Error::Postgres(e) => StoreError::Database(sluice_store::DatabaseError::new(e)),
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
