//! The flow key: protocol plus client and virtual tuples.

/// Identify one client flow to one virtual service (host byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// Client address.
    pub cip: u32,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vip: u32,
    /// Virtual port.
    pub vport: u16,
}
