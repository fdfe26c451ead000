//! Rate estimation as IPVS does it (`net/netfilter/ipvs/ip_vs_est.c`): every
//! two seconds the counters' increase, scaled to fixed point, moves an
//! exponentially weighted average a quarter of the way:
//! `avg += (rate - avg) >> 2`. Connection and packet rates carry 10 bits of
//! fraction (`delta << 9` over two seconds), byte rates 5 (`delta << 4`);
//! reported values round them off (`(avg + 0x1FF) >> 10`, `(avg + 0xF) >> 5`).

use std::collections::HashMap;

/// The interval IPVS estimates over, in seconds.
pub const INTERVAL_SECS: u64 = 2;

#[derive(Debug, Clone, Copy, Default)]
struct Est {
    last: [u64; 5],
    avg: [i64; 5],
}

/// Rate estimators for every real server, by id.
#[derive(Debug, Clone, Default)]
pub struct Estimators {
    est: HashMap<u32, Est>,
}

impl Estimators {
    /// Feed the counters (conns, in_pkts, out_pkts, in_bytes, out_bytes) of
    /// server `id`, read every [`INTERVAL_SECS`].
    pub fn tick(&mut self, id: u32, now: [u64; 5]) {
        let first = !self.est.contains_key(&id);
        let e = self.est.entry(id).or_default();
        if first {
            e.last = now;
            return;
        }
        for (k, (avg, (n, last))) in e.avg.iter_mut().zip(now.iter().zip(e.last)).enumerate() {
            let delta = n.saturating_sub(last) as i64;
            let rate = if k < 3 { delta << 9 } else { delta << 4 };
            *avg += (rate - *avg) >> 2;
        }
        e.last = now;
    }

    /// Forget servers that are gone.
    pub fn retain(&mut self, keep: impl Fn(u32) -> bool) {
        self.est.retain(|id, _| keep(*id));
    }

    /// Return server `id`'s rates: CPS, InPPS, OutPPS, InBPS, OutBPS.
    pub fn rates(&self, id: u32) -> [u64; 5] {
        let Some(e) = self.est.get(&id) else {
            return [0; 5];
        };
        std::array::from_fn(|k| {
            let a = e.avg[k].max(0) as u64;
            if k < 3 { (a + 0x1FF) >> 10 } else { (a + 0xF) >> 5 }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_converges_to_itself() {
        let mut e = Estimators::default();
        // 100 connections, 1000 packets and 64 000 bytes per second, every
        // two seconds for 200 seconds.
        for t in 0..100u64 {
            e.tick(1, [200 * t, 2000 * t, 0, 128_000 * t, 0]);
        }
        assert_eq!(e.rates(1), [100, 1000, 0, 64_000, 0]);
        // It then decays by a quarter per interval when traffic stops.
        e.tick(1, [200 * 99, 2000 * 99, 0, 128_000 * 99, 0]);
        assert_eq!(e.rates(1)[0], 75);
        assert_eq!(e.rates(2), [0; 5]);
    }
}
