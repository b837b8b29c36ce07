//! The HTTP surface of sluice. Follow one ticket through the modules in the order it meets them:
//! [`observe`] (request id, client address, limits, log) → [`receive`] (header, length and query
//! limits) → [`routes`] → [`authenticate`] (and the caller's rights on the integration) → the
//! body, read only now → [`pipeline`] (stage → validate → transform → `on_before` → commit in
//! the store, `sluice_store::settle` → `on_after`) → [`routes::import`] (respond). Errors leave
//! through [`error`].
//!
//! [`startup::Application`] is `sluice serve`: the store ([`database`]), the listener (plain or
//! [`tls`]), every background task and the graceful stop; its settings' defaults are in
//! [`config::defaults`].

pub mod aggregate_params;
pub mod authenticate;
pub mod client;
pub mod config;
pub mod console;
pub mod database;
pub mod display;
pub mod error;
pub mod forward;
pub mod html;
pub mod integration_plan;
pub mod load;
pub mod lockout;
pub mod metrics;
pub mod multipart;
pub mod observe;
pub mod offline;
pub mod openapi;
pub mod params;
pub mod pipeline;
pub mod receive;
pub mod retention;
pub mod routes;
pub mod row_scripts;
pub mod signature;
pub mod soap;
pub mod startup;
pub mod stats;
pub mod table_input;
pub mod throttle;
pub mod tls;
pub mod wire;
pub mod xml;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::RwLock;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use sluice_core::integration::{DefinitionProblem, Integration};
use sluice_core::tables::Catalog;
use sluice_script::ScriptEngine;
use sluice_store::Store;
use tokio::net::TcpListener;

pub use authenticate::{CredentialCache, hash_password};
pub use config::{DEFAULT_MAX_HEADER_BYTES, ServerConfig, defaults};
pub use startup::Application;

/// Headers hyper itself accepts: far above `--max-header-bytes`, so that sluice answers
/// oversized headers with its own JSON error; beyond these hyper answers a bare 431.
pub fn hyper_limits(max_header_bytes: usize) -> (usize, usize) {
    let buffer = max_header_bytes.saturating_mul(4).max(64 * 1024);
    (buffer, 1000)
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
    /// Wakes the bulk worker ([`pipeline::process::spawn_worker`]) when rows were staged.
    pub bulk_wake: Arc<tokio::sync::Notify>,
    /// `insertMultiple` requests read and processed at once ([`pipeline::process::CONCURRENT_REQUESTS`]).
    pub bulk_turns: Arc<tokio::sync::Semaphore>,
    /// KiB of `insertMultiple` bodies that may be read at once (`max_bulk_inflight_bytes`).
    pub bulk_bytes: Arc<tokio::sync::Semaphore>,
    /// Request statistics waiting to be flushed to the store.
    pub stats: Arc<stats::StatsRecorder>,
    /// The console's replays in progress on this node, and those recently finished.
    pub replay_jobs: Arc<console::replay_jobs::ReplayJobs>,
    /// Requests being answered now: forwarding gives way while it is high.
    pub load: Arc<load::Load>,
}

/// The in-flight budget of `insertMultiple` bodies in KiB permits (at least one request's worth).
fn bulk_budget_kib(bytes: usize) -> usize {
    bytes.div_ceil(1024).clamp(1, tokio::sync::Semaphore::MAX_PERMITS)
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

/// The integrations of a folder ([`load_integrations`]), or without one the built-in
/// `u_incident_import` and `alertmanager`.
pub fn active_integrations(
    dir: Option<&std::path::Path>,
    catalog: &Catalog,
) -> Result<Vec<Integration>, Vec<DefinitionProblem>> {
    match dir {
        Some(dir) => load_integrations(dir, catalog),
        None => Ok(Integration::builtin_defaults(catalog)),
    }
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
            bulk_bytes: Arc::new(tokio::sync::Semaphore::new(bulk_budget_kib(config.max_bulk_inflight_bytes))),
            config: Arc::new(config),
            scripts,
            bulk_wake: Arc::new(tokio::sync::Notify::new()),
            bulk_turns: Arc::new(tokio::sync::Semaphore::new(pipeline::process::CONCURRENT_REQUESTS)),
            stats: Arc::default(),
            replay_jobs: Arc::default(),
            load: Arc::default(),
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
        .merge(console::router())
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
    let limits = tls::ConnectionLimits::of(&state.config);
    tls::serve_router(listener, app(state), None, limits, shutdown).await
}
