//! ipvsadm's command syntax, parsed into a [`Command`].
//!
//! Short and long options are spelled as ipvsadm 1.31 spells them
//! (`-A|--add-service`, `-t|--tcp-service`, `-r|--real-server`, …), flag letters
//! may be grouped (`-Ln`), and values may follow as the next word or after `=`.
//! Scheduler names are checked here, so a bad `-s` never reaches the rules.

use crate::{Error, FwdMethod, MarkRule, Protocol, ServiceKey};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A service as `-A`/`-E` state it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Protocol, VIP and port.
    pub key: ServiceKey,
    /// `-s NAME`, if given.
    pub scheduler: Option<sched::Kind>,
    /// `-p [TIMEOUT]`, if given.
    pub persistence: Option<u32>,
    /// `-M NETMASK` (IPv6: `-M PREFIXLEN`): clients in one network share a
    /// persistence template.
    pub netmask: Option<IpAddr>,
    /// `-b FLAGS`, if given.
    pub sched_flags: Option<sched::SchedFlags>,
    /// `-o`: one-packet scheduling (UDP: every datagram scheduled alone).
    pub ops: bool,
}

/// A real server as `-a`/`-e`/`-d` state it; absent options keep their value
/// (edit) or take ipvsadm's default (add).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestSpec {
    /// RIP.
    pub addr: IpAddr,
    /// Port; absent means the service's port.
    pub port: Option<u16>,
    /// `-g|-m|-i`.
    pub fwd: Option<FwdMethod>,
    /// `-w`.
    pub weight: Option<u32>,
    /// `-x`.
    pub u_threshold: Option<u32>,
    /// `-y`.
    pub l_threshold: Option<u32>,
}

/// What `-L` should show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOpts {
    /// `-n`: numeric addresses and ports (ours are always numeric).
    pub numeric: bool,
    /// `-c`: list connections.
    pub connections: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--exact`.
    pub exact: bool,
    /// `--timeout`: show the timeouts.
    pub timeout: bool,
    /// `--thresholds`: show upper/lower thresholds.
    pub thresholds: bool,
    /// `--persistent-conn`: show persistence templates per server.
    pub persistent_conn: bool,
    /// `--json`: the listing as JSON (ours; ipvsadm has none).
    pub json: bool,
    /// One service only, when `-t|-u` was given.
    pub service: Option<ServiceKey>,
}

/// One ipvsadm command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`: add a virtual service.
    AddService(ServiceSpec),
    /// `-E`: edit a virtual service.
    EditService(ServiceSpec),
    /// `-D`: delete a virtual service.
    DelService(ServiceKey),
    /// `-a`: add a real server.
    AddDest(ServiceKey, DestSpec),
    /// `-e`: edit a real server.
    EditDest(ServiceKey, DestSpec),
    /// `-d`: delete a real server.
    DelDest(ServiceKey, DestSpec),
    /// `-C`: clear every service.
    Clear,
    /// `-L|-l`: list.
    List(ListOpts),
    /// `--set TCP TCPFIN UDP`: connection timeouts in seconds (0 keeps one).
    SetTimeouts(u32, u32, u32),
    /// `-S [-n]`: write the rules as ipvsadm-save text.
    Save {
        /// `-n`: numeric addresses and ports.
        numeric: bool,
    },
    /// `-R`: apply the ipvsadm commands read from standard input.
    Restore,
    /// `-Z [-t|-u VIP:PORT]`: zero the packet and byte counters.
    Zero(Option<ServiceKey>),
    /// `--mark -A|-D …`: add or delete a mark rule for fwmark services.
    Mark {
        /// `-A` (true) or `-D`.
        add: bool,
        /// The rule.
        rule: MarkRule,
    },
}

impl Command {
    /// Return whether the command changes the rules.
    pub fn changes_rules(&self) -> bool {
        !matches!(self, Self::List(_) | Self::Save { .. } | Self::Zero(_))
    }
}

