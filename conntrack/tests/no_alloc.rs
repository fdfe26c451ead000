//! The table never allocates after it is made, however it churns.

use conntrack::{Conn, ConnTable, FlowKey};

fn key(i: u32) -> FlowKey {
    FlowKey {
        proto: 6,
        cip: 0x0a00_0000 | (i >> 16),
        cport: i as u16,
        vip: 0x0a00_0064,
        vport: 80,
    }
}

#[test]
fn full_table_churn_allocates_nothing() {
    const CAP: u32 = 1000;
    let mut t = ConnTable::with_capacity(CAP as usize);
    let mut swept = 0;
    let info = allocation_counter::measure(|| {
        for i in 0..CAP {
            t.insert(
                key(i),
                None,
                Conn {
                    expires: 10,
                    ..Conn::default()
                },
            )
            .unwrap();
        }
        // Remove the oldest, insert a new one, many times over: the pattern
        // that leaves deleted markers in an open-addressing table.
        for i in CAP..CAP * 200 {
            assert!(t.remove(&key(i - CAP)).is_some());
            t.insert(
                key(i),
                None,
                Conn {
                    expires: i,
                    ..Conn::default()
                },
            )
            .unwrap();
            assert!(
                t.insert(key(u32::MAX - i), None, Conn::default()).is_err(),
                "over capacity"
            );
        }
        // A full turn: one look per slot (capacity and a half) plus one
        // more per removal (the slot is looked at again after its shift).
        t.sweep(u32::MAX / 2, 3 * CAP as usize, |_, _| swept += 1);
    });
    assert_eq!(info.count_total, 0, "the table allocated");
    assert_eq!(swept, CAP);
}
