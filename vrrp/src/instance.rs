//! One virtual router (`vrrp_instance`): its state, its timers and its
//! elections, as keepalived runs them (`vrrp_state_backup`,
//! `vrrp_state_master_rx`, `vrrp_state_master_tx`, RFC 3768/5798 section 6).
//!
//! Pure: every entry point takes `now` and returns the [`Action`]s to carry
//! out, in order; [`Instance::deadline`] says when to call
//! [`Instance::on_timer`] next.
//!
//! Timers as keepalived computes them: skew is `(256 − priority) / 256`
//! seconds in v2 (whatever the interval) and `(256 − priority) ×
//! interval / 256` in v3; master down is `down_timer_adverts` (3) intervals
//! plus the skew. A v3 backup adopts the master's interval.

use crate::packet::Version;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The owner's priority (it holds the addresses as its own).
pub const PRIO_OWNER: u8 = 255;
/// Priority a master sends when it stops.
pub const PRIO_STOP: u8 = 0;

/// An instance's state, as keepalived names them in its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started.
    Init,
    /// Watching the master.
    Backup,
    /// Holding the addresses and advertising.
    Master,
    /// A tracked interface or script failed: holds nothing, sends nothing.
    Fault,
    /// Stopped.
    Stop,
}

impl State {
    /// The word keepalived logs (`Entering MASTER STATE`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Init => "INIT",
            Self::Backup => "BACKUP",
            Self::Master => "MASTER",
            Self::Fault => "FAULT",
            Self::Stop => "STOP",
        }
    }
}

/// Why the last transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The instance started.
    Start,
    /// No advert from a master for the master-down interval.
    MasterDown,
    /// The master sent priority 0 (it stopped).
    MasterStopped,
    /// An advert from a master of higher priority (or equal and higher
    /// address).
    HigherPriority,
    /// A tracked interface or script failed.
    Fault,
    /// It recovered from a fault.
    Recovered,
    /// Told to stop.
    Stopped,
    /// Another member of its sync group left master.
    SyncGroup,
}

impl Why {
    /// Return the reason as listings show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::MasterDown => "master down",
            Self::MasterStopped => "master sent priority 0",
            Self::HigherPriority => "higher priority advert",
            Self::Fault => "fault",
            Self::Recovered => "fault cleared",
            Self::Stopped => "stopped",
            Self::SyncGroup => "sync group",
        }
    }
}

/// What the instance asks its driver to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority.
    Advertise(u8),
    /// The state changed: log it, set or remove the addresses (MASTER sets
    /// them and sends gratuitous ARPs; every other state removes them), run
    /// the notify scripts.
    Transition {
        /// The state before.
        from: State,
        /// The state now.
        to: State,
        /// Why.
        why: Why,
    },
    /// Another master at equal or higher priority was seen while master
    /// (a split brain the election resolves): log once.
    SplitBrain {
        /// Its address.
        from: Ipv4Addr,
        /// Its priority.
        priority: u8,
    },
}

/// What an instance is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// VRRP version.
    pub version: Version,
    /// Configured priority (255: the address owner).
    pub priority: u8,
    /// Advert interval in centiseconds.
    pub interval_cs: u16,
    /// `state MASTER` asked (an owner then starts as master at once).
    pub start_master: bool,
    /// `preempt` (keepalived's default) rather than `nopreempt`.
    pub preempt: bool,
    /// `preempt_delay`.
    pub preempt_delay: Duration,
    /// `down_timer_adverts` (default 3).
    pub down_adverts: u32,
    /// This instance's own address (the advert source), for the tie-break.
    pub addr: Ipv4Addr,
}

/// One virtual router.
#[derive(Debug, Clone)]
pub struct Instance {
    params: Params,
    state: State,
    /// Priority after trackers (1..254; 255 stays 255).
    effective: u8,
    /// The master's interval (v3 adopts it), in centiseconds.
    master_interval_cs: u16,
    /// The master we last accepted, and its priority.
    master: Option<(Ipv4Addr, u8)>,
    /// When the backup takes over unless an advert comes.
    down_at: Option<Instant>,
    /// When the master sends its next advert.
    advert_at: Option<Instant>,
    /// Until when a backup does not preempt a lower-priority master.
    preempt_until: Option<Instant>,
    /// A split brain is logged once until it ends.
    split_logged: bool,
    /// Held down by a fault.
    faulted: bool,
    /// The last transition: when and why.
    last: Option<(Instant, Why)>,
}

