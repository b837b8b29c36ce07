//! Authenticate: HTTP Basic against accounts stored with argon2id hashes, or `Bearer` API tokens
//! found by their SHA-256 digest. A verified password is remembered as a keyed digest for a few
//! minutes, so argon2 (tens of milliseconds of CPU and 19 MiB each) runs once per account and
//! password, not once per request.
//!
//! Invalidation: a change made in this process drops the entry at once ([`CredentialCache::forget`]);
//! a change made elsewhere (the CLI, another node) raises the account's credentials version in
//! the database, and an entry is trusted at most [`RECHECK_AFTER`] before the account row is read
//! again (no argon2) and compared: version, password hash and active flag.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use sluice_core::account::{Account, Password};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::observe::RequestSlot;

const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX_ENTRIES: usize = 10_000;
/// How long a cached verification is trusted before the account row is read again, to notice
/// changes made by another process.
pub const RECHECK_AFTER: Duration = Duration::from_secs(5);
/// API tokens start with this, so secret scanners and people recognise them.
pub const TOKEN_PREFIX: &str = "sluice_";

/// Hashes a new password as an argon2id PHC string.
pub fn hash_password(password: &Password) -> String {
    let hash = Argon2::default()
        .hash_password(password.expose().as_bytes())
        .expect("argon2 with default parameters cannot fail")
        .to_string();
    release_memory();
    hash
}

fn verify(password: &[u8], hash: &str) -> bool {
    let ok = Argon2::default().verify_password(password, hash).is_ok();
    release_memory();
    ok
}

/// Called after each argon2 run, on the thread that ran it, to hand its 19 MiB back to the
/// system. The binary sets it for its allocator (mimalloc keeps a freed block cached for the
/// thread that freed it until that thread allocates again, and argon2 threads then sleep:
/// measured, 45 of a fresh server's 60 MB were such blocks).
static RELEASE_MEMORY: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets what [`RELEASE_MEMORY`] runs (once, before the first password is hashed).
pub fn set_release_memory(release: fn()) {
    let _ = RELEASE_MEMORY.set(release);
}

fn release_memory() {
    if let Some(release) = RELEASE_MEMORY.get() {
        release();
    }
}

