//! The end-to-end tests' lab: `scripts/lab.sh` under a unique name, a daemon
//! in its director namespace, and bounded waits.
//!
//! Every guard cleans up on drop, so a failing assertion (a panic) still
//! tears the namespaces down and stops the daemon. Labs in one test binary run
//! one at a time: each holds a busy-polling worker, and this machine has two
//! cores.

#![allow(dead_code, reason = "each test binary uses part of the lab")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The VIP of the lab's virtual service.
pub const VIP: &str = "10.99.0.100";
/// The director's own address.
pub const DIP: &str = "10.99.0.10";
/// Real servers.
pub const RS1: &str = "10.99.0.11";
pub const RS2: &str = "10.99.0.12";
/// The IPv6 VIP, and the IPv6 address of real server `rsN` (DR and TUN
/// labs; `rs6_nat` for NAT).
pub const VIP6: &str = "2001:db8:99::100";
pub fn rs6(n: u32) -> String {
    format!("2001:db8:99::1{n}")
}
pub fn rs6_nat(n: u32) -> String {
    format!("2001:db8:98::1{n}")
}

static SERIAL: Mutex<()> = Mutex::new(());
static NEXT: AtomicU32 = AtomicU32::new(0);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of the ferrovs binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferrovs")
}

/// Run a command and return its output; panics only if it cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A lab of namespaces `NAME-{sw,client,dir,rs1,rs2}`, removed on drop.
pub struct Lab {
    pub name: String,
    /// The switch ports run an XDP program of the lab's own.
    xdp_peers: bool,
    _serial: MutexGuard<'static, ()>,
}

impl Lab {
    /// Build a fresh DR lab with a name no other lab on this host uses.
    pub fn up() -> Self {
        Self::up_kind("dr")
    }

    /// Build a fresh lab of `kind` ("dr" or "nat", see scripts/lab.sh).
    pub fn up_kind(kind: &str) -> Self {
        Self::up_with(kind, 1)
    }

    /// Build a fresh lab of `kind` whose director has `queues` queues per
    /// interface.
    pub fn up_with(kind: &str, queues: u32) -> Self {
        Self::up_env(kind, queues, false)
    }

    /// Build a fresh lab of `kind` with a second director, `dir2`, and the
    /// VIP on neither (VRRP places it).
    pub fn up_pair(kind: &str) -> Self {
        Self::up_env(kind, 1, true)
    }

    /// Build a fresh lab of `kind` with `servers` real servers, rs1..rsN.
    pub fn up_servers(kind: &str, servers: u32) -> Self {
        Self::up_full(kind, 1, false, (servers, false))
    }

    /// Build a fresh lab of `kind` whose switch ports run an XDP program,
    /// so that they take what the director sends with XDP_TX (the fast
    /// path), as a physical NIC does.
    pub fn up_xdp_peers(kind: &str) -> Self {
        Self::up_full(kind, 1, false, (2, true))
    }

    fn up_env(kind: &str, queues: u32, pair: bool) -> Self {
        Self::up_full(kind, queues, pair, (2, false))
    }

