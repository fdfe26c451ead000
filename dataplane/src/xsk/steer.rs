//! Loader of our XDP steering program (`src/xdp/steer.bpf.c`), through libbpf.
//!
//! The program is attached with a bpf_link, not libxdp's netlink attach: a link
//! is released when its last file descriptor closes, so the program leaves the
//! interface when the daemon exits, even on SIGKILL. Sockets are created with
//! INHIBIT_PROG_LOAD and inserted into our XSKMAP here.

use super::bpf::{Map, Object, Plain};
use super::flows::{FastKey, FastKey4, FastKey6, FastVal, FastVal4, FastVal6};
use hashbrown::HashSet;
use std::io;
use std::os::fd::RawFd;

/// The compiled program, built by `build.rs` with clang for the BPF target.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

use super::layout::{self, addr6 as Addr6, svc_key as SvcKey, svc6_key as SvcKey6};

/// Why frames of flows in the fast path's map went to the sockets anyway
/// (`PUNT_*` in fast.bpf.h, in that order), and the partial checksums it
/// completed (the last, not a punt).
pub const PUNT_NAMES: [&str; PUNT_REASONS] = {
    let mut names = [""; PUNT_REASONS];
    names[layout::PUNT_FLAGS as usize] = "flags";
    names[layout::PUNT_FRAGMENT as usize] = "fragment";
    names[layout::PUNT_OPTIONS as usize] = "options";
    names[layout::PUNT_MTU as usize] = "mtu";
    names[layout::PUNT_SHORT as usize] = "short";
    names[layout::PARTIAL_DONE as usize] = "partial-completed";
    names
};
/// Entries of [`PUNT_NAMES`] (`PUNT_N`).
pub const PUNT_REASONS: usize = layout::PUNT_N as usize;

/// Entries of the fast path's flow map at most (`MAX_FLOWS`).
pub const MAX_FAST_FLOWS: usize = layout::MAX_FLOWS as usize;

/// The IPv6 maps and what they hold now.
#[derive(Debug)]
struct Maps6 {
    services: Map<SvcKey6, u32>,
    vips: Map<Addr6, u32>,
    reals: Map<SvcKey6, u32>,
    rips: Map<Addr6, u32>,
    locals: Map<Addr6, u32>,
    have_services: HashSet<SvcKey6>,
    have_vips: HashSet<Addr6>,
    have_reals: HashSet<SvcKey6>,
    have_rips: HashSet<Addr6>,
    have_locals: HashSet<Addr6>,
}

/// Queues per link in the XSKMAP.
pub const MAX_QUEUES: u32 = layout::MAX_QUEUES;
/// Links (interfaces) the program serves.
pub const MAX_LINKS: usize = layout::MAX_LINKS as usize;

/// The steering program, loaded and attached to the director's interfaces.
#[derive(Debug)]
pub struct Steer {
    /// Keeps the program loaded and attached; dropped last.
    _obj: Object,
    services: Map<SvcKey, u32>,
    vips: Map<u32, u32>,
    reals: Map<SvcKey, u32>,
    rips: Map<u32, u32>,
    locals: Map<u32, u32>,
    xsks: Map<u32, u32>,
    /// What the maps hold now.
    have_services: HashSet<SvcKey>,
    have_vips: HashSet<u32>,
    have_reals: HashSet<SvcKey>,
    have_rips: HashSet<u32>,
    have_locals: HashSet<u32>,
    v6: Maps6,
    flows: Map<FastKey4, FastVal4>,
    flows6: Map<FastKey6, FastVal6>,
    fast_on: Map<u32, u32>,
    punts: Map<u32, [u64; PUNT_REASONS]>,
    /// Links of the last run were taken over: its program runs on them
    /// until [`Self::go_live`].
    pub adopted: bool,
}

