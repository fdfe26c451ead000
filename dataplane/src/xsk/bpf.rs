//! A BPF object loaded with libbpf, its XDP attachments (bpf_links, gone when
//! the object is dropped or the process dies, unless pinned in a bpffs, when
//! they outlive the process and the next one takes them over), and map
//! access.

use libbpf_sys as bpf;
use std::ffi::{CStr, c_void};
use std::io;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::rc::Rc;

/// A loaded BPF object and the XDP links made from its programs.
pub(crate) struct Object {
    // Field order is drop order: the links before the object they use.
    links: Vec<Link>,
    loaded: Rc<Loaded>,
    what: &'static str,
}

/// One XDP attachment.
struct Link {
    link: NonNull<bpf::bpf_link>,
    /// Pinned: it stays when this process goes.
    pinned: bool,
    /// A pinned link of the last run, still running that run's program
    /// until [`Object::go_live`] swaps ours in: its interface and pin.
    pending: Option<(u32, std::path::PathBuf)>,
}

/// The libbpf object itself: closed when the [`Object`] and every [`Map`]
/// opened from it are gone, so a map's fd is never used after its close.
struct Loaded(NonNull<bpf::bpf_object>);

impl Drop for Loaded {
    fn drop(&mut self) {
        // SAFETY: the object is valid and owned here; every link that used
        // it was destroyed by `Object::drop` first, and no Map is left.
        unsafe { bpf::bpf_object__close(self.0.as_ptr()) };
    }
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
    /// Open and load the ELF object `bytes` (`what` names it in errors),
    /// with the maps named in `sizes` made for that many entries instead of
    /// the object's own `max_entries`.
    pub(crate) fn load(bytes: &'static [u8], what: &'static str, sizes: &[(&CStr, u32)]) -> io::Result<Self> {
        // SAFETY: `bytes` is 'static, valid for as long as libbpf may read
        // it; NULL options ask for the defaults.
        let obj =
            unsafe { bpf::bpf_object__open_mem(bytes.as_ptr().cast(), bytes.len() as _, std::ptr::null()) };
        let obj = NonNull::new(obj).ok_or_else(|| last_err(&format!("open {what}")))?;
        // From here Drop closes `obj` on every path.
        let me = Self {
            loaded: Rc::new(Loaded(obj)),
            links: Vec::new(),
            what,
        };
        for (name, entries) in sizes {
            // SAFETY: `obj` is open and not loaded, when a map's size may
            // still change; `name` is NUL-terminated.
            let map = unsafe { bpf::bpf_object__find_map_by_name(me.obj(), name.as_ptr()) };
            let map =
                NonNull::new(map).ok_or_else(|| io::Error::other(format!("{what} has no map {name:?}")))?;
            // SAFETY: `map` belongs to the open object.
            let rc = unsafe { bpf::bpf_map__set_max_entries(map.as_ptr(), *entries) };
            check(rc, &format!("size map {name:?} of {what}"))?;
        }
        // SAFETY: `obj` is a valid, not yet loaded object.
        let rc = unsafe { bpf::bpf_object__load(me.obj()) };
        check(rc, &format!("load {what}"))?;
        Ok(me)
    }

    fn obj(&self) -> *mut bpf::bpf_object {
        self.loaded.0.as_ptr()
    }

