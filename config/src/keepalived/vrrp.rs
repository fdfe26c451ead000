//! keepalived.conf's VRRP part: `vrrp_instance`, `vrrp_script` and
//! `vrrp_sync_group` blocks in keepalived's words and defaults, checked as
//! keepalived checks them (`vrrp_complete_instance`), into plain settings
//! the daemon's VRRP thread runs.
//!
//! Must not touch: the load-balancing rules (the parent module), sockets or
//! addresses.

use super::Node;
use crate::Error;
use std::net::Ipv4Addr;

/// Everything VRRP in one configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vrrp {
    /// The instances, in file order.
    pub instances: Vec<Instance>,
    /// `vrrp_script` blocks.
    pub scripts: Vec<Script>,
    /// `vrrp_sync_group` blocks.
    pub groups: Vec<SyncGroup>,
}

/// One address of `virtual_ipaddress` (or `_excluded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length (default 32).
    pub prefix: u8,
    /// `dev IF` (default: the instance's interface).
    pub dev: Option<String>,
    /// `label IF:x`.
    pub label: Option<String>,
}

/// One `vrrp_instance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its name (`VI_1`).
    pub name: String,
    /// Where it was defined, `file:line`.
    pub at: String,
    /// `state MASTER` (otherwise BACKUP).
    pub state_master: bool,
    /// `interface`.
    pub interface: String,
    /// `virtual_router_id` 1..255.
    pub vrid: u8,
    /// `priority`; keepalived's default is 255 (the owner) with `state
    /// MASTER`, else 100.
    pub priority: u8,
    /// `advert_int` in centiseconds (default 100).
    pub advert_int_cs: u16,
    /// `version`, else global `vrrp_version`, else 2.
    pub version: u8,
    /// `preempt` (default) or `nopreempt`.
    pub preempt: bool,
    /// `preempt_delay` in milliseconds.
    pub preempt_delay_ms: u32,
    /// `authentication { auth_type PASS auth_pass … }` (v2).
    pub auth_pass: Option<String>,
    /// `unicast_src_ip` / `mcast_src_ip`.
    pub src_ip: Option<Ipv4Addr>,
    /// `unicast_peer { }`: empty for multicast.
    pub unicast_peers: Vec<Ipv4Addr>,
    /// `unicast_ttl` (default 255).
    pub unicast_ttl: u8,
    /// `virtual_ipaddress`.
    pub vips: Vec<Vip>,
    /// `virtual_ipaddress_excluded`: set as master, not advertised.
    pub excluded: Vec<Vip>,
    /// `track_interface`: (interface, weight; 0 = fault when down).
    pub track_interfaces: Vec<(String, i32)>,
    /// `track_script`: (script name, weight override).
    pub track_scripts: Vec<(String, Option<i32>)>,
    /// `notify_master`, `notify_backup`, `notify_fault`, `notify_stop`,
    /// `notify` (the generic one, which gets four more arguments).
    pub notify: Notify,
    /// `garp_master_delay` in seconds (default 5; 0: no second burst).
    pub garp_master_delay: u32,
    /// `garp_master_repeat` (default 5).
    pub garp_master_repeat: u32,
    /// `garp_master_refresh` in seconds (default 0: off).
    pub garp_master_refresh: u32,
    /// `garp_master_refresh_repeat` (default 1).
    pub garp_master_refresh_repeat: u32,
    /// `down_timer_adverts` (default 3).
    pub down_timer_adverts: u32,
    /// `v3_checksum_as_v2`.
    pub v3_checksum_as_v2: bool,
}

/// The scripts run on transitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    /// `notify_master`.
    pub master: Option<String>,
    /// `notify_backup`.
    pub backup: Option<String>,
    /// `notify_fault`.
    pub fault: Option<String>,
    /// `notify_stop`.
    pub stop: Option<String>,
    /// `notify`.
    pub any: Option<String>,
}

/// One `vrrp_script`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Its name.
    pub name: String,
    /// `script`: the command line.
    pub script: String,
    /// `interval` in seconds (default 1).
    pub interval: u32,
    /// `timeout` in seconds (default: the interval).
    pub timeout: u32,
    /// `weight` (default 0: a failure is a fault).
    pub weight: i32,
    /// `weight … reverse`.
    pub reverse: bool,
    /// `rise` (default 1).
    pub rise: u32,
    /// `fall` (default 1).
    pub fall: u32,
    /// Where it is defined, `file:line`.
    pub at: String,
}

