//! IPv6 header view (RFC 8200), after smoltcp's `wire/ipv6.rs`, and the
//! bounded walk over its extension headers: hop-by-hop options, routing,
//! fragment and destination options, at most [`MAX_EXT_HEADERS`] of them;
//! anything else ends the walk as the upper-layer protocol.
//!
//! The first brick of IPv6 forwarding: the worker does not take IPv6
//! frames yet (the steering program passes them to the kernel).

use super::{Malformed, be16, be32, set_be16};

mod field {
    use std::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Extension headers walked at most; a longer chain is malformed (a
/// frame must not make a worker loop).
pub const MAX_EXT_HEADERS: usize = 8;

/// Next-header numbers of the extension headers the walk knows.
pub const HOP_BY_HOP: u8 = 0;
/// Routing header.
pub const ROUTING: u8 = 43;
/// Fragment header.
pub const FRAGMENT: u8 = 44;
/// Destination options.
pub const DEST_OPTS: u8 = 60;

/// A view of an IPv6 packet.
///
/// Once [`Ipv6::check_len`] returned `Ok`, no getter or setter panics: the
/// buffer holds a version-6 header and a payload length within the buffer.
#[derive(Debug)]
pub struct Ipv6<T: AsRef<[u8]>> {
    buffer: T,
}

/// Where the walk over the extension headers ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upper {
    /// The upper-layer protocol (TCP, UDP, ICMPv6, …).
    pub proto: u8,
    /// Its offset from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header's (offset in 8-byte units, more fragments,
    /// identification), if there is one.
    pub frag: Option<(u16, bool, u32)>,
}

impl<T: AsRef<[u8]>> Ipv6<T> {
    /// Wrap `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap `buffer` after [`Self::check_len`].
    ///
    /// # Errors
    /// What [`Self::check_len`] finds.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check the buffer: a whole fixed header, version 6, and a payload
    /// length that fits (a jumbogram's 0 is refused: no link here carries
    /// one).
    ///
    /// # Errors
    /// [`Malformed::TruncatedIp`], [`Malformed::BadVersion`] or
    /// [`Malformed::BadTotalLength`].
    pub fn check_len(&self) -> Result<(), Malformed> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Malformed::TruncatedIp);
        }
        if self.version() != 6 {
            return Err(Malformed::BadVersion);
        }
        if HEADER_LEN + self.payload_len() > len {
            return Err(Malformed::BadTotalLength);
        }
        Ok(())
    }

    /// Return the version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Return the traffic class.
    pub fn traffic_class(&self) -> u8 {
        ((be32(self.buffer.as_ref(), field::VER_TC_FLOW.start) >> 20) & 0xff) as u8
    }

    /// Return the flow label.
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW.start) & 0x000f_ffff
    }

    /// Return the payload length (what follows the fixed header).
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::PAYLOAD_LEN.start))
    }

    /// Return the next-header field of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Return the hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Return the source address.
    pub fn src(&self) -> u128 {
        u128::from_be_bytes(self.addr(field::SRC.start))
    }

    /// Return the destination address.
    pub fn dst(&self) -> u128 {
        u128::from_be_bytes(self.addr(field::DST.start))
    }

    fn addr(&self, at: usize) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[at..at + 16]);
        a
    }

    /// Walk the extension headers to the upper-layer protocol, within the
    /// payload length and at most [`MAX_EXT_HEADERS`] of them.
    ///
    /// # Errors
    /// [`Malformed::ExtHeaders`]: one runs past the payload, the chain is
    /// too long, or a second fragment header.
    pub fn upper(&self) -> Result<Upper, Malformed> {
        let b = self.buffer.as_ref();
        let end = HEADER_LEN + self.payload_len();
        let (mut next, mut at, mut frag) = (self.next_header(), HEADER_LEN, None);
        for _ in 0..MAX_EXT_HEADERS {
            let len = match next {
                HOP_BY_HOP | ROUTING | DEST_OPTS => {
                    if at + 2 > end {
                        return Err(Malformed::ExtHeaders);
                    }
                    8 + usize::from(b[at + 1]) * 8
                }
                FRAGMENT => {
                    if at + 8 > end || frag.is_some() {
                        return Err(Malformed::ExtHeaders);
                    }
                    let word = be16(b, at + 2);
                    frag = Some((word >> 3, word & 1 != 0, be32(b, at + 4)));
                    8
                }
                proto => {
                    return Ok(Upper {
                        proto,
                        offset: at,
                        frag,
                    });
                }
            };
            if at + len > end {
                return Err(Malformed::ExtHeaders);
            }
            next = b[at];
            at += len;
        }
        Err(Malformed::ExtHeaders)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6<T> {
    /// Set version 6, the traffic class and the flow label.
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        let v = 6 << 28 | u32::from(tc) << 20 | (flow & 0x000f_ffff);
        crate::wire::set_be32(self.buffer.as_mut(), field::VER_TC_FLOW.start, v);
    }

    /// Set the next-header field of the fixed header.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Set the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::PAYLOAD_LEN.start, v);
    }

    /// Set the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Set the source address.
    pub fn set_src(&mut self, v: u128) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&v.to_be_bytes());
    }

    /// Set the destination address.
    pub fn set_dst(&mut self, v: u128) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv6Header, Ipv6RawExtHeader};

    /// An IPv6 packet with `exts` (next header, body) before UDP.
    fn packet(exts: &[(u8, Vec<u8>)], payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        let first = exts.first().map_or(17, |e| e.0);
        for (i, (_, bytes)) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(17, |e| e.0);
            let mut h = bytes.clone();
            h[0] = next;
            body.extend(h);
        }
        body.extend_from_slice(payload);
        let h = Ipv6Header {
            payload_length: body.len() as u16,
            next_header: IpNumber(first),
            hop_limit: 64,
            source: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            destination: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64],
            ..Default::default()
        };
        let mut out = Vec::new();
        h.write(&mut out).unwrap();
        out.extend(body);
        out
    }

    fn opts(len8: u8) -> Vec<u8> {
        let mut v = vec![0u8; 8 + usize::from(len8) * 8];
        v[1] = len8;
        v
    }

    #[test]
    fn the_walk_finds_what_etherparse_finds() {
        // RFC 8200's layout, as the kernel writes it (frag_off = offset << 3
        // | M): etherparse 0.16 places these bits otherwise, so not it here.
        let mut frag = vec![17, 0];
        frag.extend_from_slice(&((185u16 << 3) | 1).to_be_bytes());
        frag.extend_from_slice(&0xdead_beef_u32.to_be_bytes());
        let chains: Vec<Vec<(u8, Vec<u8>)>> = vec![
            vec![],
            vec![(HOP_BY_HOP, opts(0))],
            vec![(HOP_BY_HOP, opts(1)), (ROUTING, opts(2)), (DEST_OPTS, opts(0))],
            vec![(DEST_OPTS, opts(0)), (FRAGMENT, frag.clone())],
        ];
        for chain in chains {
            let p = packet(&chain, &[0u8; 8]);
            let v = Ipv6::new_checked(&p[..]).unwrap();
            let up = v.upper().unwrap();
            let oracle = etherparse::Ipv6Slice::from_slice(&p).unwrap();
            let want_offset = p.len() - oracle.payload().payload.len();
            assert_eq!((up.proto, up.offset), (17, want_offset), "{chain:?}");
            let fragged = chain.iter().any(|e| e.0 == FRAGMENT);
            assert_eq!(up.frag, fragged.then_some((185, true, 0xdead_beef)));
            assert_eq!(v.dst() & 0xff, 0x64);
        }
        // A raw extension header etherparse writes parses the same.
        let raw = Ipv6RawExtHeader::new_raw(IpNumber(6), &[0u8; 6]).unwrap();
        let mut b = Vec::new();
        raw.write(&mut b).unwrap();
        let p = packet(&[(DEST_OPTS, b)], &[0u8; 20]);
        assert_eq!(Ipv6::new_checked(&p[..]).unwrap().upper().unwrap().offset, 48);
    }

    #[test]
    fn malformed_chains_are_refused_never_a_panic() {
        // Too long a chain: MAX_EXT_HEADERS + 1 destination options.
        let long: Vec<(u8, Vec<u8>)> = (0..=MAX_EXT_HEADERS).map(|_| (DEST_OPTS, opts(0))).collect();
        let p = packet(&long, &[]);
        assert_eq!(
            Ipv6::new_checked(&p[..]).unwrap().upper(),
            Err(Malformed::ExtHeaders)
        );
        // A header whose length runs past the payload.
        let mut p = packet(&[(HOP_BY_HOP, opts(0))], &[0u8; 8]);
        p[HEADER_LEN + 1] = 200;
        assert_eq!(
            Ipv6::new_checked(&p[..]).unwrap().upper(),
            Err(Malformed::ExtHeaders)
        );
        // Two fragment headers.
        let mut frag = vec![0u8; 8];
        frag[0] = 17;
        let p = packet(&[(FRAGMENT, frag.clone()), (FRAGMENT, frag)], &[]);
        assert_eq!(
            Ipv6::new_checked(&p[..]).unwrap().upper(),
            Err(Malformed::ExtHeaders)
        );
        // Payload length past the frame; truncated; another version.
        let mut p = packet(&[], &[0u8; 8]);
        p[5] = 200;
        assert_eq!(Ipv6::new_checked(&p[..]).err(), Some(Malformed::BadTotalLength));
        assert_eq!(Ipv6::new_checked(&p[..39]).err(), Some(Malformed::TruncatedIp));
        p[0] = 0x45;
        assert_eq!(Ipv6::new_checked(&p[..]).err(), Some(Malformed::BadVersion));
        // Every truncation and every byte value of a chained frame: a
        // verdict, never a panic.
        let p = packet(&[(HOP_BY_HOP, opts(1)), (ROUTING, opts(0))], &[0u8; 8]);
        for cut in 0..=p.len() {
            if let Ok(v) = Ipv6::new_checked(&p[..cut]) {
                let _ = v.upper();
            }
        }
        for at in 0..p.len() {
            for byte in [0u8, 1, 43, 44, 59, 60, 0x7f, 0xff] {
                let mut q = p.clone();
                q[at] = byte;
                if let Ok(v) = Ipv6::new_checked(&q[..]) {
                    let _ = v.upper();
                }
            }
        }
    }
}
