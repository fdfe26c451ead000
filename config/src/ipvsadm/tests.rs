//! The ipvsadm command line: every command and option, errors by name.

use super::*;

fn p(line: &str) -> Result<Command, Error> {
    parse(&line.split_whitespace().collect::<Vec<_>>())
}

fn key(port: u16) -> ServiceKey {
    ServiceKey {
        proto: Protocol::Tcp,
        addr: Ipv4Addr::new(10, 0, 0, 100).into(),
        port,
        fwmark: 0,
    }
}

#[test]
fn add_service_short_and_long() {
    let want = Command::AddService(ServiceSpec {
        key: key(80),
        scheduler: Some(sched::Kind::Rr),
        persistence: None,
        netmask: None,
        sched_flags: None,
        ops: false,
    });
    assert_eq!(p("-A -t 10.0.0.100:80 -s rr").unwrap(), want);
    assert_eq!(
        p("--add-service --tcp-service=10.0.0.100:80 --scheduler rr").unwrap(),
        want
    );
}

#[test]
fn add_server_with_every_option() {
    let got = p("-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -g -w 3 -x 100 -y 50").unwrap();
    let Command::AddDest(k, d) = got else {
        panic!("{got:?}")
    };
    assert_eq!(k, key(80));
    assert_eq!(d.addr, Ipv4Addr::new(10, 0, 0, 11));
    assert_eq!(d.port, Some(8080));
    assert_eq!(d.fwd, Some(FwdMethod::Dr));
    assert_eq!(
        (d.weight, d.u_threshold, d.l_threshold),
        (Some(3), Some(100), Some(50))
    );
    let Command::AddDest(_, d) = p("-a -t 10.0.0.100:80 -r 10.0.0.11 -m -w2").unwrap() else {
        panic!()
    };
    assert_eq!((d.port, d.fwd, d.weight), (None, Some(FwdMethod::Nat), Some(2)));
}

#[test]
fn grouped_list_flags() {
    let Command::List(o) = p("-Ln").unwrap() else {
        panic!()
    };
    assert!(o.numeric && !o.connections);
    let Command::List(o) = p("-L -n -c --stats").unwrap() else {
        panic!()
    };
    assert!(o.numeric && o.connections && o.stats);
}

#[test]
fn set_timeouts_and_list_them() {
    assert_eq!(
        p("--set 3600 120 60").unwrap(),
        Command::SetTimeouts(3600, 120, 60)
    );
    assert!(
        p("--set 3600 120")
            .unwrap_err()
            .to_string()
            .contains("three values")
    );
    assert!(p("--set 1 2 x").unwrap_err().to_string().contains("udp timeout"));
    let Command::List(o) = p("-L --timeout").unwrap() else {
        panic!()
    };
    assert!(o.timeout);
}

#[test]
fn fwmark_services_and_mark_rules() {
    let Command::AddService(s) = p("-A -f 7 -s rr").unwrap() else {
        panic!()
    };
    assert_eq!(s.key, ServiceKey::fwmark(7));
    let cmd = p("--mark -A -p tcp -d 10.0.0.100 --dports 80,443 -j MARK --set-mark 7").unwrap();
    let want = MarkRule {
        proto: Some(Protocol::Tcp),
        addr: Ipv4Addr::new(10, 0, 0, 100).into(),
        ports: vec![80, 443],
        mark: 7,
    };
    assert_eq!(
        cmd,
        Command::Mark {
            add: true,
            rule: want
        }
    );
    // As an operator pastes it from an iptables line.
    let cmd =
        p("--mark -t mangle -A PREROUTING -d 10.0.0.100/32 -p udp -m udp --dport 53 -j MARK --set-mark 2");
    assert!(matches!(cmd, Ok(Command::Mark { add: true, .. })), "{cmd:?}");
    assert!(
        p("--mark -A -d 10.0.0.0/24 --set-mark 1")
            .unwrap_err()
            .to_string()
            .contains("/32")
    );
    assert!(
        p("--mark -A -d 10.0.0.1 -j DROP --set-mark 1")
            .unwrap_err()
            .to_string()
            .contains("MARK")
    );
    assert!(
        p("--mark -A -d 10.0.0.1")
            .unwrap_err()
            .to_string()
            .contains("--set-mark")
    );
}

