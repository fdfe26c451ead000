//! One AF_XDP socket on one queue, with its own UMEM, as a [`PacketIo`].
//!
//! Frame ownership: every UMEM frame is, at any time, in exactly one of the
//! fill ring, the RX ring, our hands during one `poll`, the TX ring, the
//! completion ring, or `spare`. Received frames are rewritten in place and sent
//! on the same socket (no copy); dropped frames and completed TX frames go
//! back to the fill ring.

use crate::worker::{Batch, PacketIo, Verdict};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use xsk_rs::config::{BindFlags, LibxdpFlags, QueueSize, SocketConfig, UmemConfig};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

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
        }
    }
}

/// One AF_XDP socket with its UMEM and four rings.
pub struct Port {
    // Field order is drop order: rings before the UMEM they point into.
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    umem: Umem,
    /// Scratch descriptors for one batch; sized once, never grown.
    rx_descs: Vec<FrameDesc>,
    tx_descs: Vec<FrameDesc>,
    comp_descs: Vec<FrameDesc>,
    /// Frames owned by us and not yet back on the fill ring.
    spare: Vec<FrameDesc>,
    /// Frames on the TX ring whose completion we have not seen.
    in_flight: usize,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("fd", &self.fd())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl Port {
    /// Bind a socket to `ifname` queue `queue`. The caller's steering program
    /// must redirect to it (see [`crate::xsk::Steer::set_socket`]): libxdp's
    /// own program is never loaded.
    ///
    /// # Errors
    /// UMEM or socket creation failed (no AF_XDP, no such queue, memlock).
    pub fn open(ifname: &str, queue: u32, cfg: &PortConfig) -> io::Result<Self> {
        let q = |n: u32| QueueSize::new(n).map_err(|e| err("ring size", e));
        let umem_cfg = UmemConfig::builder()
            .fill_queue_size(q(cfg.frames.next_power_of_two())?)
            .comp_queue_size(q(cfg.frames.next_power_of_two())?)
            .build()
            .map_err(|e| err("UMEM config", e))?;
        let count = cfg.frames.try_into().map_err(|e| err("frame count", e))?;
        let (umem, frames) = Umem::new(umem_cfg, count, false).map_err(|e| err("UMEM", e))?;
        let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
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
        let iface = ifname.parse().map_err(|e| err("interface name", e))?;
        // SAFETY: this UMEM is new and not shared, so the (interface, queue)
        // pair is bound from it once; INHIBIT_PROG_LOAD is set regardless.
        let socket = unsafe { Socket::new(sock_cfg, &umem, &iface, queue) };
        let (tx, rx, rings) = socket.map_err(|e| {
            let cause = std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
            io::Error::other(format!("AF_XDP socket on {ifname} queue {queue}: {e}{cause}"))
        })?;
        let (mut fq, cq) = rings.ok_or_else(|| io::Error::other("UMEM returned no fill/completion ring"))?;
        // SAFETY: every descriptor comes from this UMEM and none is on any
        // ring yet; each is handed to the fill ring once.
        let filled = unsafe { fq.produce(&frames) };
        // `spare` can hold every frame, so pushing to it never allocates.
        let mut spare = Vec::with_capacity(frames.len());
        spare.extend_from_slice(&frames[filled..]);
        Ok(Self {
            tx,
            rx,
            fq,
            cq,
            umem,
            rx_descs: vec![FrameDesc::default(); cfg.batch],
            tx_descs: Vec::with_capacity(cfg.batch),
            comp_descs: vec![FrameDesc::default(); cfg.ring as usize],
            spare,
            in_flight: 0,
        })
    }

    /// Return the socket's file descriptor (for the XSKMAP).
    pub fn fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// Move completed TX frames, and spare ones, back to the fill ring.
    fn recycle(&mut self) {
        // SAFETY: the completion ring hands back frames of this UMEM that the
        // kernel has finished sending; we own them from here on.
        let n = unsafe { self.cq.consume(&mut self.comp_descs) };
        self.in_flight -= n.min(self.in_flight);
        self.spare.extend_from_slice(&self.comp_descs[..n]);
        if !self.spare.is_empty() {
            // SAFETY: frames in `spare` are ours (from RX drops or completions)
            // and are on no ring; produce() takes a prefix, which we forget.
            let k = unsafe { self.fq.produce(&self.spare) };
            self.spare.drain(..k);
        }
    }
}

impl PacketIo for Port {
    fn poll(&mut self, mut f: impl FnMut(&mut [u8]) -> Verdict) -> Batch {
        self.recycle();
        // SAFETY: descriptors filled by the RX ring name frames of this UMEM
        // that the kernel has handed to us.
        let n = unsafe { self.rx.consume(&mut self.rx_descs) };
        let mut b = Batch {
            rx: n,
            ..Batch::default()
        };
        self.tx_descs.clear();
        for desc in &mut self.rx_descs[..n] {
            // SAFETY: we own this frame until it goes on the TX or fill ring,
            // and no other reference to it exists during this call.
            let mut data = unsafe { self.umem.data_mut(desc) };
            match f(data.contents_mut()) {
                Verdict::Tx => self.tx_descs.push(*desc),
                Verdict::Drop(_) => self.spare.push(*desc),
            }
        }
        if !self.tx_descs.is_empty() {
            // SAFETY: each descriptor is a frame we own, rewritten in place;
            // it is put on the TX ring once and not touched until completion.
            let k = unsafe { self.tx.produce(&self.tx_descs) };
            self.in_flight += k;
            b.tx = k;
            b.tx_full = self.tx_descs.len() - k;
            self.spare.extend_from_slice(&self.tx_descs[k..]);
        }
        // Copy mode sends only from sendto(): kick once per batch, and only
        // when frames wait and the kernel asked for a wakeup.
        if self.in_flight > 0 && self.tx.needs_wakeup() {
            let _ = self.tx.wakeup();
        } else if n == 0 && self.fq.needs_wakeup() {
            let _ = self.fq.wakeup(self.rx.fd_mut(), 0);
        }
        b
    }
}
