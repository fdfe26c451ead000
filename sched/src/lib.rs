//! LVS schedulers: given a virtual service's real servers, pick one for a new
//! connection.
//!
//! Owns: the [`Scheduler`] trait, the [`AnySched`] dispatch enum and one file per
//! scheduler, named as ipvsadm names it (`rr.rs` holds [`Rr`], whose name is
//! `"rr"`), each following the kernel's `net/netfilter/ipvs/ip_vs_<name>.c`.
//!
//! Must not touch: I/O, clocks, threads or locks. A scheduler has two halves, as
//! IPVS's ops do: the control half ([`AnySched::new`], [`Scheduler::update`]) may
//! allocate; the pick half ([`Scheduler::pick`]) runs once per new connection on
//! a worker's hot path and never allocates. Each worker owns its own scheduler
//! state, so a cursor such as rr's is per worker, as in DPVS.

mod rr;

pub use rr::Rr;

use std::fmt;

/// Flow fields a scheduler may hash on (dh, sh, mh); all in host byte order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    /// Client IPv4 address.
    pub cip: u32,
    /// Client port.
    pub cport: u16,
    /// Virtual IPv4 address.
    pub vip: u32,
    /// Virtual port.
    pub vport: u16,
}

/// Read-only view of one real server as the scheduler sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dest {
    /// Weight; 0 means quiesced: no new connections, old ones stay.
    pub weight: u32,
    /// Established connections this worker tracks to the server.
    pub active_conns: u32,
    /// Connections in other states this worker tracks to the server.
    pub inactive_conns: u32,
    /// Set when the upper connection threshold was reached (IPVS
    /// `IP_VS_DEST_F_OVERLOAD`).
    pub overloaded: bool,
}

impl Dest {
    /// Return whether the server may take a new connection.
    ///
    /// Every IPVS scheduler skips `IP_VS_DEST_F_OVERLOAD` and weight 0.
    pub fn available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }
}

/// The real servers of one service, as the worker holds them.
pub trait Dests {
    /// Return the number of real servers.
    fn len(&self) -> usize;
    /// Return the view of server `i` (`i < len()`).
    fn dest(&self, i: usize) -> Dest;
    /// Return whether there are no real servers.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Dests for [Dest] {
    fn len(&self) -> usize {
        <[Dest]>::len(self)
    }
    fn dest(&self, i: usize) -> Dest {
        self[i]
    }
}

/// One LVS scheduling algorithm.
pub trait Scheduler {
    /// Return the name ipvsadm uses for this scheduler (`-s NAME`).
    fn name(&self) -> &'static str;
    /// Rebuild derived state after the server list changed (control plane:
    /// may allocate).
    fn update<D: Dests + ?Sized>(&mut self, dests: &D);
    /// Pick a server for a new connection, or `None` for "no destination"
    /// (hot path: must not allocate).
    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, flow: &Flow) -> Option<usize>;
}

/// Every scheduler, dispatched without a `Box<dyn>` per service.
#[derive(Debug, Clone)]
pub enum AnySched {
    /// Round robin.
    Rr(Rr),
}

/// Names accepted by `-s`, in ipvsadm's spelling.
pub const NAMES: &[&str] = &["rr"];

/// The name given to `-s` is not a scheduler we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScheduler(pub String);

impl fmt::Display for UnknownScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown scheduler \"{}\" (known: {})",
            self.0,
            NAMES.join(" ")
        )
    }
}

impl std::error::Error for UnknownScheduler {}

impl AnySched {
    /// Create the scheduler ipvsadm calls `name`.
    ///
    /// # Errors
    /// [`UnknownScheduler`] when no scheduler has that name.
    pub fn new(name: &str) -> Result<Self, UnknownScheduler> {
        match name {
            "rr" => Ok(Self::Rr(Rr::default())),
            _ => Err(UnknownScheduler(name.to_string())),
        }
    }
}

impl Scheduler for AnySched {
    fn name(&self) -> &'static str {
        match self {
            Self::Rr(s) => s.name(),
        }
    }
    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        match self {
            Self::Rr(s) => s.update(dests),
        }
    }
    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, flow: &Flow) -> Option<usize> {
        match self {
            Self::Rr(s) => s.pick(dests, flow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_build_and_report_their_name() {
        for name in NAMES {
            assert_eq!(AnySched::new(name).unwrap().name(), *name);
        }
    }

    #[test]
    fn unknown_name_is_refused_with_the_name() {
        let err = AnySched::new("wlcc").unwrap_err();
        assert!(err.to_string().contains("\"wlcc\""), "{err}");
    }
}
