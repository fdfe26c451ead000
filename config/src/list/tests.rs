//! Listings and save text against ipvsadm's own layout.

use super::*;

/// The LVS-NAT course lab, plus a persistent UDP service, entered out of
/// ipvsadm's order to check the sort.
const LAB: &str = "\
-A -u 172.16.1.100:53 -s rr -p 50
-a -u 172.16.1.100:53 -r 172.16.1.6:53 -m
-A -t 172.16.1.100:80 -s rr
-a -t 172.16.1.100:80 -r 172.16.1.6 -g -w 3
-a -t 172.16.1.100:80 -r 172.16.1.5 -m
";

fn lab() -> Rules {
    Rules::from_commands("lab", LAB).unwrap()
}

fn counts(id: u32) -> Counts {
    Counts {
        active: u64::from(id) * 10,
        inactive: 1,
        conns: u64::from(id) * 100,
        in_pkts: 123_456_789 * u64::from(id),
        out_pkts: 0,
        in_bytes: 1_000 * u64::from(id),
        out_bytes: 42,
        persist: 0,
        rates: [u64::from(id), 20 * u64::from(id), 0, 2_000 * u64::from(id), 0],
    }
}

#[test]
fn list_layout_matches_ipvsadm() {
    let got = render_list(&lab(), &ListOpts::default(), 4096, counts);
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  172.16.1.100:80 rr
  -> 172.16.1.5:80                Masq    1      30         1         
  -> 172.16.1.6:80                Route   3      20         1         
UDP  172.16.1.100:53 rr persistent 50
  -> 172.16.1.6:53                Masq    1      10         1         
";
    assert_eq!(got, want);
}

#[test]
fn stats_layout_matches_ipvsadm() {
    let opts = ListOpts {
        stats: true,
        ..ListOpts::default()
    };
    let got = render_list(&lab(), &opts, 4096, counts);
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  172.16.1.100:80                   500  617283K        0     5000       84
  -> 172.16.1.5:80                     300  370370K        0     3000       42
  -> 172.16.1.6:80                     200  246913K        0     2000       42
UDP  172.16.1.100:53                   100  123456K        0     1000       42
  -> 172.16.1.6:53                     100  123456K        0     1000       42
";
    assert_eq!(got, want);
    let exact = render_list(&lab(), &ListOpts { exact: true, ..opts }, 4096, counts);
    assert!(
        exact.contains("  -> 172.16.1.5:80                     300 370370367"),
        "{exact}"
    );
}

#[test]
fn thresholds_and_persistent_conn_layouts() {
    let rules = Rules::from_commands(
        "t",
        "-A -t 10.0.0.100:80 -s wlc -p\n-a -t 10.0.0.100:80 -r 10.0.0.11:80 -x 100 -y 50\n",
    )
    .unwrap();
    let th = render_list(
        &rules,
        &ListOpts {
            thresholds: true,
            ..ListOpts::default()
        },
        8,
        counts,
    );
    assert_eq!(
        th,
        "IP Virtual Server version 1.2.1 (size=8)\n\
         Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n\
         TCP  10.0.0.100:80 wlc persistent 300\n\
         \x20 -> 10.0.0.11:80                 100        50         10         1         \n"
    );
    let pc = render_list(
        &rules,
        &ListOpts {
            persistent_conn: true,
            ..ListOpts::default()
        },
        8,
        |_| Counts {
            persist: 7,
            ..Counts::default()
        },
    );
    assert!(
        pc.contains("Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn "),
        "{pc}"
    );
    assert!(
        pc.contains("  -> 10.0.0.11:80                 1         7           0          0         \n"),
        "{pc}"
    );
}

#[test]
fn json_listing() {
    let got = render_json(&lab(), counts);
    assert!(got.starts_with("{\"timeouts\":{\"tcp\":900,\"tcpfin\":120,\"udp\":300},\"services\":[{\"protocol\":\"TCP\",\"address\":\"172.16.1.100\",\"port\":80,\"scheduler\":\"rr\",\"flags\":[],\"persistence\":null"), "{got}");
    assert!(
        got.contains("{\"address\":\"172.16.1.5\",\"port\":80,\"forward\":\"Masq\",\"weight\":1,"),
        "{got}"
    );
    assert!(got.contains("\"persistence\":50"), "{got}");
    // Balanced braces and brackets: a JSON reader would take it.
    let depth = got.chars().try_fold(0i32, |d, c| match c {
        '{' | '[' => Some(d + 1),
        '}' | ']' => (d > 0).then(|| d - 1),
        _ => Some(d),
    });
    assert_eq!(depth, Some(0));
}

