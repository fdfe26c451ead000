//! Zero-copy views over frame bytes, after smoltcp's `wire` module, and the
//! one parse of a received frame.
//!
//! Owns: the header layouts (`mod field` offsets in each view), their
//! getters (under `AsRef<[u8]>`) and setters (under `AsMut<[u8]>`), the
//! Internet checksum, and [`parse`], which checks a frame once and returns
//! its [`Headers`]: the fields the forwarder decides on and the offsets its
//! rewrites write through. Nothing else in the crate reads or writes a header
//! byte at a raw offset.
//!
//! Guarantee: once a view's `check_len` (or `new_checked`) returned `Ok`, no
//! getter or setter of that view panics; the views [`Headers`] hands out are
//! over the frame [`parse`] checked. Views borrow the UMEM slice; nothing is
//! copied or allocated.
//!
//! Must not touch: forwarding decisions (the worker) or drop counters (a
//! [`Malformed`] becomes a `stats::Reason` there).

mod checksum;
mod ethernet;
mod icmp;
mod ipv4;
mod ipv6;
mod l4;

pub use checksum::{checksum, checksum_adjust, fold, pseudo_sum, sum};
pub use ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, Ethernet};
pub use icmp::{HEADER_LEN as ICMP_HEADER_LEN, Icmpv4, PROTO_ICMP, PROTO_ICMPV6, Quoted};
pub use ipv4::{DF, Ipv4, MF, MIN_HEADER_LEN as IPV4_HEADER_LEN};
pub use ipv6::{HEADER_LEN as IPV6_HEADER_LEN, Ipv6, MAX_EXT_HEADERS, Upper};
pub use l4::{PROTO_TCP, PROTO_UDP, Tcp, Udp, tcp_flags};

/// What is wrong with a frame the dataplane cannot forward, in the order
/// [`parse`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than an Ethernet header.
    TruncatedEthernet,
    /// Not IPv4.
    NotIpv4,
    /// Shorter than an IPv4 header.
    TruncatedIp,
    /// IP version field is not 4.
    BadVersion,
    /// IHL below 5.
    BadIhl,
    /// Total length past the end of the frame, or shorter than the header.
    BadTotalLength,
    /// IP options whose lengths do not add up to the header.
    IpOptions,
    /// TCP or UDP header does not fit.
    TruncatedL4,
    /// Neither TCP nor UDP, nor an ICMP error about them.
    UnsupportedProtocol,
    /// An ICMP error whose quoted packet is not a whole IPv4 header with
    /// TCP or UDP ports after it.
    IcmpQuote,
    /// IPv6 extension headers that run past the payload, chain longer than
    /// [`MAX_EXT_HEADERS`], or carry two fragment headers.
    ExtHeaders,
}

/// Read a big-endian u16 at `at` (callers checked the length).
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Read a big-endian u32 at `at` (callers checked the length).
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Write a big-endian u16 at `at` (callers checked the length).
pub(crate) fn set_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Write a big-endian u32 at `at` (callers checked the length).
pub(crate) fn set_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Offset of the IP header in a frame (Ethernet II, no VLAN).
pub const L3: usize = Ethernet::<&[u8]>::HEADER_LEN;

/// An address family's arithmetic on the wire: the 16-bit words its
/// addresses add to the TCP/UDP pseudo-header.
pub trait IpBits: conntrack::Addr {
    /// Sum of the address's 16-bit words (not folded).
    fn sum16(self) -> u32;
    /// Fold to 32 bits for the schedulers' hashes (IPVS for IPv6 XORs the
    /// four words).
    fn fold32(self) -> u32;
}

impl IpBits for u32 {
    #[inline]
    fn sum16(self) -> u32 {
        (self >> 16) + (self & 0xffff)
    }

    #[inline]
    fn fold32(self) -> u32 {
        self
    }
}

impl IpBits for u128 {
    #[inline]
    fn sum16(self) -> u32 {
        (0..8).map(|i| ((self >> (16 * i)) & 0xffff) as u32).sum()
    }

    #[inline]
    fn fold32(self) -> u32 {
        (self >> 96) as u32 ^ (self >> 64) as u32 ^ (self >> 32) as u32 ^ self as u32
    }
}

/// Update checksum `sum` for an address changed from `old` to `new`, one
/// 16-bit word at a time (RFC 1624 over each).
#[inline]
pub fn adjust_addr<A: IpBits>(sum: u16, old: A, new: A) -> u16 {
    let (old, new) = (old.widen(), new.widen());
    let words = if A::V6 { 8 } else { 2 };
    (0..words).fold(sum, |s, i| {
        checksum_adjust(s, (old >> (16 * i)) as u16, (new >> (16 * i)) as u16)
    })
}

