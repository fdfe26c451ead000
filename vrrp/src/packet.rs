//! VRRP advertisements on the wire: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798)
//! over IPv4, built and checked as keepalived builds and checks them
//! (`vrrp_build_vrrp_v2/v3`, `vrrp_check_packet`).
//!
//! | off | VRRPv2 | VRRPv3 |
//! |---|---|---|
//! | 0 | version 2, type 1 | version 3, type 1 |
//! | 1 | VRID | VRID |
//! | 2 | priority | priority |
//! | 3 | address count | address count |
//! | 4 | auth type | 4 bits reserved, 12-bit max advert interval (centiseconds) |
//! | 5 | advert interval (seconds) | |
//! | 6 | checksum | checksum |
//! | 8 | addresses, 4 bytes each | addresses |
//! | end | 8 bytes of auth data | — |
//!
//! The v2 checksum covers the VRRP message alone. The v3 one, as keepalived
//! computes it by default, also covers an IPv4 pseudo-header (source,
//! destination, protocol 112, length); `v3_checksum_as_v2` leaves it out (as
//! Cisco and Juniper read RFC 5798, and RFC 9568 asks): [`Checksum`].
//!
//! Owns: bytes in, bytes out. Must not touch: sockets, timers or state.

use std::net::Ipv4Addr;

/// IP protocol number of VRRP.
pub const PROTO_VRRP: u8 = 112;
/// The IPv4 multicast group adverts go to.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// TTL of a multicast advert, which a receiver insists on (RFC 5798 5.1.1.3).
pub const TTL: u8 = 255;
/// TOS of an advert (internetwork control), as keepalived sends it.
pub const TOS: u8 = 0xc0;
/// Advertisement, the one VRRP message type.
const TYPE_ADVERT: u8 = 1;
/// Bytes of v2 authentication data.
pub const AUTH_LEN: usize = 8;
/// Most addresses one advert carries (the count is a byte).
pub const MAX_ADDRS: usize = 255;

/// Protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// RFC 3768, keepalived's default.
    V2,
    /// RFC 5798.
    V3,
}

impl Version {
    fn number(self) -> u8 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }
}

/// v2 authentication (`authentication { auth_type … auth_pass … }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// None (type 0).
    None,
    /// A clear-text password of up to 8 bytes, zero-padded (type 1).
    Pass([u8; AUTH_LEN]),
}

impl Auth {
    /// The `auth_pass` password, of which keepalived keeps 8 bytes.
    pub fn pass(password: &str) -> Self {
        let mut b = [0u8; AUTH_LEN];
        let n = password.len().min(AUTH_LEN);
        b[..n].copy_from_slice(&password.as_bytes()[..n]);
        Self::Pass(b)
    }

    fn type_code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Pass(_) => 1,
        }
    }
}

/// How a v3 checksum is computed (v2 has one way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checksum {
    /// Over an IPv4 pseudo-header and the message (keepalived's default).
    #[default]
    PseudoHeader,
    /// Over the message alone (`v3_checksum_as_v2`).
    AsV2,
}

/// One advertisement's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Protocol version.
    pub version: Version,
    /// Virtual router id.
    pub vrid: u8,
    /// The sender's priority (0: it stops being master).
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2 carries whole seconds).
    pub interval_cs: u16,
    /// v2 authentication (v3 has none).
    pub auth: Auth,
    /// The virtual addresses.
    pub addrs: Vec<Ipv4Addr>,
}

impl Advert {
    /// Return the VRRP message for `src` sending to `dst` (whose addresses a
    /// v3 pseudo-header covers).
    pub fn encode(&self, mode: Checksum, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let n = self.addrs.len().min(MAX_ADDRS);
        let mut m = Vec::with_capacity(8 + 4 * n + AUTH_LEN);
        m.push(self.version.number() << 4 | TYPE_ADVERT);
        m.extend([self.vrid, self.priority, n as u8]);
        match self.version {
            Version::V2 => {
                let secs = (self.interval_cs / 100).clamp(1, 255) as u8;
                m.extend([self.auth.type_code(), secs]);
            }
            Version::V3 => m.extend((self.interval_cs & 0x0fff).to_be_bytes()),
        }
        m.extend([0, 0]);
        for a in &self.addrs[..n] {
            m.extend(a.octets());
        }
        if self.version == Version::V2 {
            match self.auth {
                Auth::None => m.extend([0; AUTH_LEN]),
                Auth::Pass(p) => m.extend(p),
            }
        }
        let c = checksum(&m, self.version, mode, src, dst);
        m[6..8].copy_from_slice(&c.to_be_bytes());
        m
    }
}