    /// Open map `name` as one from `K` to `V`, after checking that the
    /// kernel's key and value sizes are theirs (as aya's `check_kv_size`):
    /// a wrong type is an error here, never a copy past a buffer later.
    ///
    /// # Errors
    /// No such map, or its sizes are not `K`'s and `V`'s.
    pub(crate) fn map<K: Plain, V: Plain>(&self, name: &CStr) -> io::Result<Map<K, V>> {
        // SAFETY: `obj` is loaded and `name` is NUL-terminated.
        let map = unsafe { bpf::bpf_object__find_map_by_name(self.obj(), name.as_ptr()) };
        let map = NonNull::new(map)
            .ok_or_else(|| io::Error::other(format!("{} has no map {name:?}", self.what)))?;
        // SAFETY: `map` belongs to the loaded object, which `self` keeps.
        let (key, value, ty, fd) = unsafe {
            let m = map.as_ptr();
            (
                bpf::bpf_map__key_size(m) as usize,
                bpf::bpf_map__value_size(m) as usize,
                bpf::bpf_map__type(m),
                bpf::bpf_map__fd(m),
            )
        };
        check(fd, "map fd")?;
        let want = (std::mem::size_of::<K>(), std::mem::size_of::<V>());
        if (key, value) != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "map {name:?} of {}: key/value sizes {key}/{value}, not {}/{}",
                    self.what, want.0, want.1
                ),
            ));
        }
        Ok(Map {
            fd,
            percpu: ty == bpf::BPF_MAP_TYPE_PERCPU_ARRAY || ty == bpf::BPF_MAP_TYPE_PERCPU_HASH,
            _obj: self.loaded.clone(),
            _kv: PhantomData,
        })
    }

    fn program(&self, name: &CStr) -> io::Result<NonNull<bpf::bpf_program>> {
        // SAFETY: `obj` is loaded; the name is NUL-terminated.
        let prog = unsafe { bpf::bpf_object__find_program_by_name(self.obj(), name.as_ptr()) };
        NonNull::new(prog).ok_or_else(|| io::Error::other(format!("{} has no program {name:?}", self.what)))
    }

    /// Return the fd of program `name`.
    #[cfg(any(test, feature = "bench"))]
    pub(crate) fn prog_fd(&self, name: &CStr) -> io::Result<RawFd> {
        let prog = self.program(name)?;
        // SAFETY: `prog` belongs to the loaded `obj`.
        let fd = unsafe { bpf::bpf_program__fd(prog.as_ptr()) };
        check(fd, "program fd").map(|()| fd)
    }

    /// Attach program `name` to interface `ifindex` through a bpf_link.
    pub(crate) fn attach_xdp(&mut self, name: &CStr, ifindex: u32) -> io::Result<()> {
        let link = self.new_link(name, ifindex)?;
        self.links.push(Link {
            link,
            pinned: false,
            pending: None,
        });
        Ok(())
    }

    fn new_link(&self, name: &CStr, ifindex: u32) -> io::Result<NonNull<bpf::bpf_link>> {
        let prog = self.program(name)?;
        // SAFETY: `prog` belongs to the loaded `obj`, which outlives the
        // link (Drop destroys the links first).
        let link = unsafe { bpf::bpf_program__attach_xdp(prog.as_ptr(), ifindex as i32) };
        NonNull::new(link).ok_or_else(|| last_err("attach XDP program (is another one attached?)"))
    }

    /// [`Self::attach_xdp`] through a link pinned at `pin` (on a bpffs), so
    /// that it outlives the process. A link the last run pinned there is
    /// taken over: its program goes on until [`Self::go_live`]. Return
    /// whether one was.
    ///
    /// # Errors
    /// The attach failed, or `pin` is not on a bpffs.
    pub(crate) fn attach_xdp_pinned(&mut self, name: &CStr, ifindex: u32, pin: &Path) -> io::Result<bool> {
        let path = cpath(pin)?;
        if pin.exists() {
            // SAFETY: `path` is NUL-terminated; the link returned is ours
            // to destroy.
            let old = unsafe { bpf::bpf_link__open(path.as_ptr()) };
            if let Some(link) = NonNull::new(old) {
                self.links.push(Link {
                    link,
                    pinned: true,
                    pending: Some((ifindex, pin.to_path_buf())),
                });
                return Ok(true);
            }
            // Not a link (any more): start afresh.
            let _ = std::fs::remove_file(pin);
        }
        let link = self.new_link(name, ifindex)?;
        // From here Drop destroys it on every path (unpinned: detached).
        self.links.push(Link {
            link,
            pinned: false,
            pending: None,
        });
        // SAFETY: `link` is valid; `path` is NUL-terminated.
        let rc = unsafe { bpf::bpf_link__pin(link.as_ptr(), path.as_ptr()) };
        check(rc, &format!("pin the XDP link at {}", pin.display()))?;
        if let Some(l) = self.links.last_mut() {
            l.pinned = true;
        }
        Ok(false)
    }

    /// Put program `name` on every link taken over from the last run, in one
    /// atomic swap each: from here this object's maps steer the frames.
    ///
    /// # Errors
    /// A swap failed (that link keeps the old program).
    pub(crate) fn go_live(&mut self, name: &CStr) -> io::Result<()> {
        let prog = self.program(name)?;
        let mut stale = Vec::new();
        for (i, l) in self.links.iter_mut().enumerate() {
            let Some(at) = l.pending.take() else { continue };
            // SAFETY: the link and the program are valid and loaded.
            let rc = unsafe { bpf::bpf_link__update_program(l.link.as_ptr(), prog.as_ptr()) };
            if rc < 0 {
                // A pin whose attachment is gone (its interface was made
                // anew): attach afresh in its place.
                stale.push((i, at));
            }
        }
        for (i, (ifindex, pin)) in stale.into_iter().rev() {
            let mut old = self.links.remove(i);
            // Unpinned, dropping it detaches whatever is left of it.
            let _ = std::fs::remove_file(&pin);
            old.pinned = false;
            drop(old);
            self.attach_xdp_pinned(name, ifindex, &pin)?;
        }
        Ok(())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // SAFETY: the link is valid, owned here and freed once. A pinned
        // one is disconnected first: destroying it then only closes our
        // fd, and the attachment stays.
        unsafe {
            if self.pinned {
                bpf::bpf_link__disconnect(self.link.as_ptr());
            }
            bpf::bpf_link__destroy(self.link.as_ptr());
        }
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // The links before `loaded` (a later field) may close the object
        // they reference.
        self.links.clear();
    }
}

