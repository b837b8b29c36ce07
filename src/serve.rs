//! `sluice serve`: the flags and variables of the gateway, turned into
//! `sluice_server::startup::Settings`; everything it runs is `sluice_server::Application`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use sluice_server::ServerConfig;
use sluice_server::defaults;
use sluice_server::startup::{Application, FirstAdmin, Settings, StartError, TlsFiles};
use sluice_server::throttle::Rate;
use sluice_sqlite::SqliteOptions;

use crate::data::DataArgs;
use crate::{LogFormat, init_logs};

#[derive(Clone, Copy, ValueEnum)]
enum Synchronous {
    /// Durable across power loss (default).
    Full,
    /// Durable across process crashes; the last commits may be lost on power loss.
    Normal,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = defaults::LISTEN)]
    listen: String,
    #[command(flatten)]
    data: DataArgs,
    /// Folder of integration definitions (*.toml); the built-in u_incident_import when unset.
    #[arg(long, env = "SLUICE_INTEGRATIONS")]
    integrations: Option<PathBuf>,
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SLUICE_MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Longest a request may take, in seconds.
    #[arg(long, env = "SLUICE_REQUEST_TIMEOUT", default_value_t = defaults::REQUEST_TIMEOUT_SECS)]
    request_timeout: u64,
    /// Base URL for links in responses (e.g. https://sluice.example.com); default: the request's Host.
    #[arg(long, env = "SLUICE_PUBLIC_URL")]
    public_url: Option<String>,
    /// SQLite durability.
    #[arg(long, env = "SLUICE_SYNCHRONOUS", value_enum, default_value = "full")]
    synchronous: Synchronous,
    /// Requests per second from one client address (0: no limit), checked before authentication.
    #[arg(long, env = "SLUICE_RATE_PER_IP", default_value_t = defaults::RATE_PER_IP)]
    rate_per_ip: f64,
    /// Burst above --rate-per-ip.
    #[arg(long, env = "SLUICE_BURST_PER_IP", default_value_t = defaults::BURST_PER_IP)]
    burst_per_ip: f64,
    /// Requests per second per account (0: no limit), checked after authentication.
    #[arg(long, env = "SLUICE_RATE_PER_ACCOUNT", default_value_t = defaults::RATE_PER_ACCOUNT)]
    rate_per_account: f64,
    /// Burst above --rate-per-account.
    #[arg(long, env = "SLUICE_BURST_PER_ACCOUNT", default_value_t = defaults::BURST_PER_ACCOUNT)]
    burst_per_account: f64,
    /// A proxy network (CIDR) whose X-Forwarded-For names the client (repeatable). Without it
    /// the header is ignored.
    #[arg(long = "trusted-proxy", env = "SLUICE_TRUSTED_PROXIES", value_delimiter = ',', value_name = "CIDR")]
    trusted_proxies: Vec<String>,
    /// Largest request line and headers, in bytes (431 headers_too_large beyond).
    #[arg(long, env = "SLUICE_MAX_HEADER_BYTES", default_value_t = defaults::MAX_HEADER_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024))]
    max_header_bytes: u64,
    /// How long idempotency keys are remembered, in hours.
    #[arg(long, env = "SLUICE_IDEMPOTENCY_HOURS", default_value_t = defaults::IDEMPOTENCY_HOURS)]
    idempotency_hours: u64,
    /// PEM certificate chain (leaf first): serve HTTPS only. Needs --tls-key.
    #[arg(long, env = "SLUICE_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, RSA or EC) of --tls-cert.
    #[arg(long, env = "SLUICE_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Heap of one transform-script call, in MiB.
    #[arg(long, env = "SLUICE_SCRIPT_MEMORY_MB", default_value_t = defaults::SCRIPT_MEMORY_MB,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    script_memory_mb: u64,
    /// Longest one transform-script call may run, in milliseconds.
    #[arg(long, env = "SLUICE_SCRIPT_TIMEOUT_MS", default_value_t = defaults::SCRIPT_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    script_timeout_ms: u64,
    /// Deepest nesting of objects and arrays in a JSON body (400 json_too_deep beyond); at most
    /// 100, below the JSON parser's own limit with room for insertMultiple's two outer levels.
    #[arg(long, env = "SLUICE_MAX_JSON_DEPTH", default_value_t = defaults::MAX_JSON_DEPTH,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    max_json_depth: u32,
    /// Most fields in a JSON body object (400 too_many_fields beyond).
    #[arg(long, env = "SLUICE_MAX_JSON_FIELDS", default_value_t = defaults::MAX_JSON_FIELDS)]
    max_json_fields: usize,
    /// Longest query string, in bytes (414 query_too_long beyond).
    #[arg(long, env = "SLUICE_MAX_QUERY_BYTES", default_value_t = defaults::MAX_QUERY_BYTES)]
    max_query_bytes: usize,
    /// Most records in one insertMultiple request.
    #[arg(long, env = "SLUICE_MAX_RECORDS", default_value_t = defaults::MAX_RECORDS)]
    max_records: usize,
    /// Largest accepted insertMultiple body, in bytes.
    #[arg(long, env = "SLUICE_MAX_BULK_BODY_BYTES", default_value_t = defaults::MAX_BULK_BODY_BYTES)]
    max_bulk_body_bytes: usize,
    /// The insertMultiple bodies read at once, together, in bytes; later requests wait unread.
    #[arg(long, env = "SLUICE_MAX_BULK_INFLIGHT_BYTES", default_value_t = defaults::MAX_BULK_INFLIGHT_BYTES)]
    max_bulk_inflight_bytes: usize,
    /// The inner answers of one Batch API request together, in bytes (bodies and headers before
    /// base64); the answer past it is a batch_answer_too_large item, the rest unserviced.
    #[arg(long, env = "SLUICE_MAX_BATCH_ANSWER_BYTES", default_value_t = defaults::MAX_BATCH_ANSWER_BYTES)]
    max_batch_answer_bytes: usize,
    /// Longest a stop (SIGTERM, SIGINT) waits for requests in flight, in seconds; connections
    /// still busy then are closed.
    #[arg(long, env = "SLUICE_DRAIN_TIMEOUT", default_value_t = defaults::DRAIN_TIMEOUT_SECS)]
    drain_timeout: u64,
    /// Largest file the Attachment API takes, in bytes.
    #[arg(long, env = "SLUICE_MAX_ATTACHMENT_BYTES", default_value_t = defaults::MAX_ATTACHMENT_BYTES)]
    max_attachment_bytes: usize,
    /// Days staging rows are kept (pending rows always are); older ones are purged hourly.
    #[arg(long, env = "SLUICE_RETENTION_DAYS", default_value_t = defaults::RETENTION_DAYS)]
    retention_days: u64,
    /// Minutes a console session lives unused (each page renews it; 12 hours at most).
    #[arg(long, env = "SLUICE_CONSOLE_SESSION_MINUTES", default_value_t = defaults::CONSOLE_SESSION_MINUTES)]
    console_session_minutes: u64,
    /// The same in seconds, overriding the minutes (tests use it to see a session expire).
    #[arg(long, hide = true)]
    console_session_seconds: Option<u64>,
    /// Pending rows the bulk worker claims per batch.
    #[arg(long, hide = true, default_value_t = defaults::BULK_BATCH_ROWS)]
    bulk_batch_rows: usize,
    /// A pause after each bulk batch, in milliseconds (tests use it to stop the server midway).
    #[arg(long, hide = true, default_value_t = 0)]
    bulk_pause_ms: u64,
}

