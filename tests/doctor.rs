//! `ferrovs doctor` on a live lab: it sees veth's copy-only AF_XDP, the
//! queue count the lab gave, and a running director's XDP program.

mod lab;

use std::process::Output;

use lab::{Daemon, Lab, bin};

fn doctor(lab: &Lab, queues: &str) -> (String, bool) {
    let out: Output = lab.exec(
        "dir",
        &[bin(), "doctor", "--interface", "eth0", "--queues", queues],
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

#[test]
fn doctor_reports_copy_mode_queues_and_an_attached_program() {
    let lab = Lab::up_with("dr", 2);
    let (report, _) = doctor(&lab, "2");
    assert!(report.contains("eth0: virtual device"), "{report}");
    assert!(report.contains("eth0: 2 queue(s), one per worker"), "{report}");
    assert!(!report.contains("another XDP program"), "{report}");

    // The deployment may come from the daemon's file instead of flags.
    let conf = std::env::temp_dir().join(format!("{}.doctor.toml", lab.name));
    std::fs::write(&conf, "interfaces = [\"eth0\"]\nqueues = 1\n").unwrap();
    let out = lab.exec("dir", &[bin(), "doctor", "--config", conf.to_str().unwrap()]);
    let _ = std::fs::remove_file(&conf);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        report.contains("eth0: 2 receive queues but 1 worker(s)"),
        "{report}"
    );

    let _d = Daemon::start(&lab);
    let (report, ok) = doctor(&lab, "2");
    assert!(
        report.contains("FAIL eth0: another XDP program is attached"),
        "{report}"
    );
    assert!(!ok, "a blocking finding must fail the run");
}
