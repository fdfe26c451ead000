//! IPVS connection synchronisation on the wire, byte-compatible with the
//! kernel's sync daemon (`net/netfilter/ipvs/ip_vs_sync.c`): the master
//! multicasts connection state, the backup keeps a copy, so that after a
//! failover the same connections go to the same real servers.
//!
//! Pure: messages in, entries out, and back. No sockets, no clock, no
//! connection table (the daemon's sync threads and the workers do those).
//!
//! - Version 1 (what is sent): an 8-byte header `{reserved 0, syncid, size,
//!   nr_conns, version 1, spare 0}` and 4-byte aligned entries of 36 bytes
//!   (IPv4) or 72 (IPv6), each with optional parameters after its addresses.
//! - Version 0 (received too): a 4-byte header `{nr_conns, syncid, size}`
//!   and 24-byte IPv4 entries (48 with sequence options), no timeout.
//!
//! The receiver's rules are the kernel's: the datagram's length must equal
//! the header's size; a backup with a syncid other than 0 takes only its
//! own; an entry of an unknown type or version, or options that do not add
//! up, drop the rest of the datagram; an unknown mandatory option drops
//! only its entry, an unknown optional one (bit 0x40) is skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kernel's default group, 224.0.0.81.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The kernel's default port.
pub const PORT: u16 = 8848;
/// The kernel's default multicast TTL.
pub const TTL: u8 = 1;
/// A v1 header.
pub const HEADER_LEN: usize = 8;
/// A v1 IPv4 entry without options.
pub const V4_LEN: usize = 36;
/// A v1 IPv6 entry without options.
pub const V6_LEN: usize = 72;
/// A v0 header.
const V0_HEADER_LEN: usize = 4;
/// A v0 entry, and one with sequence options.
const V0_LEN: usize = 24;
const V0_FULL_LEN: usize = 48;
/// The master's default payload: 1500 less the IPv4 and UDP headers.
pub const DEFAULT_MAXLEN: usize = 1472;

/// Connection flags (`IP_VS_CONN_F_*`) as they travel.
pub mod flags {
    /// Forwarding method bits.
    pub const FWD_MASK: u32 = 0x0007;
    /// NAT.
    pub const MASQ: u32 = 0;
    /// TUN.
    pub const TUNNEL: u32 = 2;
    /// DR.
    pub const DROUTE: u32 = 3;
    /// Set by the receiver on what it learnt.
    pub const SYNC: u32 = 0x0020;
    /// Always cleared by the sender.
    pub const HASHED: u32 = 0x0040;
    /// Every method but NAT.
    pub const NOOUTPUT: u32 = 0x0080;
    /// Not established.
    pub const INACTIVE: u32 = 0x0100;
    /// Sequence adjustment in use (a SEQ option follows).
    pub const SEQ_MASK: u32 = 0x0600;
    /// Client port not known yet.
    pub const NO_CPORT: u32 = 0x0800;
    /// A persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet scheduling: never synced.
    pub const ONE_PACKET: u32 = 0x2000;
    /// What a v1 receiver keeps of the wire flags.
    pub const BACKUP_MASK: u32 = 0x1f87;
    /// What an update of a known entry may change.
    pub const BACKUP_UPD_MASK: u32 = 0x0700;
}

/// Option types (`IPVS_OPT_*`).
const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
/// An option with this bit may be skipped by a receiver that does not know
/// it.
const OPT_F_PARAM: u8 = 0x40;