/// ipvsadm's default persistence timeout, seconds.
pub const DEFAULT_PERSISTENCE: u32 = 300;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verb {
    AddService,
    EditService,
    DelService,
    AddDest,
    EditDest,
    DelDest,
    Clear,
    List,
    Set,
    Save,
    Restore,
    Zero,
}

#[derive(Default)]
struct Seen {
    verb: Option<Verb>,
    service: Option<ServiceKey>,
    scheduler: Option<sched::Kind>,
    persistence: Option<u32>,
    /// `-M` as given: its form depends on the service's family.
    netmask: Option<String>,
    ipv6: bool,
    sched_flags: Option<sched::SchedFlags>,
    ops: bool,
    real: Option<(IpAddr, Option<u16>)>,
    fwd: Option<FwdMethod>,
    weight: Option<u32>,
    u_threshold: Option<u32>,
    l_threshold: Option<u32>,
    list: ListOpts,
    set: Option<(u32, u32, u32)>,
}

/// Parse one ipvsadm command line (without the program name).
///
/// # Errors
/// An unknown option, a missing or malformed value, a scheduler we do not
/// know, or options that do not belong to the command.
///
/// # Examples
/// ```
/// use config::ipvsadm::{parse, Command};
/// let cmd = parse(&["-A", "-t", "10.0.0.100:80", "-s", "rr"]).unwrap();
/// assert!(matches!(cmd, Command::AddService(_)));
/// ```
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, Error> {
    if args.first().is_some_and(|a| a.as_ref() == "--mark") {
        return parse_mark(&args[1..]);
    }
    let mut seen = Seen::default();
    let mut words = args.iter().map(AsRef::as_ref).peekable();
    while let Some(word) = words.next() {
        if word == "--set" {
            // ipvsadm --set TCP TCPFIN UDP: three values follow.
            let mut value = |what| {
                let v = words
                    .next()
                    .ok_or_else(|| Error::new("--set needs three values: TCP TCPFIN UDP"))?;
                parse_num(v, what, 0, u32::MAX)
            };
            seen.set = Some((
                value("tcp timeout")?,
                value("tcpfin timeout")?,
                value("udp timeout")?,
            ));
            seen.take(Opt::Verb(Verb::Set), None)?;
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let opt = long_to_short(name).ok_or_else(|| unknown(&format!("--{name}")))?;
            let value = if takes_value(opt) == Arity::None {
                None
            } else {
                inline.or_else(|| next_value(opt, &mut words))
            };
            seen.take(opt, value)?;
        } else if let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty()) {
            for (i, c) in letters.char_indices() {
                let opt = Opt::from_short(c).ok_or_else(|| unknown(&format!("-{c}")))?;
                if takes_value(opt) == Arity::None {
                    seen.take(opt, None)?;
                    continue;
                }
                // A value may be glued on (`-w2`) or be the next word.
                let rest = &letters[i + c.len_utf8()..];
                let value = if rest.is_empty() {
                    next_value(opt, &mut words)
                } else {
                    Some(rest)
                };
                seen.take(opt, value)?;
                break;
            }
        } else {
            return Err(Error::new(format!("unexpected argument \"{word}\"")));
        }
    }
    seen.finish()
}

/// Options ipvsadm 1.31 has that ferrovs does not implement: refused by
/// name, never ignored.
const NOT_SUPPORTED: &[&str] = &[
    "--sctp-service",
    "--pe",
    "--tun-type",
    "--tun-port",
    "--tun-nocsum",
    "--tun-csum",
    "--tun-remcsum",
];

