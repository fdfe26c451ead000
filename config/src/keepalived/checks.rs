//! keepalived's `real_server` blocks and every checker inside them
//! (`TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `SMTP_CHECK`, `DNS_CHECK`,
//! `MISC_CHECK`, `UDP_CHECK`, `PING_CHECK`, `FILE_CHECK`; `BFD_CHECK`
//! reported), with keepalived's defaults, into the model the control plane
//! runs. Owns that model; adds each server to the rules and nothing else.

use super::{Keepalived, Node};
use crate::ipvsadm::{Command, DestSpec};
use crate::{Error, FwdMethod, ServiceKey};
use std::net::IpAddr;
use std::path::PathBuf;

/// One URL of `HTTP_GET`/`SSL_GET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `path`.
    pub path: String,
    /// `digest`: MD5 of the body, lowercase hex.
    pub digest: Option<String>,
    /// `status_code` ranges, inclusive (keepalived's default 200-299).
    pub status: Vec<(u16, u16)>,
    /// `virtualhost` (the URL's, else the checker's, server's or service's).
    pub virtualhost: Option<String>,
}

/// A user (and group) a script runs as: `script_user`, `user`, or the
/// words after a notify script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User name.
    pub user: String,
    /// Group name (default: the user's own).
    pub group: Option<String>,
}

/// A script keepalived runs on an event (`notify_up`, `quorum_down`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The command line, with its arguments.
    pub line: String,
    /// Who it runs as, if not `script_user`.
    pub run_as: Option<RunAs>,
    /// Where it is written, `file:line`.
    pub at: String,
}

/// The global `SSL { … }` block of `SSL_GET`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ssl {
    /// `ca`: read, unused: certificates are not verified (keepalived's
    /// default).
    pub ca: Option<PathBuf>,
    /// `certificate`: the client certificate (PEM).
    pub certificate: Option<PathBuf>,
    /// `key`: its private key (PEM, unencrypted).
    pub key: Option<PathBuf>,
}

/// What a real server's health is checked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// Connect to the port (`TCP_CHECK`).
    Tcp,
    /// `HTTP_GET`, or `SSL_GET` with `tls`: each URL must answer one of its
    /// status codes and, if given, the MD5 digest of its body.
    Http {
        /// The URLs.
        urls: Vec<Url>,
        /// `SSL_GET`: over TLS.
        tls: bool,
        /// `enable_sni`: send the virtual host as SNI.
        sni: bool,
        /// `http_protocol`: 1.0 (default), 1.0C or 1.1.
        protocol: String,
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
        /// `misc_dynamic`: exit 2-255 is up with weight (code - 2).
        dynamic: bool,
        /// `user`.
        run_as: Option<RunAs>,
    },
    /// `SMTP_CHECK`: a 220 greeting, then HELO answered 250.
    Smtp {
        /// `helo_name`.
        helo: String,
    },
    /// `DNS_CHECK`: a query over UDP answered with no error and an answer.
    Dns {
        /// `type` as its number (SOA by default).
        qtype: u16,
        /// `name` (default `.`).
        name: String,
    },
    /// `FILE_CHECK`: the number in a `track_file`'s file, times `weight`.
    File {
        /// The file.
        path: PathBuf,
        /// The multiplier (negative with `reverse`); 0: non-zero is down.
        weight: i64,
    },
    /// A checker ferrovs does not run (`BFD_CHECK`), on a server with no
    /// other: down, so that a server nobody checks is never in the pool.
    NotApplied {
        /// The checker's keyword.
        keyword: String,
    },
}

impl CheckKind {
    /// The checker's keyword.
    pub fn name(&self) -> &str {
        match self {
            Self::Tcp => "TCP_CHECK",
            Self::Http { tls: false, .. } => "HTTP_GET",
            Self::Http { tls: true, .. } => "SSL_GET",
            Self::Udp { .. } => "UDP_CHECK",
            Self::Ping => "PING_CHECK",
            Self::Misc { .. } => "MISC_CHECK",
            Self::Smtp { .. } => "SMTP_CHECK",
            Self::Dns { .. } => "DNS_CHECK",
            Self::File { .. } => "FILE_CHECK",
            Self::NotApplied { keyword } => keyword,
        }
    }
}

