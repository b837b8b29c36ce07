//! The `[signature]` table of a sender definition: requests signed with HMAC-SHA256 instead of
//! (or besides) Basic auth, as Grafana's webhook contact point and GitHub-style webhooks sign.
//! Parsed when the definition loads into a [`Signature`], whose secret is read then from the
//! environment or a file (never from the definition itself) and never printed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::DefinitionProblem;

/// The header a signature arrives in when the definition names none.
pub const DEFAULT_HEADER: &str = "X-Sluice-Signature";
/// How far a signed timestamp may be from the server's clock, either way, by default.
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;
/// Shorter secrets are refused: an HMAC key should be at least as hard to guess as a password.
pub const MIN_SECRET_BYTES: usize = 16;
/// Longer ones are refused too (HMAC would hash them down anyway; a bound keeps a wrong file out).
pub const MAX_SECRET_BYTES: usize = 4096;

/// The `[signature]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSpec {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub secret_file: Option<String>,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub timestamp_header: Option<String>,
    #[serde(default)]
    pub tolerance_seconds: Option<u64>,
    pub account: String,
    #[serde(default = "super::yes")]
    pub required: bool,
}

/// The HMAC key. Its `Debug` shows its length only, so a definition can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// A secret as given (tests, and callers that read it themselves); the length bounds are the
/// definition's check, not this one's.
impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Where the secret was read from, as the console and messages may name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A checked `[signature]` table, with its secret.
#[derive(Debug, Clone)]
pub struct Signature {
    /// The header carrying the hex signature, as written (header names match case-insensitively).
    pub header: String,
    /// Before the hex digits (e.g. `sha256=`); matched case-insensitively.
    pub prefix: String,
    /// When set, the signed bytes are this header's value, `:`, then the body (Grafana's scheme).
    pub timestamp_header: Option<String>,
    pub tolerance: Duration,
    /// The account a signed request acts as (checked to exist when a request arrives).
    pub account: String,
    /// Whether an unsigned request is refused even with other credentials.
    pub required: bool,
    pub source: SecretSource,
    pub secret: Secret,
}

/// RFC 9110 token characters: what a header name may be made of.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Headers that carry something else: a signature there would clash with what sluice reads.
fn is_reserved(name: &str) -> bool {
    ["authorization", "content-type", "content-length", "host", "idempotency-key", "cookie", "transfer-encoding"]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
}

/// A file's secret: one trailing line break (as `echo` and editors leave) is not part of it.
fn strip_line_break(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    bytes
}

/// Checks a `[signature]` table and reads its secret; `origin` is the definition's file, whose
/// folder a relative `secret_file` is read from. Problems are located at `signature.{key}`.
pub(super) fn parse(
    spec: &SignatureSpec,
    origin: &str,
    problem: &dyn Fn(&str, String) -> DefinitionProblem,
) -> Result<Signature, Vec<DefinitionProblem>> {
    let mut problems = Vec::new();
    let header = spec.header.clone().unwrap_or_else(|| DEFAULT_HEADER.to_owned());
    if !is_header_name(&header) {
        problems.push(problem("signature.header", format!("{header:?} is not a header name")));
    } else if is_reserved(&header) {
        problems.push(problem("signature.header", format!("{header} carries something else: name another header")));
    }
    if let Some(ts) = &spec.timestamp_header {
        if !is_header_name(ts) {
            problems.push(problem("signature.timestamp_header", format!("{ts:?} is not a header name")));
        } else if ts.eq_ignore_ascii_case(&header) || is_reserved(ts) {
            problems.push(problem("signature.timestamp_header", format!("{ts} cannot carry the timestamp")));
        }
    }
    if spec.prefix.len() > 32 || !spec.prefix.bytes().all(|b| b.is_ascii_graphic()) {
        problems.push(problem("signature.prefix", "at most 32 visible ASCII characters (e.g. sha256=)".into()));
    }
    let tolerance = spec.tolerance_seconds.unwrap_or(DEFAULT_TOLERANCE_SECONDS);
    if spec.tolerance_seconds.is_some() && spec.timestamp_header.is_none() {
        problems.push(problem("signature.tolerance_seconds", "applies only with a timestamp_header".into()));
    }
    if !(1..=86_400).contains(&tolerance) {
        problems.push(problem("signature.tolerance_seconds", "must be 1 to 86400 seconds".into()));
    }
    if crate::account::UserName::parse(&spec.account).is_err() {
        problems.push(problem("signature.account", format!("{:?} is not a user name", spec.account)));
    }
    let read = match (&spec.secret_env, &spec.secret_file) {
        (Some(_), Some(_)) | (None, None) => {
            Err(problem("signature", "give exactly one of secret_env and secret_file (never the secret itself)".into()))
        }
        (Some(name), None) => read_env(name, MIN_SECRET_BYTES).map_err(|m| problem("signature.secret_env", m)),
        (None, Some(file)) => {
            read_file(file, origin, MIN_SECRET_BYTES).map_err(|m| problem("signature.secret_file", m))
        }
    };
    let (source, secret) = match read {
        Ok(found) => found,
        Err(p) => {
            problems.push(p);
            return Err(problems);
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Signature {
        header,
        prefix: spec.prefix.clone(),
        timestamp_header: spec.timestamp_header.clone(),
        tolerance: Duration::from_secs(tolerance),
        account: spec.account.clone(),
        required: spec.required,
        source,
        secret,
    })
}

fn check_length(bytes: Vec<u8>, source: &SecretSource, min: usize) -> Result<Secret, String> {
    match bytes.len() {
        n if n < min => Err(format!("the secret in {source} has {n} bytes: at least {min}")),
        n if n > MAX_SECRET_BYTES => Err(format!("the secret in {source} has {n} bytes: at most {MAX_SECRET_BYTES}")),
        _ => Ok(Secret(bytes)),
    }
}

/// Reads a secret of at least `min` bytes from an environment variable.
pub(super) fn read_env(name: &str, min: usize) -> Result<(SecretSource, Secret), String> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(format!("{name:?} is not an environment variable name"));
    }
    let source = SecretSource::Env(name.to_owned());
    let value = std::env::var_os(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
    check_length(value.into_encoded_bytes(), &source, min).map(|s| (source, s))
}

/// Reads a secret of at least `min` bytes from a file (relative to the definition's folder).
pub(super) fn read_file(file: &str, origin: &str, min: usize) -> Result<(SecretSource, Secret), String> {
    let path = Path::new(file);
    let path = match Path::new(origin).parent() {
        Some(folder) if path.is_relative() => folder.join(path),
        _ => path.to_owned(),
    };
    let source = SecretSource::File(path.clone());
    let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_SECRET_BYTES as u64 + 2 {
        return Err(format!("the secret in {source} has {} bytes: at most {MAX_SECRET_BYTES}", meta.len()));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    check_length(strip_line_break(bytes), &source, min).map(|s| (source, s))
}
