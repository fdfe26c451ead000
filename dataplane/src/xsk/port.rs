//! One AF_XDP socket on one queue, with its own UMEM, as a [`PacketIo`].
//!
//! Frame ownership: every UMEM frame is, at any time, in exactly one of the
//! fill ring, the RX ring, our hands during one `poll`, the TX ring, the
//! completion ring, or `spare`. Received frames are rewritten in place and sent
//! on the same socket (no copy); dropped frames and completed TX frames go
//! back to the fill ring.

use crate::frame::{Batch, Frame, PacketIo, Verdict};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use xsk_rs::config::{BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig};
use xsk_rs::umem::frame::DataMut;
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// One UMEM frame we own: not `Copy` (xsk-rs's `FrameDesc` is), so a frame
/// moves from one place to the next and cannot be put on two rings.
#[repr(transparent)]
struct Token(FrameDesc);

impl Token {
    /// Take ownership of descriptors a ring (or the UMEM's creation) handed
    /// back: the only way a token comes to be.
    fn claim(descs: &[FrameDesc]) -> impl Iterator<Item = Token> + '_ {
        descs.iter().map(|&d| Token(d))
    }
}

/// View owned tokens as the descriptors a ring's `produce` reads.
fn descs(tokens: &[Token]) -> &[FrameDesc] {
    // SAFETY: Token is repr(transparent) over FrameDesc, so a slice of one
    // has the layout of a slice of the other; the borrow keeps the tokens
    // alive and unchanged for the slice's life.
    unsafe { std::slice::from_raw_parts(tokens.as_ptr().cast(), tokens.len()) }
}

/// Return the longest frame (Ethernet header on) a UMEM frame holds: its
/// 2 KiB less the kernel's XDP headroom. The kernel drops longer frames
/// before they reach the socket; multi-buffer AF_XDP (frames over several
/// UMEM frames) is not used.
pub fn max_frame_len() -> usize {
    (FRAME_SIZE - XDP_PACKET_HEADROOM) as usize
}

/// Bytes of one UMEM frame. libxdp's default is a 4 KiB page; 2 KiB holds
/// any 1500-byte-MTU frame after the kernel's headroom, and halves the
/// locked memory, so the default 4096 frames are 8 MiB: the default
/// `ulimit -l`, which a non-root service can then live with.
pub const FRAME_SIZE: u32 = 2048;

/// Headroom the kernel keeps before each received frame
/// (`XDP_PACKET_HEADROOM` of `linux/bpf.h`).
const XDP_PACKET_HEADROOM: u32 = 256;

/// Zero-copy or copy mode for the socket bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Let the kernel pick: zero-copy where the driver has it, else copy.
    #[default]
    Auto,
    /// Force copy mode.
    Copy,
    /// Require zero-copy (fails on drivers without it, e.g. veth).
    ZeroCopy,
}

/// Sizes of one socket's UMEM and rings.
#[derive(Debug, Clone, Copy)]
pub struct PortConfig {
    /// UMEM frames (each 2048 bytes).
    pub frames: u32,
    /// RX and TX ring sizes (power of two).
    pub ring: u32,
    /// Frames handled per poll.
    pub batch: usize,
    /// Bind mode.
    pub mode: BindMode,
    /// Bind with `XDP_USE_NEED_WAKEUP`: syscalls only when the kernel asks.
    /// Off, every batch that sent something kicks TX.
    pub need_wakeup: bool,
    /// Preferred busy polling: how long (µs) the kernel may spin in one of
    /// our syscalls; 0 leaves NAPI to interrupts.
    pub busy_poll_us: u32,
    /// Packets per busy-poll run.
    pub busy_poll_budget: u32,
    /// Receive as well as send. Off (a generator's sender), no frame goes to
    /// the fill ring: every frame of the UMEM is there to send.
    pub rx: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        // 4096 frames of 2 KiB = 8 MiB of UMEM, which is also the default
        // `ulimit -l`, so a non-root service with the default limit works.
        Self {
            frames: 4096,
            ring: 2048,
            batch: 64,
            mode: BindMode::Auto,
            need_wakeup: true,
            busy_poll_us: 0,
            busy_poll_budget: 64,
            rx: true,
        }
    }
}