impl ServeArgs {
    pub fn integrations_dir(&self) -> Option<&std::path::Path> {
        self.integrations.as_deref()
    }

    pub fn tls_files(&self) -> impl Iterator<Item = &PathBuf> {
        self.tls_cert.iter().chain(self.tls_key.iter())
    }

    pub fn settings(self) -> anyhow::Result<Settings> {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key (SLUICE_TLS_CERT, SLUICE_TLS_KEY) go together: give both or neither"),
        };
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|n| sluice_core::network::parse_network(n).context("--trusted-proxy"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let sqlite = SqliteOptions {
            synchronous_full: matches!(self.synchronous, Synchronous::Full),
            ..SqliteOptions::default()
        };
        let server = ServerConfig {
            listen: self.listen,
            public_url: self.public_url,
            https: tls.is_some(),
            max_body_bytes: self.max_body_bytes,
            request_timeout: Duration::from_secs(self.request_timeout.max(1)),
            integrations_dir: self.integrations,
            rate_per_ip: Rate { per_second: self.rate_per_ip.max(0.0), burst: self.burst_per_ip.max(1.0) },
            rate_per_account: Rate {
                per_second: self.rate_per_account.max(0.0),
                burst: self.burst_per_account.max(1.0),
            },
            script_limits: sluice_script::Limits {
                memory_bytes: usize::try_from(self.script_memory_mb * 1024 * 1024).unwrap_or(usize::MAX),
                time: Duration::from_millis(self.script_timeout_ms),
                ..sluice_script::Limits::DEFAULT
            },
            script_workers: sluice_script::DEFAULT_WORKERS,
            max_json_depth: self.max_json_depth as usize,
            max_json_fields: self.max_json_fields,
            max_query_bytes: self.max_query_bytes,
            max_records: self.max_records.max(1),
            max_bulk_body_bytes: self.max_bulk_body_bytes,
            max_bulk_inflight_bytes: self.max_bulk_inflight_bytes,
            max_batch_answer_bytes: self.max_batch_answer_bytes,
            drain_timeout: Duration::from_secs(self.drain_timeout),
            max_attachment_bytes: self.max_attachment_bytes,
            retention_days: self.retention_days,
            bulk_batch_rows: self.bulk_batch_rows.max(1),
            trusted_proxies,
            max_header_bytes: usize::try_from(self.max_header_bytes).unwrap_or(usize::MAX),
            console_session_idle: Duration::from_secs(
                self.console_session_seconds.unwrap_or(self.console_session_minutes.saturating_mul(60)).max(1),
            ),
        };
        Ok(Settings {
            server,
            tls,
            admin_password: std::env::var("SLUICE_ADMIN_PASSWORD").ok(),
            idempotency_keep: Duration::from_secs(self.idempotency_hours.saturating_mul(3600)),
            bulk_pause: Duration::from_millis(self.bulk_pause_ms),
            ..Settings::new(self.data.database(sqlite)?)
        })
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logs(args.log_format);
    let app = match Application::build(args.settings()?).await {
        Ok(app) => app,
        Err(StartError::Integrations(problems)) => return Err(crate::integrations::report(&problems)),
        Err(e) => return Err(e.into()),
    };
    match app.first_admin() {
        Some(FirstAdmin::Generated(password)) => {
            println!("Created account admin with password: {}", password.expose());
            println!("(shown once; set SLUICE_ADMIN_PASSWORD before the first start to choose it)");
        }
        Some(FirstAdmin::Given) => println!("Created account admin with the password from SLUICE_ADMIN_PASSWORD"),
        None => {}
    }
    println!("sluice listening on {}", app.url());
    app.run_until_stopped().await?;
    Ok(())
}
