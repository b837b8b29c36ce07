//! The HTTP surface of sluice. Follow one ticket through the modules in pipeline order:
//! [`receive`] → [`authenticate`] → [`intake`] (stage → validate → transform → business rules →
//! commit) → [`routes::import`] (respond). Errors leave through [`error`].

pub mod authenticate;
pub mod bulk;
pub mod client;
pub mod display;
pub mod dry_run;
pub mod error;
pub mod intake;
pub mod lockout;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod params;
pub mod plan;
pub mod receive;
pub mod routes;
pub mod row_scripts;
pub mod stats;
pub mod table_input;
pub mod throttle;
pub mod tls;
pub mod wire;
pub mod xml;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use sluice_core::integration::{DefinitionProblem, Integration};
use sluice_core::tables::Catalog;
use sluice_script::{Limits, ScriptEngine};
use sluice_store::Store;
use tokio::net::TcpListener;

pub use authenticate::{CredentialCache, hash_password};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address served, used in links when the request has no usable `Host`.
    pub listen: String,
    /// Base of absolute links in responses (`record_link`, reference links), e.g.
    /// `https://sluice.example.com`; taken from each request's `Host` when unset.
    pub public_url: Option<String>,
    /// Served over TLS ([`tls::serve_tls`]): links taken from `Host` start with `https://`.
    pub https: bool,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Where integration definitions are reloaded from; `None` for the built-in default.
    pub integrations_dir: Option<PathBuf>,
    /// Requests per client address, checked before authentication.
    pub rate_per_ip: throttle::Rate,
    /// Requests per account, checked after authentication.
    pub rate_per_account: throttle::Rate,
    /// What one transform-script call may use.
    pub script_limits: Limits,
    /// Threads running transform scripts.
    pub script_workers: usize,
    /// Deepest nesting of objects and arrays in a JSON body (`json_too_deep` beyond).
    pub max_json_depth: usize,
    /// Most fields in a JSON body object (`too_many_fields` beyond).
    pub max_json_fields: usize,
    /// Longest query string, in bytes (414 `query_too_long` beyond).
    pub max_query_bytes: usize,
    /// Most records in one `insertMultiple` request.
    pub max_records: usize,
    /// Largest accepted `insertMultiple` body, in bytes.
    pub max_bulk_body_bytes: usize,
    /// Staging rows (not pending) older than this many days are purged.
    pub retention_days: u64,
    /// Rows per batch in sync mode and replays.
    pub bulk_batch_rows: usize,
    /// Peers whose `X-Forwarded-For` names the client ([`client`]); empty: the header is ignored.
    pub trusted_proxies: Vec<sluice_core::account::IpNet>,
    /// Largest request line and headers, in bytes (431 `headers_too_large` beyond).
    pub max_header_bytes: usize,
}

/// Default of `--max-header-bytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;

/// Headers hyper itself accepts: far above `--max-header-bytes`, so that sluice answers
/// oversized headers with its own JSON error; beyond these hyper answers a bare 431.
pub fn hyper_limits(max_header_bytes: usize) -> (usize, usize) {
    let buffer = max_header_bytes.saturating_mul(4).max(64 * 1024);
    (buffer, 1000)
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            https: false,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            integrations_dir: None,
            rate_per_ip: throttle::Rate { per_second: 20_000.0, burst: 40_000.0 },
            rate_per_account: throttle::Rate { per_second: 0.0, burst: 2000.0 },
            script_limits: Limits::default(),
            script_workers: sluice_script::DEFAULT_WORKERS,
            max_json_depth: 32,
            max_json_fields: 1000,
            max_query_bytes: 8 * 1024,
            max_records: 10_000,
            max_bulk_body_bytes: 64 * 1024 * 1024,
            retention_days: 90,
            bulk_batch_rows: bulk::DEFAULT_BATCH_ROWS,
            trusted_proxies: Vec::new(),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// The active integrations and the tables they add. Replaced as a whole on reload, so a request
/// sees one consistent version from start to end.
pub struct Registry {
    /// Built-in tables and every integration's staging table.
    pub catalog: Catalog,
    /// Integrations by staging table name.
    pub integrations: BTreeMap<String, Arc<Integration>>,
}

/// Everything a request handler needs; one reference count to clone (axum clones the state for
/// every extractor and middleware of every request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub store: Arc<dyn Store>,
    registry: Arc<RwLock<Arc<Registry>>>,
    pub credentials: Arc<CredentialCache>,
    pub throttle: Arc<throttle::Throttle>,
    pub lockout: Arc<lockout::Lockout>,
    pub config: Arc<ServerConfig>,
    /// Runs the integrations' transform scripts.
    pub scripts: Arc<ScriptEngine>,
    /// Wakes the bulk worker ([`bulk::spawn_worker`]) when rows were staged.
    pub bulk_wake: Arc<tokio::sync::Notify>,
    /// `insertMultiple` requests read and processed at once ([`bulk::CONCURRENT_REQUESTS`]).
    pub bulk_turns: Arc<tokio::sync::Semaphore>,
    /// Request statistics waiting to be flushed to the store.
    pub stats: Arc<stats::StatsRecorder>,
}

