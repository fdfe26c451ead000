//! Loader of our XDP steering program (`src/xdp/steer.bpf.c`), through libbpf.
//!
//! The program is attached with a bpf_link, not libxdp's netlink attach: a link
//! is released when its last file descriptor closes, so the program leaves the
//! interface when the daemon exits, even on SIGKILL. Sockets are created with
//! INHIBIT_PROG_LOAD and inserted into our XSKMAP here.

use hashbrown::HashSet;
use libbpf_sys as bpf;
use std::ffi::{CStr, c_void};
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// The compiled program, built by `build.rs` with clang for the BPF target.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

/// Key of the `services` map; must match `struct svc_key` in steer.bpf.c.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
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
pub struct Steer {
    obj: NonNull<bpf::bpf_object>,
    links: Vec<NonNull<bpf::bpf_link>>,
    services_fd: RawFd,
    vips_fd: RawFd,
    reals_fd: RawFd,
    xsks_fd: RawFd,
    services: HashSet<SvcKey>,
    vips: HashSet<u32>,
    reals: HashSet<SvcKey>,
}

impl std::fmt::Debug for Steer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steer")
            .field("services", &self.services.len())
            .finish_non_exhaustive()
    }
}

fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn check(rc: i32, what: &str) -> io::Result<()> {
    if rc < 0 {
        let e = io::Error::from_raw_os_error(-rc);
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
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
        // SAFETY: OBJECT is a 'static buffer, valid for as long as libbpf may
        // read it; NULL options ask for the defaults.
        let obj =
            unsafe { bpf::bpf_object__open_mem(OBJECT.as_ptr().cast(), OBJECT.len() as _, std::ptr::null()) };
        let obj = NonNull::new(obj).ok_or_else(|| last_err("open steering program"))?;
        let close = |e: io::Error| {
            // SAFETY: `obj` came from bpf_object__open_mem and is closed once,
            // here on the error path, before it is stored anywhere.
            unsafe { bpf::bpf_object__close(obj.as_ptr()) };
            e
        };
        // SAFETY: `obj` is a valid, not yet loaded object.
        let rc = unsafe { bpf::bpf_object__load(obj.as_ptr()) };
        check(rc, "load steering program").map_err(close)?;
        let map_fd = |name: &CStr| {
            // SAFETY: `obj` is loaded and `name` is NUL-terminated.
            let fd = unsafe { bpf::bpf_object__find_map_fd_by_name(obj.as_ptr(), name.as_ptr()) };
            if fd < 0 {
                Err(io::Error::other(format!("steering program has no map {name:?}")))
            } else {
                Ok(fd)
            }
        };
        let (services_fd, vips_fd, reals_fd, links_fd, xsks_fd) = (|| {
            Ok::<_, io::Error>((
                map_fd(c"services")?,
                map_fd(c"vips")?,
                map_fd(c"reals")?,
                map_fd(c"links")?,
                map_fd(c"xsks")?,
            ))
        })()
        .map_err(close)?;
        // SAFETY: `obj` is loaded; the name is NUL-terminated.
        let prog = unsafe { bpf::bpf_object__find_program_by_name(obj.as_ptr(), c"steer".as_ptr()) };
        if prog.is_null() {
            return Err(close(io::Error::other("steering program has no function steer")));
        }
        let mut steer = Self {
            obj,
            links: Vec::new(),
            services_fd,
            vips_fd,
            reals_fd,
            xsks_fd,
            services: HashSet::new(),
            vips: HashSet::new(),
            reals: HashSet::new(),
        };
        for (n, &ifindex) in ifindexes.iter().enumerate() {
            map_update(links_fd, &ifindex, &(n as u32), "register interface")?;
            // SAFETY: `prog` belongs to the loaded `obj`, which outlives the
            // link (Drop destroys the links first).
            let link = unsafe { bpf::bpf_program__attach_xdp(prog, ifindex as i32) };
            let link = NonNull::new(link)
                .ok_or_else(|| last_err("attach XDP program (is another one attached?)"))?;
            steer.links.push(link);
        }
        Ok(steer)
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

fn ptr<T>(v: &T) -> *const c_void {
    (v as *const T).cast()
}

/// Set `key` to `value` in the map behind `fd`. `K` and `V` must be the key
/// and value types the map was declared with in steer.bpf.c (callers in this
/// file pass `SvcKey` or `u32` to the maps that declare them).
fn map_update<K, V>(fd: RawFd, key: &K, value: &V, what: &str) -> io::Result<()> {
    // SAFETY: both pointers are valid for the call and point to values of the
    // sizes the map declares (the kernel copies exactly key_size/value_size).
    let rc = unsafe { bpf::bpf_map_update_elem(fd, ptr(key), ptr(value), u64::from(bpf::BPF_ANY)) };
    check(rc, what)
}

/// Delete `key` from the map behind `fd`; a key already gone is fine.
fn map_delete<K>(fd: RawFd, key: &K) {
    // SAFETY: the pointer is valid for the call and `K` is the map's key type.
    let _ = unsafe { bpf::bpf_map_delete_elem(fd, ptr(key)) };
}

impl Drop for Steer {
    fn drop(&mut self) {
        // SAFETY: links and obj are valid and owned by self; each is freed
        // once, the links first because they reference the program.
        unsafe {
            for link in &self.links {
                bpf::bpf_link__destroy(link.as_ptr());
            }
            bpf::bpf_object__close(self.obj.as_ptr());
        }
    }
}
