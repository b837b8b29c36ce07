//! Persistence behind one trait. [`Store`] speaks the domain's types only; each database has its
//! own implementation (embedded SQLite, shared PostgreSQL) checked by the same contract tests.

pub mod account_change;
pub mod account_fields;
pub mod aggregate;
pub mod aggregate_sql;
pub mod attachment;
pub mod audit_set;
pub mod idempotency;
pub mod outbox;
pub mod query_sql;
pub mod saved_filter;
pub mod session;
pub mod settle;
pub mod staging_row;
pub mod table_write;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The attribute the store traits are written with, for their implementations.
pub use aggregate::{AggregateProblem, AggregateQuery, AggregateRow};
pub use async_trait::async_trait;
use sluice_core::account::{Account, AccountPolicy, AccountRate, IpNet, Role};
use sluice_core::query::EncodedQuery;
use sluice_core::rules::{Actor, RuleViolation};
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::transform::Plan;
use sluice_core::validate::FieldError;
use sluice_core::{DateTime, Record, SysId};

pub use attachment::{AttachmentAdded, AttachmentRemoval, NewAttachment};
pub use outbox::Outbox;
pub use saved_filter::{FilterRefusal, SaveFilter, SavedFilter, SavedFilters};
pub use session::{Session, Sessions};

/// Why a store call failed. Every variant is something a caller can act on; the database's own
/// error is carried opaquely ([`DatabaseError`]) so no driver type leaks past the backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write queue is full: the caller should retry shortly.
    #[error("the write queue is full")]
    Busy,
    /// An idempotency key already used by this account for a different request.
    #[error("idempotency key reused for a different request")]
    KeyReused,
    #[error("the store is shut down")]
    Closed,
    /// The change would leave no active account with the admin role.
    #[error("the last active admin account cannot be disabled, demoted or deleted")]
    LastAdmin,
    /// An account with this user name already has credentials.
    #[error("account {0} already exists")]
    AccountExists(String),
    /// A name given when opening the store is not a valid identifier (PostgreSQL schema).
    #[error("{0:?} is not a valid schema name")]
    InvalidSchemaName(String),
    /// Stored data could not be read back (a sys_id or an idempotency record).
    #[error("unreadable stored data: {0}")]
    Corrupt(String),
    /// The database failed (a driver error, logged by the caller, never shown to clients).
    #[error("database error: {0}")]
    Database(#[from] DatabaseError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An aggregate query names a field its table does not let it use.
    #[error("invalid aggregate query: {0}")]
    InvalidAggregate(#[from] AggregateProblem),
}

/// A database driver's error, kept as the source so a backend can still look inside its own
/// (`downcast_ref`), e.g. to retry PostgreSQL's deadlocks.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DatabaseError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl DatabaseError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(e))
    }

    /// The driver's error, if it is of type `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }
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
    /// Makes the import safe to retry (per account).
    pub idempotency: Option<Idempotency>,
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
    /// The answer of an earlier request with the same idempotency key, not a new import.
    pub replayed: bool,
}

impl ImportOutcome {
    /// A row of `import_set` before its transform has settled it: `error` with nothing else,
    /// until the transform says otherwise.
    pub fn unsettled(import_set: String, staging_sys_id: SysId) -> Self {
        Self {
            import_set,
            staging_sys_id,
            state: RowState::Error,
            target_sys_id: None,
            display_value: None,
            status_message: None,
            errors: Vec::new(),
            replayed: false,
        }
    }

    /// The coalesce target was found and nothing in it changed: `ignored`, saying so before any
    /// earlier note (ServiceNow's wording).
    pub fn mark_unchanged(&mut self) {
        self.state = RowState::Ignored;
        self.status_message = Some(match self.status_message.take() {
            Some(note) => format!("No field values changed; {note}"),
            None => "No field values changed".into(),
        });
    }
}

/// An `Idempotency-Key` sent with a create: the same key with the same request returns the
/// first answer; with a different request it is refused ([`StoreError::KeyReused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    /// A digest of what was asked (target and body), to tell a retry from a different request.
    pub fingerprint: String,
}

