//! keepalived.conf's load-balancing part, read as keepalived reads it, into
//! the rules model plus the health checks the control plane runs.
//!
//! Grammar: words separated by blanks, `{ … }` blocks, comments from `#` or
//! `!` to the end of the line, `include PATTERN` (a path, `*` allowed in its
//! last component) relative to the including file. Syntax errors (unbalanced
//! braces, missing values, unreadable includes) refuse the whole file with
//! `file:line: problem`; unknown or unsupported keywords are reported, each
//! with its `file:line`, and otherwise ignored, never silently dropped.

mod checks;
mod files;
pub mod vrrp;

pub use checks::{Check, CheckKind, Program, RealServer, RunAs, Ssl, Url};
pub use files::{Disk, Files, MAX_FILE, MemFiles};

use crate::ipvsadm::{Command, ServiceSpec};
use crate::{Error, FwdMethod, Protocol, Rules, ServiceKey};
use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// Per-service settings that are not ipvsadm rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceExtras {
    /// The service.
    pub service: ServiceKey,
    /// `sorry_server IP PORT`: takes the traffic when no server is up.
    pub sorry_server: Option<(IpAddr, u16)>,
    /// Forwarding method of the service (for the sorry server).
    pub fwd: FwdMethod,
    /// `quorum`: least total weight of up servers (default 1).
    pub quorum: u32,
    /// `hysteresis`: slack around the quorum.
    pub hysteresis: u32,
    /// `quorum_up`: run when the quorum is gained.
    pub quorum_up: Option<Program>,
    /// `quorum_down`: run when it is lost.
    pub quorum_down: Option<Program>,
}

/// A keepalived configuration, as far as ferrovs applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keepalived {
    /// Services and real servers (all servers as configured, up).
    pub rules: Rules,
    /// Health checks.
    pub checks: Vec<Check>,
    /// Real servers' notify scripts.
    pub servers: Vec<RealServer>,
    /// The `SSL` block for `SSL_GET`.
    pub ssl: Ssl,
    /// `script_user`: who scripts run as by default.
    pub script_user: Option<RunAs>,
    /// Where `script_user` stands, `file:line`.
    pub script_user_at: Option<String>,
    /// `enable_script_security`: never run a script as root when a
    /// non-root user could change it.
    pub script_security: bool,
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
                " (VRRP runs over IPv4 only in ferrovs)"
            } else {
                ""
            };
            self.at(format!("\"{v}\" is not an IPv4 address{why}"))
        })
    }

    /// An IPv4 or IPv6 address (virtual and real servers, checkers).
    fn ip(&self, i: usize) -> Result<IpAddr, Error> {
        let v = self.arg(i)?;
        v.parse()
            .map_err(|_| self.at(format!("\"{v}\" is not an IPv4 or IPv6 address")))
    }

    /// Say by line that this keyword of `block` is not applied.
    fn not_applied(&self, block: &str, notes: &mut Vec<String>) {
        let w = self.words[0].as_str();
        let why = match w {
            "smtp_alert" | "snmp_name" => "ignored (no SMTP alerts or SNMP in ferrovs)",
            _ => "not supported, ignored",
        };
        notes.push(self.note(&format!("{block} {w}: {why}")));
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
    let notes = RefCell::new(Vec::new());
    let nodes = read_file(&Disk, path, 0, &notes)?;
    with_notes(interpret(&nodes), notes)
}

/// The interpretation, after the notes reading the files gave.
fn with_notes(k: Result<Keepalived, Error>, notes: RefCell<Vec<String>>) -> Result<Keepalived, Error> {
    let mut k = k?;
    let mut all = notes.into_inner();
    all.append(&mut k.notes);
    k.notes = all;
    Ok(k)
}

/// Interpret keepalived.conf text (`name` for messages; includes relative
/// to `dir`).
///
/// # Errors
/// A syntax error, as `name:line: problem`.
pub fn parse_text(name: &str, text: &str, dir: &Path) -> Result<Keepalived, Error> {
    parse_files(name, text, dir, &Disk)
}