/// One real server's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The service.
    pub service: ServiceKey,
    /// The real server.
    pub rip: IpAddr,
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
    /// Address to check (`connect_ip`, default the server's).
    pub connect_ip: IpAddr,
    /// Port to check (`connect_port`, default the server's).
    pub port: u16,
    /// Address to check from (`bindto`).
    pub bindto: Option<IpAddr>,
    /// Port to check from (`bind_port`).
    pub bind_port: Option<u16>,
    /// Seconds between checks (`delay_loop`).
    pub delay_loop: u32,
    /// Seconds a connection may take (`connect_timeout`).
    pub connect_timeout: u32,
    /// Attempts after a failure before the server is down (`retry`).
    pub retry: u32,
    /// Seconds between those attempts (`delay_before_retry`).
    pub delay_before_retry: u32,
    /// The first check comes at a random point within this many seconds
    /// (`warmup`, default `delay_loop`).
    pub warmup: u32,
    /// Where the checker block stands, `file:line`.
    pub at: String,
}

/// A real server's own settings that are not rules: its notify scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// The service.
    pub service: ServiceKey,
    /// The real server.
    pub rip: IpAddr,
    /// Its port.
    pub rport: u16,
    /// `notify_up`.
    pub notify_up: Option<Program>,
    /// `notify_down`.
    pub notify_down: Option<Program>,
}

/// What a `virtual_server` hands down to its servers and their checkers
/// (and a server to its checkers).
#[derive(Debug, Clone, Default)]
pub(super) struct Inherited {
    pub delay_loop: u32,
    pub alpha: bool,
    pub inhibit: bool,
    pub virtualhost: Option<String>,
    pub connect_timeout: Option<u32>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<u32>,
    pub warmup: Option<u32>,
}

