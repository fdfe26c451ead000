//! Connection states and their timeouts, as IPVS tracks them for the
//! input-only direction (DR/TUN: the director sees client→server packets
//! only). See `ip_vs_proto_tcp.c`, `tcp_states_dos`-free input table.

/// Protocol state of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum ConnState {
    /// Seen a SYN only (IPVS `SYN_RECV`).
    #[default]
    SynRecv,
    /// Seen an ACK after the SYN.
    Established,
    /// Seen a FIN from the client.
    FinWait,
    /// Seen a RST.
    Close,
    /// A UDP flow (IPVS has one UDP state, `UDP`).
    Udp,
}

impl ConnState {
    /// Return the name ipvsadm prints for this state.
    pub fn name(self) -> &'static str {
        match self {
            Self::SynRecv => "SYN_RECV",
            Self::Established => "ESTABLISHED",
            Self::FinWait => "FIN_WAIT",
            Self::Close => "CLOSE",
            Self::Udp => "UDP",
        }
    }

    /// Return whether the connection is closing or closed: a new SYN on it
    /// starts a new connection (IPVS `is_new_conn_expected()`).
    pub fn is_closing(self) -> bool {
        matches!(self, Self::FinWait | Self::Close)
    }

    /// Return whether IPVS counts the state as active (only ESTABLISHED is).
    pub fn is_active(self) -> bool {
        self == Self::Established
    }

    /// Return the next state after a client→server TCP segment with `flags`.
    ///
    /// The input-only column of IPVS's TCP table: RST closes, FIN moves to
    /// FIN_WAIT, an ACK without SYN moves a fresh connection to ESTABLISHED,
    /// and a new SYN on a closed entry starts over.
    pub fn on_tcp(self, flags: TcpFlags) -> Self {
        if flags.rst {
            Self::Close
        } else if flags.fin {
            Self::FinWait
        } else if flags.syn {
            match self {
                Self::Close | Self::FinWait => Self::SynRecv,
                s => s,
            }
        } else if flags.ack && self == Self::SynRecv {
            Self::Established
        } else {
            self
        }
    }
}

/// TCP flags the state machine reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK.
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
}

/// State timeouts in seconds; the defaults are IPVS's (`tcp_timeouts[]`,
/// `udp_timeouts[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// ESTABLISHED (`ipvsadm --set tcp`).
    pub tcp: u32,
    /// FIN_WAIT (`--set tcpfin`).
    pub tcp_fin: u32,
    /// UDP (`--set udp`).
    pub udp: u32,
    /// SYN_RECV.
    pub syn_recv: u32,
    /// CLOSE.
    pub close: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
            syn_recv: 60,
            close: 10,
        }
    }
}

impl Timeouts {
    /// Return how long a connection in `state` lives without packets.
    pub fn of(&self, state: ConnState) -> u32 {
        match state {
            ConnState::SynRecv => self.syn_recv,
            ConnState::Established => self.tcp,
            ConnState::FinWait => self.tcp_fin,
            ConnState::Close => self.close,
            ConnState::Udp => self.udp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: TcpFlags = TcpFlags {
        syn: true,
        ack: false,
        fin: false,
        rst: false,
    };
    const ACK: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
    };
    const FIN: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: true,
        rst: false,
    };
    const RST: TcpFlags = TcpFlags {
        syn: false,
        ack: false,
        fin: false,
        rst: true,
    };

    #[test]
    fn handshake_then_close() {
        let s = ConnState::SynRecv;
        let s = s.on_tcp(ACK);
        assert_eq!(s, ConnState::Established);
        assert!(s.is_active());
        let s = s.on_tcp(FIN);
        assert_eq!(s, ConnState::FinWait);
        assert!(!s.is_active());
        assert_eq!(s.on_tcp(SYN), ConnState::SynRecv);
    }

    #[test]
    fn rst_closes_from_any_state() {
        for s in [ConnState::SynRecv, ConnState::Established, ConnState::FinWait] {
            assert_eq!(s.on_tcp(RST), ConnState::Close);
        }
    }

    #[test]
    fn default_timeouts_are_ipvs_defaults() {
        let t = Timeouts::default();
        assert_eq!(
            (
                t.of(ConnState::Established),
                t.of(ConnState::FinWait),
                t.of(ConnState::Udp)
            ),
            (900, 120, 300)
        );
    }
}
