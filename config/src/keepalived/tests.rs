//! Parser tests on realistic files: several services, a group, fwmark, every
//! checker, include; errors naming file and line.

use super::*;

const MAIN: &str = r#"
! Configuration File for keepalived
global_defs {
   notification_email { admin@example.com }
   router_id LVS_DEVEL
   lvs_timeouts tcp 7200 tcpfin 60 udp 120
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.99.0.100
    }
}

virtual_server 10.99.0.100 80 {
    delay_loop 6
    lb_algo wlc
    lb_kind DR
    persistence_timeout 50
    protocol TCP
    sorry_server 10.99.0.13 80

    real_server 10.99.0.11 80 {
        weight 3
        inhibit_on_failure
        HTTP_GET {
            url {
              path /
              digest 640205b7b0fc66c1ea91c463fac6334d
              status_code 200
            }
            connect_timeout 3
            nb_get_retry 3
            delay_before_retry 2
        }
    }
    real_server 10.99.0.12 80 {
        weight 1
        TCP_CHECK {
            connect_port 80
            connect_timeout 2
            retry 2
        }
    }
}

virtual_server_group DNS {
    10.99.0.100 53
    10.99.0.101 53
}

virtual_server group DNS {
    lvs_sched rr
    lvs_method NAT
    protocol UDP
    real_server 10.98.0.11 53 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check_dns 10.98.0.11"
            misc_timeout 5
        }
    }
}