/// A checked Ethernet/IP/TCP-or-UDP frame: the fields the forwarder decides
/// on (host byte order) and the offsets of its headers. `A` is the address
/// family: `u32` for IPv4 ([`parse`]), `u128` for IPv6 ([`parse6`]).
///
/// Its views are valid over the frame [`parse`] checked, and over nothing
/// else: a rewrite takes the frame and the `Headers` parsed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<A: IpBits = u32> {
    /// IP protocol ([`PROTO_TCP`], [`PROTO_UDP`], or [`PROTO_ICMP`] for an
    /// error about a TCP/UDP packet: see [`Headers::quoted`]).
    pub proto: u8,
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP flags byte (0 for UDP); see [`tcp_flags`].
    pub tcp_flags: u8,
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Offset of the TCP/UDP header.
    pub l4: usize,
    /// End of the IP packet: Ethernet padding may follow it.
    pub end: usize,
    /// Where the packet sits in its datagram.
    pub frag: Frag,
}

/// Where a packet sits in its IP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frag {
    /// Not fragmented.
    Whole,
    /// The first fragment (offset 0, More Fragments set): it has the ports,
    /// and its TCP/UDP checksum covers bytes that are not in this frame.
    First,
    /// A later fragment (offset > 0): no TCP/UDP header, so `sport`,
    /// `dport` and `tcp_flags` are 0 and `l4` is where its data starts.
    Later,
}

impl Headers<u32> {
    /// Return the IPv4 packet of `frame`.
    pub fn ipv4<'a>(&self, frame: &'a [u8]) -> Ipv4<&'a [u8]> {
        Ipv4::new_unchecked(&frame[L3..self.end])
    }

    /// Return the IPv4 packet of `frame` for writing.
    pub fn ipv4_mut<'a>(&self, frame: &'a mut [u8]) -> Ipv4<&'a mut [u8]> {
        Ipv4::new_unchecked(&mut frame[L3..self.end])
    }

    /// Return the IP identification of `frame`: with the addresses and the
    /// protocol it names the datagram a fragment belongs to.
    pub fn ident(&self, frame: &[u8]) -> u16 {
        self.ipv4(frame).ident()
    }

    /// Return the packet the ICMP error `frame` (parsed as `h`, `proto`
    /// ICMP) quotes.
    ///
    /// # Errors
    /// [`Malformed::IcmpQuote`]: the quote is cut short or not TCP/UDP.
    pub fn quoted(&self, frame: &[u8]) -> Result<Quoted, Malformed> {
        Quoted::parse(frame, self.l4 + ICMP_HEADER_LEN, self.end)
    }

    /// Return the ICMP message of `frame` for writing (`proto` is ICMP).
    pub fn icmp_mut<'a>(&self, frame: &'a mut [u8]) -> Icmpv4<&'a mut [u8]> {
        Icmpv4::new_unchecked(&mut frame[self.l4..self.end])
    }
}

impl Headers<u128> {
    /// Return the packet the ICMPv6 error `frame` (parsed as `h`, `proto`
    /// ICMPv6) quotes.
    ///
    /// # Errors
    /// [`Malformed::IcmpQuote`]: the quote is cut short or not TCP/UDP.
    pub fn quoted6(&self, frame: &[u8]) -> Result<Quoted<u128>, Malformed> {
        Quoted::parse6(frame, self.l4 + ICMP_HEADER_LEN, self.end)
    }

    /// Compute the ICMPv6 checksum of `frame` (over the pseudo-header and
    /// the message) and store it.
    pub fn fill_icmp6_checksum(&self, frame: &mut [u8]) {
        set_be16(frame, self.l4 + 2, 0);
        let c = !fold(self.pseudo() + sum(&frame[self.l4..self.end]));
        set_be16(frame, self.l4 + 2, c);
    }

    /// Return the identification of the fragment header of `frame` (0 when
    /// there is none): the extension headers are walked again, as only
    /// fragments ask.
    pub fn ident6(&self, frame: &[u8]) -> u32 {
        Ipv6::new_unchecked(&frame[L3..self.end])
            .upper()
            .ok()
            .and_then(|u| u.frag)
            .map_or(0, |f| f.2)
    }

    /// Return the IPv6 packet of `frame` for writing.
    pub fn ipv6_mut<'a>(&self, frame: &'a mut [u8]) -> Ipv6<&'a mut [u8]> {
        Ipv6::new_unchecked(&mut frame[L3..self.end])
    }
}