/// One worker's AF_XDP sockets: one per interface (link), all on the same
/// queue and sharing one UMEM, so a frame received on one link is sent on
/// another without a copy (NAT and DR on a two-armed director).
pub struct Port {
    // Field order is drop order: rings before the UMEM they point into.
    links: Vec<Link>,
    umem: Umem,
    /// Scratch descriptors for one batch; sized once, never grown.
    rx_descs: Vec<FrameDesc>,
    comp_descs: Vec<FrameDesc>,
    /// Frames owned by us and not yet back on a fill ring.
    spare: Vec<Token>,
    /// Frames kept out of the fill rings for frames other workers hand us.
    reserve: usize,
    /// Frames of the UMEM.
    frames: usize,
    need_wakeup: bool,
    /// Busy polling runs NAPI only inside our syscalls: make one per batch.
    busy_poll: bool,
}

/// The four rings of one socket.
struct Link {
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    /// Frames to send on this link this batch.
    tx_descs: Vec<Token>,
    /// Frames on the TX ring whose completion we have not seen.
    in_flight: usize,
    /// Frames given to the fill ring and not yet received back.
    in_fill: usize,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("fds", &self.fds())
            .finish_non_exhaustive()
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl Port {
    /// Bind a socket to queue `queue` of each interface in `ifnames`, all on
    /// one UMEM. The caller's steering program must redirect to them (see
    /// [`crate::xsk::Steer::set_socket`]): libxdp's own program is never
    /// loaded.
    ///
    /// # Errors
    /// UMEM or socket creation failed (no AF_XDP, no such queue, memlock).
    pub fn open(ifnames: &[String], queue: u32, cfg: &PortConfig) -> io::Result<Self> {
        let q = |n: u32| QueueSize::new(n).map_err(|e| err("ring size", e));
        let ring = cfg.frames.next_power_of_two();
        let frame_size = FrameSize::new(FRAME_SIZE).map_err(|e| err("frame size", e))?;
        let umem_cfg = UmemConfig::builder()
            .frame_size(frame_size)
            .fill_queue_size(q(ring)?)
            .comp_queue_size(q(ring)?)
            .build()
            .map_err(|e| err("UMEM config", e))?;
        let count = cfg.frames.try_into().map_err(|e| err("frame count", e))?;
        let (umem, frames) = Umem::new(umem_cfg, count, false).map_err(|e| err("UMEM", e))?;
        let mut bind = if cfg.need_wakeup {
            BindFlags::XDP_USE_NEED_WAKEUP
        } else {
            BindFlags::empty()
        };
        match cfg.mode {
            BindMode::Auto => {}
            BindMode::Copy => bind |= BindFlags::XDP_COPY,
            BindMode::ZeroCopy => bind |= BindFlags::XDP_ZEROCOPY,
        }
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(q(cfg.ring)?)
            .tx_queue_size(q(cfg.ring)?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        let mut links = Vec::with_capacity(ifnames.len());
        for ifname in ifnames {
            let iface = ifname.parse().map_err(|e| err("interface name", e))?;
            // SAFETY: each (interface, queue) pair is bound once from this
            // UMEM, and INHIBIT_PROG_LOAD is set, as sharing a UMEM requires.
            let socket = unsafe { Socket::new(sock_cfg, &umem, &iface, queue) };
            let (tx, rx, rings) = socket.map_err(|e| {
                let cause = std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
                io::Error::other(format!("AF_XDP socket on {ifname} queue {queue}: {e}{cause}"))
            })?;
            let (fq, cq) = rings.ok_or_else(|| io::Error::other("UMEM returned no fill/completion ring"))?;
            // Best effort: kernels before 6.17 have no such option and send
            // 32 a kick, as before.
            let _ = tx_budget(rx.fd().as_raw_fd(), tx_budget_for(cfg));
            if cfg.busy_poll_us > 0 {
                busy_poll(rx.fd().as_raw_fd(), cfg.busy_poll_us, cfg.busy_poll_budget)
                    .map_err(|e| io::Error::other(format!("busy polling on {ifname}: {e}")))?;
            }
            links.push(Link {
                tx,
                rx,
                fq,
                cq,
                // Received frames of every link, plus injected ones.
                tx_descs: Vec::with_capacity(2 * cfg.batch * ifnames.len()),
                in_flight: 0,
                in_fill: 0,
            });
        }
        // `spare` can hold every frame, so pushing to it never allocates.
        let mut spare = Vec::with_capacity(frames.len());
        spare.extend(Token::claim(&frames));
        let mut port = Self {
            links,
            umem,
            rx_descs: vec![FrameDesc::default(); cfg.batch],
            comp_descs: vec![FrameDesc::default(); ring as usize],
            spare,
            reserve: if cfg.rx { cfg.batch } else { frames.len() },
            frames: frames.len(),
            need_wakeup: cfg.need_wakeup,
            busy_poll: cfg.busy_poll_us > 0,
        };
        port.refill();
        Ok(port)
    }

    /// Return the frames on TX rings whose completion has not come back.
    pub fn in_flight(&self) -> usize {
        self.links.iter().map(|l| l.in_flight).sum()
    }

    /// Return each link's socket file descriptor (for the XSKMAP).
    pub fn fds(&self) -> Vec<RawFd> {
        self.links.iter().map(|l| l.rx.fd().as_raw_fd()).collect()
    }

    /// Top each link's fill ring up to its share of the frames (those not
    /// kept in reserve): a link gets back as many as it received, so a
    /// link that receives less never hoards frames another one starves for.
    /// (An even split of every batch of spare frames did: on a two-armed
    /// NAT director the rounding sent the odd frame to link 0 each time,
    /// until link 0's fill ring held them all and the replies arriving on
    /// link 1 found no frame.)
    fn refill(&mut self) {
        let target = self.frames.saturating_sub(self.reserve) / self.links.len().max(1);
        for link in &mut self.links {
            let n = target
                .saturating_sub(link.in_fill)
                .min(self.spare.len().saturating_sub(self.reserve));
            if n == 0 {
                continue;
            }
            let from = self.spare.len() - n;
            // SAFETY: frames in `spare` are ours (from RX drops, completions
            // or the start) and on no ring; produce() takes a prefix of the
            // slice, which we then remove from `spare`.
            let k = unsafe { link.fq.produce(descs(&self.spare[from..])) };
            self.spare.drain(from..from + k);
            link.in_fill += k;
        }
    }

    /// Move completed TX frames back to the fill rings.
    fn recycle(&mut self) {
        for link in &mut self.links {
            // SAFETY: the completion ring hands back frames of this UMEM that
            // the kernel has finished sending; we own them from here on.
            let n = unsafe { link.cq.consume(&mut self.comp_descs) };
            link.in_flight -= n.min(link.in_flight);
            self.spare.extend(Token::claim(&self.comp_descs[..n]));
        }
        self.refill();
    }
}

/// A received UMEM frame. Its data segment can grow up to the frame size;
/// the descriptor's length follows (xsk-rs keeps it with the cursor).
struct UmemFrame<'a>(DataMut<'a>);

impl Frame for UmemFrame<'_> {
    fn bytes(&mut self) -> &mut [u8] {
        self.0.contents_mut()
    }