    fn up_full(kind: &str, queues: u32, pair: bool, (servers, xdp_peers): (u32, bool)) -> Self {
        let xdp_peers = xdp_peers || fast_path_run();
        let out = run(Command::new("id").arg("-u"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0",
            "the end-to-end tests need root (network namespaces, XDP)"
        );
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!(
            "fvt{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Self {
            name,
            xdp_peers,
            _serial: serial,
        };
        let out = run(Command::new(root().join("scripts/lab.sh"))
            .arg("up")
            .env("LAB", &lab.name)
            .env("LAB_KIND", kind)
            .env("LAB_QUEUES", queues.to_string())
            .env("LAB_PAIR", if pair { "1" } else { "0" })
            .env("LAB_SERVERS", servers.to_string())
            .env("LAB_XDP_PEERS", if xdp_peers { "1" } else { "0" }));
        assert!(
            out.status.success(),
            "lab up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    fn script(&self, verb: &str) -> Output {
        run(Command::new(root().join("scripts/lab.sh"))
            .arg(verb)
            .env("LAB", &self.name))
    }

    /// Stop (`"server-stop"`) or start (`"server-start"`) the servers of
    /// real server `role`.
    pub fn server(&self, verb: &str, role: &str) {
        let out = run(Command::new(root().join("scripts/lab.sh"))
            .args([verb, role])
            .env("LAB", &self.name));
        assert!(
            out.status.success(),
            "lab {verb} {role}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Return the full namespace name of a role.
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.name)
    }

    /// Run `args` inside the namespace of `role`.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args))
    }

    /// Start `args` inside the namespace of `role`, in the background; it is
    /// killed when the returned guard drops.
    pub fn spawn(&self, role: &str, args: &[&str]) -> Bg {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {args:?}: {e}"));
        Bg(child)
    }

    /// Fetch `url` `n` times, each on a connection of its own (one curl
    /// each); return the bodies in order.
    pub fn http_answers(&self, url: &str, n: usize) -> Vec<String> {
        (0..n).flat_map(|_| self.http_get(&[url.to_string()]).0).collect()
    }

    /// GET `urls` from the client over one curl run; return the bodies (one
    /// line each) and the number of TCP connections curl opened.
    pub fn http_get(&self, urls: &[String]) -> (Vec<String>, u32) {
        let mut args = vec!["curl", "-s", "-m", "5", "-w", "connects=%{num_connects}\n"];
        args.extend(urls.iter().map(String::as_str));
        let out = self.exec("client", &args);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut bodies = Vec::new();
        let mut connects = 0;
        for line in text.lines() {
            match line.strip_prefix("connects=") {
                Some(n) => connects += n.parse::<u32>().unwrap_or(0),
                None => bodies.push(line.to_string()),
            }
        }
        (bodies, connects)
    }

    /// Send one UDP datagram from the client's port `sport` to `VIP:53`;
    /// return the answer, or an empty string after a 3 s timeout.
    pub fn udp_ask(&self, sport: u16) -> String {
        self.udp_ask_to(VIP, sport)
    }

    /// [`Self::udp_ask`] to `vip` (an IPv4 or IPv6 address).
    pub fn udp_ask_to(&self, vip: &str, sport: u16) -> String {
        let (family, any) = if vip.contains(':') {
            ("AF_INET6", "::")
        } else {
            ("AF_INET", "0.0.0.0")
        };
        let py = format!(
            "import socket\ns=socket.socket(socket.{family}, socket.SOCK_DGRAM)\n\
             s.bind(('{any}', {sport}))\ns.settimeout(3)\ns.connect(('{vip}', 53))\ns.send(b'q')\n\
             try:\n    print(s.recv(100).decode())\nexcept OSError:\n    print('')\n"
        );
        let out = self.exec("client", &["python3", "-c", &py]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Return every interface line of every lab namespace that shows an XDP
    /// program (but the switches' own, on a lab with XDP peers).
    pub fn xdp_programs(&self) -> Vec<String> {
        ["sw", "swr", "client", "dir", "rs1", "rs2", "rs3"]
            .iter()
            .filter(|r| !(self.xdp_peers && r.starts_with("sw")))
            .flat_map(|r| {
                let out = run(Command::new("ip").args(["-n", &self.ns(r), "-d", "link", "show"]));
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.contains("xdp"))
                    .map(|l| format!("{r}: {l}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.script("down");
        if !out.status.success() {
            eprintln!("lab down failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// A ferrovs daemon in the lab's director namespace, stopped on drop.
pub struct Daemon {
    child: Option<Child>,
    pub socket: String,
    log: PathBuf,
}

/// Whether this run has the fast path on in every daemon a test starts
/// (`FERROVS_LAB_FAST_PATH=on`, as scripts/test.sh runs the forwarding
/// suites a second time), on labs whose switch ports take XDP_TX.
pub fn fast_path_run() -> bool {
    std::env::var("FERROVS_LAB_FAST_PATH").is_ok_and(|v| v == "on")
}

impl Daemon {
    /// Start the daemon on the director's eth0 and wait until it answers.
    pub fn start(lab: &Lab) -> Self {
        Self::start_on(lab, &["eth0"])
    }

    /// Start the daemon on the director's `interfaces` and wait until it
    /// answers.
    pub fn start_on(lab: &Lab, interfaces: &[&str]) -> Self {
        let args: Vec<&str> = interfaces.iter().flat_map(|i| ["--interface", i]).collect();
        Self::start_with(lab, &args)
    }

    /// Start the daemon with `args` (interfaces, queues, …) and wait until it
    /// answers.
    pub fn start_with(lab: &Lab, args: &[&str]) -> Self {
        Self::start_via(lab, &[], args)
    }

    /// Start the daemon through `via` (a command such as `setpriv …` that
    /// runs the rest), with `args`, and wait until it answers.
    pub fn start_via(lab: &Lab, via: &[&str], args: &[&str]) -> Self {
        Self::start_in(lab, "dir", via, args)
    }

    /// Start the daemon in director namespace `role` (`dir`, or `dir2` of a
    /// pair) through `via`, with `args`, and wait until it answers.
    pub fn start_in(lab: &Lab, role: &str, via: &[&str], args: &[&str]) -> Self {
        Self::start_bin(lab, role, via, bin(), args)
    }

    /// Start the daemon binary `exe` (an installed one, say) as `start_in`.
    pub fn start_bin(lab: &Lab, role: &str, via: &[&str], exe: &str, args: &[&str]) -> Self {
        let tag = if role == "dir" {
            String::new()
        } else {
            format!("-{role}")
        };
        let socket = format!("/tmp/{}{tag}.sock", lab.name);
        let log = std::env::temp_dir().join(format!("{}{tag}.daemon.log", lab.name));
        let err = std::fs::File::create(&log).expect("daemon log file");
        let chosen = args.iter().any(|a| a.starts_with("--fast-path"));
        let fast: &[&str] = if fast_path_run() && !chosen {
            &["--fast-path", "on"]
        } else {
            &[]
        };
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.ns(role)])
            .args(via)
            .args([exe, "daemon", "--socket", &socket])
            .args(args)
            .args(fast)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start daemon");
        let d = Self {
            child: Some(child),
            socket,
            log,
        };
        let mut d = d;
        let ready = wait_for(Duration::from_secs(20), || {
            let exited = d
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            exited || d.cmd(&["-L", "-n"]).status.success()
        });
        let exited = d
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        assert!(!exited, "daemon exited at start; log:\n{}", d.log());
        assert!(ready, "daemon did not answer within 20 s; log:\n{}", d.log());
        d
    }

    /// Return the daemon's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `ferrovs ARGS` against this daemon.
    pub fn cmd(&self, args: &[&str]) -> Output {
        run(Command::new(bin()).args(args).env("FERROVS_SOCKET", &self.socket))
    }

    /// Run `ferrovs ARGS` and insist it succeeds; return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "ferrovs {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Return the process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Send `signal` and wait (bounded) for the process to exit; return
    /// whether it exited in time.
    pub fn stop_with(&mut self, signal: &str) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = run(Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]));
        let exited = wait_for(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        exited
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop_with("TERM");
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Poll `f` every 50 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `path` exists.
pub fn exists(path: &str) -> bool {
    Path::new(path).exists()
}

/// A bare network namespace for the host scripts (`scripts/NAME.sh`), with
/// its own state file in `state_var`; deleted on drop.
pub struct Netns {
    pub name: String,
    pub state: PathBuf,
    state_var: &'static str,
}

impl Netns {
    pub fn new(tag: &str, state_var: &'static str) -> Self {
        let name = format!("ferrovs-{tag}-{}", std::process::id());
        let _ = run(Command::new("ip").args(["netns", "del", &name]));
        assert!(
            run(Command::new("ip").args(["netns", "add", &name]))
                .status
                .success()
        );
        let state = std::env::temp_dir().join(format!("{name}.state"));
        let _ = std::fs::remove_file(&state);
        Self {
            name,
            state,
            state_var,
        }
    }

    /// Run `scripts/SCRIPT` with `args` in the namespace.
    pub fn script(&self, script: &str, args: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(root().join("scripts").join(script))
            .args(args)
            .env(self.state_var, &self.state))
    }

    /// Run a shell command in the namespace; return its stdout.
    pub fn sh(&self, cmd: &str) -> String {
        let out = run(Command::new("ip").args(["netns", "exec", &self.name, "sh", "-c", cmd]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
        let _ = std::fs::remove_file(&self.state);
    }
}

/// Upload `len` pseudo-random bytes from the client with socat to `to`
/// (socat's address: `TCP:ADDR:PORT` or `TCP6:[ADDR]:PORT`), where real
/// server `server` takes them on `port` (IPv6 with `v6`); wait up to 10 s
/// for every byte to arrive.
///
/// # Errors
/// What the client said, or that the bytes did not arrive intact.
pub fn upload(lab: &Lab, (server, port, v6): (&str, u16, bool), to: &str, len: usize) -> Result<(), String> {
    let dir = Scratch::new(&format!("upload-{server}-{port}"));
    let (sent, recv) = (dir.path("sent"), dir.path("recv"));
    random_file(&sent, len, u64::from(port));
    let listen = format!("TCP{}-LISTEN:{port},reuseaddr", if v6 { "6" } else { "" });
    let _sink = lab.spawn(
        server,
        &[
            "timeout",
            "30",
            "socat",
            "-u",
            &listen,
            &format!("OPEN:{recv},creat,trunc"),
        ],
    );
    listening(lab, server, port);
    let up = lab.exec(
        "client",
        &["timeout", "20", "socat", "-u", &format!("OPEN:{sent}"), to],
    );
    if !up.status.success() {
        return Err(format!("client: {}", text(&up)));
    }
    let same = || std::fs::read(&recv).is_ok_and(|r| r == std::fs::read(&sent).unwrap_or_default());
    if wait_for(Duration::from_secs(10), same) {
        Ok(())
    } else {
        Err("the upload did not arrive intact".into())
    }
}

/// Write `len` pseudo-random bytes (xorshift, different for each `seed`) to
/// `path`: payloads whose every byte an end-to-end test can compare.
pub fn random_file(path: &str, len: usize, seed: u64) {
    std::fs::write(path, testkit::Rng::new(seed | 1).bytes(len)).expect("random file");
}

/// A program running in a lab namespace, killed on drop (a namespace that
/// goes does not take its processes with it).
pub struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `name` counter of the `total:` line of `ferrovs --counters` output
/// (0 when it is not there: only non-zero counters are printed).
pub fn total_counter(counters: &str, name: &str) -> u64 {
    let total = counters
        .lines()
        .find(|l| l.starts_with("total:"))
        .unwrap_or_default();
    let words: Vec<&str> = total.split_whitespace().collect();
    let at = words.iter().position(|w| *w == name);
    at.and_then(|i| words.get(i + 1)?.parse().ok()).unwrap_or(0)
}

/// A command's stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A client in the lab holding one HTTP keep-alive connection to the VIP,
/// sending a request whenever asked; ended on drop.
pub struct KeepAlive {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl KeepAlive {
    pub fn open(lab: &Lab) -> Self {
        let py = format!(
            "import http.client, sys\n\
             c = http.client.HTTPConnection('{VIP}', 80, timeout=5)\n\
             for line in sys.stdin:\n\
             \x20   c.request('GET', '/')\n\
             \x20   print(c.getresponse().read().decode().strip(), flush=True)\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("client"), "python3", "-c", &py])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("client");
        let stdin = child.stdin.take();
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, stdin, stdout }
    }

    /// Send one request on the connection; return the answer's body.
    pub fn ask(&mut self) -> String {
        let stdin = self.stdin.as_mut().expect("stdin");
        std::io::Write::write_all(stdin, b"go\n").expect("ask");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.stdout, &mut line).expect("answer");
        line.trim().to_string()
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        // End of input ends the client; a stuck one is killed.
        drop(self.stdin.take());
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory of this test, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("ferrovs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch directory");
        Self(p)
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bpffs mounted for this test (on the host, so that the pins outlive
/// the daemon's own mount namespace), unmounted on drop.
pub struct Pins(Scratch);

impl Pins {
    pub fn new(tag: &str) -> Self {
        let s = Scratch::new(tag);
        let out = run(Command::new("mount").args(["-t", "bpf", "bpf", &s.path("")]));
        assert!(out.status.success(), "mount bpffs: {}", text(&out));
        Self(s)
    }

    pub fn dir(&self) -> String {
        self.0.path("")
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = run(Command::new("umount").arg(self.0.path("")));
    }
}

/// Wait until `role` listens on TCP `port`.
pub fn listening(lab: &Lab, role: &str, port: u16) {
    let up = wait_for(Duration::from_secs(10), || {
        let out = lab.exec(role, &["ss", "-Hltn", &format!("sport = :{port}")]);
        String::from_utf8_lossy(&out.stdout).contains("LISTEN")
    });
    assert!(up, "{role} does not listen on {port}");
}

/// `setpriv` arguments that run the rest as `who` (setpriv's `--reuid=…`
/// style words) with exactly the capabilities the systemd unit text `unit`
/// grants (AmbientCapabilities), as systemd would.
pub fn setpriv_as(who: &[&str], unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities=").map(str::to_owned))
        .expect("the unit grants ambient capabilities");
    let caps: Vec<String> = line
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let caps = caps.join(",");
    let mut args = vec!["setpriv".to_string()];
    args.extend(who.iter().map(|w| w.to_string()));
    args.extend([
        format!("--inh-caps=-all,{caps}"),
        format!("--ambient-caps={caps}"),
        format!("--bounding-set=-all,{caps}"),
        "--".to_string(),
    ]);
    args
}

/// nginx on `role`, one process, `server` its only `server { … }` block's
/// inside, its files under `dir`; listening on `port` before this returns,
/// stopped when the guard drops.
pub fn nginx(lab: &Lab, role: &str, dir: &Scratch, server: &str, port: u16) -> Bg {
    let conf = dir.path(&format!("{role}.nginx.conf"));
    let err = dir.path(&format!("{role}.err"));
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\nmaster_process off;\npid {pid};\nerror_log {err};\ndaemon off;\n\
             events {{ worker_connections 512; }}\n\
             http {{ access_log off;\n server {{ {server} }} }}\n",
            pid = dir.path(&format!("{role}.pid")),
        ),
    )
    .expect("nginx config");
    let bg = lab.spawn(role, &["nginx", "-e", &err, "-c", &conf]);
    listening(lab, role, port);
    bg
}

/// keepalived's sample configurations (the Debian package scripts/deps.sh
/// installs ships 25), sorted.
#[allow(dead_code, reason = "not every test binary uses every helper")]
pub fn keepalived_samples() -> Vec<PathBuf> {
    let mut samples: Vec<PathBuf> = std::fs::read_dir("/usr/share/doc/keepalived/samples")
        .expect("keepalived's samples (scripts/deps.sh installs keepalived)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("keepalived.conf."))
        })
        .collect();
    samples.sort();
    assert_eq!(samples.len(), 25, "{samples:?}");
    samples
}

/// The Prometheus text of the daemon of `lab`'s director serving
/// `--metrics 127.0.0.1:9410`.
#[allow(dead_code, reason = "not every test binary uses every helper")]
pub fn scrape(lab: &Lab) -> String {
    let out = lab.exec("dir", &["curl", "-s", "-m", "5", "http://127.0.0.1:9410/metrics"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
