//! A BPF object loaded with libbpf, its XDP attachments (bpf_links, gone when
//! the object is dropped or the process dies), and map access.

use libbpf_sys as bpf;
use std::ffi::{CStr, c_void};
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// A loaded BPF object and the XDP links made from its programs.
pub(crate) struct Object {
    obj: NonNull<bpf::bpf_object>,
    links: Vec<NonNull<bpf::bpf_link>>,
    what: &'static str,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("what", &self.what)
            .field("links", &self.links.len())
            .finish()
    }
}

pub(crate) fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

pub(crate) fn check(rc: i32, what: &str) -> io::Result<()> {
    if rc < 0 {
        let e = io::Error::from_raw_os_error(-rc);
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

impl Object {
    /// Open and load the ELF object `bytes` (`what` names it in errors).
    pub(crate) fn load(bytes: &'static [u8], what: &'static str) -> io::Result<Self> {
        // SAFETY: `bytes` is 'static, valid for as long as libbpf may read
        // it; NULL options ask for the defaults.
        let obj =
            unsafe { bpf::bpf_object__open_mem(bytes.as_ptr().cast(), bytes.len() as _, std::ptr::null()) };
        let obj = NonNull::new(obj).ok_or_else(|| last_err(&format!("open {what}")))?;
        // From here Drop closes `obj` on every path.
        let me = Self {
            obj,
            links: Vec::new(),
            what,
        };
        // SAFETY: `obj` is a valid, not yet loaded object.
        let rc = unsafe { bpf::bpf_object__load(me.obj.as_ptr()) };
        check(rc, &format!("load {what}"))?;
        Ok(me)
    }

    /// Return the fd of map `name`.
    pub(crate) fn map_fd(&self, name: &CStr) -> io::Result<RawFd> {
        // SAFETY: `obj` is loaded and `name` is NUL-terminated.
        let fd = unsafe { bpf::bpf_object__find_map_fd_by_name(self.obj.as_ptr(), name.as_ptr()) };
        if fd < 0 {
            return Err(io::Error::other(format!("{} has no map {name:?}", self.what)));
        }
        Ok(fd)
    }

    fn program(&self, name: &CStr) -> io::Result<NonNull<bpf::bpf_program>> {
        // SAFETY: `obj` is loaded; the name is NUL-terminated.
        let prog = unsafe { bpf::bpf_object__find_program_by_name(self.obj.as_ptr(), name.as_ptr()) };
        NonNull::new(prog).ok_or_else(|| io::Error::other(format!("{} has no program {name:?}", self.what)))
    }

    /// Return the fd of program `name`.
    pub(crate) fn prog_fd(&self, name: &CStr) -> io::Result<RawFd> {
        let prog = self.program(name)?;
        // SAFETY: `prog` belongs to the loaded `obj`.
        let fd = unsafe { bpf::bpf_program__fd(prog.as_ptr()) };
        check(fd, "program fd").map(|()| fd)
    }

    /// Attach program `name` to interface `ifindex` through a bpf_link.
    pub(crate) fn attach_xdp(&mut self, name: &CStr, ifindex: u32) -> io::Result<()> {
        let prog = self.program(name)?;
        // SAFETY: `prog` belongs to the loaded `obj`, which outlives the
        // link (Drop destroys the links first).
        let link = unsafe { bpf::bpf_program__attach_xdp(prog.as_ptr(), ifindex as i32) };
        let link =
            NonNull::new(link).ok_or_else(|| last_err("attach XDP program (is another one attached?)"))?;
        self.links.push(link);
        Ok(())
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: links and obj are valid and owned by self; each is freed
        // once, the links first because they reference the programs.
        unsafe {
            for link in &self.links {
                bpf::bpf_link__destroy(link.as_ptr());
            }
            bpf::bpf_object__close(self.obj.as_ptr());
        }
    }
}

fn ptr<T>(v: &T) -> *const c_void {
    (v as *const T).cast()
}

/// Set `key` to `value` in the map behind `fd`. `K` and `V` must be the key
/// and value types the map was declared with in its .bpf.c file.
pub(crate) fn map_update<K, V>(fd: RawFd, key: &K, value: &V, what: &str) -> io::Result<()> {
    // SAFETY: both pointers are valid for the call and point to values of the
    // sizes the map declares (the kernel copies exactly key_size/value_size).
    let rc = unsafe { bpf::bpf_map_update_elem(fd, ptr(key), ptr(value), u64::from(bpf::BPF_ANY)) };
    check(rc, what)
}

/// Delete `key` from the map behind `fd`; a key already gone is fine.
pub(crate) fn map_delete<K>(fd: RawFd, key: &K) {
    // SAFETY: the pointer is valid for the call and `K` is the map's key type.
    let _ = unsafe { bpf::bpf_map_delete_elem(fd, ptr(key)) };
}

/// Return the sum over CPUs of the u64 at `key` of a per-CPU array map.
pub(crate) fn percpu_sum(fd: RawFd, key: u32) -> io::Result<u64> {
    Ok(percpu_sum_fields::<1>(fd, key)?[0])
}

/// Read entry `key` of a per-CPU array whose value is `N` u64 fields, and
/// sum each field over the CPUs.
pub(crate) fn percpu_sum_fields<const N: usize>(fd: RawFd, key: u32) -> io::Result<[u64; N]> {
    // SAFETY: libbpf_num_possible_cpus only reads sysfs.
    let cpus = unsafe { bpf::libbpf_num_possible_cpus() };
    check(cpus, "possible CPUs")?;
    // Per-CPU values are rounded up to 8 bytes each: N u64 fields fit exactly.
    let mut values = vec![[0u64; N]; cpus as usize];
    // SAFETY: `values` has room for N u64 per possible CPU, which is what a
    // per-CPU array with an N-field u64 value returns; `key` is its u32 key.
    let rc = unsafe { bpf::bpf_map_lookup_elem(fd, ptr(&key), values.as_mut_ptr().cast()) };
    check(rc, "read per-CPU counter")?;
    let mut sum = [0u64; N];
    for v in &values {
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    Ok(sum)
}

/// Run program `prog_fd` over `frame` `repeat` times in live-frame mode
/// (`BPF_F_TEST_XDP_LIVE_FRAMES`): each run's verdict is carried out for
/// real, so XDP_REDIRECT transmits. Return the kernel's duration in ns.
pub(crate) fn run_live(prog_fd: RawFd, frame: &[u8], repeat: u32, batch: u32) -> io::Result<u32> {
    let mut opts = bpf::bpf_test_run_opts {
        sz: std::mem::size_of::<bpf::bpf_test_run_opts>() as _,
        data_in: frame.as_ptr().cast(),
        data_size_in: frame.len() as u32,
        repeat: repeat as i32,
        flags: bpf::BPF_F_TEST_XDP_LIVE_FRAMES,
        batch_size: batch,
        ..Default::default()
    };
    // SAFETY: `opts` describes `frame`, which outlives the call; no output
    // buffers are given (live mode forbids them).
    let rc = unsafe { bpf::bpf_prog_test_run_opts(prog_fd, &mut opts) };
    check(rc, "BPF_PROG_RUN (live frames)")?;
    Ok(opts.duration)
}