/// Records posted to `insertMultiple`, staged as `pending` rows of one new asynchronous import
/// set, all in one durable transaction ([`Store::stage_many`]).
#[derive(Debug, Clone)]
pub struct StageBatch {
    pub staging: Arc<TableSchema>,
    pub target: Arc<TableSchema>,
    pub transform_map: String,
    /// Joins this multi import set (ServiceNow's `multi_import_set_id`); a new one when `None`.
    pub multi_import_set: Option<String>,
    pub rows: Vec<StagedRecord>,
    /// The definition version that judged rows given with a verdict (recorded on them).
    pub integration_version: String,
    pub actor: Actor,
    pub now: DateTime,
    /// With a key seen before (same account, same request), nothing is staged and the first
    /// answer is returned ([`StagedSet::replayed`]); with a different request: `KeyReused`.
    pub idempotency: Option<Idempotency>,
    /// The request body exactly as received, kept on the import set (a sender hook's, whose
    /// rows each hold one alert of it).
    pub request_body: Option<String>,
}

/// One record of a [`StageBatch`].
#[derive(Debug, Clone)]
pub struct StagedRecord {
    pub sys_id: SysId,
    /// The record's JSON text.
    pub payload: Vec<u8>,
    /// The integration's columns, staged from the record.
    pub columns: BTreeMap<String, String>,
    /// The verdict on the columns, for a row to process as it is staged (a synchronous request):
    /// the row is written once, with its outcome ([`StagedSet::outcomes`]).
    pub verdict: Option<std::result::Result<Plan, Vec<FieldError>>>,
}

/// The import set a [`StageBatch`] was staged into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedSet {
    /// The `sys_import_set` record's sys_id.
    pub import_set: String,
    /// Its number (`ISET…`).
    pub number: String,
    pub multi_import_set: String,
    /// The answer of an earlier request with the same idempotency key: nothing was staged now.
    pub replayed: bool,
    /// Per row, in order: the outcome of a row processed as it was staged (given with a verdict),
    /// `None` for one staged `pending`. Empty when replayed.
    pub outcomes: Vec<Option<ImportOutcome>>,
}

/// Which staged rows to read ([`Store::staged_rows`]), in staging order, after a cursor.
#[derive(Debug, Clone)]
pub struct RowFilter {
    pub state: RowState,
    /// Only rows staged at or after this time.
    pub since: Option<DateTime>,
    /// Only rows after this [`StoredRow::position`] (0: from the start).
    pub after: i64,
    pub limit: u64,
}

/// A staged row read back: every stored field (the raw payload in `sys_payload`).
#[derive(Debug, Clone)]
pub struct StoredRow {
    /// Where the row sits in its staging table (staging order); a cursor for [`RowFilter::after`].
    pub position: i64,
    pub record: Record,
}

/// A staged row to run through the transform (again), judged by the integration's current
/// definition. Its processing and its new state commit together.
#[derive(Debug, Clone)]
pub struct ProcessJob {
    pub staging: Arc<TableSchema>,
    pub target: Arc<TableSchema>,
    pub transform_map: String,
    /// The definition version that processes the row (recorded on it).
    pub integration_version: String,
    pub staging_sys_id: SysId,
    /// The state the row must still be in (as its caller read it); otherwise nothing is done.
    pub expected: RowState,
    /// The row's columns as staged under the current definition (written back to the row).
    pub columns: BTreeMap<String, String>,
    pub verdict: std::result::Result<Plan, Vec<FieldError>>,
    pub actor: Actor,
    pub now: DateTime,
    /// Who asked for a replay (named in the audit trail); `None` for a pending row's first run.
    pub replay: Option<String>,
}

/// How many rows of an import set are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub pending: u64,
    pub inserted: u64,
    pub updated: u64,
    pub ignored: u64,
    pub skipped: u64,
    pub error: u64,
}

impl StateCounts {
    pub fn total(&self) -> u64 {
        self.pending + self.inserted + self.updated + self.ignored + self.skipped + self.error
    }

    pub fn add(&mut self, state: RowState, n: u64) {
        match state {
            RowState::Pending => self.pending += n,
            RowState::Inserted => self.inserted += n,
            RowState::Updated => self.updated += n,
            RowState::Ignored => self.ignored += n,
            RowState::Skipped => self.skipped += n,
            RowState::Error => self.error += n,
        }
    }
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub rows: u64,
    pub import_sets: u64,
}

/// A Table API write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Insert,
    Update(String),
    Delete(String),
}

