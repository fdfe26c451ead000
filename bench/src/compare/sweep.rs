//! `sweep`, `capacity` and `connections`: ferrovs measured over a range
//! (flows or real servers, fast path on and off), with its connection table
//! full, and opening and closing connections beside the kernel path.
//!
//! Must not touch: anything outside the runner's namespaces; the daemon is
//! driven through its commands only.

use super::GenInfo;
use super::dut::Nft;
use super::report::Report;
use super::{
    Back, Bg, Dst, INTERRUPTED, Opts, Topology, Traffic, ceiling, characterize, ferrovs, me, spawn_in,
    term_flag, trial,
};
use dataplane::xsk::bench::Pace;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sweep {
    /// Client flows (connection table size and hit rate).
    Flows,
    /// Real servers behind the service (scheduler cost).
    Servers,
}

/// Which of the two paths a sweep measures at each point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FastPaths {
    /// The XDP fast path on (established flows in the kernel).
    #[default]
    On,
    /// Off: every frame through the AF_XDP worker (rows `… -afxdp`).
    Off,
    /// Both, one row each.
    Both,
}

impl FastPaths {
    fn each(self) -> &'static [bool] {
        match self {
            Self::On => &[true],
            Self::Off => &[false],
            Self::Both => &[true, false],
        }
    }
}

/// `ferrovs-bench sweep`: ferrovs DR, one worker, at each of `points`
/// (flows, or real servers under `wlc`, ipvsadm's default scheduler), with
/// the fast path on, off or both, the same measurements as `compare`.
pub fn sweep(
    (what, fast): (Sweep, FastPaths),
    points: &[u64],
    (o, why): (&Opts, &str),
    json: Option<&str>,
    svg: Option<&str>,
) -> Result<(), String> {
    super::refuse_connections(o)?;
    let stop = term_flag();
    let t = Topology::up()?;
    let generator = ceiling(&t, o, why, &stop)?;
    let mut rows = Vec::new();
    let runs: Vec<(u64, bool)> = points
        .iter()
        .flat_map(|&n| fast.each().iter().map(move |&f| (n, f)))
        .collect();
    for (i, &(n, on)) in runs.iter().enumerate() {
        let suffix = if on { "" } else { "-afxdp" };
        let (label, opts, servers) = match what {
            Sweep::Flows => (
                format!("{n} flows{suffix}"),
                Opts {
                    flows: n as u32,
                    ..*o
                },
                2,
            ),
            Sweep::Servers => (format!("{n} servers{suffix}"), *o, n as u32),
        };
        eprintln!("[{}/{}] ferrovs-dr, {label} …", i + 1, runs.len());
        // Room for every flow, as a deployment would size it.
        let conn_max = (u64::from(opts.flows) * 5 / 4).max(1 << 16);
        let _dut = ferrovs(&t, &opts, "-g", (servers, on), "wlc", (conn_max, None))?;
        rows.push(characterize(&t, &label, Back::Servers(Dst::Vip), &opts, &stop)?);
        if stop.load(Ordering::Relaxed) {
            return Err(INTERRUPTED.to_string());
        }
    }
    // Flows vary by row in a flow sweep: 0 says so in the heading.
    let o = Opts {
        flows: if what == Sweep::Flows { 0 } else { o.flows },
        ..*o
    };
    Report::new(rows, &o, generator).publish(json, svg)
}

/// Resident memory of a process in KiB (`VmRSS`).
fn rss_kib(p: &Bg) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", p.0.id())).map_err(|e| format!("daemon: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "daemon: no VmRSS".to_string())
}