fn cpath(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other(format!("{}: a NUL in the path", p.display())))
}

/// Detach and remove every XDP link pinned in `dir` (a real shutdown of a
/// director that keeps its program across restarts); return how many.
///
/// # Errors
/// `dir` cannot be read, or a link could not be detached.
pub fn unpin_links(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)?.flatten() {
        let path = e.path();
        if !e.file_name().to_string_lossy().starts_with("link-") {
            continue;
        }
        let c = cpath(&path)?;
        // SAFETY: `c` is NUL-terminated; the link returned is ours.
        let link = unsafe { bpf::bpf_link__open(c.as_ptr()) };
        if let Some(link) = NonNull::new(link) {
            // SAFETY: `link` is valid; destroyed once here.
            let rc = unsafe {
                let rc = bpf::bpf_link__detach(link.as_ptr());
                bpf::bpf_link__destroy(link.as_ptr());
                rc
            };
            check(rc, &format!("detach {}", path.display()))?;
            n += 1;
        }
        std::fs::remove_file(&path)?;
    }
    Ok(n)
}

fn ptr<T>(v: &T) -> *const c_void {
    (v as *const T).cast()
}

/// Plain data the kernel copies in and out of a map byte for byte.
///
/// # Safety
/// Implement only for types that hold no pointers, have no padding and are
/// valid for every bit pattern (integers, arrays of them, `repr(C)`
/// structs of them without gaps).
pub(crate) unsafe trait Plain: Copy + 'static {}

// SAFETY: integers and arrays of integers: no padding, every bit pattern valid.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl Plain for u64 {}
// SAFETY: as above.
unsafe impl<const N: usize> Plain for [u8; N] {}
// SAFETY: as above.
unsafe impl<const N: usize> Plain for [u64; N] {}

/// A map of a loaded object, from `K` to `V`, whose sizes were checked
/// against the kernel's at open ([`Object::map`]). It keeps the object
/// loaded, so its fd stays the map's.
pub(crate) struct Map<K, V> {
    fd: RawFd,
    percpu: bool,
    _obj: Rc<Loaded>,
    _kv: PhantomData<fn(K) -> V>,
}

impl<K, V> std::fmt::Debug for Map<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl<K: Plain, V: Plain> Map<K, V> {
    /// Set `key` to `value` (`what` names the change in errors).
    ///
    /// # Errors
    /// The kernel refused it, or the map is per-CPU (a value per CPU).
    pub(crate) fn update(&self, key: &K, value: &V, what: &str) -> io::Result<()> {
        if self.percpu {
            return Err(io::Error::other(format!("{what}: per-CPU map")));
        }
        // SAFETY: both pointers are valid for the call and point to values of
        // the key and value sizes the kernel declared (checked at open); it
        // copies exactly that many bytes.
        let rc = unsafe { bpf::bpf_map_update_elem(self.fd, ptr(key), ptr(value), u64::from(bpf::BPF_ANY)) };
        check(rc, what)
    }