/// Interpret keepalived.conf text whose includes are read from `files`.
///
/// # Errors
/// A syntax error, or an include `files` cannot give, as
/// `name:line: problem`.
pub fn parse_files(name: &str, text: &str, dir: &Path, files: &dyn Files) -> Result<Keepalived, Error> {
    let notes = RefCell::new(Vec::new());
    let src = Src {
        files,
        dir,
        depth: 0,
        notes: &notes,
    };
    let nodes = parse_nodes(name, text, src)?;
    with_notes(interpret(&nodes), notes)
}

/// Where the files come from, how deep in includes this one is, and the
/// notes reading them gives (an include that names nothing).
#[derive(Clone, Copy)]
struct Src<'a> {
    files: &'a dyn Files,
    dir: &'a Path,
    depth: usize,
    notes: &'a RefCell<Vec<String>>,
}

fn read_file(
    files: &dyn Files,
    path: &Path,
    depth: usize,
    notes: &RefCell<Vec<String>>,
) -> Result<Vec<Node>, Error> {
    let text = files::read(files, path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse_nodes(
        &path.display().to_string(),
        &text,
        Src {
            files,
            dir,
            depth,
            notes,
        },
    )
}

/// Split into words and blocks, following includes.
fn parse_nodes(name: &str, text: &str, src: Src) -> Result<Vec<Node>, Error> {
    if src.depth > 8 {
        return Err(Error::new("includes nested deeper than 8").at(name, 1));
    }
    // (line, word) pairs, with braces as words of their own.
    let mut tokens: Vec<(usize, String)> = Vec::new();
    let id = config_id();
    for (i, raw) in text.lines().enumerate() {
        let Some(raw) = conditional(raw, &id) else {
            continue;
        };
        tokens.extend(words(raw).into_iter().map(|w| (i + 1, w)));
    }
    let mut pos = 0;
    let nodes = block(name, &tokens, &mut pos, src, false)?;
    Ok(nodes)
}

/// A line's words as keepalived splits them: blanks separate, a quoted
/// string is one word (without its quotes, blanks and `#` kept), braces are
/// words of their own, and `#` or `!` outside quotes starts a comment.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                cur.extend(chars.by_ref().take_while(|&q| q != '"'));
                out.push(std::mem::take(&mut cur));
            }
            '#' | '!' => break,
            '{' | '}' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
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
    src: Src,
    nested: bool,
) -> Result<Vec<Node>, Error> {
    let mut out = Vec::new();
    while *pos < tokens.len() {
        let (line, ref word) = tokens[*pos];
        // Stray braces are said and skipped, as keepalived does
        // ("Unexpected '}'"/"'{' - ignoring"), not a reason to refuse.
        if word == "}" {
            *pos += 1;
            if !nested {
                note(
                    src,
                    name,
                    line,
                    "\"}\" without a block to close: ignored, as keepalived does",
                );
                continue;
            }
            return Ok(out);
        }
        if word == "{" {
            *pos += 1;
            note(
                src,
                name,
                line,
                "\"{\" without a keyword: ignored, as keepalived does",
            );
            continue;
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
            Some(block(name, tokens, pos, src, true)?)
        } else {
            None
        };
        if words[0] == "include" {
            let pattern = words
                .get(1)
                .ok_or_else(|| Error::new("include needs a path").at(name, line))?;
            // As keepalived: an include that names no file is said and
            // skipped ("Config files missing"), not a reason to refuse.
            let paths = match files::expand(src.files, src.dir, pattern) {
                Ok(p) => p,
                Err(e) => {
                    let why = e.problem;
                    src.notes
                        .borrow_mut()
                        .push(format!("{name}:{line}: {why}: nothing included"));
                    continue;
                }
            };
            for path in paths {
                if src.files.size(&path).is_err() {
                    src.notes.borrow_mut().push(format!(
                        "{name}:{line}: include {pattern}: no file {}: nothing included",
                        path.display()
                    ));
                    continue;
                }
                out.extend(read_file(src.files, &path, src.depth + 1, src.notes)?);
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
        note(
            src,
            name,
            line,
            "a block is not closed (missing \"}\"): closed at the end of the file, as keepalived does",
        );
    }
    Ok(out)
}

fn note(src: Src, name: &str, line: usize, what: &str) {
    src.notes.borrow_mut().push(format!("{name}:{line}: {what}"));
}

/// `persistence_timeout [SECONDS]`: keepalived's 300 without a value, and
/// 1 at least (0 would be a persistent service whose templates never
/// hold, which ipvsadm refuses too).
fn persistence_timeout(m: &Node) -> Result<u32, Error> {
    if m.words.len() < 2 {
        return Ok(300);
    }
    match m.num(1)? {
        0 => Err(m.at("persistence_timeout: \"0\" is out of range (1 to 4294967295)")),
        t => Ok(t),
    }
}

/// A group member's addresses: `A` or keepalived's range `A-B`, where B is
/// the last byte of an IPv4 address (`192.168.200.3-10`: .3 to .10) or the
/// last 16-bit group, in hex, of an IPv6 one (`ae00::2-9`: ::2 to ::9).
fn range(m: &Node) -> Result<Vec<IpAddr>, Error> {
    let w = m.arg(0)?;
    let Some((first, last)) = w.rsplit_once('-') else {
        return Ok(vec![m.ip(0)?]);
    };
    let bad = || {
        m.at(format!(
            "\"{w}\": a range is A.B.C.D-E (decimal) or IPV6-E (hex last group), E not below the start"
        ))
    };
    Ok(match first.parse::<IpAddr>().map_err(|_| bad())? {
        IpAddr::V4(a) => {
            let end: u8 = last.parse().map_err(|_| bad())?;
            let o = a.octets();
            if end < o[3] {
                return Err(bad());
            }
            (o[3]..=end)
                .map(|d| Ipv4Addr::new(o[0], o[1], o[2], d).into())
                .collect()
        }
        IpAddr::V6(a) => {
            let end = u16::from_str_radix(last, 16).map_err(|_| bad())?;
            let g = a.segments();
            if end < g[7] {
                return Err(bad());
            }
            (g[7]..=end)
                .map(|x| {
                    let mut s = g;
                    s[7] = x;
                    Ipv6Addr::from(s).into()
                })
                .collect()
        }
    })
}

/// A `virtual_server_group`: its name, fwmark members and (VIP, port) members.
type Group = (String, Vec<ServiceKey>, Vec<(IpAddr, u16)>);

/// Keywords keepalived has that do not touch LVS rules: accepted, noted.
const IGNORED_TOP: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_use_polling",
    "net_namespace",
];
const NOT_YET_TOP: &[&str] = &["vrrp_track_process", "bfd_instance"];

fn interpret(nodes: &[Node]) -> Result<Keepalived, Error> {
    let mut k = Keepalived::default();
    let mut groups: Vec<Group> = Vec::new();
    let version = vrrp_version(nodes)?;
    // FILE_CHECK names a track_file wherever in the file it stands.
    let files = nodes
        .iter()
        .filter(|n| matches!(n.words[0].as_str(), "track_file" | "vrrp_track_file"))
        .map(checks::track_file)
        .collect::<Result<Vec<_>, _>>()?;
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
            "virtual_server" => virtual_server(n, &groups, &files, &mut k)?,
            "track_file" | "vrrp_track_file" => {}
            "SSL" => ssl(n, &mut k),
            w if NOT_YET_TOP.contains(&w) => k.notes.push(n.note(&format!("{w}: not applied"))),
            w if IGNORED_TOP.contains(&w) => k
                .notes
                .push(n.note(&format!("{w}: ignored (not load balancing)"))),
            w => k.notes.push(n.note(&format!("unknown keyword \"{w}\" ignored"))),
        }
    }
    sync_daemon_interface(nodes, &mut k)?;
    deprecated(nodes, &mut k.notes);
    vrrp::check(&mut k.vrrp, &mut k.notes)?;
    if let Some(inst) = k.sync_daemon.as_ref().and_then(|s| s.instance.as_ref()) {
        if !k.vrrp.instances.iter().any(|i| i.name == *inst) {
            return Err(Error::new(format!("lvs_sync_daemon: no vrrp_instance {inst}")));
        }
    }
    Ok(k)
}

