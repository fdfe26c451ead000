//! Connection states and their timeouts, as IPVS tracks them
//! (`ip_vs_proto_tcp.c`: `tcp_states[]`, `tcp_timeouts[]`; `ip_vs_proto_udp.c`).
//!
//! TCP has three tables: INPUT (client → server, seen by a NAT director that
//! also sees replies), OUTPUT (server → client) and INPUT-ONLY (DR/TUN, or a
//! NAT connection before its first reply: IPVS's `IP_VS_CONN_F_NOOUTPUT`).
//! A segment picks its row by its first flag of RST, SYN, FIN, ACK, in that
//! order (`tcp_state_idx()`); a segment with none leaves the state as it is.

/// Protocol state of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum ConnState {
    /// No packet seen yet.
    #[default]
    None = 0,
    /// ESTABLISHED.
    Established,
    /// SYN_SENT.
    SynSent,
    /// SYN_RECV.
    SynRecv,
    /// FIN_WAIT.
    FinWait,
    /// TIME_WAIT.
    TimeWait,
    /// CLOSE.
    Close,
    /// CLOSE_WAIT.
    CloseWait,
    /// LAST_ACK.
    LastAck,
    /// LISTEN.
    Listen,
    /// SYNACK.
    SynAck,
    /// A UDP flow (IPVS has one UDP state).
    Udp,
}

/// Direction of a packet relative to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → server, while replies are also seen (NAT).
    Input,
    /// Server → client (NAT replies).
    Output,
    /// Client → server where replies are never seen (DR, TUN) or not yet.
    InputOnly,
}

use ConnState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynAck as SA, SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `tcp_states[]`, transcribed: `[direction][syn, fin, ack, rst][state]`,
/// states in the order NONE ES SS SR FW TW CL CW LA LI SA.
const TCP_STATES: [[[ConnState; 11]; 4]; 3] = [
    // INPUT
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

impl ConnState {
    /// The TCP state of IPVS's number `n` (as sync carries it).
    pub fn from_tcp_number(n: u8) -> Option<Self> {
        use ConnState as S;
        const ALL: [ConnState; 11] = [
            S::None,
            S::Established,
            S::SynSent,
            S::SynRecv,
            S::FinWait,
            S::TimeWait,
            S::Close,
            S::CloseWait,
            S::LastAck,
            S::Listen,
            S::SynAck,
        ];
        ALL.get(usize::from(n)).copied()
    }

    /// Every TCP state, in IPVS's order.
    pub const TCP: [ConnState; 11] = [Self::None, ES, SS, SR, FW, TW, CL, CW, LA, LI, SA];

    /// Return the name ipvsadm prints for this state.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Established => "ESTABLISHED",
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::FinWait => "FIN_WAIT",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::Listen => "LISTEN",
            Self::SynAck => "SYNACK",
            Self::Udp => "UDP",
        }
    }

    /// Return whether IPVS counts the state as active (only ESTABLISHED is).
    pub fn is_active(self) -> bool {
        self == Self::Established
    }

    /// Return whether the connection is ending or ended, so that a new SYN
    /// on it starts a new connection (IPVS `conn_reuse_mode`).
    pub fn is_closing(self) -> bool {
        matches!(self, FW | TW | CL | CW | LA)
    }

    /// Return the next state after a TCP segment with `flags` in `dir`.
    pub fn on_tcp(self, dir: Direction, flags: TcpFlags) -> Self {
        // tcp_state_idx(): RST first, then SYN, FIN, ACK.
        let row = if flags.rst {
            3
        } else if flags.syn {
            0
        } else if flags.fin {
            1
        } else if flags.ack {
            2
        } else {
            return self;
        };
        let table = match dir {
            Direction::Input => 0,
            Direction::Output => 1,
            Direction::InputOnly => 2,
        };
        match self {
            Self::Udp => self,
            s => TCP_STATES[table][row][s as usize],
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

/// State timeouts in seconds; the defaults are IPVS's `tcp_timeouts[]` and
/// `udp_timeouts[]`. `ipvsadm --set TCP TCPFIN UDP` changes ESTABLISHED,
/// FIN_WAIT and UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Per TCP state, in [`ConnState::TCP`] order.
    pub tcp: [u32; 11],
    /// UDP.
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            //     NONE  ES  SS   SR  FW   TW   CL  CW  LA  LI   SA
            tcp: [2, 900, 120, 30, 120, 120, 10, 60, 30, 120, 120],
            udp: 300,
        }
    }
}

