//! The flow key: protocol plus client and virtual tuples, over either
//! address family.

use std::fmt::Debug;
use std::hash::Hash;
use std::ops::BitAnd;

/// An IP address as the tables hold it, in host byte order: `u32` for IPv4,
/// `u128` for IPv6. Each family gets its own table, so an IPv4 entry never
/// pays for IPv6's width.
pub trait Addr:
    Copy + Eq + Ord + Hash + Default + Debug + Send + Sync + BitAnd<Output = Self> + 'static
{
    /// The table's compare unit: a key as words compared with no branch.
    type Words: Copy;
    /// Whether this is IPv6.
    const V6: bool;
    /// The client tuple (this address as the client's) as one 64-bit word
    /// for the table's finaliser, keyed by the table's `seed` so a client
    /// cannot choose tuples that collide.
    fn mix(self, proto: u8, cport: u16, seed: u64) -> u64;
    /// Widen to 128 bits (IPv4 in the low 32).
    fn widen(self) -> u128;
    /// Narrow from 128 bits (IPv4 takes the low 32).
    fn narrow(v: u128) -> Self;
    /// A key as words.
    fn words(proto: u8, cip: Self, cport: u16, vip: Self, vport: u16) -> Self::Words;
    /// Compare two keys' words.
    fn same(a: Self::Words, b: Self::Words) -> bool;
}

impl Addr for u32 {
    type Words = (u64, u64);
    const V6: bool = false;

    /// Protocol, port and address fit 64 bits side by side: no collision
    /// before the keyed finaliser.
    #[inline]
    fn mix(self, proto: u8, cport: u16, seed: u64) -> u64 {
        (u64::from(proto) << 48 | u64::from(cport) << 32 | u64::from(self)) ^ seed
    }

    #[inline]
    fn widen(self) -> u128 {
        u128::from(self)
    }

    #[inline]
    fn narrow(v: u128) -> Self {
        v as u32
    }

    #[inline]
    fn words(proto: u8, cip: Self, cport: u16, vip: Self, vport: u16) -> Self::Words {
        (
            u64::from(cip) << 32 | u64::from(vip),
            u64::from(proto) << 32 | u64::from(cport) << 16 | u64::from(vport),
        )
    }

    /// `==` on a tuple short-circuits; this is two compares and no branch.
    #[inline]
    fn same(a: Self::Words, b: Self::Words) -> bool {
        (a.0 ^ b.0) | (a.1 ^ b.1) == 0
    }
}

impl Addr for u128 {
    type Words = (u128, u128, u64);
    const V6: bool = true;

    /// 144 bits do not fit 64: each half goes through the keyed finaliser
    /// in turn, so which tuples collide depends on the secret seed (a plain
    /// XOR fold would let a client cancel port against address bits).
    #[inline]
    fn mix(self, proto: u8, cport: u16, seed: u64) -> u64 {
        let high = fmix64((self >> 64) as u64 ^ seed);
        fmix64(high ^ self as u64) ^ (u64::from(proto) << 48 | u64::from(cport) << 32)
    }

    #[inline]
    fn widen(self) -> u128 {
        self
    }

    #[inline]
    fn narrow(v: u128) -> Self {
        v
    }

    #[inline]
    fn words(proto: u8, cip: Self, cport: u16, vip: Self, vport: u16) -> Self::Words {
        (
            cip,
            vip,
            u64::from(proto) << 32 | u64::from(cport) << 16 | u64::from(vport),
        )
    }

    #[inline]
    fn same(a: Self::Words, b: Self::Words) -> bool {
        ((a.0 ^ b.0) | (a.1 ^ b.1) | u128::from(a.2 ^ b.2)) == 0
    }
}

/// MurmurHash3's 64-bit finaliser: every input bit reaches every output
/// bit.
#[inline]
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ h >> 33
}

/// Identify one client flow to one virtual service (host byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey<A: Addr = u32> {
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// Client address.
    pub cip: A,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vip: A,
    /// Virtual port.
    pub vport: u16,
}