/// Return the IPv4 packet that carries `message` from `src` to `dst` with
/// `ttl` and IP id `id`, as keepalived sends it (TOS 0xc0, no fragment).
pub fn ip_packet(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, id: u16, message: &[u8]) -> Vec<u8> {
    let total = (20 + message.len()) as u16;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend([0x45, TOS]);
    p.extend(total.to_be_bytes());
    p.extend(id.to_be_bytes());
    p.extend([0, 0, ttl, PROTO_VRRP, 0, 0]);
    p.extend(src.octets());
    p.extend(dst.octets());
    let c = !fold(sum(&p));
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(message);
    p
}

/// Why a received packet was ignored, each counted under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// Shorter than its headers, or lengths that do not add up.
    Length,
    /// Not VRRP over IPv4.
    NotVrrp,
    /// TTL other than 255 on a multicast advert.
    Ttl,
    /// Another VRRP version than configured.
    Version,
    /// Another message type than advertisement.
    Type,
    /// No instance with this VRID on the interface.
    Vrid,
    /// v2 authentication type differs from the configured one.
    AuthType,
    /// v2 password differs.
    AuthPass,
    /// v2 advertisement interval differs from the configured one.
    Interval,
    /// Bad checksum.
    Checksum,
    /// The address list differs from the instance's virtual addresses.
    Addresses,
    /// Sent to a multicast group while the instance is unicast, or the
    /// other way round; or from a source that is not a `unicast_peer`.
    Destination,
    /// Our own advert, looped back.
    Own,
    /// Past the receiver's rate limit (a flood): not even parsed.
    Rate,
}

impl Ignored {
    /// Every reason, in counter order.
    pub const ALL: [Self; 14] = [
        Self::Length,
        Self::NotVrrp,
        Self::Ttl,
        Self::Version,
        Self::Type,
        Self::Vrid,
        Self::AuthType,
        Self::AuthPass,
        Self::Interval,
        Self::Checksum,
        Self::Addresses,
        Self::Destination,
        Self::Own,
        Self::Rate,
    ];

    /// Return the counter name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Length => "length",
            Self::NotVrrp => "not_vrrp",
            Self::Ttl => "ttl",
            Self::Version => "version",
            Self::Type => "type",
            Self::Vrid => "vrid",
            Self::AuthType => "auth_type",
            Self::AuthPass => "auth_pass",
            Self::Interval => "interval",
            Self::Checksum => "checksum",
            Self::Addresses => "addresses",
            Self::Destination => "destination",
            Self::Own => "own",
            Self::Rate => "rate",
        }
    }
}

/// A received advert, its structure checked, before an instance's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// IP source.
    pub src: Ipv4Addr,
    /// IP destination.
    pub dst: Ipv4Addr,
    /// IP TTL.
    pub ttl: u8,
    /// VRRP version number as sent (2 or 3; others were refused).
    pub version: Version,
    /// Message type.
    pub msg_type: u8,
    /// VRID.
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Interval in centiseconds.
    pub interval_cs: u16,
    /// v2 auth type code and data.
    pub auth: (u8, [u8; AUTH_LEN]),
    /// Addresses.
    pub addrs: Vec<Ipv4Addr>,
    /// Whether the checksum is right without a pseudo-header, and with one.
    pub sums_ok: (bool, bool),
}

