//! `sluice`: the command line. `serve` runs the gateway; `account` manages the accounts that call
//! it; `integrations check` checks definitions offline; `integrations plan` prints a plan;
//! `export`, `import` and `backup` move and copy the data (`transfer.rs`).

mod accounts;
mod bench;
mod log_sink;
mod stats;
mod transfer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sluice_core::DateTime;
use sluice_core::account::{Password, Role};
use sluice_core::integration::{DefinitionProblem, Integration};
use sluice_core::tables::Catalog;
use sluice_postgres::{PostgresOptions, PostgresStore};
use sluice_server::bulk::{ReplayRequest, WorkerOptions};
use sluice_server::throttle::Rate;
use sluice_server::{AppState, ServerConfig, hash_password};
use sluice_sqlite::SqliteOptions;
use sluice_sqlite::SqliteStore;
use sluice_store::{NewAccount, Store};

// Every request allocates many small strings on several threads; glibc's allocator showed up as
// about a tenth of the request threads' time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's own: returns the calling thread's freed memory to the system.
    fn mi_collect(force: bool);
}

fn release_allocator_memory() {
    // SAFETY: a plain call into the allocator this binary links; it takes no pointers.
    unsafe { mi_collect(true) }
}

#[derive(Parser)]
#[command(name = "sluice", version, about = "Incident intake gateway speaking ServiceNow's Import Set and Table APIs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Manage the accounts that call sluice.
    #[command(subcommand)]
    Account(accounts::AccountCommand),
    /// Work with integration definitions.
    #[command(subcommand)]
    Integrations(IntegrationsCommand),
    /// Drive a running sluice with concurrent creates and print throughput and latency.
    Bench(bench::BenchArgs),
    /// Run an integration's current definition again on its stored staging rows.
    Replay(ReplayArgs),
    /// Create or bring the database schema up to date, then exit (`serve` does it too).
    Migrate {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print request statistics per account and integration.
    Stats(stats::StatsArgs),
    /// Write every table of a SQLite data folder to a portable dump (JSON lines).
    Export(transfer::ExportArgs),
    /// Load a dump into a new PostgreSQL (--database) or SQLite (--data) database.
    Import(transfer::ImportArgs),
    /// Copy a SQLite database to a new file while the server runs.
    Backup(transfer::BackupArgs),
}

#[derive(Args)]
struct ReplayArgs {
    /// The integration (its name or its staging table).
    #[arg(long)]
    integration: String,
    /// Which rows: error, skipped, ignored, inserted or updated.
    #[arg(long, default_value = "error")]
    state: String,
    /// Only rows staged at or after this time (yyyy-MM-dd HH:mm:ss, UTC).
    #[arg(long)]
    since: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Folder of integration definitions (*.toml); the built-in u_incident_import when unset.
    #[arg(long, env = "SLUICE_INTEGRATIONS")]
    integrations: Option<PathBuf>,
}

#[derive(Args)]
struct DataArgs {
    /// Folder holding the SQLite database (created when missing); unused with --database.
    #[arg(long, env = "SLUICE_DATA", default_value = "./sluice-data")]
    data: PathBuf,
    /// A PostgreSQL database shared by every node, instead of SQLite in --data:
    /// postgres://user[:password]@host[:port]/database.
    #[arg(long, env = "SLUICE_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database: Option<String>,
    /// Connections this node keeps to PostgreSQL.
    #[arg(long, env = "SLUICE_DATABASE_MAX_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    database_max_connections: u32,
    /// Import writers (group commit) this node runs against PostgreSQL; each batches the imports
    /// waiting into one transaction.
    #[arg(long, env = "SLUICE_DATABASE_WRITERS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    database_writers: u16,
}

