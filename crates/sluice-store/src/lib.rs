//! Persistence behind one trait. [`Store`] speaks the domain's types only; each database has its
//! own implementation (SQLite today, PostgreSQL next) checked by the same contract tests.

pub mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use sluice_core::account::{Account, Role};
use sluice_core::query::EncodedQuery;
use sluice_core::rules::Actor;
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::transform::Plan;
use sluice_core::validate::FieldError;
use sluice_core::{DateTime, Record, SysId};

pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    /// The write queue is full: the caller should retry shortly.
    #[error("the write queue is full")]
    Busy,
    #[error("the store is shut down")]
    Closed,
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One row posted to an integration's staging table, staged and validated, ready to commit.
#[derive(Debug, Clone)]
pub struct ImportJob {
    pub staging: Arc<TableSchema>,
    pub target: Arc<TableSchema>,
    pub transform_map: String,
    pub integration_version: String,
    pub staging_sys_id: SysId,
    /// The body exactly as received.
    pub payload: Vec<u8>,
    pub columns: BTreeMap<String, String>,
    /// The transform plan, or every validation problem.
    pub verdict: std::result::Result<Plan, Vec<FieldError>>,
    pub actor: Actor,
    pub now: DateTime,
}

/// What happened to an imported row, as the Import Set API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub import_set: String,
    pub staging_sys_id: SysId,
    pub state: RowState,
    pub target_sys_id: Option<String>,
    pub display_value: Option<String>,
    pub status_message: Option<String>,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub user_name: String,
    pub roles: Vec<Role>,
    /// An argon2id PHC string; the store never sees passwords.
    pub password_hash: String,
    pub created_by: String,
    pub now: DateTime,
}

/// A filter and ordering (a parsed `sysparm_query`; conditions on unknown or hidden fields are
/// dropped), paging, and the total count.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: EncodedQuery,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<Record>,
    pub total: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The database answers.
    async fn ping(&self) -> Result<()>;
    /// Creates an integration's staging table, or adds the columns it lacks.
    async fn prepare_staging(&self, staging: Arc<TableSchema>) -> Result<()>;
    /// Stages, transforms and commits one row in one durable transaction.
    async fn import(&self, job: ImportJob) -> Result<ImportOutcome>;
    /// One record with every stored field (hidden ones included: callers filter).
    async fn get(&self, table: Arc<TableSchema>, sys_id: String) -> Result<Option<Record>>;
    async fn list(&self, table: Arc<TableSchema>, query: ListQuery) -> Result<Page>;
    async fn account(&self, user_name: String) -> Result<Option<Account>>;
    async fn accounts(&self) -> Result<Vec<Account>>;
    /// Creates an account; `Conflict` when the user name already has credentials.
    async fn add_account(&self, account: NewAccount) -> Result<Account>;
    /// Finishes queued writes and stops the writer.
    async fn close(&self);
}
