//! A sync message (v0 or v1): dropped with a reason, or entries (each
//! counted or skipped), never a panic; what decodes encodes again (as v1,
//! in as many messages as the master's payload size needs) and decodes
//! to the same entries (less the hashed flag, which a sender clears).
#![no_main]

use connsync::{Encoder, Entry, Item, decode, flags};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let syncid = data.first().copied().unwrap_or(0);
    for id in [0, syncid] {
        let Ok(items) = decode(data, id) else {
            continue;
        };
        let entries: Vec<_> = items
            .into_iter()
            .filter_map(|i| match i {
                // The kernel never sends its hashed bit, nor do we.
                Item::Entry(e) => Some(Entry {
                    flags: e.flags & !flags::HASHED,
                    ..e
                }),
                _ => None,
            })
            .collect();
        let mut enc = Encoder::new(id, 1500);
        let mut messages: Vec<Vec<u8>> = entries.iter().filter_map(|e| enc.push(e)).collect();
        messages.extend(enc.flush());
        let mut again = Vec::new();
        for m in &messages {
            for item in decode(m, id).expect("a message we send is taken") {
                match item {
                    Item::Entry(e) => again.push(e),
                    other => panic!("an entry we send is {other:?}"),
                }
            }
        }
        assert_eq!(again, entries);
    }
});
