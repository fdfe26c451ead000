//! ICMPv4 header view (RFC 792): type, code, checksum and the word that
//! "fragmentation needed" carries the next-hop MTU in (RFC 1191); the
//! packet an error quotes ([`Quoted`], IPv4 or, after an ICMPv6 error,
//! IPv6); and the ICMPv6 errors IPVS relates to connections (RFC 4443).

use super::{Ipv4, Ipv6, Malformed, PROTO_TCP, PROTO_UDP, be16, be32, set_be16};

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// Return whether ICMPv6 type `t` is an error that quotes a packet:
/// destination unreachable (1), packet too big (2), time exceeded (3),
/// parameter problem (4), as `ip_vs_in_icmp_v6` takes them.
pub fn is_error6(t: u8) -> bool {
    (1..=4).contains(&t)
}

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: std::ops::Range<usize> = 4..8;
    pub const NEXT_HOP_MTU: usize = 6;
}

/// Length of the header (type, code, checksum, four bytes more).
pub const HEADER_LEN: usize = 8;

/// Destination unreachable (fragmentation needed is its code 4).
pub const DEST_UNREACH: u8 = 3;
/// Time exceeded.
pub const TIME_EXCEEDED: u8 = 11;
/// Parameter problem.
pub const PARAMETER_PROBLEM: u8 = 12;

/// Return whether ICMP type `t` is an error that quotes a packet, one IPVS
/// relates to a connection (`ip_vs_in_icmp`).
pub fn is_error(t: u8) -> bool {
    matches!(t, DEST_UNREACH | TIME_EXCEEDED | PARAMETER_PROBLEM)
}

/// The packet an ICMP error quotes: its IP header and the first 8 bytes
/// after it (RFC 792), enough for the ports. Fields in host order; `ip` and
/// `l4` are offsets into the frame. `A` is the family, as for
/// [`super::Headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<A = u32> {
    /// IP protocol ([`PROTO_TCP`] or [`PROTO_UDP`]).
    pub proto: u8,
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Offset of its IP header.
    pub ip: usize,
    /// Offset of its TCP/UDP header (the ports).
    pub l4: usize,
}

impl Quoted<u128> {
    /// Check the IPv6 quote that starts at `at` and ends at `end` of
    /// `frame`: a whole IPv6 header, its extension headers (walked as
    /// [`Ipv6::upper`] walks them, within the quote), not a later fragment,
    /// TCP or UDP, and the ports. Its payload length may run past the
    /// quote.
    ///
    /// # Errors
    /// [`Malformed::IcmpQuote`] for anything else.
    pub fn parse6(frame: &[u8], at: usize, end: usize) -> Result<Self, Malformed> {
        let b = frame.get(at..end).ok_or(Malformed::IcmpQuote)?;
        if b.len() < super::IPV6_HEADER_LEN || b[0] >> 4 != 6 {
            return Err(Malformed::IcmpQuote);
        }
        // Walk the quote as a packet whose payload is what was quoted.
        let mut copy = [0u8; 512];
        let n = b.len().min(copy.len());
        copy[..n].copy_from_slice(&b[..n]);
        copy[4..6].copy_from_slice(&((n - super::IPV6_HEADER_LEN) as u16).to_be_bytes());
        let view = Ipv6::new_unchecked(&copy[..n]);
        let up = view.upper().map_err(|_| Malformed::IcmpQuote)?;
        let later = up.frag.is_some_and(|(offset, _, _)| offset != 0);
        if later || (up.proto != PROTO_TCP && up.proto != PROTO_UDP) || up.offset + 4 > n {
            return Err(Malformed::IcmpQuote);
        }
        Ok(Self {
            proto: up.proto,
            src: view.src(),
            dst: view.dst(),
            sport: be16(b, up.offset),
            dport: be16(b, up.offset + 2),
            ip: at,
            l4: at + up.offset,
        })
    }

    /// Return its IPv6 header in `frame`, for writing.
    pub fn ipv6_mut<'a>(&self, frame: &'a mut [u8]) -> Ipv6<&'a mut [u8]> {
        Ipv6::new_unchecked(&mut frame[self.ip..self.ip + super::IPV6_HEADER_LEN])
    }
}

impl<A> Quoted<A> {
    /// Set its source port in `frame`.
    pub fn set_src_port(&self, frame: &mut [u8], port: u16) {
        set_be16(frame, self.l4, port);
    }

    /// Set its destination port in `frame`.
    pub fn set_dst_port(&self, frame: &mut [u8], port: u16) {
        set_be16(frame, self.l4 + 2, port);
    }
}

impl Quoted {
    /// Check the quote that starts at `at` and ends at `end` of `frame`: a
    /// whole IPv4 header, not a later fragment, of TCP or UDP, and the ports
    /// after it. Its total length may run past the quote: a quote is cut.
    ///
    /// # Errors
    /// [`Malformed::IcmpQuote`] for anything else.
    pub fn parse(frame: &[u8], at: usize, end: usize) -> Result<Self, Malformed> {
        let b = frame.get(at..end).ok_or(Malformed::IcmpQuote)?;
        let ihl = usize::from(b.first().ok_or(Malformed::IcmpQuote)? & 0x0f) * 4;
        if b.len() < ihl + 8 || b[0] >> 4 != 4 || ihl < super::IPV4_HEADER_LEN {
            return Err(Malformed::IcmpQuote);
        }
        let ip = Ipv4::new_unchecked(&b[..ihl]);
        let proto = ip.protocol();
        if ip.frag_offset() != 0 || (proto != PROTO_TCP && proto != PROTO_UDP) {
            return Err(Malformed::IcmpQuote);
        }
        Ok(Self {
            proto,
            src: be32(b, 12),
            dst: be32(b, 16),
            sport: be16(b, ihl),
            dport: be16(b, ihl + 2),
            ip: at,
            l4: at + ihl,
        })
    }

    /// Return its IP header in `frame`, for writing.
    pub fn ipv4_mut<'a>(&self, frame: &'a mut [u8]) -> Ipv4<&'a mut [u8]> {
        Ipv4::new_unchecked(&mut frame[self.ip..self.l4])
    }
}

/// A view of an ICMPv4 message; the buffer holds the whole message.
///
/// Setters need at least [`HEADER_LEN`] bytes: the only messages this crate
/// writes are ones it sized itself.
#[derive(Debug)]
pub struct Icmpv4<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4<T> {
    /// Wrap `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Return the message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Return the code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Return the next-hop MTU of a "fragmentation needed" message.
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4<T> {
    /// Set the type and code, and clear the rest of the header.
    pub fn set_type_code(&mut self, msg_type: u8, code: u8) {
        let b = self.buffer.as_mut();
        b[field::TYPE] = msg_type;
        b[field::CODE] = code;
        b[field::REST].fill(0);
    }

    /// Set the next-hop MTU of a "fragmentation needed" message.
    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        set_be16(self.buffer.as_mut(), field::NEXT_HOP_MTU, mtu);
    }

    /// Return the bytes after the header (the quoted packet of an error).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Compute the checksum over the whole message and store it.
    pub fn fill_checksum(&mut self) {
        set_be16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = super::checksum(self.buffer.as_ref());
        set_be16(self.buffer.as_mut(), field::CHECKSUM, c);
    }
}