/// One `vrrp_sync_group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Its name.
    pub name: String,
    /// The instances in `group { }`.
    pub members: Vec<String>,
    /// Its notify scripts.
    pub notify: Notify,
}

/// `lvs_sync_daemon IF [[inst] INSTANCE] [id N] [maxlen N] [port P] [ttl T]
/// [group ADDR]`: the connection sync daemon keepalived drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    /// The interface it multicasts on.
    pub interface: String,
    /// The VRRP instance whose state picks master or backup; none: both run.
    pub instance: Option<String>,
    /// `id` (default: the instance's VRID, else 0).
    pub syncid: Option<u8>,
    /// `maxlen`.
    pub maxlen: Option<u16>,
    /// `port`.
    pub port: Option<u16>,
    /// `ttl`.
    pub ttl: Option<u8>,
    /// `group`.
    pub group: Option<Ipv4Addr>,
}

/// Parse `lvs_sync_daemon`, as keepalived's `lvs_syncd_handler`.
pub(super) fn sync_daemon(n: &Node) -> Result<SyncDaemon, Error> {
    let mut d = SyncDaemon {
        interface: n.arg(1)?.to_string(),
        instance: None,
        syncid: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
    };
    let mut i = 2;
    let num = |i: usize, max: u32| -> Result<u32, Error> {
        let v = n.num(i)?;
        (1..=max)
            .contains(&v)
            .then_some(v)
            .ok_or_else(|| n.at(format!("lvs_sync_daemon {}: {v} out of range", n.words[i - 1])))
    };
    while let Some(w) = n.words.get(i) {
        match w.as_str() {
            "inst" => d.instance = Some(n.arg(i + 1)?.to_string()),
            "id" => d.syncid = Some(n.num(i + 1)?.min(255) as u8),
            "maxlen" => d.maxlen = Some(num(i + 1, 65507)? as u16),
            "port" => d.port = Some(num(i + 1, 65535)? as u16),
            "ttl" => d.ttl = Some(num(i + 1, 255)? as u8),
            "group" => {
                let g = n.addr(i + 1)?;
                if !g.is_multicast() {
                    return Err(n.at(format!("lvs_sync_daemon group {g}: not a multicast address")));
                }
                d.group = Some(g);
            }
            // The bare instance name, and keepalived's old positional
            // syncid after it.
            inst if d.instance.is_none() => {
                d.instance = Some(inst.to_string());
                i += 1;
                continue;
            }
            other => return Err(n.at(format!("lvs_sync_daemon: unknown \"{other}\""))),
        }
        i += 2;
    }
    Ok(d)
}

/// Keywords of an instance that ferrovs reads but does not act on.
const NOT_APPLIED: &[&str] = &[
    "use_vmac",
    "vmac_xmit_base",
    "smtp_alert",
    "virtual_routes",
    "virtual_rules",
    "strict_mode",
    "accept",
    "no_accept",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "skip_check_adv_addr",
    "check_unicast_src",
    "dont_track_primary",
    "track_file",
    "track_process",
    "track_bfd",
    "notify_deleted",
    "notify_master_rx_lower_pri",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "debug",
    "native_ipv6",
    "kernel_rx_buf_size",
];

impl Instance {
    /// Whether `other` is this block with another priority at most (a
    /// reload then changes the priority in place).
    pub fn same_but_priority(&self, other: &Self) -> bool {
        let mut o = other.clone();
        o.priority = self.priority;
        *self == o
    }

