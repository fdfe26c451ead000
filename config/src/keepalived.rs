//! keepalived.conf's load-balancing part, read as keepalived reads it, into
//! the rules model plus the health checks the control plane runs.
//!
//! Grammar: words separated by blanks, `{ … }` blocks, comments from `#` or
//! `!` to the end of the line, `include PATTERN` (a path, `*` allowed in its
//! last component) relative to the including file. Syntax errors (unbalanced
//! braces, missing values, unreadable includes) refuse the whole file with
//! `file:line: problem`; unknown or unsupported keywords are reported, each
//! with its `file:line`, and otherwise ignored, never silently dropped.

pub mod vrrp;

use crate::ipvsadm::{Command, DestSpec, ServiceSpec};
use crate::{Error, FwdMethod, Protocol, Rules, ServiceKey};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What a real server's health is checked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// Connect to the port (`TCP_CHECK`).
    Tcp,
    /// `HTTP_GET`: each URL must answer its status (default 200) and, if
    /// given, the MD5 digest of its body.
    Http {
        /// (path, digest as lowercase hex, status code).
        urls: Vec<(String, Option<String>, Option<u16>)>,
    },
    /// `UDP_CHECK`: send `payload`; down on an ICMP port unreachable, or,
    /// with `require_reply`, when no answer comes in time.
    Udp {
        /// Bytes to send (`payload`, hex as keepalived writes it).
        payload: Vec<u8>,
        /// `require_reply`.
        require_reply: bool,
    },
    /// `PING_CHECK`: an ICMP echo must be answered in time.
    Ping,
    /// `MISC_CHECK`: run a command; exit 0 is up.
    Misc {
        /// The command line (`misc_path`).
        path: String,
        /// Seconds it may run (`misc_timeout`).
        timeout: u32,
    },
}

impl CheckKind {
    /// The checker's keyword.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tcp => "TCP_CHECK",
            Self::Http { .. } => "HTTP_GET",
            Self::Udp { .. } => "UDP_CHECK",
            Self::Ping => "PING_CHECK",
            Self::Misc { .. } => "MISC_CHECK",
        }
    }
}

/// One real server's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The service.
    pub service: ServiceKey,
    /// The real server.
    pub rip: Ipv4Addr,
    /// Its port.
    pub rport: u16,
    /// Its configured weight (restored on recovery).
    pub weight: u32,
    /// Quiesce (weight 0) on failure instead of removing it.
    pub inhibit_on_failure: bool,
    /// Start down until the first success (`alpha`).
    pub alpha: bool,
    /// The check.
    pub kind: CheckKind,
    /// Port to check (`connect_port`, default the server's).
    pub port: u16,
    /// Address to check from (`bindto`).
    pub bindto: Option<Ipv4Addr>,
    /// Seconds between checks (`delay_loop`).
    pub delay_loop: u32,
    /// Seconds a connection may take (`connect_timeout`).
    pub connect_timeout: u32,
    /// Failed attempts before the server is down (`retry`/`nb_get_retry`).
    pub retry: u32,
    /// Seconds between those attempts (`delay_before_retry`).
    pub delay_before_retry: u32,
}

/// Per-service settings that are not ipvsadm rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceExtras {
    /// The service.
    pub service: ServiceKey,
    /// `sorry_server IP PORT`: takes the traffic when no server is up.
    pub sorry_server: Option<(Ipv4Addr, u16)>,
    /// Forwarding method of the service (for the sorry server).
    pub fwd: FwdMethod,
    /// `quorum`: least total weight of up servers (default 1).
    pub quorum: u32,
    /// `hysteresis`: slack around the quorum.
    pub hysteresis: u32,
}

/// A keepalived configuration, as far as ferrovs applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keepalived {
    /// Services and real servers (all servers as configured, up).
    pub rules: Rules,
    /// Health checks.
    pub checks: Vec<Check>,
    /// Sorry servers, quorum and hysteresis per service.
    pub extras: Vec<ServiceExtras>,
    /// VRRP instances, scripts and sync groups.
    pub vrrp: vrrp::Vrrp,
    /// `lvs_sync_daemon` of global_defs.
    pub sync_daemon: Option<vrrp::SyncDaemon>,
    /// Keywords ignored or not applied, each as `file:line: …`.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
