//! A sync message (v0 or v1): dropped with a reason, or entries (each
//! counted or skipped), never a panic; what decodes encodes again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let syncid = data.first().copied().unwrap_or(0);
    for id in [0, syncid] {
        if let Ok(items) = connsync::decode(data, id) {
            let mut enc = connsync::Encoder::new(id, 1500);
            for item in items {
                if let connsync::Item::Entry(e) = item {
                    let _ = enc.push(&e);
                }
            }
            let _ = enc.flush();
        }
    }
});
