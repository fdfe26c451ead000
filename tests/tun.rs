//! LVS-TUN end to end: the director wraps client packets in IP-in-IP to the
//! real servers, whose decapsulating helper (this kernel has no ipip module)
//! hands the inner packet to their stack; the answer goes straight to the
//! client.

mod lab;

use lab::{Daemon, Lab, RS1, RS2, VIP};

#[test]
fn http_through_the_tunnel_answers_from_the_real_servers() {
    let lab = Lab::up_kind("tun");
    let d = Daemon::start(&lab);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    for rs in [RS1, RS2] {
        d.ok(&["-a", "-t", &svc, "-r", &format!("{rs}:80"), "-i"]);
    }
    assert!(d.ok(&["-L", "-n"]).contains("Tunnel"));
    let answers = lab.http_answers(&format!("http://{VIP}/"), 4);
    assert_eq!(
        answers,
        ["server1", "server2", "server1", "server2"],
        "{}",
        d.log()
    );
}

#[test]
fn df_packet_over_the_mtu_gets_fragmentation_needed_with_mtu_less_20() {
    let lab = Lab::up_kind("tun");
    let d = Daemon::start(&lab);
    let svc = format!("{VIP}:53");
    d.ok(&["-A", "-u", &svc, "-s", "rr"]);
    d.ok(&["-a", "-u", &svc, "-r", &format!("{RS1}:53"), "-i"]);
    // 1472 bytes of UDP make a 1500-byte packet: 1520 once encapsulated, over
    // the 1500 MTU. With DF set (IP_PMTUDISC_DO) the director must answer
    // "fragmentation needed, next-hop MTU 1480", which the client's kernel
    // records as the path MTU to the VIP (IP_MTU).
    let py = format!(
        "import socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.IPPROTO_IP, 10, 2)\n\
         s.connect(('{VIP}', 53))\n\
         s.send(b'x' * 1472)\n\
         for _ in range(50):\n\
         \x20   mtu = s.getsockopt(socket.IPPROTO_IP, 14)\n\
         \x20   if mtu != 1500:\n\
         \x20       break\n\
         \x20   time.sleep(0.1)\n\
         print(mtu)\n"
    );
    let out = lab.exec("client", &["python3", "-c", &py]);
    let mtu = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        mtu,
        "1480",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    // Small datagrams still go through the tunnel and get their answer.
    assert_eq!(lab.udp_ask(42000), "server1");
}