impl<A: IpBits> Headers<A> {
    /// Return the Ethernet header of `frame` for writing.
    pub fn ethernet_mut<'a>(&self, frame: &'a mut [u8]) -> Ethernet<&'a mut [u8]> {
        Ethernet::new_unchecked(frame)
    }

    /// Return the TCP segment of `frame` for writing (`proto` is TCP).
    pub fn tcp_mut<'a>(&self, frame: &'a mut [u8]) -> Tcp<&'a mut [u8]> {
        Tcp::new_unchecked(&mut frame[self.l4..self.end])
    }

    /// Return the UDP datagram of `frame` for writing (`proto` is UDP).
    pub fn udp_mut<'a>(&self, frame: &'a mut [u8]) -> Udp<&'a mut [u8]> {
        Udp::new_unchecked(&mut frame[self.l4..self.end])
    }

    /// Return the offset of the TCP/UDP checksum field.
    fn l4_checksum_at(&self) -> usize {
        self.l4 + if self.proto == PROTO_TCP { 16 } else { 6 }
    }

    /// Return whether the TCP/UDP checksum of `frame` is partial: the
    /// folded pseudo-header sum a sender with checksum offload leaves for
    /// the NIC to finish (Linux's CHECKSUM_PARTIAL). veth and bridges carry
    /// that as skb metadata that AF_XDP does not hand over, so a frame sent
    /// on as it is would fail the receiver's check. A full checksum that
    /// happens to equal it is recomputed to the same value: harmless.
    #[inline]
    pub fn l4_checksum_partial(&self, frame: &[u8]) -> bool {
        if self.frag != Frag::Whole {
            // The sender finished the checksum before it fragmented.
            return false;
        }
        let field = be16(frame, self.l4_checksum_at());
        field != 0 && field == fold(self.pseudo())
    }

    /// Compute the TCP/UDP checksum of `frame` over the pseudo-header and
    /// the whole segment, and store it (a UDP zero is sent as 0xffff, RFC
    /// 768).
    pub fn fill_l4_checksum(&self, frame: &mut [u8]) {
        let at = self.l4_checksum_at();
        set_be16(frame, at, 0);
        let total = self.pseudo() + sum(&frame[self.l4..self.end]);
        let c = !fold(total);
        set_be16(
            frame,
            at,
            if c == 0 && self.proto == PROTO_UDP {
                0xffff
            } else {
                c
            },
        );
    }

    /// The TCP/UDP pseudo-header sum (RFC 793 §3.1, RFC 8200 §8.1), not
    /// folded: addresses, protocol, segment length.
    #[inline]
    fn pseudo(&self) -> u32 {
        // Below 64 KiB in both families (no jumbograms): one word.
        let len = (self.end - self.l4) as u32;
        self.src.sum16() + self.dst.sum16() + u32::from(self.proto) + len
    }

    /// Return whether this is TCP with `flag` (a [`tcp_flags`] bit) set.
    pub fn has(&self, flag: u8) -> bool {
        self.tcp_flags & flag != 0
    }
}

/// Check a frame's Ethernet, IPv4 and TCP/UDP headers once and return them.
///
/// # Errors
/// The first [`Malformed`] thing about it.
// Always inlined: out of line, its result is copied through the stack on
// every frame (measured: several ns a frame).
#[inline(always)]
pub fn parse(frame: &[u8]) -> Result<Headers, Malformed> {
    let eth = Ethernet::new_checked(frame)?;
    if eth.ethertype() != ETHERTYPE_IPV4 {
        return Err(Malformed::NotIpv4);
    }
    let ip = Ipv4::new_checked(eth.payload())?;
    let hlen = ip.header_len();
    if hlen > IPV4_HEADER_LEN && !options_ok(&frame[L3 + IPV4_HEADER_LEN..L3 + hlen]) {
        return Err(Malformed::IpOptions);
    }
    let (l4, end) = (L3 + hlen, L3 + ip.total_len());
    let proto = ip.protocol();
    let frag = match (ip.frag_offset(), ip.more_frags()) {
        (0, false) => Frag::Whole,
        (0, true) => Frag::First,
        _ => Frag::Later,
    };
    let (sport, dport, tcp_flags) = match proto {
        PROTO_TCP | PROTO_UDP if frag == Frag::Later => (0, 0, 0),
        PROTO_TCP => {
            let t = Tcp::new_checked(&frame[l4..end])?;
            (t.src_port(), t.dst_port(), t.flags())
        }
        PROTO_UDP => {
            let u = Udp::new_checked(&frame[l4..end])?;
            (u.src_port(), u.dst_port(), 0)
        }
        PROTO_ICMP if frag == Frag::Whole && end >= l4 + ICMP_HEADER_LEN && icmp::is_error(frame[l4]) => {
            (0, 0, 0)
        }
        _ => return Err(Malformed::UnsupportedProtocol),
    };
    Ok(Headers {
        proto,
        src: ip.src(),
        dst: ip.dst(),
        sport,
        dport,
        tcp_flags,
        src_mac: eth.src(),
        l4,
        end,
        frag,
    })
}