/// Connections the daemon in `t` holds: ActiveConn + InActConn of every
/// real server in its `-L -n`.
fn held(t: &Topology) -> Result<u64, String> {
    Ok(super::dut::ctl_output(t, &["-L", "-n"])?
        .lines()
        .filter(|l| l.trim_start().starts_with("->") && !l.contains("RemoteAddress"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.iter()
                .rev()
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum())
}

/// What a capacity run measured.
struct Fill {
    held: u64,
    secs: f64,
    /// RSS in KiB: a daemon with a table of the room alone, this one
    /// before the flood and with its table full.
    rss: [u64; 3],
    /// `--conn-max`, and the room in it for new connections.
    table: (u64, u64),
}

/// `ferrovs-bench capacity`: ferrovs DR, one worker, fast path off (the
/// whole table in the worker), with a table for `conns` connections: its
/// memory, the time to fill it with a connection per flow (SYN, ACK; RFC
/// 4814 ports over `conns` flows at 300 000 a second, repeated until the
/// table holds them all), then the
/// forwarding rates with it full (the same flows again: every frame a
/// lookup in a full table).
pub fn capacity(
    conns: u32,
    (o, why): (&Opts, &str),
    json: Option<&str>,
    svg: Option<&str>,
) -> Result<(), String> {
    let stop = term_flag();
    let t = Topology::up()?;
    let generator = ceiling(&t, o, why, &stop)?;
    // Each connection opened (SYN, ACK): ESTABLISHED lasts 900 s, where a
    // SYN alone (SYN_RECV, 30 s) would expire before a large table fills.
    let o = Opts {
        flows: conns,
        traffic: Traffic::Cps,
        ..*o
    };
    // IPv4 only here: the IPv6 table stays at its least on both daemons.
    // Both tables have room for the new-connection trials at the end; the
    // difference between the two daemons is the table for `conns`.
    let v6 = Some(1024);
    let new_room = room(&o, &generator);
    eprintln!("[1/4] a daemon with a table of room for the new-connection trials only, for its memory …");
    let small = {
        let dut = ferrovs(&t, &o, "-g", (2, false), "rr", (new_room, v6))?;
        rss_kib(&dut)?
    };
    eprintln!("[2/4] a table for {conns} connections, filled …");
    let table = table_for(conns, new_room);
    let dut = ferrovs(&t, &o, "-g", (2, false), "rr", (table, v6))?;
    let empty = rss_kib(&dut)?;
    let start = Instant::now();
    let mut held = 0;
    // A pass opens every flow's connection once, paced under what one
    // worker takes without loss here; what a pass still misses (a SYN
    // lost, so its ACK finds nothing), the next fills in.
    const FILL_RATE: f64 = 600_000.0;
    let pass = (2.0 * f64::from(conns) / FILL_RATE).max(1.0);
    let paced = Pace {
        rate: FILL_RATE,
        ..Pace::default()
    };
    for _ in 0..20 {
        trial(&t, pass, &o, paced, Back::Servers(Dst::Vip))?;
        held = self::held(&t)?;
        eprintln!(
            "  {held} connections after {:.1} s",
            start.elapsed().as_secs_f64()
        );
        if stop.load(Ordering::Relaxed) {
            return Err(INTERRUPTED.to_string());
        }
        if held >= u64::from(conns) * 999 / 1000 {
            break;
        }
    }
    let fill = Fill {
        held,
        secs: start.elapsed().as_secs_f64(),
        rss: [small, empty, rss_kib(&dut)?],
        table: (table, new_room),
    };
    eprintln!("[3/4] forwarding with the table full …");
    let label = format!("full {}", fill.held);
    let mut full = characterize(&t, &label, Back::Servers(Dst::Vip), &o, &stop)?;
    // The same connections again, every one already open: not a rate of
    // new ones.
    full.per_conn = 0;
    eprintln!("[4/4] new connections with the table full …");
    // Clients of their own (10.65/16), each connection a new flow.
    let fresh = Opts {
        flows: 1 << 24,
        clients_from: Some(std::net::Ipv4Addr::new(10, 65, 0, 0)),
        ..o
    };
    let new = characterize(
        &t,
        &format!("new {}", fill.held),
        Back::Servers(Dst::Vip),
        &fresh,
        &stop,
    )?;
    print!("{}", fill.table(conns));
    Report::new(vec![full, new], &o, generator).publish(json, svg)
}

/// Table room for every connection one characterization with `o` can
/// open: the generator's ceiling, a connection every two frames, for all
/// its trials (flat out, the search, twice the loss-free rate), a quarter
/// over; from 64 k to 8 M.
fn room(o: &Opts, generator: &GenInfo) -> u64 {
    let secs = o.secs + f64::from(o.steps + 1) * o.trial;
    let conns = generator.ceiling.0 / 2.0 * secs * 1.25;
    (conns as u64).clamp(1 << 16, 1 << 23)
}

/// `--conn-max` of a capacity run for `conns`: a quarter over, as a
/// deployment would size it, and `room` for the new connections of its
/// last row.
fn table_for(conns: u32, room: u64) -> u64 {
    u64::from(conns) * 5 / 4 + room
}

impl Fill {
    fn table(&self, conns: u32) -> String {
        let [small, empty, full] = self.rss;
        let per = |kib: u64| (kib * 1024) as f64 / self.held.max(1) as f64;
        format!(
            "capacity: ferrovs-dr, one worker, fast path off, a table for {conns} and a quarter \
             over, with room for {} new beside (--conn-max {}):\n\
             {:<12} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}\n\
             {:<12} {:>10} {:>10.1} {:>10.1} {:>10.1} {:>12.0} {:>12.0}\n\
             rss in MiB: of a daemon with the room alone (small), of this one empty and full; \
             B/conn: (full - small) / held, (full - empty) / held\n",
            self.table.1,
            self.table.0,
            "held",
            "fill s",
            "rss small",
            "rss empty",
            "rss full",
            "B/conn",
            "B/conn fill",
            self.held,
            format!("{:.1}", self.secs),
            small as f64 / 1024.0,
            empty as f64 / 1024.0,
            full as f64 / 1024.0,
            per(full.saturating_sub(small)),
            per(full.saturating_sub(empty)),
        )
    }
}

/// `ferrovs-bench connections`: RFC 9693's connection establishment and
/// tear-down rates, side by side, for the kernel path (nft DNAT with
/// conntrack), ferrovs DR and ferrovs NAT: each opens new TCP connections
/// (`cps`: SYN, the server's SYN-ACK, ACK) and opens and closes them
/// (`teardown`: then FIN|ACK, the server's FIN|ACK, ACK), every connection
/// on a new flow (16 M flows, RFC 4814 ports, each trial going on where the
/// last left off). The sink answers as the real servers; their answers
/// cross the forwarder back to the client, and count, except under DR,
/// whose servers answer the client directly.
pub fn connections((o, why): (&Opts, &str), json: Option<&str>, svg: Option<&str>) -> Result<(), String> {
    if o.ipv6 {
        return Err("connections: IPv4 only (the sink answers IPv4 TCP)".into());
    }
    let stop = term_flag();
    let t = Topology::up()?;
    let generator = ceiling(&t, o, why, &stop)?;
    let mut rows = Vec::new();
    let rows_of = [
        ("nft-dnat", None, Back::Answered),
        ("ferrovs-dr", Some("-g"), Back::Servers(Dst::Vip)),
        ("ferrovs-nat", Some("-m"), Back::Answered),
    ];
    for (i, (name, flag, back)) in rows_of.into_iter().enumerate() {
        eprintln!("[{}/3] {name}: new connections, then opened and closed …", i + 1);
        let o = Opts {
            flows: 1 << 24,
            traffic: Traffic::Cps,
            ..*o
        };
        // Room for every connection a run can open: they stay in the table
        // for their state's timeout (SYN_RECV 60 s, FIN_WAIT 120 s).
        // The kernel path: conntrack's DNAT behind our steering program
        // with no service (veth takes redirected frames only into an XDP
        // NAPI context), as in `compare`.
        t.flush_conntrack.set(flag.is_none());
        let (_dut, _nft) = match flag {
            Some(flag) => (
                ferrovs(&t, &o, flag, (2, false), "rr", (room(&o, &generator), Some(1024)))?,
                None,
            ),
            None => {
                t.busy_poll(0)?;
                let nft = Nft::load(&t.dut_ns, false)?;
                let pass = spawn_in(&t.dut_ns, &[&me(), "xdp-pass"])?;
                std::thread::sleep(std::time::Duration::from_millis(500));
                (pass, Some(nft))
            }
        };
        for traffic in [Traffic::Cps, Traffic::Teardown] {
            let o = Opts { traffic, ..o };
            let label = format!("{name}:{}", traffic.name());
            rows.push(characterize(&t, &label, back, &o, &stop)?);
            if stop.load(Ordering::Relaxed) {
                return Err(INTERRUPTED.to_string());
            }
        }
    }
    Report::new(
        rows,
        &Opts {
            traffic: Traffic::Cps,
            ..*o
        },
        generator,
    )
    .publish(json, svg)
}
