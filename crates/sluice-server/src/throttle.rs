//! Rate limits as token buckets: one per client address, checked before authentication so a
//! flood cannot spend the argon2 budget, and one per account, checked after. A refusal says
//! which limit was hit (scope, rate, burst) and when to come back.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests per second and the burst allowed above it. A rate of 0 disables the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// Which limit refused a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub scope: &'static str,
    pub rate: Rate,
    pub retry_after: Duration,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

const MAX_KEYS: usize = 100_000;

struct Buckets<K> {
    rate: Rate,
    scope: &'static str,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(scope: &'static str, rate: Rate) -> Self {
        Self { rate, scope, map: Mutex::new(HashMap::new()) }
    }

    fn take(&self, key: &K, now: Instant) -> Result<(), Refusal> {
        self.take_with(key, self.rate, now)
    }

    /// Takes a token from `key`'s bucket under `rate` (an account's own limit).
    fn take_with(&self, key: &K, rate: Rate, now: Instant) -> Result<(), Refusal> {
        let Rate { per_second, burst } = rate;
        if per_second <= 0.0 {
            return Ok(());
        }
        let mut map = self.map.lock().expect("rate limiter");
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            // Forget buckets that have refilled completely: they hold no information.
            map.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * per_second < burst);
        }
        let bucket = map.entry(key.clone()).or_insert(Bucket { tokens: burst, last: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * per_second).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second;
            Err(Refusal { scope: self.scope, rate, retry_after: Duration::from_secs_f64(wait) })
        }
    }
}

pub struct Throttle {
    ip: Buckets<IpAddr>,
    account: Buckets<String>,
}

impl Throttle {
    pub fn new(per_ip: Rate, per_account: Rate) -> Self {
        Self { ip: Buckets::new("ip", per_ip), account: Buckets::new("account", per_account) }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.ip.take(&ip, Instant::now())
    }

    /// The account's bucket, under its own rate when it has one, else the server's default.
    pub fn check_account(
        &self,
        user_name: &str,
        own: Option<sluice_core::account::AccountRate>,
    ) -> Result<(), Refusal> {
        let rate = own.map_or(self.account.rate, |r| Rate { per_second: r.per_second.into(), burst: r.burst.into() });
        self.account.take_with(&user_name.to_owned(), rate, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let b = Buckets::new("account", Rate { per_second: 10.0, burst: 3.0 });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.take(&"a", t0).is_ok());
        }
        let refused = b.take(&"a", t0).unwrap_err();
        assert_eq!(refused.scope, "account");
        assert!(refused.retry_after <= Duration::from_millis(100));
        assert!(b.take(&"b", t0).is_ok(), "keys are independent");
        assert!(b.take(&"a", t0 + Duration::from_millis(100)).is_ok());
        assert!(b.take(&"a", t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn an_accounts_own_rate_replaces_the_default() {
        let t = Throttle::new(Rate { per_second: 0.0, burst: 0.0 }, Rate { per_second: 0.0, burst: 1.0 });
        let own = sluice_core::account::AccountRate { per_second: 1, burst: 2 };
        assert!((0..100).all(|_| t.check_account("free", None).is_ok()));
        assert!(t.check_account("capped", Some(own)).is_ok());
        assert!(t.check_account("capped", Some(own)).is_ok());
        let refused = t.check_account("capped", Some(own)).unwrap_err();
        assert_eq!((refused.scope, refused.rate.per_second, refused.rate.burst), ("account", 1.0, 2.0));
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        let b = Buckets::new("ip", Rate { per_second: 0.0, burst: 0.0 });
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| b.take(&1u8, t0).is_ok()));
    }
}