/// Check a frame's Ethernet, IPv6 (with its extension headers) and TCP/UDP
/// headers once and return them: [`parse`] for IPv6. `l4` is past the
/// extension headers; a fragment header makes the packet [`Frag::First`]
/// or [`Frag::Later`] (an atomic fragment, offset 0 and no more, is whole).
///
/// # Errors
/// The first [`Malformed`] thing about it; [`Malformed::NotIpv4`] when it
/// is not IPv6 either.
#[inline]
pub fn parse6(frame: &[u8]) -> Result<Headers<u128>, Malformed> {
    let eth = Ethernet::new_checked(frame)?;
    if eth.ethertype() != ETHERTYPE_IPV6 {
        return Err(Malformed::NotIpv4);
    }
    let ip = Ipv6::new_checked(eth.payload())?;
    let up = ip.upper()?;
    let (l4, end) = (L3 + up.offset, L3 + IPV6_HEADER_LEN + ip.payload_len());
    let frag = match up.frag {
        None | Some((0, false, _)) => Frag::Whole,
        Some((0, true, _)) => Frag::First,
        Some(_) => Frag::Later,
    };
    let (sport, dport, tcp_flags) = match up.proto {
        PROTO_TCP | PROTO_UDP if frag == Frag::Later => (0, 0, 0),
        PROTO_TCP => {
            let t = Tcp::new_checked(&frame[l4..end])?;
            (t.src_port(), t.dst_port(), t.flags())
        }
        PROTO_UDP => {
            let u = Udp::new_checked(&frame[l4..end])?;
            (u.src_port(), u.dst_port(), 0)
        }
        PROTO_ICMPV6 if frag == Frag::Whole && end >= l4 + ICMP_HEADER_LEN && icmp::is_error6(frame[l4]) => {
            (0, 0, 0)
        }
        _ => return Err(Malformed::UnsupportedProtocol),
    };
    Ok(Headers {
        proto: up.proto,
        src: ip.src(),
        dst: ip.dst(),
        sport,
        dport,
        tcp_flags,
        src_mac: eth.src(),
        l4,
        end,
        frag,
    })
}

/// Return whether IPv4 options are well formed (RFC 791 §3.1): each is
/// End of Options, No Operation, or a type, a length of at least 2 that
/// stays inside the header, and its data. Routers and IPVS forward options
/// they do not know; only lengths that do not add up are refused.
fn options_ok(mut opts: &[u8]) -> bool {
    // At most 40 bytes of options: the walk ends within 40 steps.
    while let [kind, rest @ ..] = opts {
        match kind {
            0 => return true,
            1 => opts = rest,
            _ => {
                let Some(&len) = rest.first() else { return false };
                let len = usize::from(len);
                if len < 2 || len > opts.len() {
                    return false;
                }
                opts = &opts[len..];
            }
        }
    }
    true
}

/// Build a 64-byte Ethernet/IPv4/TCP frame (no payload, zero checksums) from
/// `cip:cport` to `vip:vport` with TCP `flags`: the frame benchmarks and
/// allocation tests feed the forwarder.
pub fn tcp_frame(cip: [u8; 4], cport: u16, vip: [u8; 4], vport: u16, flags: u8) -> [u8; 64] {
    let mut f = [0u8; 64];
    Ethernet::new_unchecked(&mut f[..]).set_ethertype(ETHERTYPE_IPV4);
    let mut ip = Ipv4::new_unchecked(&mut f[L3..L3 + IPV4_HEADER_LEN]);
    ip.set_version_and_header_len(IPV4_HEADER_LEN);
    ip.set_total_len(40);
    ip.set_ttl(64);
    ip.set_protocol(PROTO_TCP);
    ip.set_src(u32::from_be_bytes(cip));
    ip.set_dst(u32::from_be_bytes(vip));
    let l4 = L3 + IPV4_HEADER_LEN;
    let mut t = Tcp::new_unchecked(&mut f[l4..]);
    t.set_src_port(cport);
    t.set_dst_port(vport);
    t.set_header_len(Tcp::<&[u8]>::MIN_HEADER_LEN);
    t.set_flags(flags);
    f
}

