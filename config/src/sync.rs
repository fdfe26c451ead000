//! A connection sync daemon as ipvsadm's `--start-daemon` states it: its
//! role and settings, with the kernel's defaults.
//!
//! Owns: the settings' words and defaults. Must not touch: sockets or the
//! messages themselves (the daemon's sync threads and `connsync` do those).

use std::net::Ipv4Addr;

/// Which daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends.
    Master,
    /// Receives.
    Backup,
}

impl Role {
    /// The word ipvsadm uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Backup => "backup",
        }
    }
}

/// How a daemon runs (`--mcast-interface`, `--syncid`, …), defaults filled
/// in as the kernel fills them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Settings {
    /// `--mcast-interface` (ipvsadm's default eth0).
    pub interface: String,
    /// `--syncid` (0: a backup takes every syncid).
    pub syncid: u8,
    /// `--sync-maxlen`: UDP payload bytes.
    pub maxlen: u16,
    /// `--mcast-group`.
    pub group: Ipv4Addr,
    /// `--mcast-port`.
    pub port: u16,
    /// `--mcast-ttl`.
    pub ttl: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interface: "eth0".into(),
            syncid: 0,
            maxlen: connsync::DEFAULT_MAXLEN as u16,
            group: connsync::GROUP,
            port: connsync::PORT,
            ttl: connsync::TTL,
        }
    }
}