struct Node {
    words: Vec<String>,
    children: Option<Vec<Node>>,
    file: String,
    line: usize,
}

impl Node {
    fn at(&self, problem: impl Into<String>) -> Error {
        Error::new(problem).at(&self.file, self.line)
    }

    fn note(&self, what: &str) -> String {
        format!("{}:{}: {what}", self.file, self.line)
    }

    fn arg(&self, i: usize) -> Result<&str, Error> {
        self.words
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| self.at(format!("\"{}\" needs a value", self.words[0])))
    }

    fn num(&self, i: usize) -> Result<u32, Error> {
        let v = self.arg(i)?;
        v.parse()
            .map_err(|_| self.at(format!("\"{}\": \"{v}\" is not a number", self.words[0])))
    }

    fn addr(&self, i: usize) -> Result<Ipv4Addr, Error> {
        let v = self.arg(i)?;
        v.parse().map_err(|_| {
            let why = if v.contains(':') {
                " (IPv6 comes with ferrovs' IPv6 support)"
            } else {
                ""
            };
            self.at(format!("\"{v}\" is not an IPv4 address{why}"))
        })
    }

    fn kids(&self) -> &[Node] {
        self.children.as_deref().unwrap_or(&[])
    }
}

/// Read and interpret `path` and what it includes.
///
/// # Errors
/// A syntax error or an unreadable file, as `file:line: problem`.
pub fn load(path: &Path) -> Result<Keepalived, Error> {
    let nodes = read_file(path, 0)?;
    interpret(&nodes)
}

/// Interpret keepalived.conf text (`name` for messages; includes relative
/// to `dir`).
///
/// # Errors
/// A syntax error, as `name:line: problem`.
pub fn parse_text(name: &str, text: &str, dir: &Path) -> Result<Keepalived, Error> {
    let nodes = parse_nodes(name, text, dir, 0)?;
    interpret(&nodes)
}

fn read_file(path: &Path, depth: usize) -> Result<Vec<Node>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse_nodes(&path.display().to_string(), &text, dir, depth)
}

/// Split into words and blocks, following includes.
fn parse_nodes(name: &str, text: &str, dir: &Path, depth: usize) -> Result<Vec<Node>, Error> {
    if depth > 8 {
        return Err(Error::new("includes nested deeper than 8").at(name, 1));
    }
    // (line, word) pairs, with braces as words of their own.
    let mut tokens: Vec<(usize, String)> = Vec::new();
    let id = config_id();
    for (i, raw) in text.lines().enumerate() {
        let Some(raw) = conditional(raw, &id) else {
            continue;
        };
        let line = raw.split(['#', '!']).next().unwrap_or("");
        for w in line.replace('{', " { ").replace('}', " } ").split_whitespace() {
            tokens.push((i + 1, w.trim_matches('"').to_string()));
        }
    }
    let mut pos = 0;
    let nodes = block(name, &tokens, &mut pos, dir, depth, false)?;
    Ok(nodes)
}

/// keepalived's config id (`-i ID`; by default the host name up to its
/// first dot), which `@ID` lines are kept for.
fn config_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    host.trim().split('.').next().unwrap_or("").to_string()
}

/// A line as keepalived's conditional configuration reads it: `@ID rest`
/// is `rest` when this host's config id is ID (`@^ID`: when it is not),
/// and nothing otherwise; other lines are themselves.
fn conditional<'a>(line: &'a str, id: &str) -> Option<&'a str> {
    let t = line.trim_start();
    let Some(cond) = t.strip_prefix('@') else {
        return Some(line);
    };
    let (want, rest) = cond.split_once(char::is_whitespace).unwrap_or((cond, ""));
    let keep = match want.strip_prefix('^') {
        Some(not) => not != id,
        None => want == id,
    };
    keep.then_some(rest)
}

