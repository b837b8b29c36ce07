//! Signed sender requests: an integration with a `[signature]` table
//! ([`sluice_core::integration::Signature`]) takes `hex(HMAC-SHA256(secret, [timestamp ":"] body))`
//! in a header instead of a password, as Grafana's webhook contact point and GitHub-style webhooks
//! sign. The body is verified as the exact bytes sent, before it is parsed; a forged signature
//! counts as a failed login of the client address ([`crate::lockout`]); a verified request acts
//! as the definition's `account`, with that account's networks and rate limit.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::request::Parts;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sluice_core::integration::{Integration, Signature};

use crate::AppState;
use crate::authenticate::{Caller, admit};
use crate::client::ClientAddr;
use crate::error::{ApiError, ApiResult};

/// Whether the request carries the signature header (an integration whose signature is not
/// `required` then takes it signed rather than by Basic auth or a token).
pub fn present(signature: &Signature, headers: &HeaderMap) -> bool {
    headers.contains_key(signature.header.as_str())
}

/// The lockout key of an integration's forgeries: not a user name (those have no spaces), so
/// forgeries do not pace the password logins of the signing account.
fn lockout_key(integration: &Integration) -> String {
    format!("signature {}", integration.name())
}

/// What can be refused before the body is read: a locked-out client address (whatever it sends),
/// and a request without the signature or timestamp header.
pub fn refuse_early(state: &AppState, signature: &Signature, parts: &Parts) -> ApiResult<()> {
    let client = parts.extensions.get::<ClientAddr>().map(|c| c.0);
    state.lockout.check(client).map_err(ApiError::RateLimited)?;
    for header in std::iter::once(&signature.header).chain(&signature.timestamp_header) {
        if !parts.headers.contains_key(header.as_str()) {
            return Err(ApiError::SignatureMissing(header.clone()));
        }
    }
    Ok(())
}

/// The caller of a signed request: the signature checked against `body`, the bytes as sent, at
/// `now`; then the definition's account, which must exist and be active, with its networks and
/// rate limit ([`admit`]).
pub async fn authenticate(
    state: &AppState,
    integration: &Integration,
    signature: &Signature,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> ApiResult<Caller> {
    refuse_early(state, signature, parts)?;
    let client = parts.extensions.get::<ClientAddr>().map(|c| c.0);
    match verify(signature, &parts.headers, body, now) {
        Err(e @ ApiError::SignatureInvalid(_)) => {
            state.lockout.failed(&lockout_key(integration), client);
            tracing::warn!(integration = integration.name(), client = ?client, "forged or wrong signature");
            return Err(e);
        }
        other => other?,
    }
    state.lockout.succeeded(&lockout_key(integration));
    let account = match state.store.account(signature.account.clone()).await? {
        Some(account) if account.active => account,
        found => {
            tracing::warn!(
                integration = integration.name(),
                account = %signature.account,
                exists = found.is_some(),
                "a signed request's account is missing or disabled"
            );
            return Err(ApiError::Unauthenticated);
        }
    };
    admit(state, parts, std::sync::Arc::new(account))
}

/// Checks the signature header (and the timestamp, when the definition names its header) against
/// the body; no state, so it is tested with fixed vectors.
pub fn verify(signature: &Signature, headers: &HeaderMap, body: &[u8], now: SystemTime) -> ApiResult<()> {
    let invalid = || ApiError::SignatureInvalid(signature.header.clone());
    let given =
        headers.get(signature.header.as_str()).ok_or_else(|| ApiError::SignatureMissing(signature.header.clone()))?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(signature.secret.expose()).expect("HMAC takes any key");
    if let Some(name) = &signature.timestamp_header {
        let stale =
            || ApiError::SignatureStale { header: name.clone(), tolerance_seconds: signature.tolerance.as_secs() };
        let stamp = headers.get(name.as_str()).ok_or_else(|| ApiError::SignatureMissing(name.clone()))?.as_bytes();
        let seconds = unix_seconds(stamp).ok_or_else(stale)?;
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if now.abs_diff(seconds) > signature.tolerance.as_secs() {
            return Err(stale());
        }
        mac.update(stamp);
        mac.update(b":");
    }
    mac.update(body);
    let given = std::str::from_utf8(given.as_bytes()).map_err(|_| invalid())?.trim();
    let digits = strip_prefix_ignoring_case(given, &signature.prefix).ok_or_else(invalid)?;
    let expected = decode_hex(digits).ok_or_else(invalid)?;
    // Constant time: how much of a guess matches is not told by the time taken.
    mac.verify_slice(&expected).map_err(|_| invalid())
}

/// 1 to 20 ASCII digits, as Grafana sends `time.Now().Unix()`.
fn unix_seconds(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn strip_prefix_ignoring_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// 64 hex digits, either case, as the 32 bytes of an HMAC-SHA256.
fn decode_hex(digits: &str) -> Option<[u8; 32]> {
    let digits = digits.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