#[derive(Debug, Clone)]
pub struct TableWrite {
    pub table: Arc<TableSchema>,
    pub op: WriteOp,
    /// Values in their stored form, already checked against the schema by the caller. A
    /// reference given as a display value (a name) is resolved by the store; one that matches
    /// nothing is left unchanged.
    pub values: BTreeMap<String, String>,
    /// Journal entries to append: (`work_notes` or `comments`, text).
    pub journal: Vec<(String, String)>,
    pub actor: Actor,
    pub now: DateTime,
    /// The `sys_audit` reason of the change ([`table_write::REASON`] for the Table API).
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    Written(Record),
    Deleted,
    NotFound,
    /// The table's business rules refused the change; nothing was written.
    Refused(RuleViolation),
}

/// One `sys_journal_field` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub element_id: String,
    pub element: String,
    pub value: String,
    pub created_on: String,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub user_name: String,
    pub roles: Vec<Role>,
    /// An argon2id PHC string; the store never sees passwords.
    pub password_hash: String,
    /// Refused by the console (an integration's account); the first admin is interactive.
    pub web_service_only: bool,
    pub created_by: String,
    pub now: DateTime,
}

/// A change to one account, applied together with its [`AdminAuditEntry`] in one durable
/// transaction. Every change except the token ones raises the account's credentials version.
#[derive(Debug, Clone)]
pub struct AccountChange {
    pub user_name: String,
    pub action: AccountAction,
    /// Who asks: an account name, `cli:<os user>` or `system`; recorded in the admin audit.
    pub by: String,
    pub now: DateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAction {
    /// A new account, or credentials for a user an import created; `Conflict` when the user
    /// name already has credentials.
    Create { roles: Vec<Role>, password_hash: String, web_service_only: bool, policy: AccountPolicy },
    /// Enable or disable, replace the roles, set the web-service-only flag, replace the source
    /// networks, set or clear (`Some(None)`: the server's default) the rate limit. `None`: unchanged.
    Update {
        active: Option<bool>,
        roles: Option<Vec<Role>>,
        web_service_only: Option<bool>,
        networks: Option<Vec<IpNet>>,
        rate: Option<Option<AccountRate>>,
    },
    /// A new password, as an argon2id PHC string.
    SetPassword { password_hash: String },
    /// Removes the credentials, roles and API tokens. The `sys_user` record stays, since
    /// incidents and history refer to it.
    Delete,
    /// Records an API token by the SHA-256 digest (lowercase hex) of its text; with an
    /// `integration`, a routing key that authenticates events of that integration only.
    AddToken { id: String, digest: String, label: String, integration: Option<String> },
    /// `None` from [`Store::change_account`] when the account has no such token.
    RevokeToken { id: String },
}

/// An API token (its text is never stored, only its SHA-256 digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub user_name: String,
    pub label: String,
    pub created_on: DateTime,
    pub created_by: String,
    /// The integration a routing key is bound to (PagerDuty Events API v2): such a token is
    /// taken as that integration's `routing_key` only, never as a Bearer token.
    pub integration: Option<String>,
}

/// The token found by a digest, the stored digest (for a constant-time comparison) and its
/// account, active or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMatch {
    pub token: ApiToken,
    pub digest: String,
    pub account: Account,
}

/// One administrative change: who, what, to which target, details, when.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminAuditEntry {
    /// Assigned by the store (ascending); ignored when recording.
    pub id: i64,
    pub created_on: DateTime,
    pub actor: String,
    /// e.g. `account.create`, `account.update`, `account.rotate_password`, `integrations.reload`.
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}

/// A filter and ordering (a parsed `sysparm_query`; conditions on unknown or hidden fields are
/// dropped), paging, and the total count.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: EncodedQuery,
    pub limit: u64,
    pub offset: u64,
    /// Count the matching rows only up to this many and one more: [`Page::total`] is then at
    /// most `n + 1`, meaning "more than n". A page of a big table costs no full count.
    pub count_up_to: Option<u64>,
}

