//! The `[forward]` table of a definition: after the local commit, every record the integration
//! writes is delivered to an upstream ticketing system through the outbox (docs/forwarding.md).
//! Parsed when the definition loads into a [`Forward`], its credentials read then from the
//! environment or a file (never from the definition itself).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::signature::{Secret, SecretSource, read_env, read_file};
use super::{Definition, DefinitionProblem};
use crate::schema::{FieldKind, TableSchema, is_identifier};

/// What the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamKind {
    /// ServiceNow's Import Set API: `POST {url}/api/now/import/{table}`; the upstream's transform
    /// map coalesces on the correlation field.
    ServicenowImport,
    /// ServiceNow's Table API: found by the correlation field, then `POST` or `PATCH`
    /// `{url}/api/now/table/{table}`.
    ServicenowTable,
    /// Any JSON endpoint: `POST {url}` with the fields, the correlation field and an
    /// `Idempotency-Key` header.
    HttpJson,
}

impl UpstreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServicenowImport => "servicenow-import",
            Self::ServicenowTable => "servicenow-table",
            Self::HttpJson => "http-json",
        }
    }
}

/// The `[forward]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSpec {
    pub kind: UpstreamKind,
    /// The instance (`https://acme.service-now.com`) or, for `http-json`, the endpoint.
    pub url: String,
    /// The upstream staging table (`servicenow-import`) or table (`servicenow-table`, default
    /// `incident`).
    #[serde(default)]
    pub table: Option<String>,
    /// Basic auth: the upstream account and where its password is.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
    /// Bearer auth: where the token is.
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_file: Option<String>,
    /// OAuth client credentials (ServiceNow: `/oauth_token.do`): token URL, client id, and where
    /// the client secret is.
    #[serde(default)]
    pub oauth_token_url: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_secret_file: Option<String>,
    /// Upstream field → local field of the record. Default: the definition's field map reversed
    /// for `servicenow-import` (the upstream staging table has the same fields as this one),
    /// the mapped target fields under their own names otherwise.
    #[serde(default)]
    pub fields: Option<BTreeMap<String, String>>,
    /// The upstream field that carries `sluice:{sys_id}`, the key that makes a repeated
    /// delivery update instead of duplicate.
    #[serde(default)]
    pub correlation_field: Option<String>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub concurrency: Option<u32>,
    #[serde(default)]
    pub busy_rate: Option<u32>,
    #[serde(default)]
    pub backoff_initial_seconds: Option<u64>,
    #[serde(default)]
    pub backoff_max_seconds: Option<u64>,
    #[serde(default)]
    pub breaker_failures: Option<u32>,
    #[serde(default)]
    pub breaker_cooldown_seconds: Option<u64>,
}

/// How sluice signs in to the upstream.
#[derive(Debug, Clone)]
pub enum UpstreamAuth {
    None,
    Basic { user: String, password: Secret, source: SecretSource },
    Bearer { token: Secret, source: SecretSource },
    OAuth { token_url: String, client_id: String, secret: Secret, source: SecretSource },
}

impl UpstreamAuth {
    /// How the console and the integration plan name it (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Self::None => "none".into(),
            Self::Basic { user, source, .. } => format!("basic auth as {user} (password from {source})"),
            Self::Bearer { source, .. } => format!("bearer token from {source}"),
            Self::OAuth { client_id, source, .. } => {
                format!("OAuth client credentials, client {client_id} (secret from {source})")
            }
        }
    }
}

/// A checked `[forward]` table.
#[derive(Debug, Clone)]
pub struct Forward {
    pub kind: UpstreamKind,
    /// Without a trailing slash.
    pub url: String,
    pub table: String,
    pub auth: UpstreamAuth,
    /// Upstream field → local field, in upstream order.
    pub fields: BTreeMap<String, String>,
    pub correlation_field: String,
    /// Attempts before a row is dead.
    pub max_attempts: u32,
    /// For one request, connecting included.
    pub timeout: Duration,
    /// Deliveries in flight at once, per node.
    pub concurrency: u32,
    /// Deliveries started per second, per node, while the node is busy answering senders
    /// (`sluice_server::load`): senders' acknowledgements come first, forwarding catches up when
    /// the load drops and never stops entirely.
    pub busy_rate: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Failed attempts in a row that open the circuit breaker (no deliveries for the cool-down).
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
}

impl Forward {
    /// The upstream's correlation value of a local record.
    pub fn correlation_value(sys_id: &str) -> String {
        format!("sluice:{sys_id}")
    }

    /// The URL deliveries go to, as the plan and console show it.
    pub fn endpoint(&self) -> String {
        match self.kind {
            UpstreamKind::ServicenowImport => format!("{}/api/now/import/{}", self.url, self.table),
            UpstreamKind::ServicenowTable => format!("{}/api/now/table/{}", self.url, self.table),
            UpstreamKind::HttpJson => self.url.clone(),
        }
    }
}

pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
pub const DEFAULT_CONCURRENCY: u32 = 4;
pub const DEFAULT_BUSY_RATE: u32 = 20;
pub const DEFAULT_BACKOFF_INITIAL_SECONDS: u64 = 5;
pub const DEFAULT_BACKOFF_MAX_SECONDS: u64 = 3600;
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
pub const DEFAULT_BREAKER_COOLDOWN_SECONDS: u64 = 30;

/// Checks `url`: http or https, a host, no query or fragment; returned without a trailing slash.
fn check_url(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(format!("{url:?} has no host (and credentials do not belong in the URL)"));
    }
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?}: no query, fragment or spaces"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn in_range<T: PartialOrd + Copy + std::fmt::Display>(
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    key: &str,
    problems: &mut Vec<(String, String)>,
) -> T {
    let v = value.unwrap_or(default);
    if !range.contains(&v) {
        problems.push((key.to_owned(), format!("must be {} to {}", range.start(), range.end())));
    }
    v
}

/// The default upstream fields: see [`ForwardSpec::fields`].
fn default_fields(kind: UpstreamKind, d: &Definition, target: &TableSchema) -> BTreeMap<String, String> {
    let plain = |name: &str| {
        target.visible_field(name).is_some_and(|f| !matches!(f.kind, FieldKind::Reference(_) | FieldKind::Journal))
    };
    let t = &d.transform;
    match kind {
        UpstreamKind::ServicenowImport => {
            t.field_map.iter().filter(|m| plain(&m.target)).map(|m| (m.source.clone(), m.target.clone())).collect()
        }
        _ => t
            .field_map
            .iter()
            .map(|m| &m.target)
            .chain(t.constants.keys())
            .filter(|name| plain(name))
            .map(|name| (name.clone(), name.clone()))
            .collect(),
    }
}

/// Reads one secret given by exactly one of an environment variable and a file.
fn secret(
    env: &Option<String>,
    file: &Option<String>,
    (env_key, file_key): (&str, &str),
    origin: &str,
) -> Result<(SecretSource, Secret), (String, String)> {
    match (env, file) {
        (Some(_), Some(_)) | (None, None) => {
            Err((env_key.to_owned(), format!("give exactly one of {env_key} and {file_key}")))
        }
        (Some(name), None) => read_env(name, 1).map_err(|m| (env_key.to_owned(), m)),
        (None, Some(path)) => read_file(path, origin, 1).map_err(|m| (file_key.to_owned(), m)),
    }
}

fn auth(s: &ForwardSpec, origin: &str) -> Result<UpstreamAuth, (String, String)> {
    let basic = s.user.is_some() || s.password_env.is_some() || s.password_file.is_some();
    let bearer = s.token_env.is_some() || s.token_file.is_some();
    let oauth = s.oauth_token_url.is_some()
        || s.client_id.is_some()
        || s.client_secret_env.is_some()
        || s.client_secret_file.is_some();
    match (basic, bearer, oauth) {
        (false, false, false) => Ok(UpstreamAuth::None),
        (true, false, false) => {
            let user =
                s.user.clone().filter(|u| !u.trim().is_empty()).ok_or_else(|| {
                    ("user".to_owned(), "basic auth needs the upstream account's user name".to_owned())
                })?;
            let (source, password) =
                secret(&s.password_env, &s.password_file, ("password_env", "password_file"), origin)?;
            Ok(UpstreamAuth::Basic { user, password, source })
        }
        (false, true, false) => {
            let (source, token) = secret(&s.token_env, &s.token_file, ("token_env", "token_file"), origin)?;
            Ok(UpstreamAuth::Bearer { token, source })
        }
        (false, false, true) => {
            let token_url = check_url(s.oauth_token_url.as_deref().unwrap_or_default())
                .map_err(|m| ("oauth_token_url".to_owned(), m))?;
            let client_id = s
                .client_id
                .clone()
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| ("client_id".to_owned(), "OAuth needs the client id".to_owned()))?;
            let (source, secret) = secret(
                &s.client_secret_env,
                &s.client_secret_file,
                ("client_secret_env", "client_secret_file"),
                origin,
            )?;
            Ok(UpstreamAuth::OAuth { token_url, client_id, secret, source })
        }
        _ => Err((
            "(auth)".to_owned(),
            "give one way to sign in: user + password_*, token_*, or oauth_token_url + client_id + client_secret_*"
                .to_owned(),
        )),
    }
}