include conf.d/*.conf
"#;

const FWMARK: &str = "
virtual_server fwmark 7 {
    lb_algo sh
    lb_kind TUN
    alpha
    real_server 10.99.0.11 0 {
        weight 2
        TCP_CHECK {
            connect_port 443
        }
    }
}
";

fn with_include() -> (tempdir::Dir, Keepalived) {
    let dir = tempdir::Dir::new();
    std::fs::create_dir_all(dir.0.join("conf.d")).unwrap();
    std::fs::write(dir.0.join("conf.d/fw.conf"), FWMARK).unwrap();
    std::fs::write(dir.0.join("keepalived.conf"), MAIN).unwrap();
    let k = load(&dir.0.join("keepalived.conf")).unwrap();
    (dir, k)
}

/// A directory removed on drop (no dependency for one test helper).
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "ferrovs-ka-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn services_servers_and_timeouts() {
    let (_d, k) = with_include();
    let save = crate::render_save(&k.rules, true, &crate::Names::default());
    assert_eq!(
        save,
        "-A -t 10.99.0.100:80 -s wlc -p 50\n\
         -a -t 10.99.0.100:80 -r 10.99.0.11:80 -g -w 3\n\
         -a -t 10.99.0.100:80 -r 10.99.0.12:80 -g -w 1\n\
         -A -u 10.99.0.100:53 -s rr\n\
         -a -u 10.99.0.100:53 -r 10.98.0.11:53 -m -w 1\n\
         -A -u 10.99.0.101:53 -s rr\n\
         -a -u 10.99.0.101:53 -r 10.98.0.11:53 -m -w 1\n\
         -A -f 7 -s sh\n\
         -a -f 7 -r 10.99.0.11:0 -i -w 2\n"
    );
    assert_eq!(k.rules.timeouts, (7200, 60, 120));
}

#[test]
fn every_checker() {
    let (_d, k) = with_include();
    assert_eq!(k.checks.len(), 5, "{:?}", k.checks);
    let http = &k.checks[0];
    assert_eq!(
        (http.rip, http.weight, http.inhibit_on_failure),
        (Ipv4Addr::new(10, 99, 0, 11).into(), 3, true)
    );
    assert_eq!(
        (
            http.delay_loop,
            http.connect_timeout,
            http.retry,
            http.delay_before_retry
        ),
        (6, 3, 3, 2)
    );
    assert_eq!(
        http.kind,
        CheckKind::Http {
            urls: vec![Url {
                path: "/".into(),
                digest: Some("640205b7b0fc66c1ea91c463fac6334d".into()),
                status: vec![(200, 200)],
                virtualhost: None,
            }],
            tls: false,
            sni: false,
            protocol: "1.0".into(),
        }
    );
    let tcp = &k.checks[1];
    assert_eq!(
        (tcp.kind.clone(), tcp.port, tcp.retry, tcp.connect_timeout),
        (CheckKind::Tcp, 80, 2, 2)
    );
    let misc = &k.checks[2];
    assert_eq!(
        misc.kind,
        CheckKind::Misc {
            path: "/usr/local/bin/check_dns 10.98.0.11".into(),
            timeout: 5,
            dynamic: false,
            run_as: None,
        }
    );
    // keepalived's per-checker defaults: MISC_CHECK retries 0 times.
    assert_eq!((misc.retry, misc.warmup), (0, 60));
    // The group's two services each check their server.
    assert_eq!(k.checks[3].service.addr, Ipv4Addr::new(10, 99, 0, 101));
    let fw = &k.checks[4];
    assert_eq!(
        (fw.service, fw.port, fw.alpha),
        (ServiceKey::fwmark(7), 443, true)
    );
    let sorry = k.extras.iter().find(|e| e.service.port == 80).unwrap();
    assert_eq!(
        sorry.sorry_server,
        Some((Ipv4Addr::new(10, 99, 0, 13).into(), 80))
    );
}

#[test]
fn unapplied_keywords_are_reported_with_file_and_line() {
    let (_d, k) = with_include();
    let notes = k.notes.join("\n");
    assert!(
        notes.contains("keepalived.conf:4: global_defs notification_email: ignored"),
        "{notes}"
    );
    // The VRRP instance is read now, in keepalived's words.
    let vi = &k.vrrp.instances[0];
    assert_eq!(
        (
            vi.name.as_str(),
            vi.interface.as_str(),
            vi.vrid,
            vi.priority,
            vi.state_master
        ),
        ("VI_1", "eth0", 51, 100, true)
    );
    assert_eq!(vi.vips[0].addr, Ipv4Addr::new(10, 99, 0, 100));
}

#[test]
fn syntax_errors_refuse_the_file_and_name_the_line() {
    let dir = Path::new("/nonexistent");
    let cases = [
        (
            "virtual_server 10.0.0.1 80 {\n  lb_kind FULLNAT\n}\n",
            "t.conf:2: lb_kind: unknown method",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n  delay_loop soon\n}\n",
            "t.conf:2: \"delay_loop\": \"soon\" is not a number",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n  }\n }\n}\n",
            "t.conf:3: HTTP_GET needs at least one url",
        ),
        (
            "virtual_server group NOPE {\n}\n",
            "t.conf:1: virtual_server_group \"NOPE\" is not defined",
        ),
        // Found by the fuzz target: a payload byte that is not ASCII was
        // sliced through (a panic).
        (
            "virtual_server 10.0.0.1 53 {\n protocol UDP\n real_server 10.0.0.2 53 {\n  UDP_CHECK {\n   payload \u{e9}0\n  }\n }\n}\n",
            "t.conf:5: payload: not hex",
        ),
        (
            "virtual_server 10.0.0.1 53 {\n protocol UDP\n real_server 10.0.0.2 53 {\n  UDP_CHECK {\n   payload 0x0a1\n  }\n }\n}\n",
            "t.conf:5: payload: an even number of hex digits",
        ),
        // Found by the fuzz target: a persistent service of timeout 0 saved
        // as `-p 0`, which restores to nothing.
        (
            "virtual_server 1.8.0.9 8 {\n persistence_timeout 0\n}\n",
            "t.conf:2: persistence_timeout: \"0\" is out of range",
        ),
    ];
    for (text, want) in cases {
        let err = parse_text("t.conf", text, dir).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

/// Where keepalived 2.2.7 says what is wrong and carries on, so does the
/// file here: each by line, with what is done instead.
#[test]
fn keepalived_s_warnings_carry_on_as_it_does() {
    let dir = Path::new("/nonexistent");
    let cases = [
        (
            "virtual_server 10.0.0.1 80 {\n  lb_algo rr\n",
            "t.conf:2: a block is not closed (missing \"}\"): closed at the end of the file",
        ),
        ("}\n", "t.conf:1: \"}\" without a block to close: ignored"),
        (
            "virtual_server 10.0.0.1 80 {\n  lb_algo wlcc\n}\n",
            "t.conf:2: lb_algo: unknown scheduler \"wlcc\"",
        ),
        (
            "include missing.conf\n",
            "t.conf:1: include missing.conf: no file /nonexistent/missing.conf: nothing included",
        ),
        // Found by the fuzz campaign as a weight ipvsadm's -w refuses:
        // keepalived keeps the weight it had.
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  weight 98080\n }\n}\n",
            "t.conf:3: weight 98080 is outside range 0-65535: ignored, weight 1 kept",
        ),
        (
            "virtual_server 10.0.0.300 80 {\n}\n",
            "t.conf:1: virtual_server 10.0.0.300: not an IPv4 or IPv6 address: this virtual_server is skipped",
        ),
        (
            "virtual_server fwmark 7 {\n real_server 10.0.0.2 80 {\n }\n}\n",
            "t.conf:2: real_server 10.0.0.2 80: a fwmark service's server keeps each packet's port: port cleared",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n   nb_get_retry 3\n  }\n }\n}\n",
            "t.conf:7: nb_get_retry is deprecated - please use 'retry' (read as retry)",
        ),
        (
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n lvs_sync_daemon_interface eth1\n}\n",
            "t.conf:4: lvs_sync_daemon_interface: deprecated; read as global_defs lvs_sync_daemon eth1 VI_1",
        ),
    ];
    for (text, want) in cases {
        let k = parse_text("t.conf", text, dir).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!(
            k.notes.iter().any(|n| n.starts_with(want)),
            "{text:?}: {:?}",
            k.notes
        );
    }
    // What they do: the default scheduler, the weight kept, the server's
    // port cleared, the sync daemon following the instance.
    let k = parse_text("t.conf", "virtual_server 10.0.0.1 80 {\n  lb_algo wlcc\n}\n", dir).unwrap();
    assert_eq!(k.rules.services[0].scheduler, sched::Kind::Wlc);
    let k = parse_text(
        "t.conf",
        "virtual_server fwmark 7 {\n real_server 10.0.0.2 80 {\n  weight 98080\n }\n}\n",
        dir,
    )
    .unwrap();
    let d = &k.rules.services[0].dests[0];
    assert_eq!((d.port, d.weight), (0, 1));
    let k = parse_text(
        "t.conf",
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n lvs_sync_daemon_interface eth1\n}\n",
        dir,
    )
    .unwrap();
    let s = k.sync_daemon.expect("mapped");
    assert_eq!(
        (s.interface.as_str(), s.instance.as_deref()),
        ("eth1", Some("VI_1"))
    );
}

const CHECKERS: &str = r#"
global_defs {
    script_user nobody nogroup
    enable_script_security
}
SSL {
    certificate /etc/ssl/client.pem
    key /etc/ssl/client.key
    password secret
}
track_file weightfile {
    file /run/rs1.weight
    weight 3
}
virtual_server 10.0.0.1 443 {
    delay_loop 2
    lb_kind NAT
    quorum 2
    quorum_up "/usr/local/bin/quorum.sh UP 10.0.0.1:443" root
    quorum_down /usr/local/bin/quorum-down.sh
    virtualhost www.example.com
    real_server 10.0.1.1 443 {
        notify_up "/usr/local/bin/rs.sh UP 10.0.1.1" nobody nogroup
        notify_down "/usr/local/bin/rs.sh DOWN 10.0.1.1"
        SSL_GET {
            url {
                path /health
                status_code 200-299 301
            }
            enable_sni
            bindto 10.0.0.254
            bind_port 4000
            warmup 0
        }
        SMTP_CHECK {
            helo_name "mail.example.com"
            connect_port 25
        }
        DNS_CHECK {
            type A
            name www.example.com
            connect_port 53
        }
        FILE_CHECK {
            track_file weightfile
        }
        MISC_CHECK {
            misc_path "/bin/check 1"
            misc_dynamic
            user checker
        }
    }
    real_server 10.0.1.2 443 {
        BFD_CHECK {
            name bfd1
        }
    }
}
"#;

#[test]
fn every_keepalived_checker_with_its_defaults() {
    let k = parse_text("c.conf", CHECKERS, Path::new("/")).unwrap();
    let kinds: Vec<&str> = k.checks.iter().map(|c| c.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "SSL_GET",
            "SMTP_CHECK",
            "DNS_CHECK",
            "FILE_CHECK",
            "MISC_CHECK",
            "BFD_CHECK"
        ]
    );
    let ssl = &k.checks[0];
    let CheckKind::Http { urls, tls, sni, .. } = &ssl.kind else {
        panic!("{:?}", ssl.kind)
    };
    assert!(*tls && *sni);
    assert_eq!(urls[0].status, [(200, 299), (301, 301)]);
    assert_eq!(urls[0].virtualhost.as_deref(), Some("www.example.com"));
    assert_eq!(
        (ssl.bindto, ssl.bind_port, ssl.warmup, ssl.delay_before_retry),
        (Some(Ipv4Addr::new(10, 0, 0, 254).into()), Some(4000), 0, 3)
    );
    assert_eq!(
        k.checks[1].kind,
        CheckKind::Smtp {
            helo: "mail.example.com".into()
        }
    );
    assert_eq!(
        k.checks[2].kind,
        CheckKind::Dns {
            qtype: 1,
            name: "www.example.com".into()
        }
    );
    // DNS_CHECK retries 3 times, delay_loop apart, by default.
    assert_eq!((k.checks[2].retry, k.checks[2].delay_before_retry), (3, 2));
    assert_eq!(
        k.checks[3].kind,
        CheckKind::File {
            path: "/run/rs1.weight".into(),
            weight: 3
        }
    );
    let CheckKind::Misc { dynamic, run_as, .. } = &k.checks[4].kind else {
        panic!()
    };
    assert!(*dynamic);
    assert_eq!(run_as.as_ref().map(|r| r.user.as_str()), Some("checker"));
    // A server with only BFD_CHECK is held down, and said so.
    assert!(k.checks[5].alpha);
    let notes = k.notes.join("\n");
    assert!(notes.contains("c.conf:54: BFD_CHECK: not applied"), "{notes}");
    assert!(notes.contains("SSL password: not supported"), "{notes}");
    // Scripts, with their users.
    let rs = &k.servers[0];
    let up = rs.notify_up.as_ref().unwrap();
    assert_eq!(up.line, "/usr/local/bin/rs.sh UP 10.0.1.1");
    assert_eq!(
        up.run_as.as_ref().map(|r| (r.user.as_str(), r.group.as_deref())),
        Some(("nobody", Some("nogroup")))
    );
    assert_eq!(rs.notify_down.as_ref().unwrap().run_as, None);
    let vs = &k.extras[0];
    assert_eq!(vs.quorum, 2);
    assert_eq!(
        vs.quorum_up.as_ref().unwrap().line,
        "/usr/local/bin/quorum.sh UP 10.0.0.1:443"
    );
    assert_eq!(
        vs.quorum_down.as_ref().unwrap().line,
        "/usr/local/bin/quorum-down.sh"
    );
    assert_eq!(k.script_user.as_ref().map(|r| r.user.as_str()), Some("nobody"));
    assert!(k.script_security);
    assert_eq!(
        k.ssl.certificate.as_deref(),
        Some(Path::new("/etc/ssl/client.pem"))
    );
}

#[test]
fn quoted_strings_are_one_word_and_comments_stop_outside_quotes() {
    assert_eq!(
        words(r#"misc_path "/bin/sh -c 'exit 0 # no comment'" ! a comment"#),
        ["misc_path", "/bin/sh -c 'exit 0 # no comment'"]
    );
    assert_eq!(words("url{path /}"), ["url", "{", "path", "/", "}"]);
}

#[test]
fn ipv6_groups_ranges_granularity_and_checkers() {
    let text = "
virtual_server_group V6 {
    ae00::2-9 80
    ae00::1   80
}
virtual_server group V6 {
    lb_algo rr
    lb_kind DR
    persistence_timeout 50
    persistence_granularity 64
    real_server ae00::10 80 {
        TCP_CHECK {
            bindto ae00::2
            connect_ip ae00::11
        }
    }
}
";
    let k = parse_text("v6.conf", text, Path::new("/")).unwrap();
    let saved = crate::render_save(&k.rules, true, &crate::Names::default());
    // ae00::2 to ae00::9, and ae00::1: nine IPv6 services.
    assert_eq!(saved.matches("-A -t [ae00::").count(), 9, "{saved}");
    assert!(
        saved.contains("-A -t [ae00::9]:80 -s rr -p 50 -M 64\n"),
        "{saved}"
    );
    assert!(!saved.contains("[ae00::a]"), "{saved}");
    let c = &k.checks[0];
    assert_eq!(
        (c.bindto, c.connect_ip),
        (Some("ae00::2".parse().unwrap()), "ae00::11".parse().unwrap())
    );
    for (bad, why) in [
        ("virtual_server_group G {\n ae00::9-2 80\n}\n", "a range is"),
        (
            "virtual_server ae00::1 80 {\n persistence_granularity 255.255.255.0\n}\n",
            "prefix length",
        ),
        (
            "virtual_server ae00::1 80 {\n real_server 10.0.0.1 80 {\n }\n}\n",
            "address family",
        ),
    ] {
        let e = parse_text("bad.conf", bad, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn a_file_over_the_size_limit_is_refused_by_name() {
    let dir = tempdir::Dir::new();
    let big = dir.0.join("big.conf");
    std::fs::write(&big, vec![b'#'; (MAX_FILE + 1) as usize]).unwrap();
    let e = load(&big).unwrap_err().to_string();
    assert!(e.contains("big.conf") && e.contains("limit"), "{e}");
    std::fs::write(dir.0.join("main.conf"), "include big.conf\n").unwrap();
    let e = load(&dir.0.join("main.conf")).unwrap_err().to_string();
    assert!(e.contains("limit"), "an include too: {e}");
}

#[test]
fn a_udp_check_payload_is_hex_in_one_word_or_several() {
    let text = "virtual_server 10.0.0.1 53 {\n protocol UDP\n real_server 10.0.0.2 53 {\n  UDP_CHECK {\n   payload 0x0aFF 00\n  }\n }\n}\n";
    let k = parse_text("t.conf", text, Path::new("/")).unwrap();
    let CheckKind::Udp { payload, .. } = &k.checks[0].kind else {
        panic!("{:?}", k.checks[0].kind)
    };
    assert_eq!(payload, &[0x0a, 0xff, 0x00]);
}

#[test]
fn persistence_timeout_without_a_value_is_keepalived_s_300() {
    let k = parse_text(
        "t.conf",
        "virtual_server 10.0.0.1 80 {\n persistence_timeout\n}\n",
        Path::new("/"),
    )
    .unwrap();
    let saved = crate::render_save(&k.rules, true, &crate::Names::default());
    assert!(saved.contains("-p 300"), "{saved}");
}

#[test]
fn includes_from_files_in_memory_read_as_from_disk() {
    let (_d, disk) = with_include();
    let mut mem = MemFiles::default();
    mem.insert("/etc/keepalived/conf.d/fw.conf", FWMARK);
    mem.insert("/etc/keepalived/conf.d/fw.conf.bak", "not a keepalived line {");
    let k = parse_files("keepalived.conf", MAIN, Path::new("/etc/keepalived"), &mem).unwrap();
    let save = |k: &Keepalived| crate::render_save(&k.rules, true, &crate::Names::default());
    assert_eq!(save(&k), save(&disk));

    // Each include is read relative to its own file, eight deep at most.
    let mut chain = MemFiles::default();
    for i in 0..9 {
        chain.insert(format!("/k/{i}/a.conf"), format!("include ../{}/a.conf\n", i + 1));
    }
    chain.insert("/k/9/a.conf", "include ../10/a.conf\n");
    let e = parse_files("main.conf", "include 0/a.conf\n", Path::new("/k"), &chain)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested deeper than 8"), "{e}");
    // A directory that is not there includes nothing, said by line.
    let k = parse_files("main.conf", "\ninclude none/*.conf\n", Path::new("/k"), &chain).unwrap();
    assert!(
        k.notes[0].starts_with("main.conf:2: include none/*.conf")
            && k.notes[0].ends_with("nothing included"),
        "{:?}",
        k.notes
    );
    // A pattern matching nothing in an existing directory includes nothing.
    assert!(parse_files("main.conf", "include 1/*.none\n", Path::new("/k"), &chain).is_ok());
    let mut big = MemFiles::default();
    big.insert("/k/big.conf", "#".repeat((MAX_FILE + 1) as usize));
    let e = parse_files("main.conf", "include big.conf\n", Path::new("/k"), &big)
        .unwrap_err()
        .to_string();
    assert!(e.contains("big.conf") && e.contains("limit"), "{e}");
}