/// keepalived's mapping of the deprecated `lvs_sync_daemon_interface IF` of
/// a `vrrp_instance`: `lvs_sync_daemon IF INSTANCE`, unless global_defs
/// names one (then it is ignored), each said.
fn sync_daemon_interface(nodes: &[Node], k: &mut Keepalived) -> Result<(), Error> {
    for n in nodes.iter().filter(|n| n.words[0] == "vrrp_instance") {
        for m in n
            .kids()
            .iter()
            .filter(|m| m.words[0] == "lvs_sync_daemon_interface")
        {
            let (ifname, inst) = (m.arg(1)?, n.arg(1)?);
            if let Some(d) = &k.sync_daemon {
                k.notes.push(m.note(&format!(
                    "lvs_sync_daemon_interface: deprecated, and lvs_sync_daemon is already {}: ignored",
                    d.interface
                )));
                continue;
            }
            let as_global = Node {
                words: ["lvs_sync_daemon", ifname, inst].map(String::from).to_vec(),
                ..m.clone()
            };
            k.sync_daemon = Some(vrrp::sync_daemon(&as_global)?);
            k.sync_daemon.as_mut().expect("just set").instance = Some(inst.to_string());
            k.notes.push(m.note(&format!(
                "lvs_sync_daemon_interface: deprecated; read as global_defs lvs_sync_daemon {ifname} {inst}, as keepalived does"
            )));
        }
    }
    Ok(())
}