/// Read the IPv4 packet `p` (from its IP header on, as a raw socket hands
/// it over) as a VRRP advert.
///
/// # Errors
/// [`Ignored::Length`], [`Ignored::NotVrrp`] or [`Ignored::Version`] for what
/// cannot be read as one.
pub fn parse(p: &[u8]) -> Result<Received, Ignored> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return Err(Ignored::NotVrrp);
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    // Ethernet padding may follow the packet; the IP length says where the
    // message ends.
    if ihl < 20 || total < ihl || total > p.len() {
        return Err(Ignored::Length);
    }
    if p[9] != PROTO_VRRP {
        return Err(Ignored::NotVrrp);
    }
    let (src, dst) = (addr(&p[12..16]), addr(&p[16..20]));
    let m = &p[ihl..total];
    if m.len() < 8 {
        return Err(Ignored::Length);
    }
    let version = match m[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        _ => return Err(Ignored::Version),
    };
    let n = usize::from(m[3]);
    let want = 8 + 4 * n + if version == Version::V2 { AUTH_LEN } else { 0 };
    if m.len() != want {
        return Err(Ignored::Length);
    }
    let addrs = m[8..8 + 4 * n].chunks(4).map(addr).collect();
    let (interval_cs, auth) = match version {
        Version::V2 => {
            let mut data = [0u8; AUTH_LEN];
            data.copy_from_slice(&m[8 + 4 * n..]);
            (u16::from(m[5]) * 100, (m[4], data))
        }
        Version::V3 => (u16::from_be_bytes([m[4], m[5]]) & 0x0fff, (0, [0; AUTH_LEN])),
    };
    let plain = fold(sum(m)) == 0xffff;
    let pseudo = fold(sum(m) + pseudo_sum(src, dst, m.len())) == 0xffff;
    Ok(Received {
        src,
        dst,
        ttl: p[8],
        version,
        msg_type: m[0] & 0x0f,
        vrid: m[1],
        priority: m[2],
        interval_cs,
        auth,
        addrs,
        sums_ok: (plain, pseudo),
    })
}

/// What an instance expects of the adverts it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect<'a> {
    /// Its version.
    pub version: Version,
    /// v2 authentication.
    pub auth: Auth,
    /// Its advertisement interval (v2 insists on it).
    pub interval_cs: u16,
    /// v3 checksum mode.
    pub checksum: Checksum,
    /// Unicast peers (empty: multicast).
    pub peers: &'a [Ipv4Addr],
    /// Its virtual addresses (those that go in adverts).
    pub addrs: &'a [Ipv4Addr],
    /// Its own source address (its adverts come back on multicast).
    pub own: Ipv4Addr,
}

impl Received {
    /// Check the advert against an instance, in keepalived's order.
    ///
    /// # Errors
    /// The first reason to ignore it.
    pub fn check(&self, e: &Expect<'_>) -> Result<(), Ignored> {
        let unicast = !e.peers.is_empty();
        if self.src == e.own {
            return Err(Ignored::Own);
        }
        if !unicast && self.ttl != TTL {
            return Err(Ignored::Ttl);
        }
        if self.version != e.version {
            return Err(Ignored::Version);
        }
        if self.version == Version::V2 {
            let (code, data) = self.auth;
            if code != e.auth.type_code() {
                return Err(Ignored::AuthType);
            }
            if let Auth::Pass(p) = e.auth {
                // Compared in full whatever differs first, as keepalived.
                if p.iter().zip(&data).fold(0, |acc, (a, b)| acc | (a ^ b)) != 0 {
                    return Err(Ignored::AuthPass);
                }
            }
            if self.interval_cs != e.interval_cs {
                return Err(Ignored::Interval);
            }
        }
        if self.msg_type != TYPE_ADVERT {
            return Err(Ignored::Type);
        }
        let ok = match (self.version, e.checksum) {
            (Version::V3, Checksum::PseudoHeader) => self.sums_ok.1,
            _ => self.sums_ok.0,
        };
        if !ok {
            return Err(Ignored::Checksum);
        }
        if unicast == self.dst.is_multicast() || (unicast && !e.peers.contains(&self.src)) {
            return Err(Ignored::Destination);
        }
        // A master that stops (priority 0) may send no addresses.
        if self.priority != 0 && !same_set(&self.addrs, e.addrs) {
            return Err(Ignored::Addresses);
        }
        Ok(())
    }
}

fn same_set(a: &[Ipv4Addr], b: &[Ipv4Addr]) -> bool {
    a.len() == b.len() && b.iter().all(|x| a.contains(x))
}

fn addr(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn checksum(m: &[u8], v: Version, mode: Checksum, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
    let extra = match (v, mode) {
        (Version::V3, Checksum::PseudoHeader) => pseudo_sum(src, dst, m.len()),
        _ => 0,
    };
    !fold(sum(m) + extra)
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> u32 {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&src.octets());
    b[4..8].copy_from_slice(&dst.octets());
    b[9] = PROTO_VRRP;
    b[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    sum(&b)
}

/// RFC 1071 sum of 16-bit words (an odd last byte padded with zero).
fn sum(b: &[u8]) -> u32 {
    let mut s: u32 = 0;
    let mut words = b.chunks_exact(2);
    for w in &mut words {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        s += u32::from(*last) << 8;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
mod tests;