#[test]
fn rate_layout_matches_ipvsadm() {
    let opts = ListOpts {
        rate: true,
        ..ListOpts::default()
    };
    let got = render_list(&lab(), &opts, 4096, counts);
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  172.16.1.100:80                     5      100        0    10000        0
  -> 172.16.1.5:80                       3       60        0     6000        0
  -> 172.16.1.6:80                       2       40        0     4000        0
UDP  172.16.1.100:53                     1       20        0     2000        0
  -> 172.16.1.6:53                       1       20        0     2000        0
";
    assert_eq!(got, want);
}

#[test]
fn save_layout_and_round_trip() {
    let rules = lab();
    let saved = render_save(&rules, true, &Names::default());
    let want = "\
-A -t 172.16.1.100:80 -s rr
-a -t 172.16.1.100:80 -r 172.16.1.5:80 -m -w 1
-a -t 172.16.1.100:80 -r 172.16.1.6:80 -g -w 3
-A -u 172.16.1.100:53 -s rr -p 50
-a -u 172.16.1.100:53 -r 172.16.1.6:53 -m -w 1
";
    assert_eq!(saved, want);
    // -S | -C | -R gives the same rules (ids aside) and the same save.
    let mut restored = Rules::default();
    restored.apply_commands("saved", &saved).unwrap();
    assert_eq!(render_save(&restored, true, &Names::default()), saved);
    let none = |_| Counts::default();
    assert_eq!(
        render_list(&restored, &ListOpts::default(), 1, none),
        render_list(&rules, &ListOpts::default(), 1, none)
    );
}

#[test]
fn fwmark_services_list_and_save_with_their_mark_rules() {
    let text = "\
--mark -A -p tcp -d 10.0.0.100/32 --dports 80,443 -j MARK --set-mark 7
-A -f 7 -s rr -p 300
-a -f 7 -r 10.0.0.11:0 -g -w 1
-A -t 10.0.0.100:22 -s rr
";
    let rules = Rules::from_commands("fw", text).unwrap();
    let listed = render_list(&rules, &ListOpts::default(), 1, |_| Counts::default());
    assert!(listed.ends_with(
        "TCP  10.0.0.100:22 rr\nFWM  7 rr persistent 300\n  -> 10.0.0.11:0                  Route   1      0          0         \n"
    ), "{listed}");
    let saved = render_save(&rules, true, &Names::default());
    assert_eq!(
        saved,
        "--mark -A -p tcp -d 10.0.0.100/32 --dports 80,443 -j MARK --set-mark 7\n\
         -A -t 10.0.0.100:22 -s rr\n-A -f 7 -s rr -p 300\n-a -f 7 -r 10.0.0.11:0 -g -w 1\n"
    );
    let mut again = rules.clone();
    again.apply_commands("s", "-C\n").unwrap();
    again.apply_commands("s", &saved).unwrap();
    assert_eq!(render_save(&again, true, &Names::default()), saved);
}

#[test]
fn save_with_names_and_restore_resolves_them() {
    let names = Names::parse(
        "172.16.1.100 vip\n172.16.1.5 minion-one\n",
        "http 80/tcp\ndomain 53/udp\n",
    );
    let saved = render_save(&lab(), false, &names);
    assert!(
        saved.starts_with("-A -t vip:http -s rr\n-a -t vip:http -r minion-one:http -m -w 1\n"),
        "{saved}"
    );
}

#[test]
fn a_bad_line_refuses_the_whole_batch() {
    let mut rules = lab();
    let before = rules.clone();
    let batch =
        "-A -t 10.0.0.1:80 -s rr\n\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 1\n-a -t 10.0.0.9:80 -r 10.0.0.3\n";
    let err = rules.apply_commands("stdin", batch).unwrap_err();
    assert_eq!(err.to_string(), "stdin:4: Service not defined: TCP 10.0.0.9:80");
    assert_eq!(rules, before);
    let err = rules.apply_commands("stdin", "-L -n\n").unwrap_err();
    assert!(err.to_string().starts_with("stdin:1: only rule changes"), "{err}");
}

