//! The monitoring that ships in the package (packaging/monitoring/: the
//! Prometheus alert rules and the Grafana dashboard) against a live scrape
//! of a director running a keepalived configuration with checks, a quorum,
//! a sorry server and a VRRP instance: promtool accepts the rules and the
//! scrape, and every metric the rules and the dashboard name is served.

mod lab;

use lab::{Daemon, Lab, RS1, RS2, VIP, scrape, wait_for};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/monitoring/ferrovs-alerts.yml"
);
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/monitoring/ferrovs-dashboard.json"
);

/// `promtool ARGS` with `stdin`; its exit status and what it said.
fn promtool(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/deps.sh installs the prometheus package)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// The metric names `text` mentions (`ferrovs_*`, `node_ipvs_*`).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text
        .match_indices("ferrovs_")
        .chain(text.match_indices("node_ipvs_"))
    {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

#[test]
fn shipped_rules_and_dashboard_match_a_live_scrape() {
    let lab = Lab::up();
    let path = std::env::temp_dir().join(format!("{}.monitoring.conf", lab.name));
    std::fs::write(
        &path,
        format!(
            "vrrp_instance VI_1 {{\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority 100\n\
             advert_int 1\n virtual_ipaddress {{\n {VIP}/32\n }}\n}}\n\
             virtual_server {VIP} 80 {{\n delay_loop 1\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
             quorum 1\n sorry_server {RS2} 80\n\
             real_server {RS1} 80 {{\n weight 1\n TCP_CHECK {{\n connect_timeout 1\n }}\n }}\n}}\n"
        ),
    )
    .unwrap();
    let path = path.display().to_string();
    // The fast path on, so its families are served too (nothing here is
    // forwarded).
    let _d = Daemon::start_with(
        &lab,
        &[
            "--interface",
            "eth0",
            "--keepalived",
            &path,
            "--metrics",
            "127.0.0.1:9410",
            "--fast-path",
            "on",
        ],
    );
    assert!(
        wait_for(Duration::from_secs(10), || scrape(&lab)
            .contains("ferrovs_vrrp_state{")),
        "{}",
        scrape(&lab)
    );
    let text = scrape(&lab);
    let (ok, said) = promtool(&["check", "metrics"], &text);
    assert!(ok, "promtool check metrics:\n{said}\n{text}");
    let (ok, said) = promtool(&["check", "rules", RULES], "");
    assert!(ok, "promtool check rules:\n{said}");
    let served: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let rules = std::fs::read_to_string(RULES).unwrap();
    let dashboard = std::fs::read_to_string(DASHBOARD).unwrap();
    for (what, body) in [("alert rules", &rules), ("dashboard", &dashboard)] {
        let names = metric_names(body);
        assert!(names.len() >= 5, "{what}: {names:?}");
        for n in names {
            assert!(
                served.contains(n.as_str()),
                "{what} names {n}, which the scrape lacks"
            );
        }
    }
    // Label values the rules select on exist.
    for series in ["reason=\"no_destination\"", "state=\"FAULT\"", "state=\"MASTER\""] {
        assert!(text.contains(series), "no {series} in the scrape");
    }
    dashboard_is_importable(&dashboard);
    let _ = std::fs::remove_file(path);
}

/// What Grafana needs to import the dashboard: a title and uid, panels
/// with unique ids, a place on the grid and a query each, all through the
/// datasource the import asks for.
fn dashboard_is_importable(text: &str) {
    let d: serde_json::Value = serde_json::from_str(text).expect("the dashboard is JSON");
    assert!(d["title"].is_string() && d["uid"].is_string());
    assert_eq!(d["__inputs"][0]["name"], "DS_PROMETHEUS");
    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id in {p}"
        );
        for k in ["x", "y", "w", "h"] {
            assert!(p["gridPos"][k].is_u64(), "gridPos.{k} of {}", p["title"]);
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{t}");
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}");
        }
    }
}
