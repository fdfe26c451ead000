//! Locality-based least connection with replication, after the kernel's
//! `ip_vs_lblcr.c`.
//!
//! Like lblc, but a destination address maps to a *set* of servers: the least
//! loaded member (weighted) serves it; when that member is overloaded (as in
//! lblc), wlc picks a server which joins the set. A set of more than one that
//! has not changed for `lblcr_expiration` (24 h) loses its most loaded member,
//! so sets shrink back when the load goes.
//!
//! A set holds at most [`SET_MAX`] servers (the kernel's list is unbounded):
//! a full set replaces its most loaded member.

use crate::lblc::{Cache, EXPIRATION, Fallback};
use crate::{Dest, Dests, Flow, Scheduler, weighted_least};

/// Most servers one destination's set holds.
pub const SET_MAX: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
struct Set {
    members: [u16; SET_MAX],
    len: u8,
    lastmod: u32,
}

impl Set {
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.members[..usize::from(self.len)]
            .iter()
            .map(|&m| usize::from(m))
    }

    /// `ip_vs_dest_set_max()`: the member with the most weighted load.
    fn most_loaded<D: Dests + ?Sized>(&self, dests: &D) -> Option<usize> {
        let mut most: Option<(usize, u64, u64)> = None;
        for (k, i) in self.iter().enumerate() {
            let d = dests.dest(i);
            if d.weight == 0 {
                continue;
            }
            let (doh, dw) = (d.overhead(), u64::from(d.weight));
            match most {
                Some((_, moh, mw))
                    if u128::from(moh) * u128::from(dw) >= u128::from(doh) * u128::from(mw) => {}
                _ => most = Some((k, doh, dw)),
            }
        }
        most.map(|(k, _, _)| k)
    }

    fn remove_at(&mut self, k: usize, now: u32) {
        let n = usize::from(self.len);
        self.members.copy_within(k + 1..n, k);
        self.len -= 1;
        self.lastmod = now;
    }

    fn add<D: Dests + ?Sized>(&mut self, dests: &D, i: usize, now: u32) {
        if self.iter().any(|m| m == i) {
            return;
        }
        if usize::from(self.len) == SET_MAX {
            let k = self.most_loaded(dests).unwrap_or(0);
            self.remove_at(k, now);
        }
        self.members[usize::from(self.len)] = i as u16;
        self.len += 1;
        self.lastmod = now;
    }
}

/// Locality-based least-connection-with-replication state: the cache.
#[derive(Debug, Clone, Default)]
pub struct Lblcr {
    cache: Cache<Set>,
    fallback: Fallback,
}

impl Scheduler for Lblcr {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        self.cache.reset();
        self.fallback.reset(dests);
    }

    fn on_change<D: Dests + ?Sized>(&mut self, dests: &D, i: usize) {
        self.fallback.on_change(dests, i);
    }

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, flow: &Flow) -> Option<usize> {
        let now = flow.now;
        if let Some(set) = self.cache.get_mut(flow.vip, now) {
            let members = set.iter().filter(|&i| i < dests.len());
            let least = weighted_least(dests, members, Dest::overhead);
            if set.len > 1 && now.wrapping_sub(set.lastmod) > EXPIRATION {
                if let Some(k) = set.most_loaded(dests) {
                    set.remove_at(k, now);
                }
            }
            if let Some(i) = least.filter(|&i| !self.fallback.is_overloaded(dests, i)) {
                return Some(i);
            }
            let i = self.fallback.pick(dests)?;
            set.add(dests, i, now);
            return Some(i);
        }
        let i = self.fallback.pick(dests)?;
        let mut set = Set::default();
        set.add(dests, i, now);
        self.cache.insert(flow.vip, set, now);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::d;

    fn flow(now: u32) -> Flow {
        Flow {
            vip: 7,
            now,
            ..Flow::default()
        }
    }

    #[test]
    fn set_grows_under_load_and_shrinks_after_expiration() {
        let mut dests = [d(2, 0), d(4, 9)];
        let mut s = Lblcr::default();
        s.update(&dests[..]);
        assert_eq!(s.pick(&dests[..], &flow(0)), Some(0));
        // Overload 0 (3 > 2 while 1 has 1 < 4/2): 1 joins the set.
        dests[0].active_conns = 3;
        dests[1].active_conns = 1;
        s.sync(&dests[..]);
        assert_eq!(s.pick(&dests[..], &flow(1)), Some(1));
        assert_eq!(s.cache.get_mut(7, 1).unwrap().len, 2);
        // Both members serve: the less loaded one wins.
        dests[0].active_conns = 0;
        s.sync(&dests[..]);
        assert_eq!(s.pick(&dests[..], &flow(2)), Some(0));
        // After a quiet day the most loaded member leaves.
        dests[1].active_conns = 3;
        s.sync(&dests[..]);
        s.pick(&dests[..], &flow(3 + EXPIRATION));
        let set = *s.cache.get_mut(7, 3 + EXPIRATION).unwrap();
        assert_eq!((set.len, set.members[0]), (1, 0));
    }

    #[test]
    fn a_full_set_replaces_its_most_loaded_member() {
        let dests: Vec<Dest> = (0..SET_MAX as u32 + 1).map(|i| d(1, i)).collect();
        let mut set = Set::default();
        for i in 0..SET_MAX {
            set.add(&dests[..], i, 0);
        }
        set.add(&dests[..], SET_MAX, 0);
        assert_eq!(usize::from(set.len), SET_MAX);
        assert!(set.iter().any(|m| m == SET_MAX));
        assert!(
            !set.iter().any(|m| m == SET_MAX - 1),
            "the busiest should have left"
        );
    }
}
