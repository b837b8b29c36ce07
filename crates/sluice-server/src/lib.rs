//! The HTTP surface of sluice. Follow one ticket through the modules in pipeline order:
//! [`receive`] → [`authenticate`] → [`intake`] (stage → validate → transform → business rules →
//! commit) → [`routes::import`] (respond). Errors leave through [`error`].

pub mod authenticate;
pub mod error;
pub mod intake;
pub mod observe;
pub mod receive;
pub mod routes;
pub mod tls;
pub mod wire;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use sluice_core::integration::Integration;
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            https: false,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Built-in tables and every integration's staging table.
    pub catalog: Arc<Catalog>,
    /// Integrations by staging table name.
    pub integrations: Arc<BTreeMap<String, Arc<Integration>>>,
    pub credentials: Arc<CredentialCache>,
    pub config: Arc<ServerConfig>,
}

impl AppState {
    /// Prepares each integration's staging table and assembles the state.
    pub async fn build(
        store: Arc<dyn Store>,
        integrations: Vec<Integration>,
        config: ServerConfig,
    ) -> Result<Self, sluice_store::StoreError> {
        let mut catalog = Catalog::builtin();
        let mut by_table = BTreeMap::new();
        for integration in integrations {
            store.prepare_staging(integration.staging.clone()).await?;
            catalog.insert((*integration.staging).clone());
            by_table.insert(integration.definition.staging_table.clone(), Arc::new(integration));
        }
        Ok(Self {
            store,
            catalog: Arc::new(catalog),
            integrations: Arc::new(by_table),
            credentials: Arc::new(CredentialCache::new()),
            config: Arc::new(config),
        })
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
