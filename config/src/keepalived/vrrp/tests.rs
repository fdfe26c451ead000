//! VRRP blocks as keepalived's manual writes them: defaults, every keyword
//! ferrovs applies, and errors that name the line.

use super::super::parse_text;
use super::*;
use std::path::Path;

fn parse(text: &str) -> Result<super::super::Keepalived, Error> {
    parse_text("k.conf", text, Path::new("/nonexistent"))
}

const FULL: &str = r#"
global_defs {
    vrrp_version 3
}
vrrp_script chk_nginx {
    script "/usr/bin/pgrep nginx"
    interval 2
    weight -20
    fall 2
    rise 3
}
vrrp_sync_group G1 {
    group {
        VI_EXT
        VI_INT
    }
    notify_master "/bin/true group"
}
vrrp_instance VI_EXT {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.5
    nopreempt
    unicast_src_ip 10.0.0.2
    unicast_peer {
        10.0.0.3
    }
    virtual_ipaddress {
        10.0.0.100/24 dev eth0 label eth0:vip
        10.0.0.101
    }
    virtual_ipaddress_excluded {
        10.0.1.1/24
    }
    track_interface {
        eth1 weight -30
        eth2
    }
    track_script {
        chk_nginx
    }
    notify_master "/usr/local/bin/tell master"
    notify "/usr/local/bin/tell"
    garp_master_delay 1
    v3_checksum_as_v2
    use_vmac
}
vrrp_instance VI_INT {
    interface eth1
    virtual_router_id 52
    virtual_ipaddress {
        10.98.0.1/24
    }
}
"#;

#[test]
fn every_applied_keyword_is_read() {
    let k = parse(FULL).unwrap();
    let v = &k.vrrp;
    let e = &v.instances[0];
    assert_eq!((e.version, e.vrid, e.priority, e.advert_int_cs), (3, 51, 150, 50));
    assert!(!e.preempt && !e.state_master && e.v3_checksum_as_v2);
    assert_eq!(e.src_ip, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(e.unicast_peers, [Ipv4Addr::new(10, 0, 0, 3)]);
    assert_eq!(
        e.vips[0],
        Vip {
            addr: Ipv4Addr::new(10, 0, 0, 100),
            prefix: 24,
            dev: Some("eth0".into()),
            label: Some("eth0:vip".into())
        }
    );
    assert_eq!((e.vips[1].prefix, e.excluded[0].prefix), (32, 24));
    assert_eq!(
        e.track_interfaces,
        [("eth1".to_string(), -30), ("eth2".to_string(), 0)]
    );
    assert_eq!(e.track_scripts, [("chk_nginx".to_string(), None)]);
    assert_eq!(e.notify.master.as_deref(), Some("/usr/local/bin/tell master"));
    assert_eq!(e.notify.any.as_deref(), Some("/usr/local/bin/tell"));
    assert_eq!((e.garp_master_delay, e.garp_master_repeat), (1, 5));
    let s = &v.scripts[0];
    assert_eq!(
        (s.interval, s.timeout, s.weight, s.fall, s.rise),
        (2, 2, -20, 2, 3)
    );
    assert_eq!(v.groups[0].members, ["VI_EXT", "VI_INT"]);
    // Defaults: priority 100 without `state MASTER`, the global version.
    let i = &v.instances[1];
    assert_eq!(
        (i.priority, i.version, i.advert_int_cs, i.preempt),
        (100, 3, 100, true)
    );
    assert!(
        k.notes.iter().any(|n| n.contains("use_vmac: not applied")),
        "{:?}",
        k.notes
    );
}

#[test]
fn keepalived_defaults_apply() {
    let k = parse("vrrp_instance V { state MASTER\ninterface eth0\nvirtual_router_id 9\n}").unwrap();
    let i = &k.vrrp.instances[0];
    // No priority with state MASTER: the owner; v2; whole seconds.
    assert_eq!((i.priority, i.version, i.down_timer_adverts), (255, 2, 3));
    let k = parse("vrrp_instance V { interface eth0\nvirtual_router_id 9\nadvert_int 1.5\n}").unwrap();
    assert_eq!(
        k.vrrp.instances[0].advert_int_cs, 200,
        "v2 rounds up to whole seconds"
    );
}

#[test]
fn errors_name_the_line() {
    let cases = [
        (
            "vrrp_instance V {\ninterface eth0\nvirtual_router_id 300\n}",
            "k.conf:3",
            "1..255",
        ),
        (
            "vrrp_instance V {\nvirtual_router_id 3\n}",
            "k.conf:1",
            "no interface",
        ),
        (
            "vrrp_instance V {\ninterface e\n}",
            "k.conf:1",
            "no virtual_router_id",
        ),
        (
            "vrrp_instance A {\ninterface e\nvirtual_router_id 3\n}\nvrrp_instance B {\ninterface e\nvirtual_router_id 3\n}",
            "k.conf:5",
            "taken by A",
        ),
        ("global_defs {\nvrrp_version 4\n}", "k.conf:2", "2 or 3"),
        (
            "vrrp_instance V {\ninterface e\nvirtual_router_id 3\nvirtual_ipaddress {\nfe80::1\n}\n}",
            "k.conf:5",
            "not an IPv4 address",
        ),
    ];
    for (text, at, what) in cases {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(at) && e.contains(what), "{text:?}: {e}");
    }
}