    fn new(n: &Node, version: u8) -> Result<Self, Error> {
        Ok(Self {
            name: n.arg(1)?.to_string(),
            at: format!("{}:{}", n.file, n.line),
            state_master: false,
            interface: String::new(),
            vrid: 0,
            priority: 0,
            advert_int_cs: 100,
            version,
            preempt: true,
            preempt_delay_ms: 0,
            auth_pass: None,
            src_ip: None,
            unicast_peers: Vec::new(),
            unicast_ttl: 255,
            vips: Vec::new(),
            excluded: Vec::new(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            notify: Notify::default(),
            garp_master_delay: 5,
            garp_master_repeat: 5,
            garp_master_refresh: 0,
            garp_master_refresh_repeat: 1,
            down_timer_adverts: 3,
            v3_checksum_as_v2: false,
        })
    }
}

/// A number of seconds, possibly with decimals, as centiseconds.
fn centis(n: &Node) -> Result<u32, Error> {
    let v = n.arg(1)?;
    let secs: f64 = v
        .parse()
        .map_err(|_| n.at(format!("\"{}\": \"{v}\" is not a number", n.words[0])))?;
    if !(0.0..=1000.0).contains(&secs) {
        return Err(n.at(format!("\"{}\": {v} is out of range", n.words[0])));
    }
    Ok((secs * 100.0).round() as u32)
}

/// Parse `virtual_ipaddress` entries: `IP[/MASK] [dev IF] [label L] …`.
fn vips(n: &Node, notes: &mut Vec<String>) -> Result<Vec<Vip>, Error> {
    let mut out = Vec::new();
    for m in n.kids() {
        let (a, p) = m.words[0].split_once('/').unwrap_or((&m.words[0], "32"));
        let addr: Ipv4Addr = a.parse().map_err(|_| {
            m.at(format!(
                "\"{}\" is not an IPv4 address (IPv6 comes with IPv6 support)",
                m.words[0]
            ))
        })?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| m.at(format!("\"{}\": bad prefix length", m.words[0])))?;
        let mut vip = Vip {
            addr,
            prefix,
            dev: None,
            label: None,
        };
        let mut rest = m.words[1..].iter();
        while let Some(w) = rest.next() {
            match w.as_str() {
                "dev" => vip.dev = Some(rest.next().ok_or_else(|| m.at("dev needs an interface"))?.clone()),
                "label" => vip.label = Some(rest.next().ok_or_else(|| m.at("label needs a name"))?.clone()),
                "no_track" => {}
                "brd" | "broadcast" | "scope" | "preferred_lft" => {
                    let v = rest.next().cloned().unwrap_or_default();
                    notes.push(m.note(&format!("virtual_ipaddress {w} {v}: not applied")));
                }
                other => return Err(m.at(format!("virtual_ipaddress: unknown \"{other}\""))),
            }
        }
        out.push(vip);
    }
    Ok(out)
}

fn notify_field<'a>(notify: &'a mut Notify, word: &str) -> Option<&'a mut Option<String>> {
    match word {
        "notify_master" => Some(&mut notify.master),
        "notify_backup" => Some(&mut notify.backup),
        "notify_fault" => Some(&mut notify.fault),
        "notify_stop" => Some(&mut notify.stop),
        "notify" => Some(&mut notify.any),
        _ => None,
    }
}