/// Checks a `[forward]` table; problems are located at `forward.{key}`.
pub(super) fn parse(
    d: &Definition,
    target: &TableSchema,
    origin: &str,
    problem: &dyn Fn(&str, String) -> DefinitionProblem,
) -> Result<Forward, Vec<DefinitionProblem>> {
    let Some(s) = &d.forward else { unreachable!("parse is called for a [forward] table") };
    let mut found: Vec<(String, String)> = Vec::new();
    let url = check_url(&s.url).map_err(|m| found.push(("url".into(), m))).unwrap_or_default();
    let table = match (s.kind, &s.table) {
        (UpstreamKind::HttpJson, Some(_)) => {
            found.push(("table".into(), "http-json has no table: the url is the endpoint".into()));
            String::new()
        }
        (UpstreamKind::HttpJson, None) => String::new(),
        (UpstreamKind::ServicenowImport, None) => {
            found.push(("table".into(), "name the upstream staging table (e.g. u_incident_import)".into()));
            String::new()
        }
        (UpstreamKind::ServicenowTable, None) => crate::tables::INCIDENT.to_owned(),
        (_, Some(t)) if !is_identifier(t) => {
            found.push(("table".into(), format!("{t:?} is not a table name")));
            String::new()
        }
        (_, Some(t)) => t.clone(),
    };
    let auth = auth(s, origin).map_err(|p| found.push(p)).unwrap_or(UpstreamAuth::None);
    let correlation_field = s.correlation_field.clone().unwrap_or_else(|| match s.kind {
        UpstreamKind::ServicenowImport => d
            .transform
            .field_map
            .iter()
            .find(|m| m.target == "correlation_id")
            .map_or_else(|| "u_correlation_id".to_owned(), |m| m.source.clone()),
        _ => "correlation_id".to_owned(),
    });
    if !is_identifier(&correlation_field) {
        found.push(("correlation_field".into(), format!("{correlation_field:?} is not a field name")));
    }
    let mut fields = s.fields.clone().unwrap_or_else(|| default_fields(s.kind, d, target));
    if s.fields.is_some() {
        for (upstream, local) in &fields {
            if !is_identifier(upstream) {
                found.push((format!("fields.{upstream}"), "not a field name".into()));
            }
            match target.visible_field(local) {
                None => found.push((format!("fields.{upstream}"), format!("{} has no field {local}", target.name))),
                Some(f) if f.kind == FieldKind::Journal => {
                    found.push((format!("fields.{upstream}"), format!("{local} is a journal: not forwarded")))
                }
                Some(_) => {}
            }
        }
        if fields.contains_key(&correlation_field) {
            found.push((
                format!("fields.{correlation_field}"),
                "is the correlation field: sluice sets it to sluice:{sys_id}".into(),
            ));
        }
    } else {
        fields.remove(&correlation_field);
    }
    let max_attempts = in_range(s.max_attempts, DEFAULT_MAX_ATTEMPTS, 1..=1000, "max_attempts", &mut found);
    let timeout = in_range(s.timeout_seconds, DEFAULT_TIMEOUT_SECONDS, 1..=300, "timeout_seconds", &mut found);
    let concurrency = in_range(s.concurrency, DEFAULT_CONCURRENCY, 1..=64, "concurrency", &mut found);
    let busy_rate = in_range(s.busy_rate, DEFAULT_BUSY_RATE, 1..=100_000, "busy_rate", &mut found);
    let initial = in_range(
        s.backoff_initial_seconds,
        DEFAULT_BACKOFF_INITIAL_SECONDS,
        1..=3600,
        "backoff_initial_seconds",
        &mut found,
    );
    let max =
        in_range(s.backoff_max_seconds, DEFAULT_BACKOFF_MAX_SECONDS, 1..=86_400, "backoff_max_seconds", &mut found);
    if max < initial {
        found.push(("backoff_max_seconds".into(), "must not be below backoff_initial_seconds".into()));
    }
    let breaker_failures =
        in_range(s.breaker_failures, DEFAULT_BREAKER_FAILURES, 1..=1000, "breaker_failures", &mut found);
    let cooldown = in_range(
        s.breaker_cooldown_seconds,
        DEFAULT_BREAKER_COOLDOWN_SECONDS,
        1..=3600,
        "breaker_cooldown_seconds",
        &mut found,
    );
    if !found.is_empty() {
        return Err(found.into_iter().map(|(key, m)| problem(&format!("forward.{key}"), m)).collect());
    }
    Ok(Forward {
        kind: s.kind,
        url,
        table,
        auth,
        fields,
        correlation_field,
        max_attempts,
        timeout: Duration::from_secs(timeout),
        concurrency,
        busy_rate,
        backoff_initial: Duration::from_secs(initial),
        backoff_max: Duration::from_secs(max),
        breaker_failures,
        breaker_cooldown: Duration::from_secs(cooldown),
    })
}