#[test]
fn lvs_sync_daemon_is_read_as_keepalived_reads_it() {
    let base = "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 51\n}\n";
    let k = parse(&format!(
        "global_defs {{\nlvs_sync_daemon eth0 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 224.0.0.82\n}}\n{base}"
    ))
    .unwrap();
    let d = k.sync_daemon.unwrap();
    assert_eq!(
        (d.interface.as_str(), d.instance.as_deref()),
        ("eth0", Some("VI_1"))
    );
    assert_eq!(
        (d.syncid, d.maxlen, d.port, d.ttl),
        (Some(7), Some(1400), Some(8849), Some(2))
    );
    assert_eq!(d.group, Some(Ipv4Addr::new(224, 0, 0, 82)));
    let k = parse("global_defs {\nlvs_sync_daemon eth1\n}\n").unwrap();
    assert_eq!(k.sync_daemon.unwrap().instance, None, "no instance: both daemons");
    for (text, what) in [
        (
            "global_defs {\nlvs_sync_daemon eth0 VI_9\n}\n",
            "no vrrp_instance VI_9",
        ),
        (
            "global_defs {\nlvs_sync_daemon eth0 group 10.0.0.1\n}\n",
            "not a multicast",
        ),
        ("global_defs {\nlvs_sync_daemon eth0 port 0\n}\n", "out of range"),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(what), "{text}: {e}");
    }
}

#[test]
fn what_ferrovs_cannot_run_is_reported_not_refused() {
    // AH: the instance is left out, by line; a script with no `script` and a
    // track_script of no script are ignored, as keepalived ignores them.
    let text = "vrrp_script s {\ninterval 1\n}\n\
                vrrp_instance A {\ninterface e\nvirtual_router_id 3\nauthentication {\nauth_type AH\n}\n}\n\
                vrrp_instance B {\ninterface e\nvirtual_router_id 4\ntrack_script {\ns\n}\n}\n";
    let k = parse(text).unwrap();
    let notes = k.notes.join("\n");
    assert_eq!(k.vrrp.instances.len(), 1, "{notes}");
    assert!(k.vrrp.instances[0].track_scripts.is_empty());
    for want in [
        "k.conf:1: vrrp_script s: no script",
        "k.conf:7: vrrp_instance A: auth_type AH",
        "track_script s: no such vrrp_script, ignored",
    ] {
        assert!(notes.contains(want), "{want}: {notes}");
    }
}

#[test]
fn pass_authentication_is_applied_without_a_notice() {
    // keepalived's own samples use it in every vrrp_instance: a notice
    // there said "unknown keyword" of a block that was applied.
    let text = "vrrp_instance A {\ninterface e\nvirtual_router_id 3\n\
                authentication {\nauth_type PASS\nauth_pass 1111\n}\n}\n";
    let k = parse(text).unwrap();
    assert_eq!(k.vrrp.instances[0].auth_pass.as_deref(), Some("1111"));
    assert!(
        k.notes.iter().all(|n| !n.contains("authentication")),
        "{:?}",
        k.notes
    );
}

#[test]
fn conditional_lines_follow_the_config_id() {
    use super::super::conditional;
    assert_eq!(conditional("@high priority 170", "high"), Some("priority 170"));
    assert_eq!(conditional("\t@low priority 85", "high"), None);
    assert_eq!(conditional("@^low priority 85", "high"), Some("priority 85"));
    assert_eq!(conditional("priority 1", "high"), Some("priority 1"));
}