/// One synced connection (or persistence template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// IP protocol.
    pub protocol: u8,
    /// `IP_VS_CONN_F_*` ([`flags`]).
    pub flags: u32,
    /// Protocol state (TCP: 1 ESTABLISHED, 4 FIN_WAIT, …).
    pub state: u16,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real server port.
    pub dport: u16,
    /// Firewall mark of the service (0: none).
    pub fwmark: u32,
    /// The state's full timeout in seconds (0 from a v0 sender: use the
    /// backup's own table).
    pub timeout: u32,
    /// Client address.
    pub caddr: IpAddr,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Real server address.
    pub daddr: IpAddr,
    /// Sequence adjustment (`in_seq`, `out_seq`: init, delta, previous
    /// delta each), present when `flags & SEQ_MASK`.
    pub seq: Option<[u32; 6]>,
    /// Persistence engine name (its bytes as sent, at most 16: the kernel
    /// compares them with its engines' names, it does not read text) and
    /// data.
    pub pe: Option<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    fn v6(&self) -> bool {
        self.caddr.is_ipv6()
    }

    /// Return the entry's length on the wire (options included, padding
    /// not).
    pub fn wire_len(&self) -> usize {
        let base = if self.v6() { V6_LEN } else { V4_LEN };
        let seq = if self.seq.is_some() { 2 + 24 } else { 0 };
        let pe = self
            .pe
            .as_ref()
            .map_or(0, |(name, data)| 2 + data.len() + 2 + name.len());
        base + seq + pe
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.v6()));
        out.push(self.protocol);
        out.extend((self.wire_len() as u16 & 0x0fff).to_be_bytes());
        out.extend((self.flags & !flags::HASHED).to_be_bytes());
        out.extend(self.state.to_be_bytes());
        for p in [self.cport, self.vport, self.dport] {
            out.extend(p.to_be_bytes());
        }
        out.extend(self.fwmark.to_be_bytes());
        out.extend(self.timeout.to_be_bytes());
        for a in [self.caddr, self.vaddr, self.daddr] {
            match a {
                IpAddr::V4(a) => out.extend(a.octets()),
                IpAddr::V6(a) => out.extend(a.octets()),
            }
        }
        if let Some(seq) = self.seq {
            out.extend([OPT_SEQ_DATA, 24]);
            for v in seq {
                out.extend(v.to_be_bytes());
            }
        }
        if let Some((name, data)) = &self.pe {
            out.extend([OPT_PE_DATA, data.len() as u8]);
            out.extend(data);
            out.extend([OPT_PE_NAME, name.len() as u8]);
            out.extend(name);
        }
    }
}

/// Builds v1 messages of at most `maxlen` bytes, as the master's buffer.
#[derive(Debug, Clone)]
pub struct Encoder {
    syncid: u8,
    maxlen: usize,
    buf: Vec<u8>,
    count: u8,
}

impl Encoder {
    /// A message builder for `syncid` of at most `maxlen` bytes (never less
    /// than one IPv6 entry and the header).
    pub fn new(syncid: u8, maxlen: usize) -> Self {
        Self {
            syncid,
            maxlen: maxlen.max(HEADER_LEN + V6_LEN),
            buf: Vec::new(),
            count: 0,
        }
    }

    /// Return whether no entry waits.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Add `e`; return the message it did not fit in, complete, if any
    /// (then `e` starts the next one). An entry longer than a message is
    /// dropped (it cannot be sent).
    pub fn push(&mut self, e: &Entry) -> Option<Vec<u8>> {
        let len = e.wire_len();
        if len + HEADER_LEN > self.maxlen {
            return None;
        }
        let pad = (4 - self.buf.len() % 4) % 4;
        let full = self.count == u8::MAX || (self.count > 0 && self.buf.len() + pad + len > self.maxlen);
        let done = if full { self.flush() } else { None };
        if self.count == 0 {
            self.buf.clear();
            self.buf.extend([0, self.syncid, 0, 0, 0, 1, 0, 0]);
        } else {
            self.buf.resize(self.buf.len() + pad, 0);
        }
        e.write(&mut self.buf);
        self.count += 1;
        done
    }

    /// Return the message being built, complete, if it has an entry.
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        let size = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&size.to_be_bytes());
        self.buf[4] = self.count;
        self.count = 0;
        Some(std::mem::take(&mut self.buf))
    }
}

/// Why a whole datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Shorter than a header.
    Short,
    /// Its length is not the header's size.
    Size,
    /// Another syncid than the backup's.
    Syncid,
}

/// What became of one entry the header announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Read.
    Entry(Entry),
    /// Dropped alone: an unknown mandatory option, or PE data without a
    /// name.
    Skipped,
    /// Malformed: this and the rest of the datagram dropped.
    Malformed,
}

/// Read a datagram as a backup with `syncid` (0: takes every syncid).
///
/// # Errors
/// The whole datagram is dropped ([`Dropped`]); otherwise each announced
/// entry is accounted for, up to the first malformed one.
pub fn decode(msg: &[u8], syncid: u8) -> Result<Vec<Item>, Dropped> {
    if msg.len() < V0_HEADER_LEN {
        return Err(Dropped::Short);
    }
    if usize::from(u16::from_be_bytes([msg[2], msg[3]])) != msg.len() {
        return Err(Dropped::Size);
    }
    if syncid != 0 && msg[1] != syncid {
        return Err(Dropped::Syncid);
    }
    let v1 = msg.len() >= HEADER_LEN && msg[5] == 1 && msg[0] == 0 && msg[6] == 0 && msg[7] == 0;
    Ok(if v1 { decode_v1(msg) } else { decode_v0(msg) })
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn v4(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
}

fn v6(b: &[u8], at: usize) -> IpAddr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(o))
}

