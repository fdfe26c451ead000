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

/// The steering program, loaded and attached to one interface.
pub struct Steer {
    obj: NonNull<bpf::bpf_object>,
    link: NonNull<bpf::bpf_link>,
    services_fd: RawFd,
    vips_fd: RawFd,
    xsks_fd: RawFd,
    services: HashSet<SvcKey>,
    vips: HashSet<u32>,
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
    /// Load the program and attach it to interface `ifindex`.
    ///
    /// # Errors
    /// The kernel refused the program or the attach (another XDP program
    /// attached, no BPF permission).
    pub fn attach(ifindex: u32) -> io::Result<Self> {
        // SAFETY: OBJECT is a 'static buffer, valid for as long as libbpf may
        // read it; NULL options ask for the defaults.
        let obj = unsafe {
            bpf::bpf_object__open_mem(OBJECT.as_ptr().cast(), OBJECT.len() as _, std::ptr::null())
        };
        let obj = NonNull::new(obj).ok_or_else(|| last_err("open steering program"))?;
        let close = |e: io::Error| {
            // SAFETY: `obj` came from bpf_object__open_mem and is closed once,
            // here on the error path, before it is stored anywhere.
            unsafe { bpf::bpf_object__close(obj.as_ptr()) };
            e
        };
        // SAFETY: `obj` is a valid, not yet loaded object.
        check(
            unsafe { bpf::bpf_object__load(obj.as_ptr()) },
            "load steering program",
        )
        .map_err(close)?;
        let map_fd = |name: &CStr| {
            // SAFETY: `obj` is loaded and `name` is NUL-terminated.
            let fd = unsafe { bpf::bpf_object__find_map_fd_by_name(obj.as_ptr(), name.as_ptr()) };
            if fd < 0 {
                Err(io::Error::other(format!(
                    "steering program has no map {name:?}"
                )))
            } else {
                Ok(fd)
            }
        };
        let (services_fd, vips_fd, xsks_fd) =
            (|| Ok::<_, io::Error>((map_fd(c"services")?, map_fd(c"vips")?, map_fd(c"xsks")?)))()
                .map_err(close)?;
        // SAFETY: `obj` is loaded; the name is NUL-terminated.
        let prog =
            unsafe { bpf::bpf_object__find_program_by_name(obj.as_ptr(), c"steer".as_ptr()) };
        if prog.is_null() {
            return Err(close(io::Error::other(
                "steering program has no function steer",
            )));
        }
        // SAFETY: `prog` belongs to the loaded `obj`, which outlives the link
        // (Drop destroys the link first).
        let link = unsafe { bpf::bpf_program__attach_xdp(prog, ifindex as i32) };
        let link = NonNull::new(link)
            .ok_or_else(|| close(last_err("attach XDP program (is another one attached?)")))?;
        Ok(Self {
            obj,
            link,
            services_fd,
            vips_fd,
            xsks_fd,
            services: HashSet::new(),
            vips: HashSet::new(),
        })
    }

    /// Point queue `queue` at the AF_XDP socket `fd`.
    ///
    /// # Errors
    /// The map update failed (queue index past the map size).
    pub fn set_socket(&mut self, queue: u32, fd: RawFd) -> io::Result<()> {
        let fd = fd as u32;
        // SAFETY: key and value are u32 as the XSKMAP declares; both pointers
        // are valid for the call.
        let rc = unsafe {
            bpf::bpf_map_update_elem(self.xsks_fd, ptr(&queue), ptr(&fd), bpf::BPF_ANY as u64)
        };
        check(rc, "insert AF_XDP socket into XSKMAP")
    }

    /// Steer exactly these (protocol, VIP, port) services (host order) to the
    /// sockets; everything else passes to the kernel.
    ///
    /// # Errors
    /// A map update failed; the maps may then hold part of the change, which
    /// the next call completes.
    pub fn set_services(&mut self, services: &[(u8, u32, u16)]) -> io::Result<()> {
        let want: HashSet<SvcKey> = services
            .iter()
            .map(|&(proto, vip, port)| SvcKey {
                addr_be: vip.to_be(),
                port_be: port.to_be(),
                proto,
                pad: 0,
            })
            .collect();
        let want_vips: HashSet<u32> = want.iter().map(|k| k.addr_be).collect();
        let one = 1u32;
        // Add before removing, so a service being re-added never gaps.
        for k in want.difference(&self.services) {
            // SAFETY: key layout matches struct svc_key; value is a u32.
            check(
                unsafe {
                    bpf::bpf_map_update_elem(
                        self.services_fd,
                        ptr(k),
                        ptr(&one),
                        bpf::BPF_ANY as u64,
                    )
                },
                "add service",
            )?;
        }
        for v in want_vips.difference(&self.vips) {
            // SAFETY: key and value are u32 as the map declares.
            check(
                unsafe {
                    bpf::bpf_map_update_elem(self.vips_fd, ptr(v), ptr(&one), bpf::BPF_ANY as u64)
                },
                "add VIP",
            )?;
        }
        for k in self.services.difference(&want) {
            // SAFETY: key layout matches struct svc_key.
            let _ = unsafe { bpf::bpf_map_delete_elem(self.services_fd, ptr(k)) };
        }
        for v in self.vips.difference(&want_vips) {
            // SAFETY: key is a u32 as the map declares.
            let _ = unsafe { bpf::bpf_map_delete_elem(self.vips_fd, ptr(v)) };
        }
        self.services = want;
        self.vips = want_vips;
        Ok(())
    }
}

fn ptr<T>(v: &T) -> *const c_void {
    (v as *const T).cast()
}

impl Drop for Steer {
    fn drop(&mut self) {
        // SAFETY: link and obj are valid and owned by self; each is freed once,
        // the link first because it references the program.
        unsafe {
            bpf::bpf_link__destroy(self.link.as_ptr());
            bpf::bpf_object__close(self.obj.as_ptr());
        }
    }
}
