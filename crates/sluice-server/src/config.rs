//! What the HTTP surface is configured with ([`ServerConfig`]) and the default of every setting
//! of `sluice serve` ([`defaults`]), written once: [`ServerConfig::default`],
//! [`crate::startup::Settings::new`] and the command line's flags all take them from there.

use std::path::PathBuf;
use std::time::Duration;

use sluice_core::network::IpNet;
use sluice_script::Limits;

use crate::throttle::Rate;

/// The default of every setting (the command line shows them in `--help`).
pub mod defaults {
    use sluice_script::Limits;

    /// `--listen`.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// `--data`: the folder of the SQLite database.
    pub const DATA_DIR: &str = "./sluice-data";
    /// `--max-body-bytes`.
    pub const MAX_BODY_BYTES: usize = 1024 * 1024;
    /// `--request-timeout`, in seconds.
    pub const REQUEST_TIMEOUT_SECS: u64 = 30;
    /// `--rate-per-ip`, requests per second (0: no limit).
    pub const RATE_PER_IP: f64 = 20_000.0;
    /// `--burst-per-ip`.
    pub const BURST_PER_IP: f64 = 40_000.0;
    /// `--rate-per-account` (0: no limit).
    pub const RATE_PER_ACCOUNT: f64 = 0.0;
    /// `--burst-per-account`.
    pub const BURST_PER_ACCOUNT: f64 = 2000.0;
    /// `--max-header-bytes`.
    pub const MAX_HEADER_BYTES: usize = 32 * 1024;
    /// `--idempotency-hours`.
    pub const IDEMPOTENCY_HOURS: u64 = 72;
    /// `--script-memory-mb`: sluice-script's own default.
    pub const SCRIPT_MEMORY_MB: u64 = (Limits::DEFAULT.memory_bytes / (1024 * 1024)) as u64;
    /// `--script-timeout-ms`: sluice-script's own default.
    pub const SCRIPT_TIMEOUT_MS: u64 = Limits::DEFAULT.time.as_millis() as u64;
    /// `--max-json-depth`.
    pub const MAX_JSON_DEPTH: u32 = 32;
    /// `--max-json-fields`.
    pub const MAX_JSON_FIELDS: usize = 1000;
    /// `--max-query-bytes`.
    pub const MAX_QUERY_BYTES: usize = 8 * 1024;
    /// `--max-records`.
    pub const MAX_RECORDS: usize = 10_000;
    /// `--max-bulk-body-bytes`.
    pub const MAX_BULK_BODY_BYTES: usize = 64 * 1024 * 1024;
    /// `--max-bulk-inflight-bytes`: the declared bodies of the `insertMultiple` requests read
    /// at once, together. A parsed and staged body takes about four times its size, so the
    /// default keeps them under ~600 MB however many arrive.
    pub const MAX_BULK_INFLIGHT_BYTES: usize = 128 * 1024 * 1024;
    /// `--max-batch-answer-bytes`: ServiceNow's own per-item answer limit (10 MB), here for
    /// the whole batch.
    pub const MAX_BATCH_ANSWER_BYTES: usize = 10 * 1024 * 1024;
    /// `--drain-timeout`, in seconds: well under systemd's 90 s stop timeout.
    pub const DRAIN_TIMEOUT_SECS: u64 = 10;
    /// `--max-attachment-bytes`: the largest file the Attachment API takes.
    pub const MAX_ATTACHMENT_BYTES: usize = 25 * 1024 * 1024;
    /// `--retention-days`.
    pub const RETENTION_DAYS: u64 = 90;
    /// Minutes a console session lives unused.
    pub const CONSOLE_SESSION_MINUTES: u64 = 30;
    /// `--bulk-batch-rows`.
    pub const BULK_BATCH_ROWS: usize = crate::pipeline::process::DEFAULT_BATCH_ROWS;

