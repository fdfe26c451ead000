//! The rules the daemon runs, and what it keeps beside them: counter slots,
//! the trash of deleted servers whose connections still flow, the `-Z`
//! baselines and the rate estimators.
//!
//! Owns: every change to the rules (validated in full on a copy, then
//! committed whole), and each real server's counters as listings show them.
//! Must not touch: the workers or the steering program (the control loop
//! publishes what this committed). A [`Book`] is plain data: the metrics
//! thread reads a published copy.

use crate::estimator::Estimators;
use config::{Counts, RealServer, Rules, ServiceKey};
use dataplane::{SlotMap, WorkerStats};
use hashbrown::HashMap;
use std::sync::Arc;

/// The rules and their counters' bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct Book {
    /// The rules as committed.
    pub rules: Rules,
    /// Each real server's counter slot (trashed ones included).
    pub slots: SlotMap,
    /// Deleted real servers whose connections still flow (IPVS's dest
    /// trash): not schedulable, gone once no worker counts a connection or
    /// template on them.
    trash: Vec<(ServiceKey, RealServer)>,
    /// Counters at the last `-Z`, by real server id.
    zeroed: HashMap<u32, Counts>,
    /// `--rate` estimators, fed every two seconds.
    estimators: Estimators,
}

impl Book {
    /// Return the rules with the trashed servers back in their services at
    /// weight 0, for the workers (which must still reach them).
    pub fn with_trash(&self) -> Rules {
        with_trash(&self.rules, &self.trash)
    }

    /// Return every real server, trashed ones included.
    pub fn all_dests(&self) -> impl Iterator<Item = &RealServer> {
        self.rules
            .dests()
            .map(|(_, d)| d)
            .chain(self.trash.iter().map(|(_, d)| d))
    }

    /// Return whether server `id` is in the trash.
    pub fn trashed(&self, id: u32) -> bool {
        self.trash.iter().any(|(_, d)| d.id == id)
    }

    /// Make `next` the rules. Servers it deletes from services that stay go
    /// to the trash: their connections keep flowing (with
    /// `--expire-nodest-conn`, workers drop and forget them instead), and
    /// their counter slots stay theirs until no connection counts on them.
    ///
    /// # Errors
    /// More real servers than counter slots; nothing changes then.
    pub fn commit(&mut self, next: Rules) -> Result<(), String> {
        let mut trash = self.trash.clone();
        for svc in &self.rules.services {
            let Some(kept) = next.service(&svc.key) else {
                continue;
            };
            for d in svc
                .dests
                .iter()
                .filter(|d| !kept.dests.iter().any(|k| k.id == d.id))
            {
                trash.push((svc.key, d.clone()));
            }
        }
        // A deleted service takes its connections with it, as in IPVS.
        trash.retain(|(k, _)| next.service(k).is_some());
        self.slots
            .assign(&with_trash(&next, &trash))
            .map_err(|e| e.to_string())?;
        self.trash = trash;
        self.rules = next;
        Ok(())
    }

    /// Empty the trash of servers no worker has a connection or template
    /// on; true when something went.
    pub fn collect_trash(&mut self, workers: &[Arc<WorkerStats>]) -> bool {
        let before = self.trash.len();
        let trash = std::mem::take(&mut self.trash);
        self.trash = trash
            .into_iter()
            .filter(|(_, d)| {
                let c = self.counts(d.id, workers);
                c.active + c.inactive + c.persist > 0
            })
            .collect();
        if self.trash.len() == before {
            return false;
        }
        // Cannot fail: the same servers less some.
        let _ = self.slots.assign(&self.with_trash());
        true
    }

    /// Return real server `id`'s counters summed over the workers, less what
    /// `-Z` zeroed (workers' counters have one writer each, so the control
    /// plane keeps a baseline rather than resetting them).
    pub fn counts(&self, id: u32, workers: &[Arc<WorkerStats>]) -> Counts {
        let raw = self.raw_counts(id, workers);
        let zero = self.zeroed.get(&id).copied().unwrap_or_default();
        Counts {
            conns: raw.conns.saturating_sub(zero.conns),
            in_pkts: raw.in_pkts.saturating_sub(zero.in_pkts),
            out_pkts: raw.out_pkts.saturating_sub(zero.out_pkts),
            in_bytes: raw.in_bytes.saturating_sub(zero.in_bytes),
            out_bytes: raw.out_bytes.saturating_sub(zero.out_bytes),
            rates: self.estimators.rates(id),
            ..raw
        }
    }

