//! The parts `compare` starts inside its namespaces: the generator with its
//! sink (`gen-sink`), their self-check (`gen-check`), and the forwarders it
//! compares ferrovs with (`kernel-swap`, `afxdp-swap`, `xdp-pass`).

use super::generator::{Gen, GenChoice, Ports, choose, generate};
use super::{DUT_MAC, GEN_IP, GEN_IP6, GEN_MAC, PORT, RS_MACS, Traffic, VIP, VIP6, term_flag};
use dataplane::PacketIo;
use dataplane::Verdict;
use dataplane::xsk::bench::{KernelSwap, LAT_BUCKET_NS, Pace, Sink, SinkSlot};
use dataplane::xsk::{Port, PortConfig, Steer};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A frame from the generator to VIP:9 of `size` bytes on the wire (FCS
/// included, so 64 is the minimum Ethernet frame), IPv4 or IPv6. UDP goes
/// without a checksum (0); TCP's is right, as conntrack checks it, and the
/// generators keep it so as they change the frame.
fn frame(traffic: Traffic, size: usize, ipv6: bool, clients: [u8; 4]) -> Vec<u8> {
    // IPv6's header is 20 bytes longer: its 64-byte frames keep the same
    // payload room by growing to 84 (UDP needs 8 bytes for the stamp).
    let min = if ipv6 { 84 } else { 64 };
    let len = size.clamp(min, 1518) - 4;
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&DUT_MAC);
    f[6..12].copy_from_slice(&GEN_MAC);
    let l4 = if ipv6 {
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f[18..20].copy_from_slice(&((len - 54) as u16).to_be_bytes());
        f[20] = if traffic == Traffic::Udp { 17 } else { 6 };
        f[21] = 64;
        f[22..38].copy_from_slice(&GEN_IP6.octets());
        f[38..54].copy_from_slice(&VIP6.octets());
        54
    } else {
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = if traffic == Traffic::Udp { 17 } else { 6 };
        f[26..30].copy_from_slice(&clients);
        f[30..34].copy_from_slice(&VIP);
        let c = dataplane::wire::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        34
    };
    f[l4..l4 + 2].copy_from_slice(&10_000u16.to_be_bytes());
    f[l4 + 2..l4 + 4].copy_from_slice(&PORT.to_be_bytes());
    if traffic == Traffic::Udp {
        f[l4 + 4..l4 + 6].copy_from_slice(&((len - l4) as u16).to_be_bytes());
    } else {
        // Data offset 5 words; the generator sets SYN or ACK.
        f[l4 + 12] = 5 << 4;
        f[l4 + 14..l4 + 16].copy_from_slice(&65_535u16.to_be_bytes());
        let c = dataplane::xsk::bench::tcp_checksum(&f, l4);
        f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    }
    f
}

/// `gen-sink`: the generator and its sink in the generator namespace, as
/// the runner starts them for one trial (positional, in this order).
#[derive(Debug, clap::Args)]
pub struct GenSinkArgs {
    /// Seconds to send.
    secs: f64,
    /// Client flows.
    flows: u32,
    /// Frames per second (0: flat out).
    rate: f64,
    /// Stamp frames for latency (1) or not (0).
    #[arg(value_parser = clap::value_parser!(u8).range(0..=1))]
    stamp: u8,
    /// Whose frames to count: the servers' (`servers`) or the sender's.
    #[arg(value_enum)]
    back: Back,
    /// What to send.
    #[arg(value_enum)]
    traffic: Traffic,
    /// Frame size on the wire.
    size: usize,
    /// Generator threads.
    #[arg(value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// IP version, 4 or 6.
    #[arg(value_parser = ip_version)]
    ip: u8,
    /// The destination address the servers' frames must carry: the VIP
    /// (DR, a swap) or the server's own (`rip`: NAT, TUN, DNAT).
    #[arg(value_enum)]
    dst: DstArg,
    /// The generator (the runner chose it once for the whole run).
    #[arg(value_enum)]
    generator: Gen,
    /// The order of the flows' client ports.
    #[arg(value_enum)]
    ports: Ports,
    /// Pin a single generator thread to this CPU (default: the last).
    #[arg(long)]
    cpu: Option<usize>,
    /// The first frame's number (connections: where the last run left
    /// off, so these are new).
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// The first client address (IPv4); flows past 65 536 take the next.
    #[arg(long, default_value_t = std::net::Ipv4Addr::from(GEN_IP))]
    clients_from: std::net::Ipv4Addr,
}

/// Whose frames `gen-sink` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Back {
    /// The real servers' (a forwarder sent them on).
    Servers,
    /// The generator's own (a swap sent them back).
    Sender,
    /// The real servers', which the sink answers as the servers would
    /// (SYN-ACK, FIN-ACK), and those answers back at the client through
    /// the forwarder (NAT, DNAT).
    Answered,
}