/// Length of [`tcp6_frame`]'s frame: Ethernet, IPv6, a TCP header.
pub const TCP6_FRAME_LEN: usize = L3 + IPV6_HEADER_LEN + 20;

/// Build an Ethernet/IPv6/TCP frame (no payload, zero checksum) from
/// `cip:cport` to `vip:vport` with TCP `flags`: [`tcp_frame`] for IPv6.
pub fn tcp6_frame(cip: u128, cport: u16, vip: u128, vport: u16, flags: u8) -> [u8; TCP6_FRAME_LEN] {
    let mut f = [0u8; TCP6_FRAME_LEN];
    Ethernet::new_unchecked(&mut f[..]).set_ethertype(ETHERTYPE_IPV6);
    let mut ip = Ipv6::new_unchecked(&mut f[L3..L3 + IPV6_HEADER_LEN]);
    ip.set_version_tc_flow(0, 0);
    ip.set_payload_len(20);
    ip.set_next_header(PROTO_TCP);
    ip.set_hop_limit(64);
    ip.set_src(cip);
    ip.set_dst(vip);
    let mut t = Tcp::new_unchecked(&mut f[L3 + IPV6_HEADER_LEN..]);
    t.set_src_port(cport);
    t.set_dst_port(vport);
    t.set_header_len(Tcp::<&[u8]>::MIN_HEADER_LEN);
    t.set_flags(flags);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_every_length_field() {
        let good = tcp_frame([10, 0, 0, 2], 40000, [10, 0, 0, 100], 80, tcp_flags::SYN);
        let h = parse(&good).unwrap();
        assert_eq!(
            (h.src, h.sport, h.dst, h.dport),
            (0x0a00_0002, 40000, 0x0a00_0064, 80)
        );
        assert_eq!((h.l4, h.end, h.tcp_flags), (34, 54, tcp_flags::SYN));
        let bad = |edit: fn(&mut [u8; 64])| {
            let mut f = good;
            edit(&mut f);
            parse(&f)
        };
        assert_eq!(parse(&good[..13]), Err(Malformed::TruncatedEthernet));
        assert_eq!(parse(&good[..33]), Err(Malformed::TruncatedIp));
        assert_eq!(bad(|f| f[12] = 0x86), Err(Malformed::NotIpv4));
        assert_eq!(bad(|f| f[14] = 0x65), Err(Malformed::BadVersion));
        assert_eq!(bad(|f| f[14] = 0x44), Err(Malformed::BadIhl));
        assert_eq!(bad(|f| f[17] = 51), Err(Malformed::BadTotalLength));
        assert_eq!(bad(|f| f[17] = 19), Err(Malformed::BadTotalLength));
        assert_eq!(bad(|f| f[14] = 0x46), Err(Malformed::IpOptions));
        assert_eq!(
            bad(|f| f[21] = 1).map(|h| (h.frag, h.dport)),
            Ok((Frag::Later, 0))
        );
        assert_eq!(
            bad(|f| f[20] = 0x20).map(|h| (h.frag, h.dport)),
            Ok((Frag::First, 80))
        );
        assert_eq!(
            bad(|f| {
                f[21] = 1;
                f[23] = 47;
            }),
            Err(Malformed::UnsupportedProtocol)
        );
        assert_eq!(bad(|f| f[17] = 39), Err(Malformed::TruncatedL4));
        assert_eq!(bad(|f| f[46] = 0xf0), Err(Malformed::TruncatedL4));
        assert_eq!(bad(|f| f[23] = 47), Err(Malformed::UnsupportedProtocol));
    }

    #[test]
    fn ipv4_view_checks_before_it_reads() {
        assert_eq!(
            Ipv4::new_checked(&[0x45u8; 19][..]).unwrap_err(),
            Malformed::TruncatedIp
        );
        let mut h = [0u8; 24];
        let mut ip = Ipv4::new_unchecked(&mut h[..]);
        ip.set_version_and_header_len(24);
        ip.set_total_len(24);
        ip.set_src(0x0a00_0001);
        ip.fill_checksum();
        let ip = Ipv4::new_checked(&h[..]).unwrap();
        assert_eq!((ip.header_len(), ip.src()), (24, 0x0a00_0001));
        assert_eq!(checksum(&h), 0, "a filled header sums to zero");
    }
}