/// One additive statistics counter of one minute, account and integration (`""`: none), as a
/// node flushes it ([`Store::add_stats`]). Adding the same key again adds the values and widens
/// the first/last-seen times, so several nodes can flush into one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsDelta {
    /// Unix time in minutes.
    pub minute: i64,
    pub account: String,
    pub integration: String,
    /// A counter name from `sluice_core::stats::metric`.
    pub metric: String,
    pub value: i64,
    /// Unix milliseconds of the first and last event counted.
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Which counters to sum ([`Store::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsFilter {
    /// Only minutes at or after this one (unix minutes; 0: all).
    pub since_minute: i64,
    pub account: Option<String>,
    pub integration: Option<String>,
}

/// A counter summed over the minutes of a window, per account, integration and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsTotal {
    pub account: String,
    pub integration: String,
    pub metric: String,
    pub value: i64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// A counter summed over one UTC hour ([`Stats::stats_per_hour`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourTotal {
    /// The hour's first minute (unix minutes, a multiple of 60).
    pub start_minute: i64,
    pub total: StatsTotal,
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<Record>,
    /// How many rows match in all (at most `count_up_to + 1` when the query had that bound).
    pub total: u64,
}

/// A dry run of one row ([`Imports::dry_run`]): the commit step against the data as it is, in
/// a transaction that only reads ([`settle::ReadOnly`]).
#[derive(Debug, Clone)]
pub struct DryRun {
    pub staging: Arc<TableSchema>,
    pub target: Arc<TableSchema>,
    /// The transform plan, or every validation problem.
    pub verdict: std::result::Result<Plan, Vec<FieldError>>,
    pub actor: Actor,
    pub now: DateTime,
}

// The store's concerns, one trait each, so a consumer can be given (and a test can fake) only the
// one it needs; [`Store`] is all of them, what `sluice serve` opens.

/// The intake pipeline's storage: staging rows, committing them, processing staged ones.
#[async_trait]
pub trait Imports: Send + Sync {
    /// Creates an integration's staging table, or adds the columns it lacks.
    async fn prepare_staging(&self, staging: Arc<TableSchema>) -> Result<()>;
    /// Stages, transforms and commits one row in one durable transaction.
    async fn import(&self, job: ImportJob) -> Result<ImportOutcome>;
    /// Stages every record of a batch as a `pending` row of one new asynchronous import set, with
    /// its raw payload, in one durable transaction. Nothing is transformed yet, except records
    /// given with a verdict (a synchronous request's): those are processed as they are staged,
    /// in the same transaction ([`StagedSet::outcomes`]).
    async fn stage_many(&self, batch: StageBatch) -> Result<StagedSet>;
    /// Staged rows in one state, in staging order, after a cursor.
    async fn staged_rows(&self, staging: Arc<TableSchema>, filter: RowFilter) -> Result<Vec<StoredRow>>;
    /// Runs staged rows through the transform, business rules and commit, in the given order,
    /// each row's processing and its state change in one durable transaction (the row is updated,
    /// never inserted again). A row that already has a target record updates that record. Per
    /// job: the outcome, `None` when the row is gone or no longer in its expected state, or why
    /// it could not be run (a job after a [`StoreError::Busy`] is not run either).
    async fn process(&self, jobs: Vec<ProcessJob>) -> Result<Vec<Result<Option<ImportOutcome>>>>;
    /// How many rows of an import set are in each state.
    async fn state_counts(&self, staging: Arc<TableSchema>, import_set: String) -> Result<StateCounts>;
    /// What committing a row would do, by the same commit step, reading only: nothing is
    /// staged, locked, created, numbered or written.
    async fn dry_run(&self, job: DryRun) -> Result<settle::Settled>;
}

/// Records of the built-in tables (and staging rows) read, listed and written through the
/// business rules.
#[async_trait]
pub trait Records: Send + Sync {
    /// One record with every stored field (hidden ones included: callers filter).
    async fn get(&self, table: Arc<TableSchema>, sys_id: String) -> Result<Option<Record>>;
    async fn list(&self, table: Arc<TableSchema>, query: ListQuery) -> Result<Page>;
    /// Inserts, updates or deletes one record through the table's business rules, with audit
    /// and journal rows, in one durable transaction.
    async fn write(&self, write: TableWrite) -> Result<WriteResult>;
    /// The display value (the display field) of each given record that exists.
    async fn display_values(&self, table: Arc<TableSchema>, sys_ids: Vec<String>) -> Result<HashMap<String, String>>;
    /// Journal entries of the given records, newest first.
    async fn journal(&self, table: String, sys_ids: Vec<String>) -> Result<Vec<JournalEntry>>;
    /// The groups of the records matching the query's filter with their aggregates, in the
    /// query's order, at most `limit` of them (see `aggregate_sql.rs`); `InvalidAggregate` when
    /// the query names a field it may not ([`aggregate::check`]).
    async fn aggregate(&self, table: Arc<TableSchema>, query: AggregateQuery) -> Result<Vec<AggregateRow>>;
}

/// The accounts that call sluice and their API tokens.
#[async_trait]
pub trait Accounts: Send + Sync {
    async fn account(&self, user_name: String) -> Result<Option<Account>>;
    async fn accounts(&self) -> Result<Vec<Account>>;
    /// Creates an account; `AccountExists` when the user name already has credentials.
    async fn add_account(&self, account: NewAccount) -> Result<Account>;
    /// Applies an account change with its admin-audit record; `None` when the account (or, for
    /// `RevokeToken`, the token) does not exist. Refuses with `LastAdmin` a change that would
    /// leave no active admin, and with `AccountExists` a `Create` of an existing account.
    async fn change_account(&self, change: AccountChange) -> Result<Option<Account>>;
    /// The API tokens of an account, oldest first.
    async fn tokens(&self, user_name: String) -> Result<Vec<ApiToken>>;
    /// The token with this SHA-256 digest (lowercase hex) and its account.
    async fn account_by_token(&self, digest: String) -> Result<Option<TokenMatch>>;
}

/// The record of administrative actions.
#[async_trait]
pub trait AdminAudit: Send + Sync {
    /// Records an administrative action that is not an account change (e.g. a reload).
    async fn record_admin_audit(&self, entry: AdminAuditEntry) -> Result<()>;
    /// Admin-audit entries, newest first (of one action only when given), a page of them, and
    /// how many there are in all.
    async fn admin_audit(&self, action: Option<String>, limit: u64, offset: u64)
    -> Result<(Vec<AdminAuditEntry>, u64)>;
}

/// Per-minute request statistics, shared by every node.
#[async_trait]
pub trait Stats: Send + Sync {
    /// Adds statistics counters in one transaction (an upsert per key that adds the values).
    async fn add_stats(&self, deltas: Vec<StatsDelta>) -> Result<()>;
    /// Sums the counters matching `filter` per account, integration and name, ordered by them.
    async fn stats(&self, filter: StatsFilter) -> Result<Vec<StatsTotal>>;
    /// The same sums per UTC hour, ordered by hour then as [`Stats::stats`]: one read for a
    /// chart, where a read per hour would scan the window once per hour.
    async fn stats_per_hour(&self, filter: StatsFilter) -> Result<Vec<HourTotal>>;
    /// Deletes the counters of minutes before `before_minute` (unix minutes); returns how many.
    async fn purge_stats(&self, before_minute: i64) -> Result<u64>;
}

/// Files attached to records: content and metadata written together. The metadata records
/// (`sys_attachment`) are read and listed through [`Records`] like any table's.
#[async_trait]
pub trait Attachments: Send + Sync {
    /// Stores the attachment's `sys_attachment` record and content in one durable transaction,
    /// if its parent record exists ([`AttachmentAdded::NoParent`] otherwise).
    async fn add_attachment(&self, attachment: NewAttachment) -> Result<AttachmentAdded>;
    /// The content of an attachment, as stored.
    async fn attachment_content(&self, sys_id: String) -> Result<Option<Vec<u8>>>;
    /// Deletes an attachment (record and content) with its `sys_audit` row in one durable
    /// transaction; the record it was, `None` when there was none.
    async fn delete_attachment(&self, removal: AttachmentRemoval) -> Result<Option<Record>>;
}

/// Health, retention and shutdown.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// The database answers.
    async fn ping(&self) -> Result<()>;
    /// Deletes up to `limit` rows of a staging table staged before `before` that are not
    /// `pending`, then the empty import sets of that table created before `before`.
    async fn purge_staging(&self, staging: Arc<TableSchema>, before: DateTime, limit: u64) -> Result<PurgeReport>;
    /// Forgets idempotency keys recorded before `before`; returns how many.
    async fn purge_idempotency(&self, before: DateTime) -> Result<u64>;
    /// Finishes queued writes and stops the writer.
    async fn close(&self);
}

/// Every concern of the store: what a backend implements and `sluice serve` holds as
/// `Arc<dyn Store>` (which coerces to `Arc<dyn Records>` and the others).
pub trait Store:
    Imports
    + Records
    + Accounts
    + AdminAudit
    + Stats
    + Attachments
    + Sessions
    + SavedFilters
    + Outbox
    + Maintenance
    + 'static
{
}

impl<
    T: Imports
        + Records
        + Accounts
        + AdminAudit
        + Stats
        + Attachments
        + Sessions
        + SavedFilters
        + Outbox
        + Maintenance
        + 'static,
> Store for T
{
}