/// Parse one `vrrp_instance` block; `None` when it cannot run here (said
/// in `notes`).
pub(super) fn instance(n: &Node, version: u8, notes: &mut Vec<String>) -> Result<Option<Instance>, Error> {
    let mut i = Instance::new(n, version)?;
    let mut priority = None;
    let mut ah = None;
    for m in n.kids() {
        let w = m.words[0].as_str();
        if let Some(f) = notify_field(&mut i.notify, w) {
            *f = Some(m.words[1..].join(" "));
            continue;
        }
        match w {
            "state" => i.state_master = m.arg(1)?.eq_ignore_ascii_case("MASTER"),
            "interface" => i.interface = m.arg(1)?.to_string(),
            "virtual_router_id" => {
                let v = m.num(1)?;
                i.vrid = u8::try_from(v)
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| m.at(format!("virtual_router_id {v}: must be 1..255")))?;
            }
            "priority" => {
                let v = m.num(1)?;
                priority = Some(
                    u8::try_from(v)
                        .ok()
                        .filter(|v| *v >= 1)
                        .ok_or_else(|| m.at(format!("priority {v}: must be 1..255")))?,
                );
            }
            "advert_int" => i.advert_int_cs = centis(m)?.clamp(1, 4095) as u16,
            "version" => i.version = version_of(m)?,
            "nopreempt" => i.preempt = false,
            "preempt" => i.preempt = true,
            "preempt_delay" => i.preempt_delay_ms = centis(m)? * 10,
            // PASS is applied (the password goes into every advert); AH
            // leaves the instance out, said by line.
            "authentication" => {
                if auth(m, &mut i)? {
                    ah = Some(m.note(&format!(
                        "vrrp_instance {}: auth_type AH is not supported by ferrovs (PASS or none): instance not run",
                        i.name
                    )));
                }
            }
            "unicast_src_ip" | "mcast_src_ip" => i.src_ip = Some(m.addr(1)?),
            "unicast_peer" => {
                for p in m.kids() {
                    i.unicast_peers.push(p.addr(0)?);
                }
            }
            "unicast_ttl" => i.unicast_ttl = m.num(1)?.clamp(1, 255) as u8,
            "virtual_ipaddress" => i.vips = vips(m, notes)?,
            "virtual_ipaddress_excluded" => i.excluded = vips(m, notes)?,
            "track_interface" => {
                for t in m.kids() {
                    let weight = match t.words.get(1).map(String::as_str) {
                        Some("weight") => t.arg(2)?.parse().map_err(|_| t.at("weight: not a number"))?,
                        _ => 0,
                    };
                    i.track_interfaces.push((t.words[0].clone(), weight));
                }
            }
            "track_script" => {
                for t in m.kids() {
                    let weight = match t.words.get(1).map(String::as_str) {
                        Some("weight") => Some(t.arg(2)?.parse().map_err(|_| t.at("weight: not a number"))?),
                        _ => None,
                    };
                    i.track_scripts.push((t.words[0].clone(), weight));
                }
            }
            "garp_master_delay" => i.garp_master_delay = m.num(1)?,
            "garp_master_repeat" => i.garp_master_repeat = m.num(1)?,
            "garp_master_refresh" => i.garp_master_refresh = m.num(1)?,
            "garp_master_refresh_repeat" => i.garp_master_refresh_repeat = m.num(1)?,
            "down_timer_adverts" => i.down_timer_adverts = m.num(1)?.clamp(1, 100),
            "v3_checksum_as_v2" => i.v3_checksum_as_v2 = true,
            // Read as lvs_sync_daemon by the caller (super::sync_daemon_interface).
            "lvs_sync_daemon_interface" => {}
            w if NOT_APPLIED.contains(&w) => notes.push(m.note(&format!("vrrp_instance {w}: not applied"))),
            w => notes.push(m.note(&format!("vrrp_instance: unknown keyword \"{w}\" ignored"))),
        }
    }
    if let Some(note) = ah {
        notes.push(note);
        return Ok(None);
    }
    complete(n, &mut i, priority)?;
    Ok(Some(i))
}

fn version_of(m: &Node) -> Result<u8, Error> {
    match m.num(1)? {
        v @ (2 | 3) => Ok(v as u8),
        v => Err(m.at(format!("{} {v}: must be 2 or 3", m.words[0]))),
    }
}

/// Read `authentication`; return whether it is AH, which ferrovs does not
/// speak.
fn auth(m: &Node, i: &mut Instance) -> Result<bool, Error> {
    let mut kind = None;
    for a in m.kids() {
        match a.words[0].as_str() {
            "auth_type" => kind = Some(a.arg(1)?.to_ascii_uppercase()),
            "auth_pass" => i.auth_pass = Some(a.arg(1)?.to_string()),
            w => return Err(a.at(format!("authentication: unknown \"{w}\""))),
        }
    }
    match kind.as_deref() {
        Some("PASS") | None => Ok(false),
        Some("AH") => Ok(true),
        Some(k) => Err(m.at(format!("auth_type {k}: must be PASS or AH"))),
    }
}

