//! How busy this node is answering requests, so that background work (forwarding) can give way
//! to senders waiting for their acknowledgement on a saturated node.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests in flight at or above which the node counts as busy: requests are queueing, and
/// background work would lengthen every sender's wait (a lone sender, or a few at a time, never
/// makes a node busy).
pub const BUSY_IN_FLIGHT: usize = 8;

/// The number of requests this node is answering now (health checks excluded).
#[derive(Debug, Default)]
pub struct Load {
    in_flight: AtomicUsize,
}

/// Held while a request is answered.
pub struct InFlight<'a>(&'a Load);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Load {
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn busy(&self) -> bool {
        self.in_flight() >= BUSY_IN_FLIGHT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_make_the_node_busy_until_they_end() {
        let load = Load::default();
        let guards: Vec<_> = (0..BUSY_IN_FLIGHT - 1).map(|_| load.enter()).collect();
        assert!(!load.busy());
        let last = load.enter();
        assert!(load.busy());
        drop(last);
        assert!(!load.busy());
        drop(guards);
        assert_eq!(load.in_flight(), 0);
    }
}