impl Steer {
    /// Load the program and attach it to each interface of `ifindexes`
    /// (link 0, 1, … in that order), with a fast-path flow map of at most
    /// `fast_flows` entries (1 to [`MAX_FAST_FLOWS`]). With `pins` (a
    /// directory on a bpffs), the attachments are pinned there and outlive
    /// the process; ones the last run pinned are taken over, and keep that
    /// run's program until [`Self::go_live`].
    ///
    /// # Errors
    /// The kernel refused the program or the attach (another XDP program
    /// attached, no BPF permission), too many interfaces, or a pin.
    pub fn attach(ifindexes: &[u32], fast_flows: usize, pins: Option<&std::path::Path>) -> io::Result<Self> {
        if ifindexes.is_empty() || ifindexes.len() > MAX_LINKS {
            return Err(io::Error::other(format!("between 1 and {MAX_LINKS} interfaces")));
        }
        let mut me = Self::load(fast_flows)?;
        let links: Map<u32, u32> = me._obj.map(c"links")?;
        for (n, &ifindex) in ifindexes.iter().enumerate() {
            links.update(&ifindex, &(n as u32), "register interface")?;
            match pins {
                Some(dir) => {
                    me.adopted |=
                        me._obj
                            .attach_xdp_pinned(c"steer", ifindex, &dir.join(format!("link-{ifindex}")))?
                }
                None => me._obj.attach_xdp(c"steer", ifindex)?,
            }
        }
        Ok(me)
    }

    /// Load the program and open its maps, attached nowhere.
    fn load(fast_flows: usize) -> io::Result<Self> {
        let flows = fast_flows.clamp(1, MAX_FAST_FLOWS) as u32;
        let obj = Object::load(
            OBJECT,
            "steering program",
            &[(c"flows", flows), (c"flows6", flows)],
        )?;
        let v6 = Maps6 {
            services: obj.map(c"services6")?,
            vips: obj.map(c"vips6")?,
            reals: obj.map(c"reals6")?,
            rips: obj.map(c"rips6")?,
            locals: obj.map(c"locals6")?,
            have_services: HashSet::new(),
            have_vips: HashSet::new(),
            have_reals: HashSet::new(),
            have_rips: HashSet::new(),
            have_locals: HashSet::new(),
        };
        Ok(Self {
            services: obj.map(c"services")?,
            vips: obj.map(c"vips")?,
            reals: obj.map(c"reals")?,
            rips: obj.map(c"rips")?,
            locals: obj.map(c"locals")?,
            xsks: obj.map(c"xsks")?,
            flows: obj.map(c"flows")?,
            flows6: obj.map(c"flows6")?,
            fast_on: obj.map(c"fast_on")?,
            punts: obj.map(c"punts")?,
            _obj: obj,
            have_services: HashSet::new(),
            have_vips: HashSet::new(),
            have_reals: HashSet::new(),
            have_rips: HashSet::new(),
            have_locals: HashSet::new(),
            v6,
            adopted: false,
        })
    }

    /// The program, loaded with its maps but attached nowhere, for running
    /// frames through it with [`Self::test_run`].
    ///
    /// # Errors
    /// The kernel refused the program (no BPF permission).
    #[cfg(test)]
    pub(crate) fn detached(fast_flows: usize) -> io::Result<Self> {
        Self::load(fast_flows)
    }