fn block(
    name: &str,
    tokens: &[(usize, String)],
    pos: &mut usize,
    dir: &Path,
    depth: usize,
    nested: bool,
) -> Result<Vec<Node>, Error> {
    let mut out = Vec::new();
    while *pos < tokens.len() {
        let (line, ref word) = tokens[*pos];
        if word == "}" {
            if !nested {
                return Err(Error::new("\"}\" without a block to close").at(name, line));
            }
            *pos += 1;
            return Ok(out);
        }
        if word == "{" {
            return Err(Error::new("\"{\" without a keyword").at(name, line));
        }
        // A statement: words up to the end of its line, or a block.
        let mut words = Vec::new();
        while *pos < tokens.len() && tokens[*pos].0 == line && tokens[*pos].1 != "{" && tokens[*pos].1 != "}"
        {
            words.push(tokens[*pos].1.clone());
            *pos += 1;
        }
        let children = if *pos < tokens.len() && tokens[*pos].1 == "{" {
            *pos += 1;
            Some(block(name, tokens, pos, dir, depth, true)?)
        } else {
            None
        };
        if words[0] == "include" {
            let pattern = words
                .get(1)
                .ok_or_else(|| Error::new("include needs a path").at(name, line))?;
            for path in expand(dir, pattern).map_err(|e| e.at(name, line))? {
                out.extend(read_file(&path, depth + 1)?);
            }
            continue;
        }
        out.push(Node {
            words,
            children,
            file: name.to_string(),
            line,
        });
    }
    if nested {
        let line = tokens.last().map_or(1, |t| t.0);
        return Err(Error::new("a block is not closed (missing \"}\")").at(name, line));
    }
    Ok(out)
}