fn decode_v1(msg: &[u8]) -> Vec<Item> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    for _ in 0..msg[4] {
        let rest = &msg[at.min(msg.len())..];
        if rest.len() < V4_LEN {
            out.push(Item::Malformed);
            break;
        }
        let size = usize::from(be16(rest, 2) & 0x0fff);
        let (six, base) = match rest[0] {
            0 => (false, V4_LEN),
            1 => (true, V6_LEN),
            _ => {
                out.push(Item::Malformed);
                break;
            }
        };
        if be16(rest, 2) >> 12 != 0 || size < base || size > rest.len() {
            out.push(Item::Malformed);
            break;
        }
        match entry_v1(&rest[..size], six, base) {
            Some(item) => out.push(item),
            None => {
                out.push(Item::Malformed);
                break;
            }
        }
        at += (size + 3) & !3;
    }
    out
}

/// One v1 entry of exactly its size; `None` when malformed.
fn entry_v1(b: &[u8], six: bool, base: usize) -> Option<Item> {
    let addr = |i: usize| {
        if six {
            v6(b, 24 + 16 * i)
        } else {
            v4(b, 24 + 4 * i)
        }
    };
    let mut e = Entry {
        protocol: b[1],
        flags: be32(b, 4),
        state: be16(b, 8),
        cport: be16(b, 10),
        vport: be16(b, 12),
        dport: be16(b, 14),
        fwmark: be32(b, 16),
        timeout: be32(b, 20),
        caddr: addr(0),
        vaddr: addr(1),
        daddr: addr(2),
        seq: None,
        pe: None,
    };
    let mut opts = &b[base..];
    let (mut pe_data, mut pe_name, mut skipped) = (None, None, false);
    while let [kind, len, rest @ ..] = opts {
        let len = usize::from(*len);
        if len == 0 || len > rest.len() {
            return None;
        }
        let data = &rest[..len];
        match kind & !OPT_F_PARAM {
            OPT_SEQ_DATA if e.seq.is_none() && len == 24 => {
                let mut s = [0u32; 6];
                for (i, v) in s.iter_mut().enumerate() {
                    *v = be32(data, 4 * i);
                }
                e.seq = Some(s);
            }
            OPT_PE_DATA if pe_data.is_none() => pe_data = Some(data.to_vec()),
            OPT_PE_NAME if pe_name.is_none() && len <= 16 => {
                pe_name = Some(data.to_vec());
            }
            // Duplicates and bad lengths of known options.
            OPT_SEQ_DATA | OPT_PE_DATA | OPT_PE_NAME => return None,
            _ if kind & OPT_F_PARAM != 0 => {}
            _ => skipped = true,
        }
        opts = &rest[len..];
    }
    match (pe_name, pe_data) {
        (Some(n), Some(d)) => e.pe = Some((n, d)),
        (None, Some(_)) => skipped = true,
        _ => {}
    }
    Some(if skipped { Item::Skipped } else { Item::Entry(e) })
}

fn decode_v0(msg: &[u8]) -> Vec<Item> {
    let mut out = Vec::new();
    let mut at = V0_HEADER_LEN;
    for _ in 0..msg[0] {
        let b = &msg[at.min(msg.len())..];
        if b.len() < V0_LEN {
            out.push(Item::Malformed);
            break;
        }
        let fl = u32::from(be16(b, 20));
        let len = if fl & flags::SEQ_MASK != 0 {
            V0_FULL_LEN
        } else {
            V0_LEN
        };
        if b.len() < len {
            out.push(Item::Malformed);
            break;
        }
        out.push(Item::Entry(Entry {
            protocol: b[1],
            flags: fl,
            state: be16(b, 22),
            cport: be16(b, 2),
            vport: be16(b, 4),
            dport: be16(b, 6),
            fwmark: 0,
            timeout: 0,
            caddr: v4(b, 8),
            vaddr: v4(b, 12),
            daddr: v4(b, 16),
            // v0 copies the options in the sender's byte order: not
            // portable, so not taken.
            seq: None,
            pe: None,
        }));
        at += len;
    }
    out
}

#[cfg(test)]
mod tests;
