//! Every input channel bounded, against a running director: a client of
//! the control socket that connects and sends nothing, a 10 MiB request,
//! 200 concurrent `-L -n`, a metrics scraper that trickles its request one
//! byte at a time. Through all of it the director forwards and answers
//! everyone else.

mod lab;

use lab::{Daemon, Lab, RS1, VIP, text};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Send `req` (NUL-separated words) on the control socket; the reply.
fn ask(socket: &str, req: &[u8]) -> String {
    let mut s = UnixStream::connect(socket).expect("control socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    // The daemon stops reading a request past its limit and answers.
    let _ = s.write_all(req);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply
}

#[test]
fn stuck_huge_many_and_slow_clients_leave_the_director_working() {
    let lab = Lab::up();
    let d = Daemon::start_with(&lab, &["-i", "eth0", "--metrics", "127.0.0.1:9410"]);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
    // Connects and sends nothing, for longer than any answer below takes.
    let stuck = UnixStream::connect(&d.socket).expect("control socket");
    // One byte every 0.4 s, never the end of the head: how long until the
    // daemon cuts it off.
    let trickle = "import socket, time\ns = socket.create_connection(('127.0.0.1', 9410))\n\
                   t = time.time()\ndef closed():\n    try:\n        return s.recv(1, socket.MSG_DONTWAIT) == b''\n\
                   \x20   except BlockingIOError:\n        return False\n\
                   try:\n    for b in b'GET /metrics HTTP/1.0 ' * 10:\n\
                   \x20       s.send(bytes([b])); time.sleep(0.4)\n        if closed(): break\n\
                   except OSError:\n    pass\nprint(round(time.time() - t, 1))\n";
    std::thread::scope(|s| {
        let slow = s.spawn(|| lab.exec("dir", &["timeout", "60", "python3", "-c", trickle]));
        std::thread::sleep(Duration::from_millis(300));
        everyone_else_is_served(&lab, &d);
        let cut_after: f64 = text(&slow.join().expect("scraper"))
            .trim()
            .parse()
            .unwrap_or(f64::MAX);
        assert!(cut_after <= 3.0, "the trickling scraper was held {cut_after} s");
    });
    drop(stuck);
}

/// With a stuck and a trickling client there: a listing at once, a 10 MiB
/// request refused, 200 at once answered, a scrape, forwarding.
fn everyone_else_is_served(lab: &Lab, d: &Daemon) {
    let t = Instant::now();
    let list = d.ok(&["-L", "-n"]);
    assert!(
        list.contains(RS1) && t.elapsed() < Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );

    let huge = vec![b'x'; 10 << 20];
    let reply = ask(&d.socket, &huge);
    assert!(
        reply.starts_with("error\n") && reply.contains("request over"),
        "{reply}"
    );

    let answers: Vec<String> = std::thread::scope(|s| {
        let askers: Vec<_> = (0..200)
            .map(|_| s.spawn(|| ask(&d.socket, b"-L\0-n\0")))
            .collect();
        askers.into_iter().map(|a| a.join().expect("asker")).collect()
    });
    let ok = answers
        .iter()
        .filter(|r| r.starts_with("ok\n") && r.contains(RS1))
        .count();
    assert_eq!(ok, 200, "{:?}", answers.iter().find(|r| !r.starts_with("ok\n")));

    // Another scraper is answered while the slow one trickles or after it
    // is cut off.
    let scrape = lab.exec("dir", &["curl", "-s", "-m", "5", "http://127.0.0.1:9410/metrics"]);
    assert!(text(&scrape).contains("ferrovs_"), "{}", text(&scrape));
    assert_eq!(
        lab.http_answers(&format!("http://{VIP}/"), 2),
        ["server1", "server1"]
    );
}