/// IPv6 services beside IPv4 ones, entered out of ipvsadm's order.
const LAB6: &str = "\
-A -u [2001:db8::100]:53 -s rr -p 50 -M 64
-a -u [2001:db8::100]:53 -r [2001:db8:1::6]:5353 -m -w 2
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1
-A -t [2001:db8::100]:80 -s wrr
-a -t [2001:db8::100]:80 -r [2001:db8:1:2:3:4:5:12]:80 -g -w 3
-a -t [2001:db8::100]:80 -r 2001:db8::11 -g -w 1
-A -f 9 -6 -s sh
-a -f 9 -6 -r [2001:db8::11]:0 -g -w 1
";

#[test]
fn ipv6_list_and_save_match_ipvsadm() {
    let rules = Rules::from_commands("lab6", LAB6).unwrap();
    let got = render_list(&rules, &ListOpts::default(), 4096, |_| Counts::default());
    // ipvsadm 1.31's print_service_entry: family sorts before protocol,
    // IPv6 names in brackets and never cut at the column width, the
    // persistence mask as a prefix length.
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr
  -> 10.0.0.11:80                 Route   1      0          0         
TCP  [2001:db8::100]:80 wrr
  -> [2001:db8::11]:80            Route   1      0          0         
  -> [2001:db8:1:2:3:4:5:12]:80   Route   3      0          0         
UDP  [2001:db8::100]:53 rr persistent 50 mask 64
  -> [2001:db8:1::6]:5353         Masq    2      0          0         
FWM  9 IPv6 sh
  -> [2001:db8::11]:0             Route   1      0          0         
";
    assert_eq!(got, want);
    let saved = render_save(&rules, true, &Names::default());
    let want = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1
-A -t [2001:db8::100]:80 -s wrr
-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g -w 1
-a -t [2001:db8::100]:80 -r [2001:db8:1:2:3:4:5:12]:80 -g -w 3
-A -u [2001:db8::100]:53 -s rr -p 50 -M 64
-a -u [2001:db8::100]:53 -r [2001:db8:1::6]:5353 -m -w 2
-A -f 9 -6 -s sh
-a -f 9 -6 -r [2001:db8::11]:0 -g -w 1
";
    assert_eq!(saved, want);
    // -S | -C | -R: the same rules back.
    let mut again = rules.clone();
    again.apply_commands("s", "-C\n").unwrap();
    again.apply_commands("s", &saved).unwrap();
    assert_eq!(render_save(&again, true, &Names::default()), saved);
    let stats = ListOpts {
        stats: true,
        ..ListOpts::default()
    };
    let got = render_list(&rules, &stats, 1, |_| Counts::default());
    assert!(
        got.contains(
            "\nFWM  9 IPv6                              0        0        0        0        0\n  \
             -> [2001:db8::11]:0                    0        0        0        0        0\n"
        ),
        "{got}"
    );
}

#[test]
fn mixed_families_and_bad_ipv6_input_are_refused() {
    let cases = [
        (
            "-A -t [2001:db8::1]:80\n-a -t [2001:db8::1]:80 -r 10.0.0.1",
            "address family",
        ),
        (
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r [2001:db8::1]:80",
            "address family",
        ),
        ("-A -f 1 -6\n-a -f 1 -6 -r 10.0.0.1", "address family"),
        ("-A -t [2001:db8::1]:80 -p 10 -M 129", "illegal ipv6 netmask"),
        (
            "-A -t [2001:db8::1]:80 -p 10 -M 255.255.255.0",
            "illegal ipv6 netmask",
        ),
        ("-A -t [2001:db8::1:80", "illegal address"),
        ("-A -t [2001:db8::1]80", "illegal address"),
        ("-A -t [2001:db8::zz]:80", "illegal address"),
        ("-A -t 2001:db8::1", "has no port"),
        ("-A -6 -f 1", "-6 used before -f"),
        ("--mark -A -d 2001:db8::1/64 -j MARK --set-mark 1", "/128"),
    ];
    for (text, want) in cases {
        let err = Rules::from_commands("t", text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}