    /// Server `id`'s counters summed over the workers, as they count them.
    fn raw_counts(&self, id: u32, workers: &[Arc<WorkerStats>]) -> Counts {
        let Some(slot) = self.slots.slot(id) else {
            return Counts::default();
        };
        workers.iter().fold(Counts::default(), |c, w| {
            let d = w.dest(slot);
            c + Counts {
                active: d.active.get(),
                inactive: d.inactive.get(),
                conns: d.conns.get(),
                in_pkts: d.in_pkts.get(),
                out_pkts: d.out_pkts.get(),
                in_bytes: d.in_bytes.get(),
                out_bytes: d.out_bytes.get(),
                persist: d.persist.get(),
                rates: [0; 5],
            }
        })
    }

    /// Feed every server's raw counters to its rate estimator.
    pub fn estimate(&mut self, workers: &[Arc<WorkerStats>]) {
        let ids: Vec<u32> = self.rules.dests().map(|(_, d)| d.id).collect();
        for &id in &ids {
            // Raw (un-zeroed) counters: -Z must not look like a negative rate.
            let c = self.raw_counts(id, workers);
            self.estimators
                .tick(id, [c.conns, c.in_pkts, c.out_pkts, c.in_bytes, c.out_bytes]);
        }
        self.estimators.retain(|id| ids.contains(&id));
    }

    /// `-Z`: zero the packet and byte counters of one service or all.
    ///
    /// # Errors
    /// No such service.
    pub fn zero(&mut self, service: Option<ServiceKey>, workers: &[Arc<WorkerStats>]) -> Result<(), String> {
        if let Some(k) = service.filter(|k| self.rules.service(k).is_none()) {
            return Err(format!("Service not defined: {k}"));
        }
        let ids: Vec<u32> = self
            .rules
            .dests()
            .filter(|(k, _)| service.is_none_or(|s| s == **k))
            .map(|(_, d)| d.id)
            .collect();
        for id in ids {
            let now = self.raw_counts(id, workers);
            self.zeroed.insert(id, now);
        }
        Ok(())
    }

    /// `-R --dry-run`: what the batch `text` would change, as a diff of the
    /// `-S -n` texts (`-` lines go, `+` lines come); nothing is applied.
    ///
    /// # Errors
    /// A line of `text` is refused (`stdin:LINE: problem`).
    pub fn dry_run(&self, text: &str) -> Result<String, String> {
        let mut next = self.rules.clone();
        next.apply_commands("stdin", text).map_err(|e| e.to_string())?;
        let names = config::Names::default();
        let (before, after) = (
            config::render_save(&self.rules, true, &names),
            config::render_save(&next, true, &names),
        );
        let (old, new): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
        let mut out = String::new();
        for l in old.iter().filter(|l| !new.contains(l)) {
            out.push_str(&format!("- {l}\n"));
        }
        for l in new.iter().filter(|l| !old.contains(l)) {
            out.push_str(&format!("+ {l}\n"));
        }
        if next.timeouts != self.rules.timeouts {
            out.push_str(&format!(
                "~ timeouts {:?} -> {:?}\n",
                self.rules.timeouts, next.timeouts
            ));
        }
        Ok(out)
    }
}

