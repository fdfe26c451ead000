//! The control socket's frames, as the daemon reads a client's bytes: the
//! words come back from their own encoding, a request the daemon takes
//! parses again from the words its client would send, and any reply text
//! survives its frame. An error or a request, never a panic.
#![no_main]

use config::request::{Request, decode, encode, parse_reply, reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    for r in [Ok(text.clone()), Err(text)] {
        let framed = String::from_utf8(reply(&r)).expect("a reply is UTF-8");
        assert_eq!(parse_reply(&framed), Some(r));
    }
    let Ok(words) = decode(data.to_vec()) else {
        return;
    };
    assert_eq!(decode(encode(&words)).as_ref(), Ok(&words));
    let Ok(req) = Request::from_wire(words.clone()) else {
        return;
    };
    // The client's command line is the words less a restore's text.
    let args = match req {
        Request::Restore { .. } => &words[..words.len() - 1],
        _ => &words[..],
    };
    assert_eq!(Request::from_wire(req.to_wire(args)).as_ref(), Ok(&req));
});