    fn push_front(&mut self, n: usize) -> bool {
        let len = self.0.contents().len();
        let mut cursor = self.0.cursor();
        if len + n > cursor.buf_len() {
            return false;
        }
        cursor.set_pos(len + n);
        // xsk-rs hides the descriptor's address, so the headroom before the
        // packet cannot be claimed; the bytes move on instead (one memmove).
        self.0.contents_mut().copy_within(0..len, n);
        true
    }

    fn truncate(&mut self, len: usize) -> bool {
        let mut cursor = self.0.cursor();
        len <= cursor.pos() && {
            cursor.set_pos(len);
            true
        }
    }
}

impl PacketIo for Port {
    fn inject(&mut self, bytes: &[u8], link: u8, mut f: impl FnMut(&mut dyn Frame, u8) -> Verdict) -> bool {
        let Some(mut desc) = self.spare.pop() else {
            return false;
        };
        let verdict = {
            // SAFETY: `desc` came from `spare`: a frame of this UMEM that we
            // own and that is on no ring.
            let mut data = unsafe { self.umem.data_mut(&mut desc.0) };
            let mut cursor = data.cursor();
            cursor.set_pos(0);
            if std::io::Write::write_all(&mut cursor, bytes).is_err() {
                None
            } else {
                Some(f(&mut UmemFrame(data), link))
            }
        };
        match verdict {
            Some(Verdict::Tx(out)) if usize::from(out) < self.links.len() => {
                let link = &mut self.links[usize::from(out)];
                if link.tx_descs.len() < link.tx_descs.capacity() {
                    link.tx_descs.push(desc);
                    return true;
                }
                self.spare.push(desc);
            }
            Some(_) => self.spare.push(desc),
            None => {
                self.spare.push(desc);
                return false;
            }
        }
        true
    }