    /// Run `frame` through the program once (`BPF_PROG_RUN`, no live
    /// frame): its XDP verdict and what it left in `out`.
    ///
    /// # Errors
    /// The kernel refused the run.
    #[cfg(test)]
    pub(crate) fn test_run<'a>(&self, frame: &[u8], out: &'a mut [u8]) -> io::Result<(u32, &'a [u8])> {
        let (verdict, len) = super::bpf::run_once(self._obj.prog_fd(c"steer")?, frame, out)?;
        Ok((verdict, &out[..len]))
    }

    /// Point queue `queue` of link `link` at the AF_XDP socket `fd`.
    ///
    /// # Errors
    /// The map update failed, or the queue is past [`MAX_QUEUES`].
    pub fn set_socket(&mut self, link: usize, queue: u32, fd: RawFd) -> io::Result<()> {
        if queue >= MAX_QUEUES {
            return Err(io::Error::other(format!(
                "queue {queue}: at most {MAX_QUEUES} queues"
            )));
        }
        let queue = link as u32 * MAX_QUEUES + queue;
        self.xsks
            .update(&queue, &(fd as u32), "insert AF_XDP socket into XSKMAP")
    }

    /// Steer exactly these (protocol, VIP, port) services and replies from
    /// these (protocol, RIP, port) NAT real servers (host order) to the
    /// sockets; everything else passes to the kernel.
    ///
    /// # Errors
    /// A map update failed; the maps may then hold part of the change, which
    /// the next call completes.
    pub fn set_services(
        &mut self,
        services: &[(u8, u32, u16)],
        nat_reals: &[(u8, u32, u16)],
    ) -> io::Result<()> {
        let keys = |list: &[(u8, u32, u16)]| -> HashSet<SvcKey> {
            list.iter()
                .map(|&(proto, addr, port)| SvcKey {
                    addr: addr.to_be(),
                    port: port.to_be(),
                    proto,
                    pad: 0,
                })
                .collect()
        };
        let want = keys(services);
        let reals = keys(nat_reals);
        // Later fragments of replies have no port: their source address
        // alone sends them to the workers.
        let rips: HashSet<u32> = reals.iter().map(|k| k.addr).collect();
        sync_set(&self.reals, &mut self.have_reals, reals, "add NAT real server")?;
        sync_set(
            &self.rips,
            &mut self.have_rips,
            rips,
            "add NAT real server address",
        )?;
        let want_vips: HashSet<u32> = want.iter().map(|k| k.addr).collect();
        // Services before VIPs: a VIP is only steered once it has one.
        sync_set(&self.services, &mut self.have_services, want, "add service")?;
        sync_set(&self.vips, &mut self.have_vips, want_vips, "add VIP")?;
        Ok(())
    }
}

impl Steer {
    /// The director's own addresses (host order): what a NAT real server
    /// sends to them (health-check replies, SSH) stays with the host.
    /// Unchanged addresses cost no syscall.
    ///
    /// # Errors
    /// A map update failed.
    pub fn set_locals(&mut self, addrs: &[u32]) -> io::Result<()> {
        let want: HashSet<u32> = addrs.iter().map(|a| a.to_be()).collect();
        if want == self.have_locals {
            return Ok(());
        }
        sync_set(&self.locals, &mut self.have_locals, want, "add local address")
    }

    /// [`Self::set_services`] for IPv6 (host-order `u128` addresses).
    ///
    /// # Errors
    /// A map update failed.
    pub fn set_services6(
        &mut self,
        services: &[(u8, u128, u16)],
        nat_reals: &[(u8, u128, u16)],
    ) -> io::Result<()> {
        let keys = |list: &[(u8, u128, u16)]| -> HashSet<SvcKey6> {
            list.iter()
                .map(|&(proto, addr, port)| SvcKey6 {
                    addr: addr.to_be_bytes(),
                    port: port.to_be(),
                    proto,
                    pad: 0,
                })
                .collect()
        };
        let m = &mut self.v6;
        let (want, reals) = (keys(services), keys(nat_reals));
        let rips: HashSet<Addr6> = reals.iter().map(|k| Addr6 { addr: k.addr }).collect();
        sync_set(&m.reals, &mut m.have_reals, reals, "add IPv6 NAT real server")?;
        sync_set(
            &m.rips,
            &mut m.have_rips,
            rips,
            "add IPv6 NAT real server address",
        )?;
        let vips: HashSet<Addr6> = want.iter().map(|k| Addr6 { addr: k.addr }).collect();
        sync_set(&m.services, &mut m.have_services, want, "add IPv6 service")?;
        sync_set(&m.vips, &mut m.have_vips, vips, "add IPv6 VIP")
    }

    /// [`Self::set_locals`] for IPv6.
    ///
    /// # Errors
    /// A map update failed.
    pub fn set_locals6(&mut self, addrs: &[u128]) -> io::Result<()> {
        let want: HashSet<Addr6> = addrs
            .iter()
            .map(|a| Addr6 {
                addr: a.to_be_bytes(),
            })
            .collect();
        let m = &mut self.v6;
        if want == m.have_locals {
            return Ok(());
        }
        sync_set(&m.locals, &mut m.have_locals, want, "add local IPv6 address")
    }
}

