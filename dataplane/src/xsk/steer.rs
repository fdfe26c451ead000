//! Loader of our XDP steering program (`src/xdp/steer.bpf.c`), through libbpf.
//!
//! The program is attached with a bpf_link, not libxdp's netlink attach: a link
//! is released when its last file descriptor closes, so the program leaves the
//! interface when the daemon exits, even on SIGKILL. Sockets are created with
//! INHIBIT_PROG_LOAD and inserted into our XSKMAP here.

use super::bpf::{Object, map_delete, map_update};
use hashbrown::HashSet;
use std::io;
use std::os::fd::RawFd;

/// The compiled program, built by `build.rs` with clang for the BPF target.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

/// Key of the `services` map; must match `struct svc_key` in steer.bpf.c.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SvcKey {
    addr_be: u32,
    port_be: u16,
    proto: u8,
    pad: u8,
}

/// Queues per link in the XSKMAP; must match `MAX_QUEUES` in steer.bpf.c.
pub const MAX_QUEUES: u32 = 64;
/// Links (interfaces) the program serves; must match `MAX_LINKS`.
pub const MAX_LINKS: usize = 4;

/// The steering program, loaded and attached to the director's interfaces.
#[derive(Debug)]
pub struct Steer {
    /// Keeps the program loaded and attached; dropped last.
    _obj: Object,
    services_fd: RawFd,
    vips_fd: RawFd,
    reals_fd: RawFd,
    xsks_fd: RawFd,
    services: HashSet<SvcKey>,
    vips: HashSet<u32>,
    reals: HashSet<SvcKey>,
}

impl Steer {
    /// Load the program and attach it to each interface of `ifindexes`
    /// (link 0, 1, … in that order).
    ///
    /// # Errors
    /// The kernel refused the program or the attach (another XDP program
    /// attached, no BPF permission), or too many interfaces.
    pub fn attach(ifindexes: &[u32]) -> io::Result<Self> {
        if ifindexes.is_empty() || ifindexes.len() > MAX_LINKS {
            return Err(io::Error::other(format!("between 1 and {MAX_LINKS} interfaces")));
        }
        let mut obj = Object::load(OBJECT, "steering program")?;
        let links_fd = obj.map_fd(c"links")?;
        for (n, &ifindex) in ifindexes.iter().enumerate() {
            map_update(links_fd, &ifindex, &(n as u32), "register interface")?;
            obj.attach_xdp(c"steer", ifindex)?;
        }
        Ok(Self {
            services_fd: obj.map_fd(c"services")?,
            vips_fd: obj.map_fd(c"vips")?,
            reals_fd: obj.map_fd(c"reals")?,
            xsks_fd: obj.map_fd(c"xsks")?,
            _obj: obj,
            services: HashSet::new(),
            vips: HashSet::new(),
            reals: HashSet::new(),
        })
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
        map_update(
            self.xsks_fd,
            &queue,
            &(fd as u32),
            "insert AF_XDP socket into XSKMAP",
        )
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
                    addr_be: addr.to_be(),
                    port_be: port.to_be(),
                    proto,
                    pad: 0,
                })
                .collect()
        };
        let want = keys(services);
        let want_reals = keys(nat_reals);
        for k in want_reals.difference(&self.reals) {
            map_update(self.reals_fd, k, &1u32, "add NAT real server")?;
        }
        for k in self.reals.difference(&want_reals) {
            map_delete(self.reals_fd, k);
        }
        self.reals = want_reals;
        let want_vips: HashSet<u32> = want.iter().map(|k| k.addr_be).collect();
        let one = 1u32;
        // Add before removing, so a service being re-added never gaps.
        for k in want.difference(&self.services) {
            map_update(self.services_fd, k, &one, "add service")?;
        }
        for v in want_vips.difference(&self.vips) {
            map_update(self.vips_fd, v, &one, "add VIP")?;
        }
        for k in self.services.difference(&want) {
            map_delete(self.services_fd, k);
        }
        for v in self.vips.difference(&want_vips) {
            map_delete(self.vips_fd, v);
        }
        self.services = want;
        self.vips = want_vips;
        Ok(())
    }
}
