//! Lockout after repeated failed logins: per account name and per client address, after
//! `FREE_FAILURES` failures each further one doubles the wait (1 s, 2 s, 4 s … at most 15 min).
//! A success clears the account's count. Locked attempts get 429 without running argon2.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::throttle::{Rate, Refusal};

const FREE_FAILURES: u32 = 5;
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
const MAX_KEYS: usize = 100_000;

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
    /// Refuses while the account or the address is locked.
    pub fn check(&self, user: &str, ip: Option<IpAddr>) -> Result<(), Refusal> {
        let now = Instant::now();
        let map = self.map.lock().expect("lockout");
        let locked = |key: &Key| map.get(key).and_then(|f| f.locked_until).filter(|until| *until > now);
        if let Some(until) = locked(&Key::Account(user.to_owned())) {
            return Err(refusal("login_account", until - now));
        }
        if let Some(until) = ip.and_then(|ip| locked(&Key::Address(ip))) {
            return Err(refusal("login_address", until - now));
        }
        Ok(())
    }

    pub fn failed(&self, user: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        let mut map = self.map.lock().expect("lockout");
        if map.len() >= MAX_KEYS {
            map.retain(|_, f| now.duration_since(f.last) < MAX_LOCK);
        }
        let keys = [Some(Key::Account(user.to_owned())), ip.map(Key::Address)];
        for key in keys.into_iter().flatten() {
            let f = map.entry(key).or_insert(Failures { count: 0, locked_until: None, last: now });
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
                    "login locked after repeated failures"
                );
                crate::metrics::record_lockout();
            }
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
    fn locks_after_the_free_failures_and_clears_on_success() {
        let l = Lockout::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert!(l.check("bob", Some(ip)).is_ok());
            l.failed("bob", Some(ip));
        }
        assert!(l.check("bob", Some(ip)).is_ok());
        l.failed("bob", Some(ip));
        let r = l.check("bob", None).unwrap_err();
        assert_eq!(r.scope, "login_account");
        assert!(r.retry_after <= Duration::from_secs(1));
        assert_eq!(l.check("alice", Some(ip)).unwrap_err().scope, "login_address");
        l.succeeded("bob");
        assert!(l.check("bob", None).is_ok());
    }
}