    fn poll(&mut self, mut f: impl FnMut(&mut dyn Frame, u8) -> Verdict) -> Batch {
        self.recycle();
        let mut b = Batch::default();
        let nlinks = self.links.len();
        for l in 0..nlinks {
            // SAFETY: descriptors filled by the RX ring name frames of this
            // UMEM that the kernel has handed to us.
            let n = unsafe { self.links[l].rx.consume(&mut self.rx_descs) };
            b.rx += n;
            let link = &mut self.links[l];
            link.in_fill = link.in_fill.saturating_sub(n);
            for mut tok in Token::claim(&self.rx_descs[..n]) {
                // SAFETY: we own this frame until it goes on a TX or fill
                // ring, and no other reference to it exists during this call.
                let mut frame = UmemFrame(unsafe { self.umem.data_mut(&mut tok.0) });
                match f(&mut frame, l as u8) {
                    Verdict::Tx(out) if usize::from(out) < nlinks => {
                        self.links[usize::from(out)].tx_descs.push(tok)
                    }
                    _ => self.spare.push(tok),
                }
            }
        }
        for link in &mut self.links {
            if !link.tx_descs.is_empty() {
                // SAFETY: each descriptor is a frame we own, rewritten in
                // place; it goes on one TX ring once and is not touched until
                // its completion.
                let k = unsafe { link.tx.produce(descs(&link.tx_descs)) };
                link.in_flight += k;
                b.tx += k;
                b.tx_full += link.tx_descs.len() - k;
                // The first k are the kernel's now; the rest come back to us.
                self.spare.extend(link.tx_descs.drain(k..));
                link.tx_descs.clear();
            }
            // Copy mode sends only from sendto(): kick once per batch, and
            // only when frames wait and the kernel asked for a wakeup.
            if link.in_flight > 0 && (!self.need_wakeup || link.tx.needs_wakeup()) {
                let _ = link.tx.wakeup();
            } else if self.busy_poll || (b.rx == 0 && link.fq.needs_wakeup()) {
                let _ = link.fq.wakeup(link.rx.fd_mut(), 0);
            }
        }
        b
    }
}

/// Frames one TX kick may send in copy mode: every frame a batch can queue
/// on one link (a batch received plus as many handed over) and as much
/// backlog again, within the ring. The kernel's default is 32 a call,
/// which a batch of 64 outruns: under load the TX ring filled and half of
/// what was received was dropped as `tx_full` (measured: 0.93 Mpps in,
/// 0.49 out, with one kick per batch as the hot path allows).
fn tx_budget_for(cfg: &PortConfig) -> u32 {
    (4 * cfg.batch as u32).clamp(32, cfg.ring)
}

/// Let one `sendto` on socket `fd` send up to `budget` frames in copy mode
/// (`XDP_MAX_TX_SKB_BUDGET`, Linux 6.17; from 32 to the TX ring's size).
fn tx_budget(fd: RawFd, budget: u32) -> io::Result<()> {
    // linux/socket.h and linux/if_xdp.h; the libc crate has neither for
    // every target.
    const SOL_XDP: libc::c_int = 283;
    const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
    set_int(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, budget)
}

/// Turn on preferred busy polling of one socket: the kernel stops running the
/// queue's NAPI from interrupts while we poll, and spins up to `us` in each
/// of our syscalls instead.
fn busy_poll(fd: RawFd, us: u32, budget: u32) -> io::Result<()> {
    // The generic socket option numbers of the UAPI (asm-generic/socket.h);
    // the libc crate does not export the last two for every target.
    const SO_BUSY_POLL: libc::c_int = 46;
    const SO_PREFER_BUSY_POLL: libc::c_int = 69;
    const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
    for (opt, val) in [
        (SO_PREFER_BUSY_POLL, 1),
        (SO_BUSY_POLL, us),
        (SO_BUSY_POLL_BUDGET, budget),
    ] {
        set_int(fd, libc::SOL_SOCKET, opt, val)?;
    }
    Ok(())
}

/// Set socket option `opt` of `level` on `fd` to `val`, an int as the
/// kernel reads these options.
fn set_int(fd: RawFd, level: libc::c_int, opt: libc::c_int, val: u32) -> io::Result<()> {
    let val = libc::c_int::try_from(val).map_err(|_| io::Error::other("value too large"))?;
    // SAFETY: `fd` is an open socket we own; the value is a c_int that
    // lives across the call and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            std::ptr::from_ref(&val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
