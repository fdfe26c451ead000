//! A cap on datagrams taken per second, for the receivers of protocol
//! messages from the network (VRRP adverts, sync messages): a flood costs
//! the cap's worth of parsing a second, and the rest is counted and
//! dropped unread.
//!
//! Owns: the count of the current second. Must not touch: what it guards.

use std::time::{Duration, Instant};

/// At most `per_sec` datagrams in each second.
#[derive(Debug)]
pub struct RateCap {
    per_sec: u32,
    since: Instant,
    taken: u32,
}

impl RateCap {
    /// A cap of `per_sec` a second.
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec,
            since: Instant::now(),
            taken: 0,
        }
    }

    /// Whether one more may be taken now.
    pub fn allow(&mut self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&mut self, now: Instant) -> bool {
        if now.duration_since(self.since) >= Duration::from_secs(1) {
            (self.since, self.taken) = (now, 0);
        }
        if self.taken >= self.per_sec {
            return false;
        }
        self.taken += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_within_a_second_and_opens_the_next() {
        let mut cap = RateCap::new(3);
        let t = cap.since;
        let taken: Vec<bool> = (0..5).map(|_| cap.allow_at(t)).collect();
        assert_eq!(taken, [true, true, true, false, false]);
        assert!(cap.allow_at(t + Duration::from_millis(1000)));
    }
}