/// keepalived's defaults and checks once the block is read.
fn complete(n: &Node, i: &mut Instance, priority: Option<u8>) -> Result<(), Error> {
    if i.interface.is_empty() {
        return Err(n.at(format!("vrrp_instance {}: no interface", i.name)));
    }
    if i.vrid == 0 {
        return Err(n.at(format!("vrrp_instance {}: no virtual_router_id", i.name)));
    }
    // No priority: the owner if asked to be master, else 100.
    i.priority = priority.unwrap_or(if i.state_master { 255 } else { 100 });
    if i.version == 2 && i.advert_int_cs % 100 != 0 {
        i.advert_int_cs = (i.advert_int_cs.div_ceil(100) * 100).min(25500);
    }
    if i.version == 3 && i.auth_pass.is_some() {
        return Err(n.at(format!("vrrp_instance {}: authentication is VRRPv2 only", i.name)));
    }
    if i.priority == 255 {
        // An owner always preempts.
        i.preempt = true;
    }
    Ok(())
}

/// Parse one `vrrp_script` block; `None` (said in `notes`) without a
/// `script`, which keepalived ignores too.
pub(super) fn script(n: &Node, notes: &mut Vec<String>) -> Result<Option<Script>, Error> {
    let mut s = Script {
        at: format!("{}:{}", n.file, n.line),
        name: n.arg(1)?.to_string(),
        script: String::new(),
        interval: 1,
        timeout: 0,
        weight: 0,
        reverse: false,
        rise: 1,
        fall: 1,
    };
    for m in n.kids() {
        match m.words[0].as_str() {
            "script" => s.script = m.words[1..].join(" "),
            "interval" => s.interval = m.num(1)?.max(1),
            "timeout" => s.timeout = m.num(1)?,
            "weight" => {
                s.weight = m.arg(1)?.parse().map_err(|_| m.at("weight: not a number"))?;
                s.reverse = m.words.get(2).is_some_and(|w| w == "reverse");
            }
            "rise" => s.rise = m.num(1)?.max(1),
            "fall" => s.fall = m.num(1)?.max(1),
            w => notes.push(m.note(&format!("vrrp_script {w}: not applied"))),
        }
    }
    if s.script.is_empty() {
        notes.push(n.note(&format!("vrrp_script {}: no script: not run", s.name)));
        return Ok(None);
    }
    if s.timeout == 0 {
        s.timeout = s.interval;
    }
    Ok(Some(s))
}

/// Parse one `vrrp_sync_group` block.
pub(super) fn sync_group(n: &Node, notes: &mut Vec<String>) -> Result<SyncGroup, Error> {
    let mut g = SyncGroup {
        name: n.arg(1)?.to_string(),
        members: Vec::new(),
        notify: Notify::default(),
    };
    for m in n.kids() {
        let w = m.words[0].as_str();
        if let Some(f) = notify_field(&mut g.notify, w) {
            *f = Some(m.words[1..].join(" "));
        } else if w == "group" {
            g.members = m.kids().iter().flat_map(|k| k.words.clone()).collect();
        } else {
            notes.push(m.note(&format!("vrrp_sync_group {w}: not applied")));
        }
    }
    Ok(g)
}

/// Check what refers across blocks: a `track_script` of no script is
/// dropped with a note (as keepalived ignores it); group members must
/// exist, and no two instances share an interface and VRID.
pub(super) fn check(v: &mut Vrrp, notes: &mut Vec<String>) -> Result<(), Error> {
    let scripts: Vec<String> = v.scripts.iter().map(|s| s.name.clone()).collect();
    for i in &mut v.instances {
        i.track_scripts.retain(|(s, _)| {
            let known = scripts.contains(s);
            if !known {
                notes.push(format!(
                    "{}: vrrp_instance {}: track_script {s}: no such vrrp_script, ignored",
                    i.at, i.name
                ));
            }
            known
        });
    }
    for (k, i) in v.instances.iter().enumerate() {
        if let Some(o) = v.instances[..k]
            .iter()
            .find(|o| o.interface == i.interface && o.vrid == i.vrid)
        {
            return Err(Error::new(format!(
                "{}: vrrp_instance {}: virtual_router_id {} on {} is taken by {}",
                i.at, i.name, i.vrid, i.interface, o.name
            )));
        }
    }
    for g in &v.groups {
        for m in &g.members {
            if !v.instances.iter().any(|i| i.name == *m) {
                return Err(Error::new(format!(
                    "vrrp_sync_group {}: no vrrp_instance {m}",
                    g.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