fn with_trash(rules: &Rules, trash: &[(ServiceKey, RealServer)]) -> Rules {
    let mut all = rules.clone();
    for (key, d) in trash {
        if let Some(svc) = all.services.iter_mut().find(|s| s.key == *key) {
            svc.dests.push(RealServer {
                weight: 0,
                ..d.clone()
            });
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(lines: &str) -> Rules {
        Rules::from_commands("test", lines).unwrap()
    }

    const TWO: &str = "-A -t 10.0.0.100:80 -s rr\n\
                       -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g\n\
                       -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g\n";

    fn id_of(b: &Book, rip: &str) -> u32 {
        let addr: std::net::IpAddr = rip.parse().unwrap();
        b.all_dests().find(|d| d.addr == addr).unwrap().id
    }

    #[test]
    fn a_deleted_server_goes_to_the_trash_until_no_worker_counts_on_it() {
        let mut b = Book::default();
        b.commit(rules(TWO)).unwrap();
        let gone = id_of(&b, "10.0.0.12");
        let mut next = b.rules.clone();
        next.apply_commands("test", "-d -t 10.0.0.100:80 -r 10.0.0.12:80")
            .unwrap();
        b.commit(next).unwrap();
        // Not schedulable, still reachable by its connections (weight 0).
        assert!(b.trashed(gone));
        let w = b.with_trash();
        let d = w.services[0].dests.iter().find(|d| d.id == gone).unwrap();
        assert_eq!(d.weight, 0);
        // A worker still counts a connection on it: it stays.
        let workers = vec![Arc::new(WorkerStats::default())];
        let slot = b.slots.slot(gone).unwrap();
        workers[0].dest(slot).active.add(1);
        assert!(!b.collect_trash(&workers));
        assert!(b.trashed(gone));
        // The connection ends: it goes, and its slot is free.
        workers[0].dest(slot).active.sub(1);
        assert!(b.collect_trash(&workers));
        assert!(!b.trashed(gone) && b.slots.slot(gone).is_none());
    }

    #[test]
    fn a_deleted_service_takes_its_trash_with_it() {
        let mut b = Book::default();
        b.commit(rules(TWO)).unwrap();
        let mut next = b.rules.clone();
        next.apply_commands("test", "-d -t 10.0.0.100:80 -r 10.0.0.12:80")
            .unwrap();
        b.commit(next).unwrap();
        let mut next = b.rules.clone();
        next.apply_commands("test", "-D -t 10.0.0.100:80").unwrap();
        b.commit(next).unwrap();
        assert_eq!(b.all_dests().count(), 0);
    }

    #[test]
    fn a_commit_past_the_counter_slots_changes_nothing() {
        let mut b = Book::default();
        b.commit(rules(TWO)).unwrap();
        let before = b.rules.clone();
        let slot = |b: &Book| b.slots.slot(id_of(b, "10.0.0.12"));
        let slot_before = slot(&b);
        let mut big = String::from("-A -t 10.0.0.200:80 -s rr\n");
        for i in 0..=dataplane::stats::MAX_DESTS {
            big += &format!(
                "-a -t 10.0.0.200:80 -r 10.{}.{}.{}:80 -g\n",
                i >> 16 & 255,
                i >> 8 & 255,
                i & 255
            );
        }
        let mut next = b.rules.clone();
        next.apply_commands("test", &big).unwrap();
        assert!(b.commit(next).is_err());
        assert_eq!(b.rules, before);
        assert_eq!(slot(&b), slot_before);
    }

    #[test]
    fn zero_keeps_a_baseline_and_counts_from_it() {
        let mut b = Book::default();
        b.commit(rules(TWO)).unwrap();
        let id = id_of(&b, "10.0.0.11");
        let workers = vec![Arc::new(WorkerStats::default()), Arc::new(WorkerStats::default())];
        let slot = b.slots.slot(id).unwrap();
        for w in &workers {
            w.dest(slot).in_pkts.add(10);
            w.dest(slot).active.add(1);
        }
        assert_eq!(b.counts(id, &workers).in_pkts, 20);
        b.zero(None, &workers).unwrap();
        workers[0].dest(slot).in_pkts.add(3);
        let c = b.counts(id, &workers);
        // Packets from the baseline; connections as they are.
        assert_eq!((c.in_pkts, c.active), (3, 2));
        let unknown: ServiceKey = rules("-A -t 10.0.0.9:80 -s rr").services[0].key;
        assert!(b.zero(Some(unknown), &workers).is_err());
    }
}
