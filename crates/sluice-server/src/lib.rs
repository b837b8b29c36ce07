//! The HTTP surface of sluice. Follow one ticket through the modules in pipeline order:
//! [`receive`] → [`authenticate`] → [`intake`] (stage → validate → transform → business rules →
//! commit) → [`routes::import`] (respond). Errors leave through [`error`].

pub mod authenticate;
pub mod display;
pub mod dry_run;
pub mod error;
pub mod intake;
pub mod observe;
pub mod params;
pub mod plan;
pub mod receive;
pub mod routes;
pub mod table_input;
pub mod tls;
pub mod wire;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use sluice_core::integration::{DefinitionProblem, Integration};
use sluice_core::tables::Catalog;
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

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    registry: Arc<RwLock<Arc<Registry>>>,
    pub credentials: Arc<CredentialCache>,
    pub config: Arc<ServerConfig>,
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
    ) -> Result<Self, sluice_store::StoreError> {
        let registry = Self::prepare(store.as_ref(), integrations).await?;
        Ok(Self {
            store,
            registry: Arc::new(RwLock::new(Arc::new(registry))),
            credentials: Arc::new(CredentialCache::new()),
            config: Arc::new(config),
        })
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
        let loaded = Integration::load_dir(dir, &Catalog::builtin()).map_err(ReloadError::Invalid)?;
        let registry = Arc::new(Self::prepare(self.store.as_ref(), loaded).await?);
        *self.registry.write().expect("registry lock") = registry.clone();
        Ok(registry)
    }
}

pub fn app(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    routes::router()
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(timeout, observe::track))
}

/// Serves plain http until `shutdown` completes, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