/// keepalived's warnings for keywords it still reads but has deprecated,
/// wherever they stand.
fn deprecated(nodes: &[Node], notes: &mut Vec<String>) {
    for n in nodes {
        if n.words[0] == "nb_get_retry" {
            notes.push(n.note("nb_get_retry is deprecated - please use 'retry' (read as retry)"));
        }
        deprecated(n.kids(), notes);
    }
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
            "script_user" => {
                k.script_user = checks::run_as(m, 1);
                k.script_user_at = Some(format!("{}:{}", m.file, m.line));
            }
            "enable_script_security" => k.script_security = true,
            "lvs_sync_daemon_interface" => k.notes.push(m.note(
                "global_defs: unknown keyword \"lvs_sync_daemon_interface\" ignored (keepalived reads it in a \
                 vrrp_instance only; here: lvs_sync_daemon IF INSTANCE)",
            )),
            w if w.starts_with("vrrp_") => k.notes.push(m.note(&format!(
                "global_defs {w}: not applied (ferrovs's VRRP keeps its default)"
            ))),
            w => k
                .notes
                .push(m.note(&format!("global_defs {w}: ignored (not load balancing)"))),
        }
    }
    Ok(())
}

/// The global `SSL { password ca certificate key }` block.
fn ssl(n: &Node, k: &mut Keepalived) {
    for m in n.kids() {
        let path = m.words.get(1).map(PathBuf::from);
        match m.words[0].as_str() {
            "ca" => k.ssl.ca = path,
            "certificate" => k.ssl.certificate = path,
            "key" => k.ssl.key = path,
            w => k.notes.push(m.note(&format!(
                "SSL {w}: not supported, ignored (keys must be unencrypted PEM)"
            ))),
        }
    }
}

/// A `virtual_server`'s own settings (its servers come after).
struct VsSettings {
    proto: Protocol,
    sched: String,
    fwd: FwdMethod,
    persistence: Option<u32>,
    /// `persistence_granularity` as written: a netmask, or a prefix length
    /// for an IPv6 service.
    netmask: Option<String>,
    ops: bool,
    inherited: checks::Inherited,
    extras: ServiceExtras,
}

