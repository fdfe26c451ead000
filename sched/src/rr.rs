//! Round robin, after the kernel's `ip_vs_rr.c`.
//!
//! IPVS keeps a cursor on the last server used and walks on from it, skipping
//! servers that are quiesced (weight 0) or overloaded; if a full lap finds none,
//! the service has no destination. The kernel guards the cursor with
//! `sched_lock`; here each worker owns its `Rr`, so there is nothing to lock
//! (DPVS's `dp_vs_rr` does the same).

use crate::{Dests, Flow, Scheduler};

/// Round-robin scheduler state: the index of the last server picked.
#[derive(Debug, Clone, Default)]
pub struct Rr {
    last: Option<usize>,
}

impl Scheduler for Rr {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        // ip_vs_rr_del_dest moves the cursor back when its server goes; an index
        // past the end would otherwise skip the first server once.
        if self.last.is_some_and(|l| l >= dests.len()) {
            self.last = None;
        }
    }

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        let n = dests.len();
        if n == 0 {
            return None;
        }
        let start = self.last.map_or(0, |l| (l + 1) % n);
        let found = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| dests.dest(i).available())?;
        self.last = Some(found);
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dest;

    fn up(weight: u32) -> Dest {
        Dest {
            weight,
            ..Dest::default()
        }
    }

    fn picks(rr: &mut Rr, dests: &[Dest], n: usize) -> Vec<Option<usize>> {
        (0..n).map(|_| rr.pick(dests, &Flow::default())).collect()
    }

    #[test]
    fn cycles_through_servers_in_order() {
        let mut rr = Rr::default();
        let d = [up(1), up(1), up(1)];
        assert_eq!(picks(&mut rr, &d, 7), [0, 1, 2, 0, 1, 2, 0].map(Some).to_vec());
    }

    #[test]
    fn ignores_weights_above_zero() {
        let mut rr = Rr::default();
        let d = [up(5), up(1)];
        assert_eq!(picks(&mut rr, &d, 4), [0, 1, 0, 1].map(Some).to_vec());
    }

    #[test]
    fn skips_quiesced_and_overloaded_servers() {
        let mut rr = Rr::default();
        let mut d = [up(1), up(0), up(1)];
        d[2].overloaded = true;
        assert_eq!(picks(&mut rr, &d, 3), [0, 0, 0].map(Some).to_vec());
    }

    #[test]
    fn no_destination_when_nothing_is_available() {
        let mut rr = Rr::default();
        assert_eq!(rr.pick(&[][..], &Flow::default()), None);
        assert_eq!(picks(&mut rr, &[up(0), up(0)], 2), vec![None, None]);
    }

    #[test]
    fn cursor_survives_a_shrinking_server_list() {
        let mut rr = Rr::default();
        let three = [up(1), up(1), up(1)];
        assert_eq!(picks(&mut rr, &three, 3).last(), Some(&Some(2)));
        let two = [up(1), up(1)];
        rr.update(&two[..]);
        assert_eq!(picks(&mut rr, &two, 2), [0, 1].map(Some).to_vec());
    }
}