/// A new API token: `sluice_` and 32 random bytes in URL-safe base64. Shown once; only its
/// [`token_digest`] is stored.
pub fn new_api_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A new routing key (PagerDuty Events API v2): 32 lowercase hexadecimal digits (128 random
/// bits), the shape of PagerDuty's integration keys, so senders that check it take it. Shown
/// once; only its [`token_digest`] is stored, as a token bound to one integration.
pub fn new_routing_key() -> String {
    // All 128 bits random (a sys_id starts with the time).
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    sluice_core::id::hex(&bytes)
}

/// The SHA-256 digest of a token's text, lowercase hex: what the store keeps and looks up.
pub fn token_digest(token: &str) -> String {
    sluice_core::id::hex(&Sha256::digest(token.as_bytes()))
}

/// A verified password: its HMAC under a per-process key, the account as it was read, when the
/// password was verified and when the account row was last compared.
struct Verified {
    digest: [u8; 32],
    account: Arc<Account>,
    verified_at: Instant,
    checked_at: Instant,
}

enum Lookup {
    Fresh(Arc<Account>),
    /// Verified, but the account row must be compared again first.
    Stale(Arc<Account>),
    Miss,
}

/// Verified credentials by user name.
pub struct CredentialCache {
    key: [u8; 32],
    entries: RwLock<HashMap<String, Verified>>,
    /// A few dedicated threads run argon2 (each run holds 19 MiB and a core). Dedicated, not
    /// tokio's blocking pool: every new thread would keep its own malloc arena of freed 19 MiB
    /// blocks, and a burst of logins would leave the process at a gigabyte.
    argon: ArgonPool,
    /// One verification per user name at a time: a burst of requests with the same new
    /// credentials verifies once, the rest find the cache filled.
    in_flight: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Verified when the account is unknown, so a missing account costs what a wrong password does.
    decoy_hash: String,
    /// Raised by every forget: a verification that began before it is not remembered, so an
    /// account read just before a change cannot slip back into the cache.
    generation: AtomicU64,
}

impl CredentialCache {
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source failed");
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            key,
            entries: RwLock::new(HashMap::new()),
            argon: ArgonPool::new(cores.min(4)),
            in_flight: std::sync::Mutex::default(),
            decoy_hash: hash_password(&Password::generate()),
            generation: AtomicU64::new(0),
        }
    }

    fn digest(&self, user: &str, password: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(user.as_bytes());
        mac.update(&[0]);
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    fn lookup(&self, user: &str, digest: &[u8; 32]) -> Lookup {
        let entries = self.entries.read().expect("credential cache");
        match entries.get(user) {
            Some(e) if e.verified_at.elapsed() < CACHE_TTL && bool::from(e.digest.ct_eq(digest)) => {
                if e.checked_at.elapsed() < RECHECK_AFTER {
                    Lookup::Fresh(e.account.clone())
                } else {
                    Lookup::Stale(e.account.clone())
                }
            }
            _ => Lookup::Miss,
        }
    }

    fn remember(&self, user: &str, digest: [u8; 32], account: Arc<Account>, generation: u64) {
        let mut entries = self.entries.write().expect("credential cache");
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entries.len() >= CACHE_MAX_ENTRIES {
            entries.retain(|_, e| e.verified_at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_MAX_ENTRIES {
                entries.clear();
            }
        }
        let now = Instant::now();
        entries.insert(user.to_owned(), Verified { digest, account, verified_at: now, checked_at: now });
    }

    /// The row still matches: trust the entry for another [`RECHECK_AFTER`], with the account
    /// as now stored (roles may have changed).
    fn confirm(&self, user: &str, account: Arc<Account>, generation: u64) {
        let mut entries = self.entries.write().expect("credential cache");
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if let Some(e) = entries.get_mut(user) {
            e.account = account;
            e.checked_at = Instant::now();
        }
    }

    /// Drops the cached verification of an account (its password, roles or state changed, or
    /// it was deleted): the next request verifies against the stored account again.
    pub fn forget(&self, user: &str) {
        let mut entries = self.entries.write().expect("credential cache");
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(user);
    }

    /// [`Self::forget`] by the account's `sys_user` sys_id (a Table API write).
    pub fn forget_sys_id(&self, sys_id: &str) {
        let mut entries = self.entries.write().expect("credential cache");
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.retain(|_, e| !e.account.sys_id.as_str().eq_ignore_ascii_case(sys_id));
    }

    /// Checks a user name and password; `None` for an unknown account, a wrong password or a
    /// disabled account (callers cannot tell which). Verifications of one user name run one at
    /// a time; with a `failure_pause` (the account is under attack, [`crate::lockout`]) a
    /// failed one holds the turn that long, and a login that would wait behind
    /// [`crate::lockout::MAX_WAITING`] others is refused at once.
    pub async fn authenticate(
        &self,
        state: &AppState,
        user: &str,
        password: &[u8],
        failure_pause: Duration,
    ) -> Result<Option<Arc<Account>>, ApiError> {
        let digest = self.digest(user, password);
        if let Lookup::Fresh(account) = self.lookup(user, &digest) {
            return Ok(Some(account));
        }
        let lock = self.in_flight.lock().expect("in-flight logins").entry(user.to_owned()).or_default().clone();
        // The map's reference and ours: the rest hold or wait for the turn.
        let ahead = Arc::strong_count(&lock) - 2;
        let result = if !failure_pause.is_zero() && ahead >= crate::lockout::MAX_WAITING {
            Err(ApiError::RateLimited(crate::lockout::Lockout::queue_full()))
        } else {
            let guard = lock.lock().await;
            let result = self.authenticate_slowly(state, user, password, digest).await;
            if matches!(result, Ok(None)) && !failure_pause.is_zero() {
                tokio::time::sleep(failure_pause).await;
            }
            drop(guard);
            result
        };
        let mut in_flight = self.in_flight.lock().expect("in-flight logins");
        // Forget the lock when nobody else holds or waits for it (the map stays small).
        if Arc::strong_count(&lock) == 2 {
            in_flight.remove(user);
        }
        result
    }

    /// The cache could not answer alone: re-read the account, and run argon2 when needed.
    async fn authenticate_slowly(
        &self,
        state: &AppState,
        user: &str,
        password: &[u8],
        digest: [u8; 32],
    ) -> Result<Option<Arc<Account>>, ApiError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let account = match self.lookup(user, &digest) {
            Lookup::Fresh(account) => return Ok(Some(account)),
            Lookup::Stale(cached) => {
                let stored = state.store.account(user.to_owned()).await?;
                match stored {
                    Some(now)
                        if now.active
                            && now.credentials_version == cached.credentials_version
                            && now.password_hash == cached.password_hash =>
                    {
                        let now = Arc::new(now);
                        self.confirm(user, now.clone(), generation);
                        return Ok(Some(now));
                    }
                    // Changed elsewhere: verify against the account as stored now.
                    other => {
                        self.entries.write().expect("credential cache").remove(user);
                        other
                    }
                }
            }
            Lookup::Miss => state.store.account(user.to_owned()).await?,
        };
        let hash = match &account {
            Some(a) if a.active => a.password_hash.clone(),
            _ => self.decoy_hash.clone(),
        };
        let ok = self.argon.verify(password.to_vec(), hash).await?;
        match account {
            Some(a) if ok && a.active => {
                let a = Arc::new(a);
                self.remember(user, digest, a.clone(), generation);
                Ok(Some(a))
            }
            _ => Ok(None),
        }
    }

    /// Checks an API token; `None` for an unknown or revoked token or a disabled account.
    pub async fn authenticate_token(&self, state: &AppState, token: &str) -> Result<Option<Arc<Account>>, ApiError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
            return Ok(None);
        }
        let digest = token_digest(token);
        let Some(found) = state.store.account_by_token(digest.clone()).await? else { return Ok(None) };
        let same = bool::from(found.digest.as_bytes().ct_eq(digest.as_bytes()));
        // A routing key is never a Bearer token (it has no prefix, but say so here too).
        Ok((same && found.account.active && found.token.integration.is_none()).then(|| Arc::new(found.account)))
    }

    /// Checks a routing key: the active account it belongs to and the integration it is bound
    /// to; `None` for an unknown or revoked key, a token not bound to an integration, or a
    /// disabled account.
    pub async fn authenticate_routing_key(
        &self,
        state: &AppState,
        key: &str,
    ) -> Result<Option<(Arc<Account>, String)>, ApiError> {
        let digest = token_digest(key);
        let Some(found) = state.store.account_by_token(digest.clone()).await? else { return Ok(None) };
        let same = bool::from(found.digest.as_bytes().ct_eq(digest.as_bytes()));
        match found.token.integration {
            Some(integration) if same && found.account.active => Ok(Some((Arc::new(found.account), integration))),
            _ => Ok(None),
        }
    }
}