/// Why the state could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot prepare a staging table: {0}")]
    Store(#[from] sluice_store::StoreError),
    #[error("cannot start the script engine: {0}")]
    Scripts(#[from] sluice_script::ScriptError),
}

/// Checks that every script of a definition compiles; each that does not is a problem with the
/// definition's file and the script's key (`scripts.on_before`, `scripts.on_after`).
pub fn check_scripts(integration: &Integration) -> Vec<DefinitionProblem> {
    integration
        .scripts()
        .filter_map(|(key, source)| {
            let e = ScriptEngine::check(source).err()?;
            Some(DefinitionProblem { file: integration.origin.clone(), key: key.to_owned(), message: e.to_string() })
        })
        .collect()
}

/// Loads a folder of definitions, with their scripts checked ([`check_scripts`]).
pub fn load_integrations(dir: &std::path::Path, catalog: &Catalog) -> Result<Vec<Integration>, Vec<DefinitionProblem>> {
    Integration::load_dir_with(dir, catalog, &check_scripts)
}

/// Why a reload was refused; the previous integrations stay active.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{} problem(s) in the integration definitions", .0.len())]
    Invalid(Vec<DefinitionProblem>),
    #[error("cannot prepare a staging table: {0}")]
    Store(#[from] sluice_store::StoreError),
}

impl AppState {
    /// Prepares each integration's staging table and assembles the state.
    pub async fn build(
        store: Arc<dyn Store>,
        integrations: Vec<Integration>,
        config: ServerConfig,
    ) -> Result<Self, BuildError> {
        let registry = Self::prepare(store.as_ref(), integrations).await?;
        let scripts = Arc::new(ScriptEngine::new(config.script_limits, config.script_workers)?);
        Ok(Self(Arc::new(Shared {
            store,
            registry: Arc::new(RwLock::new(Arc::new(registry))),
            credentials: Arc::new(CredentialCache::new()),
            throttle: Arc::new(throttle::Throttle::new(config.rate_per_ip, config.rate_per_account)),
            lockout: Arc::default(),
            config: Arc::new(config),
            scripts,
            bulk_wake: Arc::new(tokio::sync::Notify::new()),
            bulk_turns: Arc::new(tokio::sync::Semaphore::new(bulk::CONCURRENT_REQUESTS)),
            stats: Arc::default(),
        })))
    }

    async fn prepare(store: &dyn Store, integrations: Vec<Integration>) -> Result<Registry, sluice_store::StoreError> {
        let mut catalog = Catalog::builtin();
        let mut by_table = BTreeMap::new();
        for integration in integrations {
            store.prepare_staging(integration.staging.clone()).await?;
            catalog.insert((*integration.staging).clone());
            by_table.insert(integration.definition.staging_table.clone(), Arc::new(integration));
        }
        Ok(Registry { catalog, integrations: by_table })
    }

    /// Tells the bulk worker that pending rows are waiting (remembered if it is busy).
    pub fn wake_worker(&self) {
        self.bulk_wake.notify_one();
    }

    /// The integrations and tables in force now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().expect("registry lock").clone()
    }

    /// Loads the integrations folder again. Every definition is checked first; with any problem
    /// nothing changes. Without a folder (the built-in default) there is nothing to reload.
    pub async fn reload(&self) -> Result<Arc<Registry>, ReloadError> {
        let Some(dir) = &self.config.integrations_dir else {
            return Ok(self.registry());
        };
        let loaded = load_integrations(dir, &Catalog::builtin()).map_err(ReloadError::Invalid)?;
        let registry = Arc::new(Self::prepare(self.store.as_ref(), loaded).await?);
        *self.registry.write().expect("registry lock") = registry.clone();
        Ok(registry)
    }
}

pub fn app(state: AppState) -> Router {
    let tracking = observe::Tracking {
        timeout: state.config.request_timeout,
        throttle: state.throttle.clone(),
        trusted_proxies: Arc::new(state.config.trusted_proxies.clone()),
        stats: state.stats.clone(),
        state: state.clone(),
    };
    routes::router()
        .layer(axum::middleware::from_fn_with_state(state.config.clone(), xml::negotiate))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.config.max_query_bytes, receive::limit_query))
        .layer(axum::middleware::from_fn_with_state(state.config.clone(), receive::limit_declared_length))
        .layer(axum::middleware::from_fn_with_state(state.config.max_header_bytes, receive::limit_headers))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(tracking, observe::track))
}

/// Serves plain http until `shutdown` completes, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // hyper driven directly (not `axum::serve`) to raise its own header limits above sluice's.
    let limits = hyper_limits(state.config.max_header_bytes);
    tls::serve_router(listener, app(state), None, limits, shutdown).await
}
