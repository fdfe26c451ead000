//! Elections and timers against keepalived's figures (priority 100 at 1 s:
//! skew 0.609 s, master down 3.609 s; priority 150: 0.414 s, 3.414 s).

use super::*;

const ME: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);

fn params(version: Version, priority: u8) -> Params {
    Params {
        version,
        priority,
        interval_cs: 100,
        start_master: false,
        preempt: true,
        preempt_delay: Duration::ZERO,
        down_adverts: 3,
        addr: ME,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Milliseconds from `t0` to the instance's deadline (rounded down).
fn due(i: &Instance, t0: Instant) -> Option<u128> {
    i.deadline().map(|d| (d - t0).as_millis())
}

fn transitions(actions: &[Action]) -> Vec<State> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transition { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

#[test]
fn timers_are_keepalived_s() {
    let i = Instance::new(params(Version::V2, 100));
    assert_eq!((i.skew().as_millis(), i.master_down().as_millis()), (609, 3609));
    let i = Instance::new(params(Version::V2, 150));
    assert_eq!((i.skew().as_millis(), i.master_down().as_millis()), (414, 3414));
    // v2's skew ignores the interval; v3's scales with it.
    let slow = |v| {
        Instance::new(Params {
            interval_cs: 300,
            ..params(v, 100)
        })
        .skew()
        .as_millis()
    };
    assert_eq!((slow(Version::V2), slow(Version::V3)), (609, 1828));
}

#[test]
fn a_lone_backup_becomes_master_after_master_down() {
    let t0 = Instant::now();
    let mut i = Instance::new(Params {
        start_master: true,
        ..params(Version::V2, 150)
    });
    assert_eq!(
        transitions(&i.start(t0)),
        [State::Backup],
        "waits even with state MASTER"
    );
    assert_eq!(due(&i, t0), Some(3414));
    assert!(i.on_timer(t0 + ms(3414)).is_empty());
    let a = i.on_timer(t0 + ms(3415));
    assert_eq!(a[0], Action::Advertise(150), "the advert goes first");
    assert_eq!(transitions(&a), [State::Master]);
    assert_eq!(due(&i, t0), Some(4415));
    assert_eq!(i.on_timer(t0 + ms(4415)), [Action::Advertise(150)]);
}

#[test]
fn an_owner_asked_to_be_master_is_at_once() {
    let t0 = Instant::now();
    let mut i = Instance::new(Params {
        start_master: true,
        ..params(Version::V2, 255)
    });
    assert_eq!(transitions(&i.start(t0)), [State::Master]);
}

#[test]
fn adverts_keep_a_backup_and_priority_zero_hands_over_after_the_skew() {
    let t0 = Instant::now();
    let mut i = Instance::new(params(Version::V2, 100));
    i.start(t0);
    for s in 1..10 {
        assert!(i.on_advert(t0 + ms(s * 1000), PEER, 150, 100).is_empty());
    }
    assert_eq!(i.master(), Some((PEER, 150)));
    assert_eq!(due(&i, t0), Some(9000 + 3609));
    i.on_advert(t0 + ms(9500), PEER, 0, 100);
    assert_eq!(due(&i, t0), Some(9500 + 609));
    let a = i.on_timer(t0 + ms(10_110));
    assert!(matches!(
        a[1],
        Action::Transition {
            to: State::Master,
            why: Why::MasterStopped,
            ..
        }
    ));
}

#[test]
fn a_backup_preempts_a_lower_master_unless_nopreempt() {
    let t0 = Instant::now();
    let mut pre = Instance::new(params(Version::V2, 150));
    let mut nopre = Instance::new(Params {
        preempt: false,
        ..params(Version::V2, 150)
    });
    pre.start(t0);
    nopre.start(t0);
    for s in 1..=5 {
        pre.on_advert(t0 + ms(s * 1000), PEER, 100, 100);
        nopre.on_advert(t0 + ms(s * 1000), PEER, 100, 100);
    }
    // The preempting one ignored the lower adverts: its timer from start ran out.
    assert_eq!(transitions(&pre.on_timer(t0 + ms(5000))), [State::Master]);
    assert!(nopre.on_timer(t0 + ms(5000)).is_empty());
    assert_eq!(nopre.state(), State::Backup);
}

#[test]
fn preempt_delay_holds_off_preemption() {
    let t0 = Instant::now();
    let mut i = Instance::new(Params {
        preempt_delay: Duration::from_secs(10),
        ..params(Version::V2, 150)
    });
    i.start(t0);
    for s in 1..=12 {
        i.on_advert(t0 + ms(s * 1000), PEER, 100, 100);
        assert_eq!(i.on_timer(t0 + ms(s * 1000)), [], "second {s}");
    }
    // Past the delay the lower adverts stop counting; 3.4 s later it takes over.
    assert_eq!(transitions(&i.on_timer(t0 + ms(10_000 + 3415))), [State::Master]);
}

#[test]
fn a_master_yields_to_higher_priority_and_to_a_higher_address_at_equal() {
    let t0 = Instant::now();
    let mut i = Instance::new(Params {
        start_master: true,
        ..params(Version::V2, 255)
    });
    i.start(t0);
    // Equal priority from a lower address: it stays, re-advertising; the
    // split brain is logged once.
    let a = i.on_advert(t0 + ms(100), Ipv4Addr::new(10, 77, 0, 1), 255, 100);
    assert_eq!(
        a[0],
        Action::SplitBrain {
            from: Ipv4Addr::new(10, 77, 0, 1),
            priority: 255
        }
    );
    assert_eq!(a[1], Action::Advertise(255));
    let a = i.on_advert(t0 + ms(200), Ipv4Addr::new(10, 77, 0, 1), 255, 100);
    assert_eq!(a, [Action::Advertise(255)], "logged once");
    // Equal priority from a higher address wins.
    let a = i.on_advert(t0 + ms(300), PEER, 255, 100);
    assert_eq!(transitions(&a), [State::Backup]);
    // A lower master makes a master re-advertise (new election).
    let mut m = Instance::new(Params {
        start_master: true,
        ..params(Version::V2, 255)
    });
    m.start(t0);
    assert_eq!(
        m.on_advert(t0 + ms(100), PEER, 100, 100),
        [Action::Advertise(255)]
    );
}

#[test]
fn v3_backups_adopt_the_masters_interval() {
    let t0 = Instant::now();
    let mut i = Instance::new(params(Version::V3, 100));
    i.start(t0);
    i.on_advert(t0 + ms(100), PEER, 200, 50);
    assert_eq!(i.interval_cs(), 50);
    // 3 × 0.5 s + (256 − 100) × 0.5 / 256 s.
    assert_eq!(due(&i, t0), Some(100 + 1500 + 304));
}

#[test]
fn a_fault_releases_with_priority_zero_and_recovery_starts_as_backup() {
    let t0 = Instant::now();
    let mut i = Instance::new(Params {
        start_master: true,
        ..params(Version::V2, 255)
    });
    i.start(t0);
    let a = i.set_fault(t0 + ms(10), true);
    assert_eq!(a[0], Action::Advertise(PRIO_STOP));
    assert_eq!(transitions(&a), [State::Fault]);
    assert!(
        i.on_advert(t0 + ms(20), PEER, 100, 100).is_empty(),
        "a fault ignores adverts"
    );
    assert_eq!(i.deadline(), None, "and sends nothing");
    assert_eq!(transitions(&i.set_fault(t0 + ms(30), false)), [State::Backup]);
}

#[test]
fn tracker_weights_move_priority_within_1_to_254_and_never_an_owner() {
    let t0 = Instant::now();
    let mut i = Instance::new(params(Version::V2, 100));
    i.start(t0);
    i.set_effective_priority(t0, 100 - 150);
    assert_eq!(i.effective_priority(), 1);
    i.set_effective_priority(t0, 100 + 300);
    assert_eq!(i.effective_priority(), 254);
    let mut owner = Instance::new(params(Version::V2, 255));
    owner.set_effective_priority(t0, 100);
    assert_eq!(owner.effective_priority(), 255);
}

#[test]
fn a_stopping_master_sends_priority_zero() {
    let t0 = Instant::now();
    let mut i = Instance::new(Params {
        start_master: true,
        ..params(Version::V2, 255)
    });
    i.start(t0);
    let a = i.stop(t0 + ms(5));
    assert_eq!(a[0], Action::Advertise(PRIO_STOP));
    assert_eq!(transitions(&a), [State::Stop]);
}

#[test]
fn a_reloaded_priority_applies_without_a_transition() {
    let t0 = Instant::now();
    let mut i = Instance::new(Params {
        start_master: true,
        ..params(Version::V2, 255)
    });
    i.start(t0);
    assert_eq!(i.set_priority(t0 + ms(5), 120, 0), [Action::Advertise(120)]);
    assert_eq!((i.state(), i.effective_priority()), (State::Master, 120));
    assert_eq!(
        i.set_priority(t0 + ms(6), 255, -20),
        [],
        "an owner is 255 whatever trackers say"
    );
    assert_eq!(i.effective_priority(), 255);
}