type ArgonJob = (Vec<u8>, String, tokio::sync::oneshot::Sender<bool>);

/// A fixed set of threads verifying argon2 hashes, fed by a channel.
struct ArgonPool {
    jobs: std::sync::mpsc::Sender<ArgonJob>,
}

impl ArgonPool {
    fn new(threads: usize) -> Self {
        let (jobs, rx) = std::sync::mpsc::channel::<ArgonJob>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("sluice-argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().expect("argon2 queue").recv();
                        let Ok((password, hash, answer)) = job else { break };
                        let _ = answer.send(verify(&password, &hash));
                    }
                })
                .expect("cannot start an argon2 thread");
        }
        Self { jobs }
    }

    async fn verify(&self, password: Vec<u8>, hash: String) -> Result<bool, ApiError> {
        crate::metrics::record_argon2_verification();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs.send((password, hash, tx)).map_err(|_| ApiError::Internal("argon2 threads stopped".into()))?;
        rx.await.map_err(|_| ApiError::Internal("argon2 thread dropped a job".into()))
    }
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new()
    }
}

/// `Authorization: Basic` → (user, password). Accepts standard and URL-safe base64, with or
/// without padding, since some clients send either.
fn parse_basic(header: &str) -> Option<(String, Vec<u8>)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let lenient = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let encoded = encoded.trim();
    let decoded = GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
        .decode(encoded)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient).decode(encoded))
        .or_else(|_| STANDARD.decode(encoded))
        .or_else(|_| URL_SAFE.decode(encoded))
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