impl Instance {
    /// Make an instance in INIT.
    pub fn new(params: Params) -> Self {
        Self {
            effective: params.priority,
            master_interval_cs: params.interval_cs,
            params,
            state: State::Init,
            master: None,
            down_at: None,
            advert_at: None,
            preempt_until: None,
            split_logged: false,
            faulted: false,
            last: None,
        }
    }

    /// Return the state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Return the configuration.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Return the effective priority.
    pub fn effective_priority(&self) -> u8 {
        self.effective
    }

    /// Return the master's address and priority as last seen (ours when
    /// master).
    pub fn master(&self) -> Option<(Ipv4Addr, u8)> {
        match self.state {
            State::Master => Some((self.params.addr, self.effective)),
            _ => self.master,
        }
    }

    /// Return the interval in use, in centiseconds (v3: the master's).
    pub fn interval_cs(&self) -> u16 {
        self.master_interval_cs
    }

    /// Return when and why the state last changed.
    pub fn last_transition(&self) -> Option<(Instant, Why)> {
        self.last
    }

    /// Return when [`Self::on_timer`] is due.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Backup => self.down_at,
            State::Master => self.advert_at,
            _ => None,
        }
    }

    /// Return the skew for priority `prio`.
    pub fn skew(&self) -> Duration {
        let prio = u64::from(256 - u32::from(self.effective)) as u32;
        match self.params.version {
            Version::V2 => Duration::from_secs(1) * prio / 256,
            Version::V3 => cs(self.master_interval_cs) * prio / 256,
        }
    }

    /// Return the master-down interval.
    pub fn master_down(&self) -> Duration {
        cs(self.master_interval_cs) * self.params.down_adverts + self.skew()
    }

    fn go(&mut self, now: Instant, to: State, why: Why, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.last = Some((now, why));
        self.split_logged = false;
        out.push(Action::Transition { from, to, why });
    }

    fn become_master(&mut self, now: Instant, why: Why, out: &mut Vec<Action>) {
        // The advert first, so the old master lets go of the addresses.
        out.push(Action::Advertise(self.effective));
        self.go(now, State::Master, why, out);
        self.master = None;
        self.advert_at = Some(now + cs(self.params.interval_cs));
    }

    fn become_backup(&mut self, now: Instant, why: Why, out: &mut Vec<Action>) {
        self.go(now, State::Backup, why, out);
        self.master_interval_cs = self.params.interval_cs;
        self.down_at = Some(now + self.master_down());
    }

    /// Start: an owner asked to be master is master at once; every other
    /// instance starts as backup and waits the master-down interval.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.params.preempt_delay.is_zero() {
            self.preempt_until = Some(now + self.params.preempt_delay);
        }
        if self.faulted {
            self.go(now, State::Fault, Why::Fault, &mut out);
        } else if self.effective == PRIO_OWNER && self.params.start_master {
            self.become_master(now, Why::Start, &mut out);
        } else {
            self.become_backup(now, Why::Start, &mut out);
        }
        out
    }

    /// The timer fired (at or after [`Self::deadline`]).
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Backup if self.down_at.is_some_and(|t| now >= t) => {
                let why = if self.master.is_some_and(|(_, p)| p == PRIO_STOP) {
                    Why::MasterStopped
                } else {
                    Why::MasterDown
                };
                self.become_master(now, why, &mut out);
            }
            State::Master if self.advert_at.is_some_and(|t| now >= t) => {
                out.push(Action::Advertise(self.effective));
                self.advert_at = Some(now + cs(self.params.interval_cs));
            }
            _ => {}
        }
        out
    }

    /// An advert that passed the packet checks came from `src` with
    /// `priority` and interval `interval_cs`.
    pub fn on_advert(&mut self, now: Instant, src: Ipv4Addr, priority: u8, interval_cs: u16) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Backup => self.backup_rx(now, src, priority, interval_cs),
            State::Master => self.master_rx(now, src, priority, interval_cs, &mut out),
            _ => {}
        }
        out
    }

    fn backup_rx(&mut self, now: Instant, src: Ipv4Addr, priority: u8, interval_cs: u16) {
        if priority == PRIO_STOP {
            // The master stopped: take over after the skew alone.
            self.master = Some((src, priority));
            self.down_at = Some(now + self.skew());
            return;
        }
        let delaying = self.preempt_until.is_some_and(|t| now < t);
        if !self.params.preempt || priority >= self.effective || delaying {
            self.master = Some((src, priority));
            if self.params.version == Version::V3 && interval_cs > 0 {
                self.master_interval_cs = interval_cs;
            }
            self.down_at = Some(now + self.master_down());
        } else if !self.params.preempt_delay.is_zero() && self.preempt_until.is_none() {
            // A lower-priority master seen for the first time: preempt it
            // only after the delay.
            self.preempt_until = Some(now + self.params.preempt_delay);
            self.down_at = Some(now + self.master_down());
        }
        // Otherwise a lower priority: let the down timer run out (preempt).
    }

    fn master_rx(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        priority: u8,
        interval_cs: u16,
        out: &mut Vec<Action>,
    ) {
        if priority == PRIO_STOP {
            // A stopping master: answer at once, so its backups see us.
            out.push(Action::Advertise(self.effective));
            self.advert_at = Some(now + cs(self.params.interval_cs));
            return;
        }
        let higher = priority > self.effective
            || (priority == self.effective && u32::from(src) > u32::from(self.params.addr));
        if !self.split_logged && priority >= self.effective {
            self.split_logged = true;
            out.push(Action::SplitBrain { from: src, priority });
        }
        if higher {
            self.become_backup(now, Why::HigherPriority, out);
            self.master = Some((src, priority));
            if self.params.version == Version::V3 && interval_cs > 0 {
                self.master_interval_cs = interval_cs;
                self.down_at = Some(now + self.master_down());
            }
        } else {
            // A lower priority thinks it is master: force a new election
            // (RFC 9568), as keepalived does.
            out.push(Action::Advertise(self.effective));
            self.advert_at = Some(now + cs(self.params.interval_cs));
        }
    }

    /// Set the priority trackers leave (clamped to 1..254; an owner's
    /// stays 255).
    pub fn set_effective_priority(&mut self, now: Instant, p: i32) -> Vec<Action> {
        if self.params.priority != PRIO_OWNER {
            self.effective = p.clamp(1, 254) as u8;
        }
        let mut out = Vec::new();
        if self.state == State::Master {
            // Tell the backups now: one may have to preempt.
            out.push(Action::Advertise(self.effective));
            self.advert_at = Some(now + cs(self.params.interval_cs));
        }
        out
    }

    /// A reload changed the configured priority to `base`; trackers still
    /// add `weight`. No transition of its own: as master the new priority
    /// is advertised at once (a backup may then preempt), as backup it
    /// counts from the next advert.
    pub fn set_priority(&mut self, now: Instant, base: u8, weight: i32) -> Vec<Action> {
        self.params.priority = base;
        if base == PRIO_OWNER {
            self.effective = PRIO_OWNER;
            return Vec::new();
        }
        self.set_effective_priority(now, i32::from(base) + weight)
    }

    /// A tracked interface or script failed (`true`) or recovered.
    pub fn set_fault(&mut self, now: Instant, fault: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if fault == self.faulted {
            return out;
        }
        self.faulted = fault;
        match (fault, self.state) {
            (_, State::Init | State::Stop) => {}
            (true, State::Master) => {
                // Leaving master for a fault: priority 0, so a backup takes
                // over at once.
                out.push(Action::Advertise(PRIO_STOP));
                self.go(now, State::Fault, Why::Fault, &mut out);
            }
            (true, _) => self.go(now, State::Fault, Why::Fault, &mut out),
            (false, _) => self.become_backup(now, Why::Recovered, &mut out),
        }
        out
    }

    /// Another member of the sync group left master: so does this one
    /// (keepalived moves the whole group).
    pub fn follow_group(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            self.become_backup(now, Why::SyncGroup, &mut out);
        }
        out
    }

    /// Stop: a master sends priority 0 so its backup takes over at once.
    pub fn stop(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            out.push(Action::Advertise(PRIO_STOP));
        }
        if self.state != State::Stop {
            self.go(now, State::Stop, Why::Stopped, &mut out);
        }
        out
    }
}

/// Centiseconds as a duration.
fn cs(n: u16) -> Duration {
    Duration::from_millis(u64::from(n) * 10)
}

#[cfg(test)]
mod tests;