impl Steer {
    /// Swap this program in on the links taken over from the last run,
    /// once the maps and sockets are ready for it (until then the old
    /// program forwards its fast-path flows and drops what would need a
    /// socket, so clients retransmit rather than get a reset).
    ///
    /// # Errors
    /// A swap failed.
    pub fn go_live(&mut self) -> io::Result<()> {
        if !self.adopted {
            return Ok(());
        }
        self._obj.go_live(c"steer")?;
        self.adopted = false;
        Ok(())
    }

    /// Turn the fast path on or off (off: every frame to the sockets, as
    /// if the flow map were empty).
    ///
    /// # Errors
    /// The map update failed.
    pub fn set_fast(&self, on: bool) -> io::Result<()> {
        self.fast_on.update(&0, &u32::from(on), "switch the fast path")
    }

    /// Put `flows` in the flow maps, one syscall a family; return how many
    /// they took (a full map takes fewer).
    ///
    /// # Errors
    /// The kernel refused a batch.
    pub fn fast_add(&self, keys: &[FastKey], values: &[FastVal]) -> io::Result<usize> {
        let (mut k4, mut v4, mut k6, mut v6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, v) in keys.iter().zip(values) {
            match (k, v) {
                (FastKey::V4(k), FastVal::V4(v)) => (k4.push(*k), v4.push(*v)),
                (FastKey::V6(k), FastVal::V6(v)) => (k6.push(*k), v6.push(*v)),
                _ => ((), ()),
            };
        }
        Ok(self.flows.update_batch(&k4, &v4)? + self.flows6.update_batch(&k6, &v6)?)
    }

    /// Take `keys` out of the flow maps (their frames go to the sockets).
    pub fn fast_remove(&self, keys: &[FastKey]) {
        let k4: Vec<FastKey4> = keys.iter().filter_map(FastKey::v4).collect();
        let k6: Vec<FastKey6> = keys.iter().filter_map(FastKey::v6).collect();
        self.flows.delete_batch(&k4);
        self.flows6.delete_batch(&k6);
    }

    /// Take `key` out of its flow map, returning its last counts.
    pub fn fast_take(&self, key: &FastKey) -> Option<FastVal> {
        match key {
            FastKey::V4(k) => self.flows.take(k).map(FastVal::V4),
            FastKey::V6(k) => self.flows6.take(k).map(FastVal::V6),
        }
    }

    /// Read every flow of both maps with its counters and last-seen stamp.
    ///
    /// # Errors
    /// The kernel refused a batch.
    pub fn fast_read(&self, keys: &mut Vec<FastKey>, values: &mut Vec<FastVal>) -> io::Result<()> {
        let (mut k4, mut v4, mut k6, mut v6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        self.flows.read_all(&mut k4, &mut v4, 4096)?;
        self.flows6.read_all(&mut k6, &mut v6, 4096)?;
        keys.clear();
        values.clear();
        keys.extend(
            k4.into_iter()
                .map(FastKey::V4)
                .chain(k6.into_iter().map(FastKey::V6)),
        );
        values.extend(
            v4.into_iter()
                .map(FastVal::V4)
                .chain(v6.into_iter().map(FastVal::V6)),
        );
        Ok(())
    }

    /// The fast path's punts by reason, summed over the CPUs (see
    /// [`PUNT_NAMES`]).
    ///
    /// # Errors
    /// The read failed.
    pub fn fast_punts(&self) -> io::Result<[u64; PUNT_REASONS]> {
        self.punts.percpu_sum(&0)
    }
}

/// Make the set map `map`, whose keys are `have`, hold exactly `want`:
/// additions first, so a key being re-added never gaps.
fn sync_set<K: Plain + Eq + std::hash::Hash>(
    map: &Map<K, u32>,
    have: &mut HashSet<K>,
    want: HashSet<K>,
    what: &str,
) -> io::Result<()> {
    for k in want.difference(have) {
        map.update(k, &1, what)?;
    }
    for k in have.difference(&want) {
        map.delete(k);
    }
    *have = want;
    Ok(())
}
