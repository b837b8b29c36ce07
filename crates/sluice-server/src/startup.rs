//! The application: everything `sluice serve` runs, as a library type, so that the binary is the
//! command line only and tests can start the real thing in-process.
//!
//! [`Application::build`] checks the TLS files, loads the integrations, opens the store
//! ([`Database`]), binds the listener (port 0 picks one: [`Application::address`]) and assembles
//! the state; on first start it creates the `admin` account. [`Application::run_until_stopped`]
//! starts every background task (bulk worker, staging and statistics retention, statistics
//! flusher, idempotency purge, SIGHUP reload), serves plain http or HTTPS until SIGINT/SIGTERM
//! or a [`StopHandle`], then drains: stops accepting, lets in-flight requests finish, stops the
//! tasks, flushes the last statistics and closes the store.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::DateTime;
use sluice_core::account::{Password, Role, WeakPassword};
use sluice_core::integration::DefinitionProblem;
use sluice_core::tables::Catalog;
use sluice_store::{NewAccount, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::rustls;

use crate::database::{Database, OpenError};
use crate::pipeline::process::WorkerOptions;
use crate::tls::TlsSetupError;
use crate::{AppState, BuildError, ReloadError, ServerConfig, defaults, hash_password};

/// Everything the application is started with. [`Settings::new`] gives the defaults.
#[derive(Clone)]
pub struct Settings {
    /// The HTTP surface; `server.listen` is the address to bind (`127.0.0.1:0`: any free port),
    /// replaced by the bound address. `https` is set from `tls`.
    pub server: ServerConfig,
    pub database: Database,
    /// Serve HTTPS only, with this certificate chain and key.
    pub tls: Option<TlsFiles>,
    /// The password of the `admin` account created on first start (`SLUICE_ADMIN_PASSWORD`);
    /// `None`: a generated one ([`FirstAdmin::Generated`]).
    pub admin_password: Option<String>,
    /// How long idempotency keys are remembered.
    pub idempotency_keep: Duration,
    /// A pause of the bulk worker after each batch (tests stop the server midway with it).
    pub bulk_pause: Duration,
    /// Stop on SIGINT and SIGTERM, reload the integrations on SIGHUP. Off for an application
    /// embedded in another process (tests): stop it with [`Application::stop_handle`].
    pub os_signals: bool,
}

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Settings {
    /// The defaults ([`defaults`]) on `database`.
    pub fn new(database: Database) -> Self {
        Self {
            server: ServerConfig::default(),
            database,
            tls: None,
            admin_password: None,
            idempotency_keep: Duration::from_secs(defaults::IDEMPOTENCY_HOURS * 3600),
            bulk_pause: Duration::ZERO,
            os_signals: true,
        }
    }
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// Every problem of the integrations folder, each with its file and key.
    #[error("{} problem(s) in the integration definitions", .0.len())]
    Integrations(Vec<DefinitionProblem>),
    #[error(transparent)]
    Database(#[from] OpenError),
    #[error("cannot listen on {address}")]
    Listen { address: String, source: io::Error },
    #[error("SLUICE_ADMIN_PASSWORD")]
    AdminPassword(#[source] WeakPassword),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] BuildError),
}

/// The `admin` account created by this start (there was no account).
pub enum FirstAdmin {
    /// With a generated password, to be shown once.
    Generated(Password),
    /// With [`Settings::admin_password`].
    Given,
}

/// Stops a running [`Application`] as SIGTERM does (also when given before it runs).
#[derive(Clone)]
pub struct StopHandle(Arc<Notify>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.notify_one();
    }
}

/// A built application: listening (connections wait in the backlog), not yet serving.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    address: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    first_admin: Option<FirstAdmin>,
    stop: Arc<Notify>,
    idempotency_keep: Duration,
    bulk_pause: Duration,
    os_signals: bool,
    data: String,
}

impl Application {
    /// Checks the settings, opens the store (migrating it), binds the listener and creates the
    /// `admin` account on first start. Nothing is created when the TLS files or the
    /// integrations are wrong.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let Settings { mut server, database, tls, admin_password, idempotency_keep, bulk_pause, os_signals } = settings;
        let tls = tls.map(|f| crate::tls::load_config(&f.cert, &f.key)).transpose()?;
        let catalog = Catalog::builtin();
        let integrations = crate::active_integrations(server.integrations_dir.as_deref(), &catalog)
            .map_err(StartError::Integrations)?;
        let store = database.open().await?;
        let assembled = async {
            let listener = TcpListener::bind(&server.listen)
                .await
                .map_err(|source| StartError::Listen { address: server.listen.clone(), source })?;
            let address = listener
                .local_addr()
                .map_err(|source| StartError::Listen { address: server.listen.clone(), source })?;
            server.listen = address.to_string();
            server.https = tls.is_some();
            let state = AppState::build(store.clone(), integrations, server).await?;
            let first_admin = bootstrap_admin(store.as_ref(), admin_password.as_deref()).await?;
            Ok::<_, StartError>((listener, address, state, first_admin))
        }
        .await;
        let (listener, address, state, first_admin) = match assembled {
            Ok(parts) => parts,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        Ok(Self {
            state,
            listener,
            address,
            tls,
            first_admin,
            stop: Arc::new(Notify::new()),
            idempotency_keep,
            bulk_pause,
            os_signals,
            data: database.describe(),
        })
    }

    /// The bound address (the port chosen when `listen` said port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://` or `https://` and the bound address.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// The `admin` account this start created, if there was no account.
    pub fn first_admin(&self) -> Option<&FirstAdmin> {
        self.first_admin.as_ref()
    }

    /// Stops [`Self::run_until_stopped`] gracefully.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Serves until stopped (SIGINT, SIGTERM or the [`StopHandle`]), then drains and closes the
    /// store. Returns once everything is written.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let Self { state, listener, address, tls, stop, idempotency_keep, bulk_pause, os_signals, data, .. } = self;
        for i in state.registry().integrations.values() {
            tracing::info!(integration = %i.name(), version = %i.definition.version, staging_table = %i.definition.staging_table, "integration active");
        }
        tracing::info!(%address, https = tls.is_some(), data = %data, "serving");
        let mut tasks: Vec<JoinHandle<()>> = Vec::new();
        if os_signals {
            tasks.extend(spawn_reload_on_sighup(state.clone()));
        }
        tasks.push(crate::stats::spawn_flusher(state.stats.clone(), state.store.clone()));
        tasks.push(spawn_idempotency_purge(state.store.clone(), idempotency_keep));
        tasks.push(crate::retention::spawn_retention(state.clone()));
        tasks.push(crate::forward::spawn_forwarder(state.clone()));
        let worker = WorkerOptions {
            batch_rows: state.config.bulk_batch_rows.max(1),
            pause: bulk_pause,
            ..WorkerOptions::default()
        };
        tasks.push(crate::pipeline::process::spawn_worker(state.clone(), worker));

        let store = state.store.clone();
        let stats = state.stats.clone();
        let stopped = stop_requested(stop, os_signals);
        let served = match tls {
            Some(tls) => crate::tls::serve_tls(listener, state, tls, stopped).await,
            None => crate::serve(listener, state, stopped).await,
        };
        tracing::info!("stopped accepting; in-flight requests finished; flushing writes");
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Cancelled, or ended on its own (a closed store): either way it is done.
            let _ = task.await;
        }
        if let Err(e) = stats.flush(store.as_ref()).await {
            tracing::warn!(error = %e, "the last statistics could not be written");
        }
        store.close().await;
        tracing::info!("stopped");
        served
    }
}