/// The files an include pattern names, sorted; `*` in the file name.
fn expand(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, Error> {
    let full = dir.join(pattern);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(vec![full]);
    }
    let parent = full.parent().unwrap_or(Path::new("."));
    let (pre, post) = name.split_once('*').unwrap_or((&name, ""));
    let entries = std::fs::read_dir(parent).map_err(|e| Error::new(format!("include {pattern}: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            n.starts_with(pre) && n.ends_with(post) && n.len() >= pre.len() + post.len()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `payload` bytes as keepalived writes them: hex digits, in one word or
/// several.
fn hex(m: &Node) -> Result<Vec<u8>, Error> {
    let digits: String = m.words[1..].concat();
    let digits = digits.trim_start_matches("0x");
    if digits.len() % 2 != 0 {
        return Err(m.at("payload: an even number of hex digits"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| m.at("payload: not hex")))
        .collect()
}

/// A group member's addresses: `A` or keepalived's range `A-B`, where B is
/// the last byte (`192.168.200.3-10`: .3 to .10).
fn range(m: &Node) -> Result<Vec<Ipv4Addr>, Error> {
    let w = m.arg(0)?;
    let Some((first, last)) = w.split_once('-').filter(|_| !w.contains(':')) else {
        return Ok(vec![m.addr(0)?]);
    };
    let bad = || m.at(format!("\"{w}\": a range is A.B.C.D-E, E not below D"));
    let a: Ipv4Addr = first.parse().map_err(|_| bad())?;
    let end: u8 = last.parse().map_err(|_| bad())?;
    let o = a.octets();
    if end < o[3] {
        return Err(bad());
    }
    Ok((o[3]..=end).map(|d| Ipv4Addr::new(o[0], o[1], o[2], d)).collect())
}

/// A `virtual_server_group`: its name, fwmark members and (VIP, port) members.
type Group = (String, Vec<ServiceKey>, Vec<(Ipv4Addr, u16)>);

/// Keywords keepalived has that do not touch LVS rules: accepted, noted.
const IGNORED_TOP: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_use_polling",
    "net_namespace",
];
const NOT_YET_TOP: &[&str] = &["vrrp_track_file", "vrrp_track_process", "bfd_instance"];

fn interpret(nodes: &[Node]) -> Result<Keepalived, Error> {
    let mut k = Keepalived::default();
    let mut groups: Vec<Group> = Vec::new();
    let version = vrrp_version(nodes)?;
    for n in nodes {
        match n.words[0].as_str() {
            "global_defs" => global_defs(n, &mut k)?,
            "vrrp_instance" => {
                if let Some(i) = vrrp::instance(n, version, &mut k.notes)? {
                    k.vrrp.instances.push(i);
                }
            }
            "vrrp_script" => {
                if let Some(s) = vrrp::script(n, &mut k.notes)? {
                    k.vrrp.scripts.push(s);
                }
            }
            "vrrp_sync_group" => {
                let g = vrrp::sync_group(n, &mut k.notes)?;
                k.vrrp.groups.push(g);
            }
            "virtual_server_group" => {
                let name = n.arg(1)?.to_string();
                let mut fwmarks = Vec::new();
                let mut addrs = Vec::new();
                for m in n.kids() {
                    if m.words[0] == "fwmark" {
                        fwmarks.push(ServiceKey::fwmark(m.num(1)?));
                    } else {
                        let port = m.num(1)? as u16;
                        addrs.extend(range(m)?.into_iter().map(|a| (a, port)));
                    }
                }
                groups.push((name, fwmarks, addrs));
            }
            "virtual_server" => virtual_server(n, &groups, &mut k)?,
            w if NOT_YET_TOP.contains(&w) => k.notes.push(n.note(&format!("{w}: not applied"))),
            w if IGNORED_TOP.contains(&w) => k
                .notes
                .push(n.note(&format!("{w}: ignored (not load balancing)"))),
            w => k.notes.push(n.note(&format!("unknown keyword \"{w}\" ignored"))),
        }
    }
    vrrp::check(&mut k.vrrp, &mut k.notes)?;
    if let Some(inst) = k.sync_daemon.as_ref().and_then(|s| s.instance.as_ref()) {
        if !k.vrrp.instances.iter().any(|i| i.name == *inst) {
            return Err(Error::new(format!("lvs_sync_daemon: no vrrp_instance {inst}")));
        }
    }
    Ok(k)
}

/// The global `vrrp_version` (default 2), which instances start from
/// wherever global_defs stands in the file.
fn vrrp_version(nodes: &[Node]) -> Result<u8, Error> {
    let mut v = 2;
    for m in nodes
        .iter()
        .filter(|n| n.words[0] == "global_defs")
        .flat_map(Node::kids)
    {
        if m.words[0] == "vrrp_version" {
            v = match m.num(1)? {
                x @ (2 | 3) => x as u8,
                x => return Err(m.at(format!("vrrp_version {x}: must be 2 or 3"))),
            };
        }
    }
    Ok(v)
}

fn global_defs(n: &Node, k: &mut Keepalived) -> Result<(), Error> {
    for m in n.kids() {
        match m.words[0].as_str() {
            "lvs_timeouts" => {
                // lvs_timeouts tcp N tcpfin N udp N
                let mut w = m.words[1..].chunks(2);
                for pair in &mut w {
                    let [key, v] = pair else {
                        return Err(m.at("lvs_timeouts takes pairs: tcp N tcpfin N udp N"));
                    };
                    let v: u32 = v
                        .parse()
                        .map_err(|_| m.at(format!("lvs_timeouts: \"{v}\" is not a number")))?;
                    match key.as_str() {
                        "tcp" => k.rules.timeouts.0 = v,
                        "tcpfin" => k.rules.timeouts.1 = v,
                        "udp" => k.rules.timeouts.2 = v,
                        other => return Err(m.at(format!("lvs_timeouts: unknown \"{other}\""))),
                    }
                }
            }
            "router_id" | "lvs_id" | "vrrp_version" => {}
            "lvs_sync_daemon" => k.sync_daemon = Some(vrrp::sync_daemon(m)?),
            w => k
                .notes
                .push(m.note(&format!("global_defs {w}: ignored (not load balancing)"))),
        }
    }
    Ok(())
}

fn virtual_server(n: &Node, groups: &[Group], k: &mut Keepalived) -> Result<(), Error> {
    // The service's settings first, then its servers.
    let mut proto = Protocol::Tcp;
    let (mut sched, mut fwd, mut persistence, mut netmask, mut ops) =
        ("wlc".to_string(), FwdMethod::Nat, None, None, false);
    let (mut delay_loop, mut alpha, mut quorum, mut hysteresis, mut sorry) = (60, false, 1, 0, None);
    for m in n.kids() {
        match m.words[0].as_str() {
            "delay_loop" => delay_loop = m.num(1)?,
            "lb_algo" | "lvs_sched" => sched = m.arg(1)?.to_string(),
            "lb_kind" | "lvs_method" => {
                fwd = match m.arg(1)? {
                    "NAT" => FwdMethod::Nat,
                    "DR" => FwdMethod::Dr,
                    "TUN" => FwdMethod::Tun,
                    o => return Err(m.at(format!("{}: unknown method \"{o}\" (NAT, DR or TUN)", m.words[0]))),
                }
            }
            "persistence_timeout" => persistence = Some(m.num(1)?),
            "persistence_granularity" => netmask = Some(m.addr(1)?),
            "protocol" => {
                proto = match m.arg(1)? {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    o => return Err(m.at(format!("protocol: \"{o}\" is not supported (TCP or UDP)"))),
                }
            }
            "ops" => ops = true,
            "alpha" => alpha = true,
            "omega" => k
                .notes
                .push(m.note("omega: accepted; ferrovs keeps no state to clean up on exit")),
            "quorum" => quorum = m.num(1)?,
            "hysteresis" => hysteresis = m.num(1)?,
            "sorry_server" => sorry = Some((m.addr(1)?, m.num(2)? as u16)),
            "sorry_server_inhibit" => {}
            "real_server" => {}
            w => k
                .notes
                .push(m.note(&format!("virtual_server {w}: not supported, ignored"))),
        }
    }
    let keys: Vec<ServiceKey> = match n.arg(1)? {
        "fwmark" => vec![ServiceKey::fwmark(n.num(2)?)],
        "group" => {
            let name = n.arg(2)?;
            let (_, fw, addrs) = groups.iter().find(|g| g.0 == name).ok_or_else(|| {
                n.at(format!(
                    "virtual_server_group \"{name}\" is not defined (define it first)"
                ))
            })?;
            fw.iter()
                .copied()
                .chain(addrs.iter().map(|&(addr, port)| ServiceKey {
                    proto,
                    addr,
                    port,
                    fwmark: 0,
                }))
                .collect()
        }
        _ => vec![ServiceKey {
            proto,
            addr: n.addr(1)?,
            port: n.num(2)? as u16,
            fwmark: 0,
        }],
    };
    for key in keys {
        let key = if key.fwmark == 0 {
            ServiceKey { proto, ..key }
        } else {
            key
        };
        let sched: sched::Kind = sched
            .parse()
            .map_err(|e: sched::UnknownScheduler| n.at(e.to_string()))?;
        let spec = ServiceSpec {
            key,
            scheduler: Some(sched),
            persistence,
            netmask,
            sched_flags: None,
            ops,
        };
        k.rules
            .apply(&Command::AddService(spec))
            .map_err(|e| n.at(e.problem))?;
        k.extras.push(ServiceExtras {
            service: key,
            sorry_server: sorry,
            fwd,
            quorum,
            hysteresis,
        });
        for rs in n.kids().iter().filter(|m| m.words[0] == "real_server") {
            real_server(rs, key, fwd, delay_loop, alpha, k)?;
        }
    }
    Ok(())
}

fn real_server(
    n: &Node,
    service: ServiceKey,
    fwd: FwdMethod,
    delay_loop: u32,
    alpha: bool,
    k: &mut Keepalived,
) -> Result<(), Error> {
    let rip = n.addr(1)?;
    // A fwmark service's server may have no port: it keeps each packet's.
    let rport = match n.words.get(2) {
        None if service.fwmark != 0 => 0,
        _ => n.num(2)? as u16,
    };
    let (mut weight, mut inhibit, mut u, mut l) = (1, false, None, None);
    let mut checks = Vec::new();
    for m in n.kids() {
        match m.words[0].as_str() {
            "weight" => weight = m.num(1)?,
            "inhibit_on_failure" => inhibit = true,
            "uthreshold" => u = Some(m.num(1)?),
            "lthreshold" => l = Some(m.num(1)?),
            "TCP_CHECK" | "HTTP_GET" | "MISC_CHECK" | "UDP_CHECK" | "PING_CHECK" => checks.push(m),
            w => k
                .notes
                .push(m.note(&format!("real_server {w}: not supported, ignored"))),
        }
    }
    let spec = DestSpec {
        addr: rip,
        port: (rport != 0).then_some(rport),
        fwd: Some(fwd),
        weight: Some(weight),
        u_threshold: u,
        l_threshold: l,
    };
    k.rules
        .apply(&Command::AddDest(service, spec))
        .map_err(|e| n.at(e.problem))?;
    for c in checks {
        let mut check = Check {
            service,
            rip,
            rport,
            weight,
            inhibit_on_failure: inhibit,
            alpha,
            kind: CheckKind::Tcp,
            port: rport,
            bindto: None,
            delay_loop,
            connect_timeout: 5,
            retry: 1,
            delay_before_retry: 1,
        };
        let mut urls = Vec::new();
        let (mut misc_path, mut misc_timeout) = (None, delay_loop);
        let (mut payload, mut require_reply) = (Vec::new(), false);
        for m in c.kids() {
            match m.words[0].as_str() {
                "connect_timeout" => check.connect_timeout = m.num(1)?,
                "connect_port" => check.port = m.num(1)? as u16,
                "bindto" => {
                    check.bindto = Some(m.addr(1)?);
                    k.notes
                        .push(m.note("bindto: parsed; checks use the source address the kernel picks"));
                }
                "retry" | "nb_get_retry" => check.retry = m.num(1)?.max(1),
                "delay_before_retry" => check.delay_before_retry = m.num(1)?,
                "delay_loop" => check.delay_loop = m.num(1)?,
                "url" => {
                    let (mut path, mut digest, mut status) = (None, None, None);
                    for u in m.kids() {
                        match u.words[0].as_str() {
                            "path" => path = Some(u.arg(1)?.to_string()),
                            "digest" => digest = Some(u.arg(1)?.to_lowercase()),
                            "status_code" => status = Some(u.num(1)? as u16),
                            w => k.notes.push(u.note(&format!("url {w}: not supported, ignored"))),
                        }
                    }
                    urls.push((path.ok_or_else(|| m.at("url needs a path"))?, digest, status));
                }
                "misc_path" => misc_path = Some(m.words[1..].join(" ")),
                "payload" => payload = hex(m)?,
                "require_reply" => require_reply = true,
                "misc_timeout" => misc_timeout = m.num(1)?,
                "misc_dynamic" => k
                    .notes
                    .push(m.note("misc_dynamic: exit codes above 1 are treated as down")),
                w => k
                    .notes
                    .push(m.note(&format!("{} {w}: not supported, ignored", c.words[0]))),
            }
        }
        check.kind = match c.words[0].as_str() {
            "HTTP_GET" => {
                if urls.is_empty() {
                    return Err(c.at("HTTP_GET needs at least one url { path … }"));
                }
                CheckKind::Http { urls }
            }
            "MISC_CHECK" => CheckKind::Misc {
                path: misc_path.ok_or_else(|| c.at("MISC_CHECK needs misc_path"))?,
                timeout: misc_timeout,
            },
            "UDP_CHECK" => CheckKind::Udp {
                payload: std::mem::take(&mut payload),
                require_reply,
            },
            "PING_CHECK" => CheckKind::Ping,
            _ => CheckKind::Tcp,
        };
        k.checks.push(check);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