impl Timeouts {
    /// Return how long a connection in `state` lives without packets.
    pub fn of(&self, state: ConnState) -> u32 {
        match state {
            ConnState::Udp => self.udp,
            s => self.tcp[s as usize],
        }
    }

    /// Return the three values `ipvsadm --set` and `-L --timeout` use:
    /// (tcp, tcpfin, udp).
    pub fn ipvsadm(&self) -> (u32, u32, u32) {
        (self.tcp[ES as usize], self.tcp[FW as usize], self.udp)
    }

    /// Apply `ipvsadm --set TCP TCPFIN UDP`; 0 keeps a value, as ipvsadm.
    pub fn set(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.tcp[ES as usize] = tcp;
        }
        if tcpfin != 0 {
            self.tcp[FW as usize] = tcpfin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Input, InputOnly, Output};

    const SYN: TcpFlags = TcpFlags {
        syn: true,
        ack: false,
        fin: false,
        rst: false,
    };
    const SYNACK: TcpFlags = TcpFlags {
        syn: true,
        ack: true,
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

    fn walk(steps: &[(Direction, TcpFlags)]) -> Vec<&'static str> {
        let mut s = ConnState::None;
        steps
            .iter()
            .map(|&(d, f)| {
                s = s.on_tcp(d, f);
                s.name()
            })
            .collect()
    }

    #[test]
    fn dr_connection_through_the_input_only_table() {
        let got = walk(&[
            (InputOnly, SYN),
            (InputOnly, ACK),
            (InputOnly, ACK),
            (InputOnly, FIN),
            (InputOnly, ACK),
        ]);
        assert_eq!(
            got,
            ["SYN_RECV", "ESTABLISHED", "ESTABLISHED", "FIN_WAIT", "FIN_WAIT"]
        );
    }

    #[test]
    fn nat_connection_both_ways_client_closes_first() {
        let got = walk(&[
            (Input, SYN),
            (Output, SYNACK),
            (Input, ACK),
            (Input, FIN),
            (Output, FIN),
            (Input, ACK),
        ]);
        assert_eq!(
            got,
            [
                "SYN_RECV",
                "SYN_RECV",
                "ESTABLISHED",
                "CLOSE_WAIT",
                "TIME_WAIT",
                "TIME_WAIT"
            ]
        );
    }

    #[test]
    fn nat_server_closes_first() {
        let got = walk(&[
            (Input, SYN),
            (Input, ACK),
            (Output, FIN),
            (Input, FIN),
            (Input, ACK),
        ]);
        assert_eq!(
            got,
            ["SYN_RECV", "ESTABLISHED", "FIN_WAIT", "TIME_WAIT", "TIME_WAIT"]
        );
    }

    #[test]
    fn every_cell_of_every_table_is_the_kernels() {
        // Spot-check one cell per row against tcp_states[] as printed there,
        // then that RST always wins and flagless segments change nothing.
        assert_eq!(ConnState::SynAck.on_tcp(Input, RST), SR);
        assert_eq!(ConnState::SynAck.on_tcp(InputOnly, RST), CL);
        assert_eq!(ConnState::Listen.on_tcp(Output, ACK), ES);
        assert_eq!(ConnState::LastAck.on_tcp(Input, ACK), CL);
        assert_eq!(ConnState::LastAck.on_tcp(Output, ACK), LA);
        assert_eq!(ConnState::CloseWait.on_tcp(Output, FIN), TW);
        assert_eq!(ConnState::None.on_tcp(Output, SYN), SS);
        assert_eq!(ConnState::SynRecv.on_tcp(InputOnly, RST), SR);
        for s in ConnState::TCP {
            for d in [Input, Output, InputOnly] {
                let syn_rst = TcpFlags { rst: true, ..SYN };
                assert_eq!(s.on_tcp(d, syn_rst), s.on_tcp(d, RST));
                assert_eq!(s.on_tcp(d, TcpFlags::default()), s);
            }
        }
        assert_eq!(ConnState::Udp.on_tcp(Input, FIN), ConnState::Udp);
    }

    #[test]
    fn default_timeouts_are_ipvs_defaults_and_set_changes_three() {
        let mut t = Timeouts::default();
        assert_eq!(t.ipvsadm(), (900, 120, 300));
        assert_eq!(
            (t.of(SR), t.of(TW), t.of(CL), t.of(ConnState::None)),
            (30, 120, 10, 2)
        );
        t.set(3600, 0, 60);
        assert_eq!(t.ipvsadm(), (3600, 120, 60));
    }

    #[test]
    fn closing_states() {
        assert!(FW.is_closing() && TW.is_closing() && CL.is_closing());
        assert!(!ES.is_closing() && !SR.is_closing());
    }
}