impl DataArgs {
    /// Where the data is, for logs (no credentials).
    fn describe(&self) -> String {
        match &self.database {
            Some(_) => "PostgreSQL (--database)".into(),
            None => format!("SQLite in {}", self.data.display()),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Synchronous {
    /// Durable across power loss (default).
    Full,
    /// Durable across process crashes; the last commits may be lost on power loss.
    Normal,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    #[command(flatten)]
    data: DataArgs,
    /// Folder of integration definitions (*.toml); the built-in u_incident_import when unset.
    #[arg(long, env = "SLUICE_INTEGRATIONS")]
    integrations: Option<PathBuf>,
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SLUICE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// Longest a request may take, in seconds.
    #[arg(long, env = "SLUICE_REQUEST_TIMEOUT", default_value_t = 30)]
    request_timeout: u64,
    /// Base URL for links in responses (e.g. https://sluice.example.com); default: the request's Host.
    #[arg(long, env = "SLUICE_PUBLIC_URL")]
    public_url: Option<String>,
    /// SQLite durability.
    #[arg(long, env = "SLUICE_SYNCHRONOUS", value_enum, default_value = "full")]
    synchronous: Synchronous,
    /// Requests per second from one client address (0: no limit), checked before authentication.
    #[arg(long, env = "SLUICE_RATE_PER_IP", default_value_t = 20000.0)]
    rate_per_ip: f64,
    /// Burst above --rate-per-ip.
    #[arg(long, env = "SLUICE_BURST_PER_IP", default_value_t = 40000.0)]
    burst_per_ip: f64,
    /// Requests per second per account (0: no limit), checked after authentication.
    #[arg(long, env = "SLUICE_RATE_PER_ACCOUNT", default_value_t = 0.0)]
    rate_per_account: f64,
    /// Burst above --rate-per-account.
    #[arg(long, env = "SLUICE_BURST_PER_ACCOUNT", default_value_t = 2000.0)]
    burst_per_account: f64,
    /// A proxy network (CIDR) whose X-Forwarded-For names the client (repeatable). Without it
    /// the header is ignored.
    #[arg(long = "trusted-proxy", env = "SLUICE_TRUSTED_PROXIES", value_delimiter = ',', value_name = "CIDR")]
    trusted_proxies: Vec<String>,
    /// Largest request line and headers, in bytes (431 headers_too_large beyond).
    #[arg(long, env = "SLUICE_MAX_HEADER_BYTES", default_value_t = sluice_server::DEFAULT_MAX_HEADER_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024))]
    max_header_bytes: u64,
    /// How long idempotency keys are remembered, in hours.
    #[arg(long, env = "SLUICE_IDEMPOTENCY_HOURS", default_value_t = 72)]
    idempotency_hours: u64,
    /// PEM certificate chain (leaf first): serve HTTPS only. Needs --tls-key.
    #[arg(long, env = "SLUICE_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, RSA or EC) of --tls-cert.
    #[arg(long, env = "SLUICE_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Heap of one transform-script call, in MiB.
    #[arg(long, env = "SLUICE_SCRIPT_MEMORY_MB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    script_memory_mb: u64,
    /// Longest one transform-script call may run, in milliseconds.
    #[arg(long, env = "SLUICE_SCRIPT_TIMEOUT_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    script_timeout_ms: u64,
    /// Deepest nesting of objects and arrays in a JSON body (400 json_too_deep beyond).
    #[arg(long, env = "SLUICE_MAX_JSON_DEPTH", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=128))]
    max_json_depth: u32,
    /// Most fields in a JSON body object (400 too_many_fields beyond).
    #[arg(long, env = "SLUICE_MAX_JSON_FIELDS", default_value_t = 1000)]
    max_json_fields: usize,
    /// Longest query string, in bytes (414 query_too_long beyond).
    #[arg(long, env = "SLUICE_MAX_QUERY_BYTES", default_value_t = 8 * 1024)]
    max_query_bytes: usize,
    /// Most records in one insertMultiple request.
    #[arg(long, env = "SLUICE_MAX_RECORDS", default_value_t = 10_000)]
    max_records: usize,
    /// Largest accepted insertMultiple body, in bytes.
    #[arg(long, env = "SLUICE_MAX_BULK_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    max_bulk_body_bytes: usize,
    /// Days staging rows are kept (pending rows always are); older ones are purged hourly.
    #[arg(long, env = "SLUICE_RETENTION_DAYS", default_value_t = 90)]
    retention_days: u64,
    /// Pending rows the bulk worker claims per batch.
    #[arg(long, hide = true, default_value_t = sluice_server::bulk::DEFAULT_BATCH_ROWS)]
    bulk_batch_rows: usize,
    /// A pause after each bulk batch, in milliseconds (tests use it to stop the server midway).
    #[arg(long, hide = true, default_value_t = 0)]
    bulk_pause_ms: u64,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account. Prints a generated password unless --password-stdin is given.
    Add {
        name: String,
        /// admin, itil or import_set_loader (repeatable).
        #[arg(long = "role", required = true, num_args = 1..)]
        roles: Vec<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum IntegrationsCommand {
    /// Check every definition in a folder and report each problem with file and key.
    Check { dir: PathBuf },
    /// Print an integration's plan (Markdown), as GET /api/sluice/v1/integrations/NAME/plan serves it.
    Plan(PlanArgs),
}

/// The integration and the `serve` settings its plan describes (same flags and variables).
#[derive(Args)]
struct PlanArgs {
    /// The integration's name.
    name: String,
    /// Folder of integration definitions (*.toml); the built-in u_incident_import when unset.
    #[arg(long, env = "SLUICE_INTEGRATIONS")]
    integrations: Option<PathBuf>,
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    #[arg(long, env = "SLUICE_PUBLIC_URL")]
    public_url: Option<String>,
    #[arg(long, env = "SLUICE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    #[arg(long, env = "SLUICE_REQUEST_TIMEOUT", default_value_t = 30)]
    request_timeout: u64,
    /// Served with --tls-cert (the file is not read: only HTTPS yes or no matters here).
    #[arg(long, env = "SLUICE_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    sluice_server::authenticate::set_release_memory(release_allocator_memory);
    // A panic's message comes after the log lines that led to it.
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log_sink::flush();
        report_panic(info);
    }));
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = run(cli, &runtime);
    log_sink::flush();
    result
}

fn run(cli: Cli, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Account(cmd) => {
            init_logs(LogFormat::Text);
            runtime.block_on(accounts::run(cmd))
        }
        Command::Integrations(IntegrationsCommand::Check { dir }) => check_integrations(&dir),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        Command::Replay(args) => {
            init_logs(LogFormat::Text);
            runtime.block_on(replay(args))
        }
        Command::Integrations(IntegrationsCommand::Plan(args)) => print_plan(&args),
        Command::Migrate { data } => {
            init_logs(LogFormat::Text);
            runtime.block_on(async {
                let store = open_store(&data, SqliteOptions::default()).await?;
                store.close().await;
                println!("schema up to date ({})", data.describe());
                anyhow::Ok(())
            })
        }
        Command::Stats(args) => runtime.block_on(stats::run(args)),
        Command::Export(args) => transfer::export(args),
        Command::Import(args) => {
            init_logs(LogFormat::Text);
            runtime.block_on(transfer::import(args))
        }
        Command::Backup(args) => transfer::backup(args),
    }
}

fn print_plan(args: &PlanArgs) -> anyhow::Result<()> {
    let catalog = Catalog::builtin();
    let integrations = match &args.integrations {
        Some(dir) => sluice_server::load_integrations(dir, &catalog).map_err(|p| report(&p))?,
        None => vec![Integration::builtin_default(&catalog)],
    };
    let Some(integration) = integrations.iter().find(|i| i.name() == args.name) else {
        let names: Vec<&str> = integrations.iter().map(|i| i.name()).collect();
        bail!("no integration named {} (there are: {})", args.name, names.join(", "));
    };
    let settings = sluice_server::plan::Settings::new(
        args.public_url.as_deref(),
        &args.listen,
        args.tls_cert.is_some(),
        args.max_body_bytes,
        Duration::from_secs(args.request_timeout.max(1)),
    );
    print!("{}", sluice_server::plan::markdown(&sluice_server::plan::document(integration, &settings)));
    Ok(())
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(log_sink::LogSink::start());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn report(problems: &[DefinitionProblem]) -> anyhow::Error {
    for p in problems {
        eprintln!("{p}");
    }
    anyhow::anyhow!("{} problem(s) in the integration definitions", problems.len())
}

fn check_integrations(dir: &Path) -> anyhow::Result<()> {
    let loaded = sluice_server::load_integrations(dir, &Catalog::builtin()).map_err(|p| report(&p))?;
    for i in &loaded {
        println!("ok  {} (version {}, staging table {})", i.origin, i.definition.version, i.definition.staging_table);
    }
    Ok(())
}

/// The store `data` names, its schema brought up to date: PostgreSQL with `--database`, else
/// SQLite in the data folder (with `sqlite` options).
async fn open_store(data: &DataArgs, sqlite: SqliteOptions) -> anyhow::Result<Arc<dyn Store>> {
    let Some(url) = &data.database else {
        let store = SqliteStore::open(&data.data, sqlite)
            .with_context(|| format!("cannot open the database in {}", data.data.display()))?;
        return Ok(Arc::new(store));
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("--database (SLUICE_DATABASE_URL) must be a postgres:// URL");
    }
    let options = PostgresOptions {
        max_connections: data.database_max_connections,
        writers: usize::from(data.database_writers),
        ..PostgresOptions::default()
    };
    // The URL may carry a password: it is not repeated in the message.
    let store = PostgresStore::open(url, options).await.context("cannot open the PostgreSQL database (--database)")?;
    Ok(Arc::new(store))
}

/// On first start there is no account: create `admin`, with `SLUICE_ADMIN_PASSWORD` or a
/// generated password printed once.
async fn bootstrap_admin(store: &dyn Store) -> anyhow::Result<()> {
    if !store.accounts().await?.is_empty() {
        return Ok(());
    }
    let (password, generated) = match std::env::var("SLUICE_ADMIN_PASSWORD") {
        Ok(p) => (Password::parse(&p).context("SLUICE_ADMIN_PASSWORD")?, false),
        Err(_) => (Password::generate(), true),
    };
    store
        .add_account(NewAccount {
            user_name: "admin".into(),
            roles: vec![Role::Admin],
            password_hash: hash_password(&password),
            created_by: "system".into(),
            now: DateTime::now(),
        })
        .await?;
    if generated {
        println!("Created account admin with password: {}", password.expose());
        println!("(shown once; set SLUICE_ADMIN_PASSWORD before the first start to choose it)");
    } else {
        println!("Created account admin with the password from SLUICE_ADMIN_PASSWORD");
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logs(args.log_format);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(sluice_server::tls::load_config(cert, key)?),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key (SLUICE_TLS_CERT, SLUICE_TLS_KEY) go together: give both or neither"),
    };
    let catalog = Catalog::builtin();
    let integrations = match &args.integrations {
        Some(dir) => sluice_server::load_integrations(dir, &catalog).map_err(|p| report(&p))?,
        None => vec![Integration::builtin_default(&catalog)],
    };
    let options =
        SqliteOptions { synchronous_full: matches!(args.synchronous, Synchronous::Full), ..SqliteOptions::default() };
    let store = open_store(&args.data, options).await?;
    bootstrap_admin(store.as_ref()).await?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let trusted_proxies = args
        .trusted_proxies
        .iter()
        .map(|n| sluice_core::account::parse_network(n).context("--trusted-proxy"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = ServerConfig {
        listen: address.to_string(),
        public_url: args.public_url,
        https: tls.is_some(),
        max_body_bytes: args.max_body_bytes,
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        integrations_dir: args.integrations.clone(),
        rate_per_ip: Rate { per_second: args.rate_per_ip.max(0.0), burst: args.burst_per_ip.max(1.0) },
        rate_per_account: Rate { per_second: args.rate_per_account.max(0.0), burst: args.burst_per_account.max(1.0) },
        script_limits: sluice_script::Limits {
            memory_bytes: usize::try_from(args.script_memory_mb * 1024 * 1024).unwrap_or(usize::MAX),
            time: Duration::from_millis(args.script_timeout_ms),
            ..sluice_script::Limits::default()
        },
        script_workers: sluice_script::DEFAULT_WORKERS,
        max_json_depth: args.max_json_depth as usize,
        max_json_fields: args.max_json_fields,
        max_query_bytes: args.max_query_bytes,
        max_records: args.max_records.max(1),
        max_bulk_body_bytes: args.max_bulk_body_bytes,
        retention_days: args.retention_days,
        bulk_batch_rows: args.bulk_batch_rows.max(1),
        trusted_proxies,
        max_header_bytes: args.max_header_bytes as usize,
    };
    let state = AppState::build(store.clone(), integrations, config).await?;
    for i in state.registry().integrations.values() {
        tracing::info!(integration = %i.name(), version = %i.definition.version, staging_table = %i.definition.staging_table, "integration active");
    }
    tracing::info!(%address, https = tls.is_some(), data = %args.data.describe(), "serving");
    spawn_reload_on_sighup(state.clone());
    sluice_server::stats::spawn_flusher(state.stats.clone(), state.store.clone());
    spawn_idempotency_purge(store.clone(), Duration::from_secs(args.idempotency_hours.saturating_mul(3600)));
    sluice_server::bulk::spawn_retention(state.clone());
    sluice_server::bulk::spawn_worker(
        state.clone(),
        WorkerOptions {
            batch_rows: args.bulk_batch_rows.max(1),
            pause: Duration::from_millis(args.bulk_pause_ms),
            ..WorkerOptions::default()
        },
    );
    let state_stats = state.stats.clone();
    match tls {
        Some(tls) => {
            println!("sluice listening on https://{address}");
            sluice_server::tls::serve_tls(listener, state, tls, shutdown_signal()).await?;
        }
        None => {
            println!("sluice listening on http://{address}");
            sluice_server::serve(listener, state, shutdown_signal()).await?;
        }
    }
    tracing::info!("stopped accepting; in-flight requests finished; flushing writes");
    if let Err(e) = state_stats.flush(store.as_ref()).await {
        tracing::warn!(error = %e, "the last statistics could not be written");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Forgets idempotency keys older than `keep`, once at start and then hourly.
fn spawn_idempotency_purge(store: Arc<dyn Store>, keep: Duration) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let before = DateTime::from_unix(DateTime::now().unix() - keep.as_secs() as i64);
            match store.purge_idempotency(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "idempotency keys expired"),
                Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
            }
        }
    });
}

/// SIGHUP reloads the integration definitions; a folder with problems is refused and the
/// previous definitions stay active.
fn spawn_reload_on_sighup(state: AppState) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            let reloaded = state.reload().await;
            sluice_server::routes::admin_audit::record_reload(&state, "signal:SIGHUP", &reloaded).await;
            match reloaded {
                Ok(registry) => tracing::info!(count = registry.integrations.len(), "integrations reloaded (SIGHUP)"),
                Err(sluice_server::ReloadError::Invalid(problems)) => {
                    for p in &problems {
                        tracing::warn!(problem = %p, "integration definition refused");
                    }
                    tracing::warn!(problems = problems.len(), "reload refused; previous definitions stay active");
                }
                Err(e) => tracing::error!(error = %e, "reload failed; previous definitions stay active"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = state;
}

async fn shutdown_signal() {
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
    tracing::info!("shutdown requested");
}

/// `sluice replay`: works on the data folder directly (with or without a running server: SQLite
/// serialises the writers), printing progress on standard error and a summary on standard output.
async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let catalog = Catalog::builtin();
    let integrations = match &args.integrations {
        Some(dir) => sluice_server::load_integrations(dir, &catalog).map_err(|p| report(&p))?,
        None => vec![Integration::builtin_default(&catalog)],
    };
    let Some(integration) = integrations
        .into_iter()
        .find(|i| i.name() == args.integration || i.definition.staging_table == args.integration)
    else {
        bail!("no integration named {}", args.integration);
    };
    let mut query = vec![("state".to_owned(), args.state.clone())];
    query.extend(args.since.iter().map(|s| ("since".to_owned(), s.clone())));
    let (state, since) = sluice_server::routes::bulk::replay_selection(None, &query).map_err(|e| match e {
        sluice_server::error::ApiError::InvalidParameter(detail) => anyhow::anyhow!("{detail}"),
        other => anyhow::anyhow!("{other}"),
    })?;
    let who = std::env::var("USER").map(|u| format!("sluice replay (user {u})")).unwrap_or("sluice replay".into());
    let request =
        ReplayRequest { state, since, requested_by: who, batch_rows: sluice_server::bulk::DEFAULT_BATCH_ROWS };
    let store = open_store(&args.data, SqliteOptions::default()).await?;
    let result = async {
        store.prepare_staging(integration.staging.clone()).await?;
        let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
        // Scripts run as they would in the server (default limits).
        let engine = sluice_script::ScriptEngine::new(sluice_script::Limits::default(), 1)?;
        let host = sluice_server::row_scripts::ScriptHost { store: store.as_ref(), engine: &engine, catalog: &catalog };
        let summary = sluice_server::bulk::replay(host, &integration, &request, |s| {
            let line = format!(
                "replayed {}/{} {} rows: {} inserted, {} updated, {} ignored, {} skipped, {} error",
                s.replayed,
                s.matched,
                request.state.as_str(),
                s.outcomes.inserted,
                s.outcomes.updated,
                s.outcomes.ignored,
                s.outcomes.skipped,
                s.outcomes.error
            );
            if interactive {
                eprint!("\r{line}");
            } else {
                eprintln!("{line}");
            }
        })
        .await?;
        if interactive && summary.replayed > 0 {
            eprintln!();
        }
        anyhow::Ok(summary)
    }
    .await;
    store.close().await;
    let summary = result?;
    let o = &summary.outcomes;
    println!(
        "{}: replayed {} of {} {} rows with version {}",
        integration.name(),
        summary.replayed,
        summary.matched,
        request.state.as_str(),
        integration.definition.version
    );
    println!(
        "inserted {}  updated {}  ignored {}  skipped {}  error {}",
        o.inserted, o.updated, o.ignored, o.skipped, o.error
    );
    if summary.not_replayed > 0 {
        println!("{} row(s) changed meanwhile or failed and were left as they were", summary.not_replayed);
    }
    Ok(())
}