    /// Delete `key`; a key already gone is fine.
    pub(crate) fn delete(&self, key: &K) {
        // SAFETY: the pointer is valid for the call and K's size is the
        // map's key size (checked at open).
        let _ = unsafe { bpf::bpf_map_delete_elem(self.fd, ptr(key)) };
    }

    /// Delete `key`, returning what it held (`None`: it was not there).
    pub(crate) fn take(&self, key: &K) -> Option<V>
    where
        V: Default,
    {
        let mut v = V::default();
        // SAFETY: `key` has the map's key size and `v` its value size
        // (checked at open); the kernel writes exactly one value into `v`.
        let rc = unsafe { bpf::bpf_map_lookup_and_delete_elem(self.fd, ptr(key), (&mut v as *mut V).cast()) };
        (rc == 0).then_some(v)
    }

    /// Set each of `keys` to its value in `values`, in one syscall; return
    /// how many were stored (a full map stops the batch there).
    pub(crate) fn update_batch(&self, keys: &[K], values: &[V]) -> io::Result<usize> {
        let n = keys.len().min(values.len());
        if n == 0 || self.percpu {
            return Ok(0);
        }
        let mut count = n as u32;
        let opts = batch_opts();
        // SAFETY: `keys` and `values` hold at least `count` elements of the
        // map's checked key and value sizes; the kernel reads that many and
        // writes back in `count` how many it took.
        let rc = unsafe {
            bpf::bpf_map_update_batch(
                self.fd,
                keys.as_ptr().cast(),
                values.as_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        if rc < 0 && count == 0 {
            return Err(last_err("update batch"));
        }
        Ok(count as usize)
    }

    /// Delete `keys` in one syscall; keys already gone are skipped.
    pub(crate) fn delete_batch(&self, keys: &[K]) {
        // The batch stops at the first key that is not there: delete one by
        // one past it.
        let mut rest = keys;
        while !rest.is_empty() {
            let mut count = rest.len() as u32;
            let opts = batch_opts();
            // SAFETY: `rest` holds `count` keys of the map's key size.
            let rc = unsafe { bpf::bpf_map_delete_batch(self.fd, rest.as_ptr().cast(), &mut count, &opts) };
            let done = if rc < 0 {
                count as usize + 1
            } else {
                count as usize
            };
            rest = &rest[done.min(rest.len())..];
        }
    }

    /// Read the whole map into `keys` and `values` (cleared first), in
    /// batches of `chunk` entries a syscall.
    ///
    /// # Errors
    /// The kernel refused a batch.
    pub(crate) fn read_all(&self, keys: &mut Vec<K>, values: &mut Vec<V>, chunk: usize) -> io::Result<()> {
        keys.clear();
        values.clear();
        let chunk = chunk.max(1);
        // The kernel's opaque batch cursor for hash maps is a u32 bucket.
        let (mut cursor, mut next) = (0u32, 0u32);
        let mut first = true;
        loop {
            let at = keys.len();
            keys.reserve(chunk);
            values.reserve(chunk);
            let mut count = chunk as u32;
            let opts = batch_opts();
            let in_batch: *mut c_void = if first {
                std::ptr::null_mut()
            } else {
                (&mut cursor as *mut u32).cast()
            };
            // SAFETY: the spare capacity of `keys` and `values` holds
            // `chunk` elements of the checked sizes; the kernel writes at
            // most `count` of each and says how many; the cursors are u32s
            // as the hash map's batch ops use.
            let rc = unsafe {
                bpf::bpf_map_lookup_batch(
                    self.fd,
                    in_batch,
                    (&mut next as *mut u32).cast(),
                    keys.as_mut_ptr().add(at).cast(),
                    values.as_mut_ptr().add(at).cast(),
                    &mut count,
                    &opts,
                )
            };
            let err = (rc < 0).then(std::io::Error::last_os_error);
            let got = (count as usize).min(chunk);
            // SAFETY: the kernel wrote `got` initialised elements past `at`
            // in both vectors; K and V are Plain (every bit pattern valid).
            unsafe {
                keys.set_len(at + got);
                values.set_len(at + got);
            }
            match err {
                None => {}
                // ENOENT: the walk is over.
                Some(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Some(e) => return Err(io::Error::other(format!("read map: {e}"))),
            }
            cursor = next;
            first = false;
        }
    }
}

fn batch_opts() -> bpf::bpf_map_batch_opts {
    bpf::bpf_map_batch_opts {
        sz: std::mem::size_of::<bpf::bpf_map_batch_opts>() as _,
        elem_flags: 0,
        flags: 0,
    }
}

impl<K: Plain, const N: usize> Map<K, [u64; N]> {
    /// Read `key` of a per-CPU map of `N` u64 fields and sum each field over
    /// the CPUs.
    ///
    /// # Errors
    /// The map is not per-CPU, or the read failed.
    pub(crate) fn percpu_sum(&self, key: &K) -> io::Result<[u64; N]> {
        if !self.percpu {
            return Err(io::Error::other("not a per-CPU map"));
        }
        // SAFETY: libbpf_num_possible_cpus only reads sysfs.
        let cpus = unsafe { bpf::libbpf_num_possible_cpus() };
        check(cpus, "possible CPUs")?;
        // The kernel writes one value per possible CPU, each rounded up to
        // 8 bytes: [u64; N] is exactly that.
        let mut values = vec![[0u64; N]; cpus as usize];
        // SAFETY: `values` holds one checked-size value per possible CPU,
        // which is what a per-CPU map returns; `key` has the key size.
        let rc = unsafe { bpf::bpf_map_lookup_elem(self.fd, ptr(key), values.as_mut_ptr().cast()) };
        check(rc, "read per-CPU counter")?;
        let mut sum = [0u64; N];
        for v in &values {
            for (s, x) in sum.iter_mut().zip(v) {
                *s += x;
            }
        }
        Ok(sum)
    }
}

#[cfg(feature = "bench")]
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

#[cfg(any(test, feature = "bench"))]
/// Run program `prog_fd` once over `frame` (plain `BPF_PROG_RUN`, no live
/// frames: nothing is sent) and write what it made of the frame into `out`;
/// return the program's verdict and the output's length.
pub(crate) fn run_once(prog_fd: RawFd, frame: &[u8], out: &mut [u8]) -> io::Result<(u32, usize)> {
    let mut opts = bpf::bpf_test_run_opts {
        sz: std::mem::size_of::<bpf::bpf_test_run_opts>() as _,
        data_in: frame.as_ptr().cast(),
        data_size_in: frame.len() as u32,
        data_out: out.as_mut_ptr().cast(),
        data_size_out: out.len() as u32,
        repeat: 1,
        ..Default::default()
    };
    // SAFETY: `opts` describes `frame` and `out`, both of which outlive the
    // call; the kernel writes at most `data_size_out` bytes into `out` and
    // says how many in `data_size_out`.
    let rc = unsafe { bpf::bpf_prog_test_run_opts(prog_fd, &mut opts) };
    check(rc, "BPF_PROG_RUN")?;
    Ok((opts.retval, (opts.data_size_out as usize).min(out.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    static STEER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

    /// Needs CAP_BPF (root), as every namespace test here.
    #[test]
    fn maps_open_only_with_their_kernel_sizes() {
        let obj = Object::load(STEER, "steering program", &[]).unwrap();
        let links: Map<u32, u32> = obj.map(c"links").unwrap();
        links.update(&7, &0, "test").unwrap();
        let e = obj.map::<u64, u32>(c"links").unwrap_err();
        assert!(e.to_string().contains("key/value sizes 4/4, not 8/4"), "{e}");
        assert!(obj.map::<u32, u32>(c"nope").is_err());
        #[cfg(feature = "bench")]
        {
            // A per-CPU map is read per CPU, never updated as one value.
            static BENCH: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench.bpf.o"));
            let bench = Object::load(BENCH, "benchmark programs", &[]).unwrap();
            let counts: Map<u32, [u64; 1]> = bench.map(c"sink_count").unwrap();
            assert_eq!(counts.percpu_sum(&0).unwrap(), [0]);
            assert!(counts.update(&0, &[1], "test").is_err());
        }
        // The map outlives the object it came from and still works.
        drop(obj);
        links.update(&8, &1, "after the object").unwrap();
    }
}