/// On first start there is no account: create `admin`, with `password` or a generated one.
async fn bootstrap_admin(store: &dyn Store, password: Option<&str>) -> Result<Option<FirstAdmin>, StartError> {
    if !store.accounts().await?.is_empty() {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (Password::parse(p).map_err(StartError::AdminPassword)?, false),
        None => (Password::generate(), true),
    };
    store
        .add_account(NewAccount {
            user_name: "admin".into(),
            roles: vec![Role::Admin],
            password_hash: hash_password(&password),
            // The person who started the server: it logs in to the console too. Integrations
            // get accounts of their own, web-service-only by default.
            web_service_only: false,
            created_by: "system".into(),
            now: DateTime::now(),
        })
        .await?;
    Ok(Some(if generated { FirstAdmin::Generated(password) } else { FirstAdmin::Given }))
}

/// Resolves at SIGINT or SIGTERM (with `os_signals`) or when the stop handle is used.
async fn stop_requested(stop: Arc<Notify>, os_signals: bool) {
    let signal = async {
        if os_signals {
            os_stop_signal().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = signal => {}
        () = stop.notified() => {}
    }
    tracing::info!("shutdown requested");
}

async fn os_stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        () = term => {}
    }
}

/// Forgets idempotency keys older than `keep`, once at start and then hourly.
fn spawn_idempotency_purge(store: Arc<dyn Store>, keep: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let keep = i64::try_from(keep.as_secs()).unwrap_or(i64::MAX);
            let before = DateTime::from_unix(DateTime::now().unix().saturating_sub(keep));
            match store.purge_idempotency(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "idempotency keys expired"),
                Err(StoreError::Closed) => break,
                Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
            }
        }
    })
}

/// SIGHUP reloads the integration definitions; a folder with problems is refused and the
/// previous definitions stay active.
fn spawn_reload_on_sighup(state: AppState) -> Option<JoinHandle<()>> {
    #[cfg(unix)]
    {
        Some(tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
            while hup.recv().await.is_some() {
                let reloaded = state.reload().await;
                crate::routes::admin_audit::record_reload(&state, "signal:SIGHUP", &reloaded).await;
                match reloaded {
                    Ok(registry) => {
                        tracing::info!(count = registry.integrations.len(), "integrations reloaded (SIGHUP)")
                    }
                    Err(ReloadError::Invalid(problems)) => {
                        for p in &problems {
                            tracing::warn!(problem = %p, "integration definition refused");
                        }
                        tracing::warn!(problems = problems.len(), "reload refused; previous definitions stay active");
                    }
                    Err(e) => tracing::error!(error = %e, "reload failed; previous definitions stay active"),
                }
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = state;
        None
    }
}
