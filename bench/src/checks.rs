//! `ferrovs-bench checks`: the health checker at scale. A server namespace
//! listens on one port per real server (a Python selector loop: accept,
//! close); a ferrovs daemon in the director namespace runs a keepalived.conf
//! with that many TCP_CHECKs; the daemon's own metrics say how late checks
//! start, and /proc says what the checks' thread costs. Figures are printed,
//! never asserted.

use crate::compare::{Topology, spawn_daemon, spawn_in};
use std::process::Command;
use std::time::{Duration, Instant};

const BASE_PORT: u32 = 20000;
const METRICS: &str = "127.0.0.1:9977";

/// Accepts and closes on ports BASE..BASE+N of 10.50.0.2.
const LISTENER: &str = r#"
import resource, selectors, socket, sys
base, n = int(sys.argv[1]), int(sys.argv[2])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sel = selectors.DefaultSelector()
for p in range(base, base + n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.50.0.2", p))
    s.listen(128)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for k, _ in sel.select():
        try:
            c, _ = k.fileobj.accept()
            c.close()
        except OSError:
            pass
"#;

/// The checks' figures at one moment.
#[derive(Debug, Clone, Default)]
struct Sample {
    /// Cumulative lateness buckets (bound in seconds, count), +Inf last.
    buckets: Vec<(f64, u64)>,
    max: f64,
    /// CPU ticks of the ferrovs-checks thread.
    ticks: u64,
}

fn metric_lines(ns: &str) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-s", "--max-time", "5"])
        .arg(format!("http://{METRICS}/metrics"))
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn thread_ticks(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "ferrovs-checks")
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .map(|stat| {
            // Fields after the ")" of the command name: utime is the 12th.
            let rest = stat.rsplit_once(')').map_or("", |r| r.1);
            let f: Vec<u64> = rest.split_whitespace().filter_map(|w| w.parse().ok()).collect();
            f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)
        })
        .sum()
}

fn sample(ns: &str, pid: u32) -> Result<Sample, String> {
    let text = metric_lines(ns)?;
    let mut s = Sample {
        ticks: thread_ticks(pid),
        ..Sample::default()
    };
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("ferrovs_check_lateness_seconds_bucket{le=\"") {
            let (le, n) = rest.split_once("\"} ").ok_or("bad bucket line")?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().map_err(|_| "bad le")?
            };
            s.buckets
                .push((bound, n.trim().parse().map_err(|_| "bad count")?));
        } else if let Some(v) = l.strip_prefix("ferrovs_check_lateness_max_seconds ") {
            s.max = v.trim().parse().unwrap_or(0.0);
        }
    }
    if s.buckets.is_empty() {
        return Err("the daemon publishes no check lateness".into());
    }
    Ok(s)
}

/// The smallest bucket bound holding share `q` of the checks between two
/// samples.
fn quantile(a: &Sample, b: &Sample, q: f64) -> f64 {
    let total = b.buckets.last().map_or(0, |x| x.1) - a.buckets.last().map_or(0, |x| x.1);
    for ((bound, n1), (_, n0)) in b.buckets.iter().zip(&a.buckets) {
        if (n1 - n0) as f64 >= q * total as f64 {
            return *bound;
        }
    }
    f64::INFINITY
}

fn keepalived_conf(servers: u32, delay_loop: u32) -> String {
    let mut c = format!(
        "virtual_server 10.50.0.100 9 {{\n  delay_loop {delay_loop}\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
    );
    for i in 0..servers {
        c += &format!(
            "  real_server 10.50.0.2 {} {{\n    TCP_CHECK {{\n      connect_timeout 2\n    }}\n  }}\n",
            BASE_PORT + i
        );
    }
    c + "}\n"
}

/// Run the scenario and print its figures.
///
/// # Errors
/// The namespaces, the listener or the daemon could not be set up.
pub fn run(servers: u32, dead: u32, delay_loop: u32, seconds: u64) -> Result<(), String> {
    let t = Topology::up()?;
    let alive = servers.saturating_sub(dead);
    let _listener = spawn_in(
        &t.gen_ns,
        &[
            "python3",
            "-c",
            LISTENER,
            &BASE_PORT.to_string(),
            &alive.to_string(),
        ],
    )?;
    let conf = std::env::temp_dir().join(format!("{}-checks.conf", t.dut_ns));
    std::fs::write(&conf, keepalived_conf(servers, delay_loop)).map_err(|e| e.to_string())?;
    let sock = format!("/tmp/{}.sock", t.dut_ns);
    let conf_s = conf.display().to_string();
    let dut = spawn_daemon(&t, &sock, &["--metrics", METRICS, "--keepalived", &conf_s])?;
    let pid = dut.0.id();
    // Every check has run at least once (warmup is up to delay_loop).
    let settle = Instant::now() + Duration::from_secs(u64::from(delay_loop) * 3 + 10);
    let mut first = Err("no sample".to_string());
    while Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(500));
        first = sample(&t.dut_ns, pid);
        if first
            .as_ref()
            .is_ok_and(|s| s.buckets.last().is_some_and(|b| b.1 >= u64::from(servers) * 2))
        {
            break;
        }
    }
    let a = first?;
    std::thread::sleep(Duration::from_secs(seconds));
    let b = sample(&t.dut_ns, pid)?;
    let checks = b.buckets.last().map_or(0, |x| x.1) - a.buckets.last().map_or(0, |x| x.1);
    let want = u64::from(servers) * seconds / u64::from(delay_loop);
    let cpu = (b.ticks - a.ticks) as f64 / 100.0 / seconds as f64 * 100.0;
    let _ = std::fs::remove_file(&conf);
    println!(
        "servers {servers} ({dead} refusing), delay_loop {delay_loop} s, {seconds} s measured\n\
         checks started: {checks} of {want} scheduled ({:.1}%)\n\
         lateness: p50 <= {} s, p99 <= {} s, max {:.4} s (since start)\n\
         checks thread CPU: {cpu:.1}% of one core",
        checks as f64 * 100.0 / want.max(1) as f64,
        quantile(&a, &b, 0.5),
        quantile(&a, &b, 0.99),
        b.max
    );
    Ok(())
}