/// The destination address `gen-sink` expects on the servers' frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DstArg {
    /// The VIP.
    Vip,
    /// The server's own.
    Rip,
}

/// `gen-check`: the generator and sink on their own, on a veth pair
/// `gen0`–`sink0` in the caller's namespace.
#[derive(Debug, clap::Args)]
pub struct GenCheckArgs {
    /// `good`, `good6`, `bad-checksum`, `unknown-mac` or `wrong-addr`.
    #[arg(default_value = "good")]
    variant: String,
    /// Frames per second.
    #[arg(default_value_t = 10_000.0)]
    rate: f64,
    /// Seconds to send.
    #[arg(default_value_t = 0.5)]
    secs: f64,
    /// The generator.
    #[arg(long, value_enum, default_value_t = GenChoice::Auto)]
    generator: GenChoice,
}

fn ip_version(s: &str) -> Result<u8, String> {
    match s {
        "4" => Ok(4),
        "6" => Ok(6),
        _ => Err(format!("IP version {s}: 4 or 6")),
    }
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn eth0() -> Result<u32, String> {
    host::ifindex("eth0").map_err(io)
}

/// Run `gen-sink`: print `offered got errors elapsed p50 p99 p99.9 sent`
/// (offered: the generator's frames and the servers' answers; sent: the
/// generator's).
///
/// # Errors
/// The programs could not be loaded or read.
pub fn gen_sink(a: &GenSinkArgs) -> Result<(), String> {
    let pace = Pace {
        rate: a.rate,
        stamp: a.stamp != 0,
        syn_first: match a.traffic {
            Traffic::Udp | Traffic::Cps | Traffic::Teardown => 0,
            Traffic::Syn => u64::MAX,
            Traffic::Tcp => u64::from(a.flows),
        },
        pseudorandom: a.ports == Ports::Pseudorandom,
        conn_pkts: a.traffic.per_connection(),
        first: a.first,
    };
    let answer = a.back == Back::Answered;
    let v4 = a.ip != 6;
    let f = frame(a.traffic, a.size, !v4, a.clients_from.octets());
    // Slots: the two servers, then the generator (a swap's frames). After
    // NAT, TUN (outer header) and the nft DNAT a server's frames carry its
    // address; after DR and a swap, the VIP's.
    let dst = |rip: [u8; 4]| v4.then_some(if a.dst == DstArg::Rip { rip } else { VIP });
    let macs = [
        SinkSlot {
            mac: RS_MACS[0],
            dst: dst([10, 50, 0, 11]),
        },
        SinkSlot {
            mac: RS_MACS[1],
            dst: dst([10, 50, 0, 12]),
        },
        // The servers' answers come back to the client's own address.
        SinkSlot {
            mac: GEN_MAC,
            dst: dst(VIP).filter(|_| !answer),
        },
    ];
    let mine = match a.back {
        Back::Sender => 2..3,
        Back::Servers => 0..2,
        Back::Answered => 0..3,
    };
    let ifindex = eth0()?;
    let sink = Sink::attach(ifindex, &macs, (pace.stamp, answer)).map_err(io)?;
    let start = Instant::now();
    let sent = generate(
        a.generator,
        ("eth0", ifindex),
        &f,
        a.flows,
        pace,
        (a.threads as usize, a.cpu),
        a.secs,
    )
    .map_err(io)?;
    let elapsed = start.elapsed().as_secs_f64();
    // Let the last frames arrive.
    std::thread::sleep(Duration::from_millis(200));
    let c = sink.counts().map_err(io)?;
    let lat = if pace.stamp {
        percentiles(&sink.latency().map_err(io)?)
    } else {
        [0; 3]
    };
    eprintln!(
        "sink: per slot {:?} unknown MAC {} bad checksum {}",
        &c.frames[..3],
        c.unknown,
        c.bad_checksum
    );
    let got: u64 = c.frames[mine].iter().sum();
    // Offered: the generator's frames and the servers' answers.
    println!(
        "{} {got} {} {elapsed} {} {} {} {sent}",
        sent + c.answered,
        c.total() - got + c.bad_checksum + c.unknown + c.wrong_addr,
        lat[0],
        lat[1],
        lat[2]
    );
    Ok(())
}

/// Run `gen-check`: send a paced frame out of `gen0` and count it on
/// `sink0`; print `key value` pairs.
///
/// # Errors
/// An unknown variant, or the programs could not be loaded or read.
pub fn gen_check(a: &GenCheckArgs) -> Result<(), String> {
    let tx = host::ifindex("gen0").map_err(io)?;
    let rx = host::ifindex("sink0").map_err(io)?;
    let variant = a.variant.as_str();
    let pace = Pace {
        rate: a.rate,
        stamp: true,
        ..Pace::default()
    };
    let mut f = frame(Traffic::Udp, 64, variant == "good6", GEN_IP);
    match variant {
        "good" | "good6" | "wrong-addr" => {}
        "bad-checksum" => f[24] ^= 0xff,
        "unknown-mac" => f[5] ^= 0xff,
        _ => return Err(format!("unknown variant {variant}")),
    }
    // `wrong-addr`: the sink expects another destination than sent.
    let dst = Some(if variant == "wrong-addr" {
        [10, 50, 0, 11]
    } else {
        VIP
    });
    let slot = SinkSlot {
        mac: DUT_MAC,
        dst: dst.filter(|_| variant != "good6"),
    };
    let (generator, why) = choose(a.generator)?;
    let sink = Sink::attach(rx, &[slot], (true, false)).map_err(io)?;
    let start = Instant::now();
    let sent = generate(generator, ("gen0", tx), &f, 16, pace, (1, None), a.secs).map_err(io)?;
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    let c = sink.counts().map_err(io)?;
    let lat = sink.latency().map_err(io)?;
    let [p50, ..] = percentiles(&lat);
    println!("generator {} ({why})", generator.name());
    println!(
        "sent {sent} elapsed {elapsed:.3} frames {} bytes {} unknown {} bad_checksum {} wrong_addr {} stamped {} p50_ns {p50}",
        c.frames[0],
        c.bytes[0],
        c.unknown,
        c.bad_checksum,
        c.wrong_addr,
        lat.iter().sum::<u64>()
    );
    Ok(())
}

/// `xdp-pass`: our steering program with no services, until SIGTERM.
///
/// # Errors
/// The program could not be attached.
pub fn xdp_pass() -> Result<(), String> {
    let _steer = Steer::attach(&[eth0()?], 1, None).map_err(io)?;
    wait_for_term();
    Ok(())
}

/// `kernel-swap`: the in-kernel XDP_TX MAC swap, until SIGTERM.
///
/// # Errors
/// The program could not be attached.
pub fn kernel_swap() -> Result<(), String> {
    let _swap = KernelSwap::attach(eth0()?).map_err(io)?;
    wait_for_term();
    Ok(())
}

/// `afxdp-swap`: a MAC swap on our own AF_XDP sockets, until SIGTERM.
///
/// # Errors
/// The program or the socket could not be set up.
pub fn afxdp_swap(busy_poll_us: u32) -> Result<(), String> {
    // On the core ferrovs' first worker takes.
    if let Some(core) = core_affinity::get_core_ids().and_then(|c| c.first().copied()) {
        core_affinity::set_for_current(core);
    }
    let mut steer = Steer::attach(&[eth0()?], 1, None).map_err(io)?;
    // The same socket options as the ferrovs rows get.
    let cfg = PortConfig {
        busy_poll_us,
        ..PortConfig::default()
    };
    let mut port = Port::open(&["eth0".to_string()], 0, &cfg).map_err(io)?;
    for (link, fd) in port.fds().into_iter().enumerate() {
        steer.set_socket(link, 0, fd).map_err(io)?;
    }
    steer
        .set_services(
            &[
                (17, u32::from_be_bytes(VIP), PORT),
                (6, u32::from_be_bytes(VIP), PORT),
            ],
            &[],
        )
        .map_err(io)?;
    let vip6 = u128::from(VIP6);
    steer
        .set_services6(&[(17, vip6, PORT), (6, vip6, PORT)], &[])
        .map_err(io)?;
    let stop = term_flag();
    while !stop.load(Ordering::Relaxed) {
        port.poll(|frame, _| {
            let b = frame.bytes();
            let (d, s) = b.split_at_mut(6);
            d.swap_with_slice(&mut s[..6]);
            Verdict::Tx(0)
        });
    }
    Ok(())
}

fn wait_for_term() {
    let stop = term_flag();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// p50, p99 and p99.9 in ns of the sink's latency buckets (0s when empty),
/// through an HDR histogram: each bucket's frames at its midpoint.
pub fn percentiles(buckets: &[u64]) -> [u64; 3] {
    let Ok(mut h) = hdrhistogram::Histogram::<u64>::new(3) else {
        return [0; 3];
    };
    for (k, &n) in buckets.iter().enumerate() {
        if n > 0 {
            let _ = h.record_n(k as u64 * LAT_BUCKET_NS + LAT_BUCKET_NS / 2, n);
        }
    }
    if h.is_empty() {
        return [0; 3];
    }
    [50.0, 99.0, 99.9].map(|q| h.value_at_quantile(q / 100.0))
}