    /// `--database-max-connections`: the PostgreSQL store's own default.
    pub fn database_max_connections() -> u32 {
        sluice_postgres::PostgresOptions::default().max_connections
    }

    /// `--database-writers`: the PostgreSQL store's own default.
    pub fn database_writers() -> u16 {
        u16::try_from(sluice_postgres::PostgresOptions::default().writers).unwrap_or(u16::MAX)
    }
}

/// Default of `--max-header-bytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = defaults::MAX_HEADER_BYTES;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address served, used in links when the request has no usable `Host`.
    pub listen: String,
    /// Base of absolute links in responses (`record_link`, reference links), e.g.
    /// `https://sluice.example.com`; taken from each request's `Host` when unset.
    pub public_url: Option<String>,
    /// Served over TLS ([`crate::tls::serve_tls`]): links taken from `Host` start with `https://`.
    pub https: bool,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Where integration definitions are reloaded from; `None` for the built-in default.
    pub integrations_dir: Option<PathBuf>,
    /// Requests per client address, checked before authentication.
    pub rate_per_ip: Rate,
    /// Requests per account, checked after authentication.
    pub rate_per_account: Rate,
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
    /// The `insertMultiple` bodies read at once, together (a request without `Content-Length`
    /// counts as `max_bulk_body_bytes`); later ones wait, unread, for their turn.
    pub max_bulk_inflight_bytes: usize,
    /// The inner answers of one batch together, in bytes (bodies and headers, before base64).
    pub max_batch_answer_bytes: usize,
    /// Longest the stop waits for requests in flight before closing their connections.
    pub drain_timeout: Duration,
    /// Largest file the Attachment API takes, in bytes (413 `attachment_too_large` beyond).
    pub max_attachment_bytes: usize,
    /// Staging rows (not pending) older than this many days are purged.
    pub retention_days: u64,
    /// Rows per batch of the bulk worker, in sync mode and in replays.
    pub bulk_batch_rows: usize,
    /// Peers whose `X-Forwarded-For` names the client ([`crate::client`]); empty: the header is
    /// ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest request line and headers, in bytes (431 `headers_too_large` beyond).
    pub max_header_bytes: usize,
    /// How long a console session lives unused (each page renews it, up to
    /// [`crate::console::session::ABSOLUTE`]).
    pub console_session_idle: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: defaults::LISTEN.into(),
            public_url: None,
            https: false,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            request_timeout: Duration::from_secs(defaults::REQUEST_TIMEOUT_SECS),
            integrations_dir: None,
            rate_per_ip: Rate { per_second: defaults::RATE_PER_IP, burst: defaults::BURST_PER_IP },
            rate_per_account: Rate { per_second: defaults::RATE_PER_ACCOUNT, burst: defaults::BURST_PER_ACCOUNT },
            script_limits: Limits::DEFAULT,
            script_workers: sluice_script::DEFAULT_WORKERS,
            max_json_depth: defaults::MAX_JSON_DEPTH as usize,
            max_json_fields: defaults::MAX_JSON_FIELDS,
            max_query_bytes: defaults::MAX_QUERY_BYTES,
            max_records: defaults::MAX_RECORDS,
            max_bulk_body_bytes: defaults::MAX_BULK_BODY_BYTES,
            max_bulk_inflight_bytes: defaults::MAX_BULK_INFLIGHT_BYTES,
            max_batch_answer_bytes: defaults::MAX_BATCH_ANSWER_BYTES,
            drain_timeout: Duration::from_secs(defaults::DRAIN_TIMEOUT_SECS),
            max_attachment_bytes: defaults::MAX_ATTACHMENT_BYTES,
            retention_days: defaults::RETENTION_DAYS,
            bulk_batch_rows: defaults::BULK_BATCH_ROWS,
            trusted_proxies: Vec::new(),
            max_header_bytes: defaults::MAX_HEADER_BYTES,
            console_session_idle: Duration::from_secs(defaults::CONSOLE_SESSION_MINUTES * 60),
        }
    }
}