fn unknown(opt: &str) -> Error {
    if NOT_SUPPORTED.contains(&opt) {
        Error::new(format!("option {opt} is not supported by ferrovs"))
    } else {
        Error::new(format!("unknown option {opt}"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Opt {
    Verb(Verb),
    Tcp,
    Udp,
    Fwmark,
    Scheduler,
    SchedFlags,
    Persistent,
    Netmask,
    Ops,
    Ipv6,
    Real,
    Fwd(FwdMethod),
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connections,
    Stats,
    Rate,
    Exact,
    Timeout,
    Thresholds,
    PersistentConn,
    Json,
    Sort,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arity {
    None,
    Required,
    Optional,
}

impl Opt {
    fn from_short(c: char) -> Option<Self> {
        Some(match c {
            'A' => Self::Verb(Verb::AddService),
            'E' => Self::Verb(Verb::EditService),
            'D' => Self::Verb(Verb::DelService),
            'a' => Self::Verb(Verb::AddDest),
            'e' => Self::Verb(Verb::EditDest),
            'd' => Self::Verb(Verb::DelDest),
            'C' => Self::Verb(Verb::Clear),
            'L' | 'l' => Self::Verb(Verb::List),
            'S' => Self::Verb(Verb::Save),
            'R' => Self::Verb(Verb::Restore),
            'Z' => Self::Verb(Verb::Zero),
            't' => Self::Tcp,
            'f' => Self::Fwmark,
            'u' => Self::Udp,
            's' => Self::Scheduler,
            'b' => Self::SchedFlags,
            'M' => Self::Netmask,
            'o' => Self::Ops,
            '6' => Self::Ipv6,
            'p' => Self::Persistent,
            'r' => Self::Real,
            'g' => Self::Fwd(FwdMethod::Dr),
            'm' => Self::Fwd(FwdMethod::Nat),
            'i' => Self::Fwd(FwdMethod::Tun),
            'w' => Self::Weight,
            'x' => Self::UThreshold,
            'y' => Self::LThreshold,
            'n' => Self::Numeric,
            'c' => Self::Connections,
            _ => return None,
        })
    }
}

/// Whether `--name` is an ipvsadm option ferrovs takes (documentation
/// checks itself against this).
pub fn is_option(name: &str) -> bool {
    long_to_short(name).is_some()
}

fn long_to_short(name: &str) -> Option<Opt> {
    let short = match name {
        "add-service" => 'A',
        "edit-service" => 'E',
        "delete-service" => 'D',
        "add-server" => 'a',
        "edit-server" => 'e',
        "delete-server" => 'd',
        "clear" => 'C',
        "list" => 'L',
        "save" => 'S',
        "restore" => 'R',
        "zero" => 'Z',
        "tcp-service" => 't',
        "fwmark-service" => 'f',
        "udp-service" => 'u',
        "scheduler" => 's',
        "sched-flags" => 'b',
        "netmask" => 'M',
        "ops" => 'o',
        "persistent" => 'p',
        "real-server" => 'r',
        "gatewaying" => 'g',
        "masquerading" => 'm',
        "ipip" => 'i',
        "weight" => 'w',
        "u-threshold" => 'x',
        "l-threshold" => 'y',
        "numeric" => 'n',
        "connection" => 'c',
        "stats" => return Some(Opt::Stats),
        "rate" => return Some(Opt::Rate),
        "exact" => return Some(Opt::Exact),
        "timeout" => return Some(Opt::Timeout),
        "thresholds" => return Some(Opt::Thresholds),
        "persistent-conn" => return Some(Opt::PersistentConn),
        "json" => return Some(Opt::Json),
        // ipvsadm sorts its listings; ours always are, in its order.
        "sort" | "nosort" => return Some(Opt::Sort),
        "set" => return Some(Opt::Verb(Verb::Set)),
        _ => return None,
    };
    Opt::from_short(short)
}

fn takes_value(opt: Opt) -> Arity {
    match opt {
        Opt::Tcp | Opt::Udp | Opt::Fwmark | Opt::Scheduler | Opt::SchedFlags | Opt::Netmask | Opt::Real => {
            Arity::Required
        }
        Opt::Weight | Opt::UThreshold | Opt::LThreshold => Arity::Required,
        Opt::Persistent => Arity::Optional,
        _ => Arity::None,
    }
}

fn next_value<'a>(
    opt: Opt,
    words: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
) -> Option<&'a str> {
    match takes_value(opt) {
        Arity::None => None,
        Arity::Required => words.next(),
        // `-p` takes a timeout only when the next word is a number.
        Arity::Optional => words.next_if(|w| w.bytes().all(|b| b.is_ascii_digit()) && !w.is_empty()),
    }
}

impl Seen {
    fn take(&mut self, opt: Opt, value: Option<&str>) -> Result<(), Error> {
        let need = |v: Option<&str>, what: &str| {
            v.ok_or_else(|| Error::new(format!("option {what} needs a value")))
                .map(str::to_string)
        };
        match opt {
            Opt::Verb(v) => {
                if self.verb.is_some_and(|old| old != v) {
                    return Err(Error::new("more than one command given"));
                }
                self.verb = Some(v);
            }
            Opt::Tcp | Opt::Udp => {
                let proto = if opt == Opt::Tcp {
                    Protocol::Tcp
                } else {
                    Protocol::Udp
                };
                let v = need(value, if opt == Opt::Tcp { "-t" } else { "-u" })?;
                let (addr, port) = parse_addr_port(&v)?;
                let port = port.ok_or_else(|| Error::new(format!("service address \"{v}\" has no port")))?;
                self.service = Some(ServiceKey {
                    proto,
                    addr,
                    port,
                    fwmark: 0,
                });
            }
            Opt::Fwmark => {
                let mark = parse_num(&need(value, "-f")?, "firewall mark", 1, u32::MAX)?;
                self.service = Some(if self.ipv6 {
                    ServiceKey::fwmark6(mark)
                } else {
                    ServiceKey::fwmark(mark)
                });
            }
            Opt::Ipv6 => {
                // As ipvsadm: -6 makes a mark service IPv6 and means nothing
                // else.
                match &mut self.service {
                    Some(k) if k.fwmark != 0 => *k = ServiceKey::fwmark6(k.fwmark),
                    _ => return Err(Error::new("-6 used before -f")),
                }
                self.ipv6 = true;
            }
            Opt::Scheduler => {
                let name = need(value, "-s")?;
                self.scheduler = Some(
                    name.parse()
                        .map_err(|e: sched::UnknownScheduler| Error::new(e.to_string()))?,
                );
            }
            Opt::SchedFlags => {
                let list = need(value, "-b")?;
                self.sched_flags = Some(sched::SchedFlags::parse(&list).map_err(Error::new)?);
            }
            Opt::Ops => self.ops = true,
            Opt::Netmask => self.netmask = Some(need(value, "-M")?),
            Opt::Persistent => {
                self.persistence = Some(match value {
                    Some(v) => parse_num(v, "persistence timeout", 1, u32::MAX)?,
                    None => DEFAULT_PERSISTENCE,
                });
            }
            Opt::Real => self.real = Some(parse_addr_port(&need(value, "-r")?)?),
            Opt::Fwd(m) => self.fwd = Some(m),
            Opt::Weight => self.weight = Some(parse_num(&need(value, "-w")?, "weight", 0, 65535)?),
            Opt::UThreshold => {
                self.u_threshold = Some(parse_num(&need(value, "-x")?, "upper threshold", 0, u32::MAX)?)
            }
            Opt::LThreshold => {
                self.l_threshold = Some(parse_num(&need(value, "-y")?, "lower threshold", 0, u32::MAX)?)
            }
            Opt::Numeric => self.list.numeric = true,
            Opt::Connections => self.list.connections = true,
            Opt::Stats => self.list.stats = true,
            Opt::Rate => self.list.rate = true,
            Opt::Exact => self.list.exact = true,
            Opt::Timeout => self.list.timeout = true,
            Opt::Thresholds => self.list.thresholds = true,
            Opt::PersistentConn => self.list.persistent_conn = true,
            Opt::Json => self.list.json = true,
            Opt::Sort => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Command, Error> {
        let verb = self
            .verb
            .ok_or_else(|| Error::new("no command given (one of -A -E -D -a -e -d -C -L)"))?;
        let service = || {
            self.service
                .ok_or_else(|| Error::new("no service given (-t VIP:PORT or -u VIP:PORT)"))
        };
        let dest = || -> Result<DestSpec, Error> {
            let (addr, port) = self
                .real
                .ok_or_else(|| Error::new("no real server given (-r RIP[:PORT])"))?;
            Ok(DestSpec {
                addr,
                port,
                fwd: self.fwd,
                weight: self.weight,
                u_threshold: self.u_threshold,
                l_threshold: self.l_threshold,
            })
        };
        let dest_opts = self.real.is_some()
            || self.fwd.is_some()
            || self.weight.is_some()
            || self.u_threshold.is_some()
            || self.l_threshold.is_some();
        let service_opts = self.scheduler.is_some()
            || self.persistence.is_some()
            || self.sched_flags.is_some()
            || self.netmask.is_some()
            || self.ops;
        let list_opts = self.list != ListOpts::default();
        let illegal = |what: &str| Err(Error::new(format!("{what} not allowed with this command")));
        match verb {
            Verb::AddService | Verb::EditService => {
                if dest_opts {
                    return illegal("real-server options");
                }
                let key = service()?;
                let spec = ServiceSpec {
                    key,
                    scheduler: self.scheduler,
                    persistence: self.persistence,
                    netmask: self
                        .netmask
                        .as_deref()
                        .map(|m| parse_netmask(m, key.is_ipv6()))
                        .transpose()?,
                    sched_flags: self.sched_flags,
                    ops: self.ops,
                };
                Ok(if verb == Verb::AddService {
                    Command::AddService(spec)
                } else {
                    Command::EditService(spec)
                })
            }
            Verb::DelService => {
                if dest_opts || service_opts {
                    return illegal("options other than the service");
                }
                Ok(Command::DelService(service()?))
            }
            Verb::AddDest | Verb::EditDest | Verb::DelDest => {
                if service_opts {
                    return illegal("service options (-s, -p)");
                }
                let (key, d) = (service()?, dest()?);
                Ok(match verb {
                    Verb::AddDest => Command::AddDest(key, d),
                    Verb::EditDest => Command::EditDest(key, d),
                    _ => Command::DelDest(key, d),
                })
            }
            Verb::Clear => {
                if dest_opts || service_opts || list_opts || self.service.is_some() {
                    return illegal("options");
                }
                Ok(Command::Clear)
            }
            Verb::Save => {
                if dest_opts || service_opts || self.service.is_some() {
                    return illegal("options other than -n");
                }
                Ok(Command::Save {
                    numeric: self.list.numeric,
                })
            }
            Verb::Restore => {
                if dest_opts || service_opts || list_opts || self.service.is_some() {
                    return illegal("options");
                }
                Ok(Command::Restore)
            }
            Verb::Zero => {
                if dest_opts || service_opts || list_opts {
                    return illegal("options other than the service");
                }
                Ok(Command::Zero(self.service))
            }
            Verb::Set => {
                if dest_opts || service_opts || list_opts || self.service.is_some() {
                    return illegal("options");
                }
                let (tcp, tcpfin, udp) = self.set.unwrap_or_default();
                Ok(Command::SetTimeouts(tcp, tcpfin, udp))
            }
            Verb::List => {
                if dest_opts || service_opts {
                    return illegal("service and real-server options");
                }
                Ok(Command::List(ListOpts {
                    service: self.service,
                    ..self.list
                }))
            }
        }
    }
}

/// Parse a mark rule in the words of `iptables -t mangle`:
/// `-A|-D [-p tcp|udp] -d ADDR[/32] [--dport P | --dports P1,P2,…] -j MARK
/// --set-mark N`.
fn parse_mark<S: AsRef<str>>(args: &[S]) -> Result<Command, Error> {
    let mut words = args.iter().map(AsRef::as_ref);
    let (mut add, mut proto, mut addr, mut ports, mut mark, mut target) =
        (None, None, None, Vec::new(), None, None);
    while let Some(w) = words.next() {
        let mut value = || {
            words
                .next()
                .ok_or_else(|| Error::new(format!("--mark: {w} needs a value")))
        };
        match w {
            "-A" | "--append" => add = Some(true),
            "-D" | "--delete" => add = Some(false),
            "-p" | "--protocol" => {
                proto = Some(match value()? {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    p => {
                        return Err(Error::new(format!(
                            "--mark: unknown protocol \"{p}\" (tcp or udp)"
                        )));
                    }
                })
            }
            "-d" | "--destination" => {
                let v = value()?;
                let (a, len) = v.split_once('/').unwrap_or((v, ""));
                let a: IpAddr = a
                    .parse()
                    .map_err(|_| Error::new(format!("--mark: illegal address \"{v}\"")))?;
                let single = if a.is_ipv6() { "128" } else { "32" };
                if !len.is_empty() && len != single {
                    return Err(Error::new(format!(
                        "--mark: only single addresses (/{single}), not \"{v}\""
                    )));
                }
                addr = Some(a);
            }
            "--dport" | "--dports" | "--destination-port" | "--destination-ports" => {
                for p in value()?.split(',') {
                    ports.push(parse_num(p, "port", 1, 65535)? as u16);
                }
            }
            "-j" | "--jump" => target = Some(value()?.to_string()),
            "--set-mark" | "--set-xmark" => mark = Some(parse_num(value()?, "mark", 1, u32::MAX)?),
            // iptables' chain and match names are accepted and mean nothing more.
            "-t" | "-m" | "--match" => {
                value()?;
            }
            "PREROUTING" | "mangle" => {}
            _ => return Err(Error::new(format!("--mark: unexpected \"{w}\""))),
        }
    }
    if target.as_deref().is_some_and(|t| t != "MARK") {
        return Err(Error::new("--mark: the only target is MARK"));
    }
    let add = add.ok_or_else(|| Error::new("--mark: -A or -D"))?;
    let addr = addr.ok_or_else(|| Error::new("--mark: no destination (-d ADDR)"))?;
    let mark = mark.ok_or_else(|| Error::new("--mark: no mark (--set-mark N)"))?;
    Ok(Command::Mark {
        add,
        rule: MarkRule {
            proto,
            addr,
            ports,
            mark,
        },
    })
}

/// Parse `-M`: a dotted netmask (ones, then zeros) for an IPv4 service, a
/// prefix length 1-128 for an IPv6 one, as ipvsadm reads them.
pub(crate) fn parse_netmask(v: &str, ipv6: bool) -> Result<IpAddr, Error> {
    if ipv6 {
        let len = v
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=128).contains(l))
            .ok_or_else(|| {
                Error::new(format!(
                    "illegal ipv6 netmask \"{v}\" (expected a prefix length 1..128)"
                ))
            })?;
        return Ok(Ipv6Addr::from(u128::MAX << (128 - len)).into());
    }
    let bad = || Error::new(format!("illegal netmask \"{v}\""));
    let m: Ipv4Addr = v.parse().map_err(|_| bad())?;
    if u32::from(m).leading_ones() + u32::from(m).trailing_zeros() != 32 {
        return Err(bad());
    }
    Ok(m.into())
}

fn parse_num(s: &str, what: &str, min: u32, max: u32) -> Result<u32, Error> {
    s.parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| Error::new(format!("illegal {what} \"{s}\" (expected {min}..{max})")))
}

/// Parse `HOST[:PORT]` or `[HOST][:PORT]`: HOST an IPv4 address, an IPv6
/// address (in brackets when a port follows, as ipvsadm writes it), or an
/// /etc/hosts name; PORT a number or an /etc/services name.
pub(crate) fn parse_addr_port(s: &str) -> Result<(IpAddr, Option<u16>), Error> {
    let bad = || {
        Error::new(format!(
            "illegal address \"{s}\" (expected A.B.C.D[:PORT] or [IPV6][:PORT], or names from /etc/hosts and /etc/services)"
        ))
    };
    let names = crate::Names::system();
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let (a, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (a, None),
            _ => (a, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if s.parse::<Ipv6Addr>().is_ok() {
        // A bare IPv6 address: its colons are not a port.
        (s, None)
    } else {
        match s.rsplit_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let looks_numeric = addr
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':');
    let addr: IpAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) if !looks_numeric => names.host(addr).ok_or_else(bad)?,
        Err(_) => return Err(bad()),
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().or_else(|| names.port(p)).ok_or_else(bad)?),
        None => None,
    };
    Ok((addr, port))
}

#[cfg(test)]
mod tests;