#[test]
fn save_restore_zero() {
    assert_eq!(p("-S -n").unwrap(), Command::Save { numeric: true });
    assert_eq!(p("--save").unwrap(), Command::Save { numeric: false });
    assert_eq!(p("-R").unwrap(), Command::Restore);
    assert_eq!(p("-Z").unwrap(), Command::Zero(None));
    assert_eq!(p("-Z -t 10.0.0.100:80").unwrap(), Command::Zero(Some(key(80))));
    assert!(p("-S -s rr").is_err());
}

#[test]
fn names_resolve_as_in_save_files() {
    // localhost is in every /etc/hosts; http in every /etc/services.
    let Command::AddService(s) = p("-A -t localhost:http -s rr").unwrap() else {
        panic!()
    };
    assert_eq!((s.key.addr, s.key.port), (Ipv4Addr::LOCALHOST.into(), 80));
}

#[test]
fn sched_flags() {
    let Command::AddService(s) = p("-A -t 10.0.0.100:80 -s sh -b sh-fallback,sh-port").unwrap() else {
        panic!()
    };
    let f = s.sched_flags.unwrap();
    assert!(f.fallback && f.port);
    let err = p("-A -t 10.0.0.100:80 -s sh --sched-flags sh-nope").unwrap_err();
    assert!(err.to_string().contains("sh-nope"), "{err}");
}

#[test]
fn netmask() {
    let Command::AddService(s) = p("-A -t 10.0.0.100:80 -s rr -p 60 -M 255.255.255.0").unwrap() else {
        panic!()
    };
    assert_eq!(s.netmask, Some(Ipv4Addr::new(255, 255, 255, 0).into()));
    assert!(
        p("-A -t 10.0.0.100:80 -p -M 255.0.255.0")
            .unwrap_err()
            .to_string()
            .contains("illegal netmask")
    );
}

#[test]
fn persistence_value_is_optional() {
    let Command::AddService(s) = p("-A -t 10.0.0.100:80 -s rr -p").unwrap() else {
        panic!()
    };
    assert_eq!(s.persistence, Some(DEFAULT_PERSISTENCE));
    let Command::AddService(s) = p("-A -t 10.0.0.100:80 -p 60 -s rr").unwrap() else {
        panic!()
    };
    assert_eq!(s.persistence, Some(60));
}

#[test]
fn bad_input_names_the_problem() {
    let cases = [
        ("-A -t 10.0.0.100:80 -s wlcc", "unknown scheduler \"wlcc\""),
        ("-A -t 10.0.0.300:80 -s rr", "illegal address \"10.0.0.300:80\""),
        ("-A -t 10.0.0.100 -s rr", "has no port"),
        ("-a -t 10.0.0.100:80 -r 10.0.0.11 -w 70000", "illegal weight"),
        ("-a -t 10.0.0.100:80 -r nohost", "illegal address \"nohost\""),
        ("-a -t 10.0.0.100:80", "no real server"),
        ("-A -s rr", "no service"),
        ("-t 10.0.0.100:80", "no command"),
        ("-A -L", "more than one command"),
        ("-A -t 10.0.0.100:80 -q", "unknown option -q"),
        ("--frobnicate", "unknown option --frobnicate"),
        (
            "-A -t 10.0.0.100:80 --pe sip",
            "option --pe is not supported by ferrovs",
        ),
        ("-A -t 10.0.0.100:80 -r 10.0.0.11", "not allowed"),
        ("-A -t 10.0.0.100:80 -s", "-s needs a value"),
        ("-A stray", "unexpected argument"),
    ];
    for (line, want) in cases {
        let err = p(line).unwrap_err().to_string();
        assert!(err.contains(want), "{line}: {err}");
    }
}