impl Inherited {
    /// Take the settings a block can give to what it holds; `true` if `m`
    /// was one.
    pub fn take(&mut self, m: &Node) -> Result<bool, Error> {
        match m.words[0].as_str() {
            "delay_loop" => self.delay_loop = m.num(1)?,
            "alpha" => self.alpha = boolean(m)?,
            "inhibit_on_failure" => self.inhibit = boolean(m)?,
            "virtualhost" => self.virtualhost = Some(m.arg(1)?.to_string()),
            "connect_timeout" => self.connect_timeout = Some(m.num(1)?),
            "retry" | "nb_get_retry" => self.retry = Some(m.num(1)?),
            "delay_before_retry" => self.delay_before_retry = Some(m.num(1)?),
            "warmup" => self.warmup = Some(m.num(1)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// keepalived's `<BOOL>`: none is true; yes/no, true/false, on/off.
fn boolean(m: &Node) -> Result<bool, Error> {
    match m.words.get(1).map(|w| w.to_ascii_lowercase()).as_deref() {
        None | Some("yes" | "true" | "on") => Ok(true),
        Some("no" | "false" | "off") => Ok(false),
        Some(w) => Err(m.at(format!("\"{}\": \"{w}\" is not yes or no", m.words[0]))),
    }
}

/// A script with its optional `username [groupname]`.
pub(super) fn program(m: &Node) -> Result<Program, Error> {
    Ok(Program {
        line: m.arg(1)?.to_string(),
        run_as: run_as(m, 2),
        at: format!("{}:{}", m.file, m.line),
    })
}

/// `username [groupname]` from word `i` on.
pub(super) fn run_as(m: &Node, i: usize) -> Option<RunAs> {
    m.words.get(i).map(|u| RunAs {
        user: u.clone(),
        group: m.words.get(i + 1).cloned(),
    })
}

/// A `track_file NAME { file PATH weight W [reverse] }` block: (name, path,
/// weight with reverse applied).
pub(super) type TrackFile = (String, PathBuf, i64);

pub(super) fn track_file(n: &Node) -> Result<TrackFile, Error> {
    let name = n.arg(1)?.to_string();
    let (mut path, mut weight) = (None, 1i64);
    for m in n.kids() {
        match m.words[0].as_str() {
            "file" => path = Some(PathBuf::from(m.arg(1)?)),
            "weight" => weight = signed_weight(m)?,
            _ => {}
        }
    }
    let path = path.ok_or_else(|| n.at(format!("track_file {name} needs a file")))?;
    Ok((name, path, weight))
}

/// `weight W [reverse]`.
fn signed_weight(m: &Node) -> Result<i64, Error> {
    let v = m.arg(1)?;
    let w: i64 = v
        .parse()
        .map_err(|_| m.at(format!("weight: \"{v}\" is not a number")))?;
    Ok(if m.words.get(2).is_some_and(|r| r == "reverse") {
        -w
    } else {
        w
    })
}

/// A `real_server` block: the server into the rules, its checks and
/// scripts into `k`.
pub(super) fn real_server(
    n: &Node,
    service: ServiceKey,
    fwd: FwdMethod,
    vs: &Inherited,
    files: &[TrackFile],
    k: &mut Keepalived,
) -> Result<(), Error> {
    // keepalived: "Invalid real server ip address/port - skipping".
    let Ok(rip) = n.ip(1) else {
        k.notes.push(n.note(&format!(
            "real_server {}: not an IPv4 or IPv6 address: this server is skipped, as keepalived does",
            n.arg(1)?
        )));
        return Ok(());
    };
    // A fwmark service's server may have no port: it keeps each packet's.
    let rport = match n.words.get(2) {
        None if service.fwmark != 0 => 0,
        // keepalived: "fwmark virtual server …, real server … has port
        // specified - clearing".
        Some(p) if service.fwmark != 0 => {
            k.notes.push(n.note(&format!(
                "real_server {rip} {p}: a fwmark service's server keeps each packet's port: port cleared, as keepalived does"
            )));
            0
        }
        _ => n.num(2)? as u16,
    };
    let mut rs = vs.clone();
    let (mut weight, mut u, mut l) = (1, None, None);
    let mut server = RealServer {
        service,
        rip,
        rport,
        notify_up: None,
        notify_down: None,
    };
    let mut checks = Vec::new();
    for m in n.kids() {
        if rs.take(m)? {
            continue;
        }
        match m.words[0].as_str() {
            // ipvsadm's and keepalived's range: the rules take nothing wider.
            // keepalived: "Real server weight … is outside range 0-65535",
            // and the weight stays.
            "weight" => match m.num(1) {
                Ok(w) if w <= 65535 => weight = w,
                _ => k.notes.push(m.note(&format!(
                    "weight {} is outside range 0-65535: ignored, weight {weight} kept, as keepalived does",
                    m.arg(1)?
                ))),
            },
            "uthreshold" => u = Some(m.num(1)?),
            "lthreshold" => l = Some(m.num(1)?),
            "notify_up" => server.notify_up = Some(program(m)?),
            "notify_down" => server.notify_down = Some(program(m)?),
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "UDP_CHECK" | "PING_CHECK"
            | "SMTP_CHECK" | "DNS_CHECK" | "FILE_CHECK" => checks.push(m),
            "BFD_CHECK" => k.notes.push(m.note(
                "BFD_CHECK: not applied (ferrovs has no BFD); the server counts as down \
                 unless another checker says otherwise",
            )),
            _ => m.not_applied("real_server", &mut k.notes),
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
    let base = Check {
        service,
        rip,
        rport,
        weight,
        inhibit_on_failure: rs.inhibit,
        alpha: rs.alpha,
        kind: CheckKind::Tcp,
        connect_ip: rip,
        port: rport,
        bindto: None,
        bind_port: None,
        delay_loop: rs.delay_loop,
        connect_timeout: 5,
        retry: 1,
        delay_before_retry: 1,
        warmup: rs.delay_loop,
        at: format!("{}:{}", n.file, n.line),
    };
    let bfd_only = checks.is_empty() && n.kids().iter().any(|m| m.words[0] == "BFD_CHECK");
    if bfd_only {
        k.checks.push(Check {
            alpha: true,
            kind: CheckKind::NotApplied {
                keyword: "BFD_CHECK".into(),
            },
            ..base.clone()
        });
    }
    for c in checks {
        let check = checker(c, &base, &rs, files, k)?;
        k.checks.push(check);
    }
    k.servers.push(server);
    Ok(())
}

/// One checker block.
fn checker(
    c: &Node,
    base: &Check,
    rs: &Inherited,
    files: &[TrackFile],
    k: &mut Keepalived,
) -> Result<Check, Error> {
    let word = c.words[0].as_str();
    let mut check = Check {
        at: format!("{}:{}", c.file, c.line),
        ..base.clone()
    };
    let mut own = rs.clone();
    let mut urls = Vec::new();
    let mut misc = (None, None, false, None);
    let (mut payload, mut require_reply) = (Vec::new(), false);
    let (mut helo, mut qtype, mut qname) = ("smtpchecker.keepalived.org".to_string(), 6, ".".to_string());
    let (mut sni, mut protocol) = (false, "1.0".to_string());
    let (mut file, mut file_weight) = (None, None);
    for m in c.kids() {
        if own.take(m)? {
            continue;
        }
        match m.words[0].as_str() {
            "connect_ip" => check.connect_ip = m.ip(1)?,
            "connect_port" => check.port = m.num(1)? as u16,
            "bindto" => check.bindto = Some(m.ip(1)?),
            "bind_port" => check.bind_port = Some(m.num(1)? as u16),
            "url" => urls.push(url(m, own.virtualhost.as_deref(), k)?),
            "enable_sni" => sni = boolean(m)?,
            "http_protocol" => {
                protocol = match m.arg(1)? {
                    p @ ("1.0" | "1.0C" | "1.1") => p.to_string(),
                    p => return Err(m.at(format!("http_protocol: \"{p}\" (1.0, 1.0C or 1.1)"))),
                }
            }
            "misc_path" => misc.0 = Some(m.words[1..].join(" ")),
            "misc_timeout" => misc.1 = Some(m.num(1)?),
            "misc_dynamic" => misc.2 = true,
            "user" => misc.3 = run_as(m, 1),
            "payload" => payload = hex(m)?,
            "require_reply" => require_reply = true,
            "helo_name" => helo = m.arg(1)?.to_string(),
            "type" => qtype = dns_type(m)?,
            "name" => qname = m.arg(1)?.to_string(),
            "track_file" => file = Some(m),
            "weight" if word == "FILE_CHECK" => file_weight = Some(signed_weight(m)?),
            "dynamic" => {}
            "fast_recovery" => {}
            "log_all_failures" => {}
            w => k
                .notes
                .push(m.note(&format!("{word} {w}: not supported, ignored"))),
        }
    }
    let default_retry = match word {
        "DNS_CHECK" => 3,
        "MISC_CHECK" => 0,
        _ => 1,
    };
    let default_dbr = match word {
        "DNS_CHECK" => own.delay_loop,
        "HTTP_GET" | "SSL_GET" => 3,
        _ => 1,
    };
    check.delay_loop = own.delay_loop;
    check.alpha = own.alpha;
    check.inhibit_on_failure = own.inhibit;
    check.connect_timeout = own.connect_timeout.unwrap_or(5);
    check.retry = own.retry.unwrap_or(default_retry);
    check.delay_before_retry = own.delay_before_retry.unwrap_or(default_dbr);
    check.warmup = own.warmup.unwrap_or(own.delay_loop);
    check.kind = match word {
        "HTTP_GET" | "SSL_GET" => {
            if urls.is_empty() {
                return Err(c.at(format!("{word} needs at least one url {{ path … }}")));
            }
            CheckKind::Http {
                urls,
                tls: word == "SSL_GET",
                sni,
                protocol,
            }
        }
        "MISC_CHECK" => CheckKind::Misc {
            path: misc.0.ok_or_else(|| c.at("MISC_CHECK needs misc_path"))?,
            timeout: misc.1.unwrap_or(check.delay_loop),
            dynamic: misc.2,
            run_as: misc.3,
        },
        "UDP_CHECK" => CheckKind::Udp {
            payload: std::mem::take(&mut payload),
            require_reply,
        },
        "PING_CHECK" => CheckKind::Ping,
        "SMTP_CHECK" => CheckKind::Smtp { helo },
        "DNS_CHECK" => CheckKind::Dns { qtype, name: qname },
        "FILE_CHECK" => {
            let m = file.ok_or_else(|| c.at("FILE_CHECK needs track_file NAME"))?;
            let name = m.arg(1)?;
            let (_, path, weight) = files
                .iter()
                .find(|f| f.0 == name)
                .ok_or_else(|| m.at(format!("track_file \"{name}\" is not defined")))?;
            // FILE_CHECK has none of the timing options: the file is read
            // every second.
            check.delay_loop = 1;
            check.retry = 0;
            check.warmup = 0;
            CheckKind::File {
                path: path.clone(),
                weight: file_weight.unwrap_or(*weight),
            }
        }
        _ => CheckKind::Tcp,
    };
    Ok(check)
}

/// A `url { path digest status_code virtualhost }` block.
fn url(m: &Node, virtualhost: Option<&str>, k: &mut Keepalived) -> Result<Url, Error> {
    let mut url = Url {
        path: String::new(),
        digest: None,
        status: Vec::new(),
        virtualhost: virtualhost.map(str::to_string),
    };
    let mut path = None;
    for u in m.kids() {
        match u.words[0].as_str() {
            "path" => path = Some(u.arg(1)?.to_string()),
            "digest" => url.digest = Some(u.arg(1)?.to_lowercase()),
            "status_code" => {
                for w in &u.words[1..] {
                    url.status.push(status_range(u, w)?);
                }
            }
            "virtualhost" => url.virtualhost = Some(u.arg(1)?.to_string()),
            w => k.notes.push(u.note(&format!("url {w}: not supported, ignored"))),
        }
    }
    url.path = path.ok_or_else(|| m.at("url needs a path"))?;
    if url.status.is_empty() {
        url.status.push((200, 299));
    }
    Ok(url)
}

/// `200` or `200-299`.
fn status_range(u: &Node, w: &str) -> Result<(u16, u16), Error> {
    let bad = || u.at(format!("status_code: \"{w}\" is not a code or a range A-B"));
    let (a, b) = w.split_once('-').unwrap_or((w, w));
    let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// DNS_CHECK's `type`.
fn dns_type(m: &Node) -> Result<u16, Error> {
    Ok(match m.arg(1)?.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        t => return Err(m.at(format!("type: \"{t}\" (A, NS, CNAME, SOA, MX, TXT or AAAA)"))),
    })
}

/// `payload` bytes as keepalived writes them: hex digits, in one word or
/// several.
fn hex(m: &Node) -> Result<Vec<u8>, Error> {
    let digits: String = m.words[1..].concat();
    let digits = digits.trim_start_matches("0x").as_bytes();
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(m.at("payload: not hex"));
    }
    if digits.len() % 2 != 0 {
        return Err(m.at("payload: an even number of hex digits"));
    }
    let nibble = |d: u8| (d as char).to_digit(16).unwrap_or(0) as u8;
    Ok(digits
        .chunks(2)
        .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
        .collect())
}
