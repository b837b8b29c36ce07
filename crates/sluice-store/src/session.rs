//! Console sessions: server-side, in the database, so any node serving the console knows them.
//! The browser holds a random token; the store holds only its SHA-256 digest, the account, the
//! session's CSRF token and two expiry times (idle, renewed by each use; absolute, never).

use crate::{Result, async_trait};

/// One console session as stored. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie's token, lowercase hex (the token itself is never stored).
    pub digest: String,
    pub user_name: String,
    /// The synchronizer token every console form carries back.
    pub csrf: String,
    pub created_ms: i64,
    /// The session ends at this time unless used before (each use moves it on, never past
    /// `absolute_expires_ms`).
    pub idle_expires_ms: i64,
    pub absolute_expires_ms: i64,
}

/// Console sessions, shared by every node.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Stores a new session (a digest is unique: tokens are 256 random bits).
    async fn create_session(&self, session: Session) -> Result<()>;
    /// The live session with this digest (both expiries after `now_ms`), as stored: a read, so
    /// a page view need not write ([`Sessions::touch_session`] renews it when due).
    async fn live_session(&self, digest: String, now_ms: i64) -> Result<Option<Session>>;
    /// The live session with this digest (both expiries after `now_ms`), its idle expiry moved
    /// to `now_ms + idle_ms` (at most its absolute expiry); `None` when there is none or it has
    /// expired.
    async fn touch_session(&self, digest: String, now_ms: i64, idle_ms: i64) -> Result<Option<Session>>;
    /// Deletes a session (logout); whether there was one.
    async fn delete_session(&self, digest: String) -> Result<bool>;
    /// Deletes every session of an account (its password rotated, it was deactivated or deleted).
    async fn delete_sessions_of(&self, user_name: String) -> Result<u64>;
    /// Deletes the sessions expired at `now_ms`; returns how many.
    async fn purge_sessions(&self, now_ms: i64) -> Result<u64>;
}
