//! When to try a failed delivery again: exponential backoff with jitter, and a circuit breaker
//! per upstream so that a down upstream is not hammered by every queued row at once.

use std::time::{Duration, Instant};

/// The wait after the `failures`-th failed attempt in a row (1 for the first): `initial` doubled
/// per failure, at most `max`, then a random point in its upper half (so rows that failed
/// together do not come back together, and the wait never collapses to nothing).
pub fn backoff(failures: u32, initial: Duration, max: Duration, random: u64) -> Duration {
    let exp = initial.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(max);
    let half = exp / 2;
    let spread = (exp - half).as_millis() as u64;
    half + Duration::from_millis(if spread == 0 { 0 } else { random % (spread + 1) })
}

/// The wait an upstream asked for in `Retry-After`: whole seconds (HTTP dates are not honoured:
/// the backoff applies then).
pub fn retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(|s| Duration::from_secs(s.min(86_400)))
}

/// Closed: deliveries flow. Open after `threshold` failures in a row: none until the cool-down
/// ends. Then half-open: one delivery tries; its success closes the breaker, a failure opens it
/// again.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// What the breaker allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// Up to the concurrency limit.
    All,
    /// One trial delivery (half-open).
    One,
    /// None.
    Wait,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold: threshold.max(1), cooldown, failures: 0, open_until: None, probing: false }
    }

    pub fn allowance(&self, now: Instant) -> Allowance {
        match self.open_until {
            None => Allowance::All,
            Some(_) if self.probing => Allowance::Wait,
            Some(until) if now >= until => Allowance::One,
            Some(_) => Allowance::Wait,
        }
    }

    /// A delivery starts while half-open: the trial.
    pub fn start_trial(&mut self) {
        self.probing = true;
    }

    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    pub fn succeeded(&mut self) {
        (self.failures, self.open_until, self.probing) = (0, None, false);
    }

    /// A failure that says the upstream is in trouble (network, timeout, 5xx, 429).
    pub fn failed(&mut self, now: Instant) {
        self.failures += 1;
        if self.probing || self.failures >= self.threshold {
            (self.open_until, self.probing) = (Some(now + self.cooldown), false);
        }
    }

    /// An attempt that ended without judging the upstream (a refusal of one record): a trial
    /// counts as answered.
    pub fn neutral(&mut self) {
        if self.probing {
            self.succeeded();
        }
    }
}

/// Deliveries started while the node is busy with senders: at most `per_second`, with a burst
/// of at most `burst` (the lane's concurrency), so forwarding still progresses under sustained
/// load without taking the senders' CPU.
#[derive(Debug)]
pub struct Pace {
    per_second: u32,
    burst: u32,
    /// Deliveries that may start now, in thousandths.
    credit_milli: u64,
    at: Option<Instant>,
}

impl Pace {
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self { per_second, burst: burst.max(1), credit_milli: 0, at: None }
    }

    /// How many of `wanted` deliveries may start now, taken from the credit.
    pub fn take(&mut self, wanted: u32, now: Instant) -> u32 {
        let cap = u64::from(self.burst) * 1000;
        self.credit_milli = match self.at {
            // The first busy moment starts with one delivery's worth.
            None => 1000,
            Some(at) => {
                let earned = now.saturating_duration_since(at).as_millis() as u64 * u64::from(self.per_second);
                self.credit_milli.saturating_add(earned).min(cap)
            }
        };
        self.at = Some(now);
        let n = (self.credit_milli / 1000).min(u64::from(wanted)) as u32;
        self.credit_milli -= u64::from(n) * 1000;
        n
    }

    /// The node is not busy: deliveries start freely, and the next busy spell starts afresh.
    pub fn idle(&mut self) {
        (self.credit_milli, self.at) = (0, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stays_in_the_upper_half() {
        let (initial, max) = (Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(backoff(1, initial, max, 0), Duration::from_millis(2500));
        assert_eq!(
            backoff(1, initial, max, u64::MAX),
            Duration::from_millis(2500) + Duration::from_millis(u64::MAX % 2501)
        );
        for failures in 1..40 {
            let exp = (initial * 2u32.pow((failures - 1).min(20))).min(max);
            for random in [0, 1, 999_999, u64::MAX] {
                let d = backoff(failures, initial, max, random);
                assert!(d >= exp / 2 && d <= exp, "{failures}: {d:?} outside {exp:?}");
            }
        }
        assert_eq!(backoff(30, initial, max, 0), max / 2);
    }

    #[test]
    fn retry_after_takes_seconds_only() {
        assert_eq!(retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn the_breaker_opens_waits_probes_and_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(30));
        b.failed(t0);
        b.failed(t0);
        assert_eq!(b.allowance(t0), Allowance::All);
        b.failed(t0);
        assert_eq!(b.allowance(t0 + Duration::from_secs(29)), Allowance::Wait);
        let later = t0 + Duration::from_secs(30);
        assert_eq!(b.allowance(later), Allowance::One);
        b.start_trial();
        assert_eq!(b.allowance(later), Allowance::Wait, "one trial at a time");
        b.failed(later);
        assert_eq!(b.allowance(later + Duration::from_secs(29)), Allowance::Wait, "a failed trial opens it again");
        let again = later + Duration::from_secs(30);
        assert_eq!(b.allowance(again), Allowance::One);
        b.start_trial();
        b.succeeded();
        assert_eq!(b.allowance(again), Allowance::All);
        assert!(!b.is_open());
    }

    #[test]
    fn a_busy_node_starts_deliveries_at_the_pace() {
        let t0 = Instant::now();
        let mut pace = Pace::new(20, 4);
        assert_eq!(pace.take(4, t0), 1, "one at once");
        assert_eq!(pace.take(4, t0), 0);
        assert_eq!(pace.take(4, t0 + Duration::from_millis(49)), 0);
        assert_eq!(pace.take(4, t0 + Duration::from_millis(50)), 1, "one per 50 ms at 20/s");
        assert_eq!(pace.take(4, t0 + Duration::from_secs(10)), 4, "the credit stops at the burst");
        assert_eq!(pace.take(4, t0 + Duration::from_secs(10)), 0);
        assert_eq!(pace.take(2, t0 + Duration::from_millis(10_200)), 2);
        assert_eq!(pace.take(2, t0 + Duration::from_millis(10_200)), 2, "what was not wanted stays");
        pace.idle();
        assert_eq!(pace.take(4, t0 + Duration::from_secs(11)), 1, "a new busy spell starts afresh");
    }
}
