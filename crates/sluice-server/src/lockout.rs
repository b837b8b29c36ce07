//! Lockout after repeated failed logins, built so that it cannot be turned against an account's
//! real client.
//!
//! - Per client address: after `FREE_FAILURES` failures (on any account) each further one
//!   doubles the address's wait (1 s, 2 s, 4 s … at most 15 min). A locked address gets 429
//!   `login_address` without running argon2, whatever it sends, a correct password included.
//! - Per account: failures from every address are counted, but never lock the account: a
//!   correct password from an address that is not locked itself gets in. Once an account has
//!   more than `FREE_FAILURES` recent failures it is *under attack*, and each failed
//!   verification of it is followed by [`ACCOUNT_PAUSE`] before the next one may start (the
//!   verifications of one account run one at a time), so argon2 runs at most about once a
//!   second per account however many addresses take part; at most [`MAX_WAITING`] logins may
//!   queue for an account under attack, further ones get 429 `login_account` without argon2.
//!   Successful logins answer at once, and credentials already verified (the credential cache)
//!   never wait at all.
//!
//! A success clears the account's count. See SECURITY.md for the trade-off.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::throttle::{Rate, Refusal};

const FREE_FAILURES: u32 = 5;
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
const MAX_KEYS: usize = 100_000;

/// After each failed verification of an account under attack, the next one waits this long.
pub const ACCOUNT_PAUSE: Duration = Duration::from_secs(1);
/// Most logins waiting for their turn on an account under attack.
pub const MAX_WAITING: usize = 8;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

struct Failures {
    count: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

#[derive(Default)]
pub struct Lockout {
    map: Mutex<HashMap<Key, Failures>>,
}

fn refusal(scope: &'static str, wait: Duration) -> Refusal {
    Refusal { scope, rate: Rate { per_second: 0.0, burst: FREE_FAILURES as f64 }, retry_after: wait }
}

impl Lockout {
    /// Refuses while the address is locked (the account is never locked).
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), Refusal> {
        let now = Instant::now();
        let map = self.map.lock().expect("lockout");
        let locked = ip.and_then(|ip| map.get(&Key::Address(ip))).and_then(|f| f.locked_until);
        match locked.filter(|until| *until > now) {
            Some(until) => Err(refusal("login_address", until - now)),
            None => Ok(()),
        }
    }

    /// The pause after a failed verification of `user`: [`ACCOUNT_PAUSE`] while the account is
    /// under attack, otherwise none.
    pub fn failure_pause(&self, user: &str) -> Duration {
        let now = Instant::now();
        let map = self.map.lock().expect("lockout");
        match map.get(&Key::Account(user.to_owned())) {
            Some(f) if f.count > FREE_FAILURES && now.duration_since(f.last) <= MAX_LOCK => ACCOUNT_PAUSE,
            _ => Duration::ZERO,
        }
    }

    /// The refusal of a login that would queue behind [`MAX_WAITING`] others.
    pub fn queue_full() -> Refusal {
        refusal("login_account", ACCOUNT_PAUSE * MAX_WAITING as u32)
    }

    pub fn failed(&self, user: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        let mut map = self.map.lock().expect("lockout");
        if map.len() >= MAX_KEYS {
            map.retain(|_, f| now.duration_since(f.last) < MAX_LOCK);
        }
        let f =
            map.entry(Key::Account(user.to_owned())).or_insert(Failures { count: 0, locked_until: None, last: now });
        if now.duration_since(f.last) > MAX_LOCK {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count == FREE_FAILURES + 1 {
            tracing::warn!(failures = f.count, "failed logins on one account: its verifications are now paced");
        }
        if let Some(ip) = ip {
            Self::address_failed(&mut map, ip, now);
        }
    }

    /// A refused credential that names no account (a PagerDuty routing key): the address only.
    pub fn failed_address(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        let now = Instant::now();
        let mut map = self.map.lock().expect("lockout");
        if map.len() >= MAX_KEYS {
            map.retain(|_, f| now.duration_since(f.last) < MAX_LOCK);
        }
        Self::address_failed(&mut map, ip, now);
    }

    fn address_failed(map: &mut HashMap<Key, Failures>, ip: IpAddr, now: Instant) {
        let f = map.entry(Key::Address(ip)).or_insert(Failures { count: 0, locked_until: None, last: now });
        if now.duration_since(f.last) > MAX_LOCK {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count > FREE_FAILURES {
            let wait = Duration::from_secs(1u64 << (f.count - FREE_FAILURES - 1).min(20)).min(MAX_LOCK);
            f.locked_until = Some(now + wait);
            tracing::warn!(
                failures = f.count,
                lock_seconds = wait.as_secs(),
                "login address locked after repeated failures"
            );
            crate::metrics::record_lockout();
        }
    }

    pub fn succeeded(&self, user: &str) {
        self.map.lock().expect("lockout").remove(&Key::Account(user.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_lock_accounts_are_only_paced() {
        let l = Lockout::default();
        let attacker: IpAddr = "192.0.2.7".parse().unwrap();
        let client: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert!(l.check(Some(attacker)).is_ok());
            l.failed("bob", Some(attacker));
        }
        assert!(l.check(Some(attacker)).is_ok());
        assert_eq!(l.failure_pause("bob"), Duration::ZERO);
        l.failed("bob", Some(attacker));
        let r = l.check(Some(attacker)).unwrap_err();
        assert_eq!(r.scope, "login_address");
        assert!(r.retry_after <= Duration::from_secs(1));
        // Bob's account is not locked for anyone else, only paced.
        assert!(l.check(Some(client)).is_ok() && l.check(None).is_ok());
        assert_eq!(l.failure_pause("bob"), ACCOUNT_PAUSE);
        assert_eq!(l.failure_pause("alice"), Duration::ZERO);
        l.succeeded("bob");
        assert_eq!(l.failure_pause("bob"), Duration::ZERO);
        assert!(l.check(Some(attacker)).is_err(), "a success elsewhere does not unlock the address");
    }
}