/// `Authorization: Bearer <token>` → the token.
fn parse_bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The authenticated account of a request, allowed to call from the client's address and
/// within its rate limit.
pub struct Caller(pub Arc<Account>);

/// Refused credentials that name an existing account count in that account's statistics.
async fn note_refused(state: &AppState, user: &str) {
    if let Ok(Some(_)) = state.store.account(user.to_owned()).await {
        crate::observe::note_attempted(user);
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let client = parts.extensions.get::<ClientAddr>().map(|c| c.0);
        let account = if let Some(token) = header.and_then(parse_bearer) {
            state.credentials.authenticate_token(state, token).await?.ok_or(ApiError::Unauthenticated)?
        } else {
            let (user, password) = header.and_then(parse_basic).ok_or(ApiError::Unauthenticated)?;
            if user.is_empty() || user.len() > 100 || password.len() > 1024 {
                return Err(ApiError::Unauthenticated);
            }
            if let Err(refusal) = state.lockout.check(client) {
                note_refused(state, &user).await;
                return Err(ApiError::RateLimited(refusal));
            }
            let pause = state.lockout.failure_pause(&user);
            let verified = state.credentials.authenticate(state, &user, &password, pause).await;
            if matches!(verified, Err(ApiError::RateLimited(_))) {
                note_refused(state, &user).await;
            }
            let Some(account) = verified? else {
                state.lockout.failed(&user, client);
                note_refused(state, &user).await;
                return Err(ApiError::Unauthenticated);
            };
            state.lockout.succeeded(&user);
            account
        };
        admit(state, parts, account)
    }
}

/// An account whose credentials (password, token or a signed request, `crate::signature`) were
/// verified, as the request's caller: noted for the request's statistics, then its own
/// networks and rate limit.
pub(crate) fn admit(state: &AppState, parts: &Parts, account: Arc<Account>) -> Result<Caller, ApiError> {
    let client = parts.extensions.get::<ClientAddr>().map(|c| c.0);
    if let Some(slot) = parts.extensions.get::<RequestSlot>() {
        slot.set_account(&account.user_name);
    }
    let allowed = match client {
        Some(ip) => account.allows_source(ip),
        None => account.policy.networks.is_empty(),
    };
    if !allowed {
        crate::metrics::record_network_refusal();
        tracing::warn!(account = %account.user_name, client = ?client, "account used from outside its networks");
        return Err(ApiError::NetworkForbidden);
    }
    state.throttle.check_account(&account.user_name, account.policy.rate).map_err(ApiError::RateLimited)?;
    Ok(Caller(account))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_variants() {
        assert_eq!(parse_basic("Basic YWRtaW46cHc6eA=="), Some(("admin".into(), b"pw:x".to_vec())));
        assert_eq!(parse_basic("basic YWRtaW46cHc6eA"), Some(("admin".into(), b"pw:x".to_vec())));
        // "admin:??>" encodes with '/' in standard and '_' in URL-safe base64.
        assert_eq!(parse_basic("Basic YWRtaW46Pz8-"), Some(("admin".into(), b"??>".to_vec())));
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Basic YWRtaW4="), None);
    }

    #[test]
    fn api_tokens_are_random_and_stored_as_digests() {
        let (a, b) = (new_api_token(), new_api_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43, "{a}");
        let digest = token_digest(&a);
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains(&a[TOKEN_PREFIX.len()..]));
        assert_eq!(token_digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(parse_bearer("Bearer sluice_x"), Some("sluice_x"));
        assert_eq!(parse_bearer("bearer  sluice_x "), Some("sluice_x"));
        assert_eq!(parse_bearer("Basic YWRtaW46cHc="), None);
        let key = new_routing_key();
        assert!(key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        assert_ne!(key, new_routing_key());
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let pw = Password::parse("correct horse battery").unwrap();
        let hash = hash_password(&pw);
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify(b"correct horse battery", &hash));
        assert!(!verify(b"wrong", &hash));
    }
}