fn vs_settings(n: &Node, k: &mut Keepalived) -> Result<VsSettings, Error> {
    let mut v = VsSettings {
        proto: Protocol::Tcp,
        sched: "wlc".into(),
        fwd: FwdMethod::Nat,
        persistence: None,
        netmask: None,
        ops: false,
        inherited: checks::Inherited {
            delay_loop: 60,
            ..Default::default()
        },
        extras: ServiceExtras {
            service: ServiceKey::fwmark(0),
            sorry_server: None,
            fwd: FwdMethod::Nat,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
        },
    };
    for m in n.kids() {
        if v.inherited.take(m)? {
            continue;
        }
        match m.words[0].as_str() {
            "lb_algo" | "lvs_sched" => {
                let name = m.arg(1)?;
                match name.parse::<sched::Kind>() {
                    Ok(_) => v.sched = name.to_string(),
                    // keepalived: "Invalid lvs_scheduler - ignoring", then
                    // its default.
                    Err(e) => k
                        .notes
                        .push(m.note(&format!("{}: {e}: wlc used, as keepalived does", m.words[0]))),
                }
            }
            "lb_kind" | "lvs_method" => {
                v.fwd = match m.arg(1)? {
                    "NAT" => FwdMethod::Nat,
                    "DR" => FwdMethod::Dr,
                    "TUN" => FwdMethod::Tun,
                    o => return Err(m.at(format!("{}: unknown method \"{o}\" (NAT, DR or TUN)", m.words[0]))),
                }
            }
            "persistence_timeout" => v.persistence = Some(persistence_timeout(m)?),
            "persistence_granularity" => v.netmask = Some(m.arg(1)?.to_string()),
            // keepalived: "protocol specified for fwmark - protocol will be
            // ignored".
            "protocol" if n.words.get(1).is_some_and(|w| w == "fwmark") => k.notes.push(
                m.note("protocol: a fwmark service matches by mark alone: ignored, as keepalived does"),
            ),
            "protocol" => {
                v.proto = match m.arg(1)? {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    o => return Err(m.at(format!("protocol: \"{o}\" is not supported (TCP or UDP)"))),
                }
            }
            "ops" => v.ops = true,
            "omega" => k.notes.push(m.note(
                "omega: accepted; down notifies are not run at shutdown (ferrovs keeps no state to clean up)",
            )),
            "quorum" => v.extras.quorum = m.num(1)?,
            "hysteresis" => v.extras.hysteresis = m.num(1)?,
            "quorum_up" => v.extras.quorum_up = Some(checks::program(m)?),
            "quorum_down" => v.extras.quorum_down = Some(checks::program(m)?),
            "sorry_server" => v.extras.sorry_server = Some((m.ip(1)?, m.num(2)? as u16)),
            "sorry_server_inhibit" | "real_server" => {}
            _ => m.not_applied("virtual_server", &mut k.notes),
        }
    }
    v.extras.fwd = v.fwd;
    Ok(v)
}

/// The services a `virtual_server` line names: one, a fwmark, or a group's.
fn vs_keys(n: &Node, proto: Protocol, groups: &[Group]) -> Result<Vec<ServiceKey>, Error> {
    Ok(match n.arg(1)? {
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
            addr: n.ip(1)?,
            port: n.num(2)? as u16,
            fwmark: 0,
        }],
    })
}

fn virtual_server(
    n: &Node,
    groups: &[Group],
    files: &[checks::TrackFile],
    k: &mut Keepalived,
) -> Result<(), Error> {
    // keepalived: "Invalid virtual server IP address/port - skipping".
    if !matches!(n.arg(1)?, "fwmark" | "group") && n.ip(1).is_err() {
        k.notes.push(n.note(&format!(
            "virtual_server {}: not an IPv4 or IPv6 address: this virtual_server is skipped, as keepalived does",
            n.arg(1)?
        )));
        return Ok(());
    }
    let v = vs_settings(n, k)?;
    let sched: sched::Kind = v
        .sched
        .parse()
        .map_err(|e: sched::UnknownScheduler| n.at(e.to_string()))?;
    for key in vs_keys(n, v.proto, groups)? {
        let spec = ServiceSpec {
            key,
            scheduler: Some(sched),
            persistence: v.persistence,
            netmask: v
                .netmask
                .as_deref()
                .map(|g| crate::ipvsadm::parse_netmask(g, key.is_ipv6()))
                .transpose()
                .map_err(|e| n.at(format!("persistence_granularity: {}", e.problem)))?,
            sched_flags: None,
            ops: v.ops,
        };
        k.rules
            .apply(&Command::AddService(spec))
            .map_err(|e| n.at(e.problem))?;
        k.extras.push(ServiceExtras {
            service: key,
            ..v.extras.clone()
        });
        for rs in n.kids().iter().filter(|m| m.words[0] == "real_server") {
            checks::real_server(rs, key, v.fwd, &v.inherited, files, k)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
