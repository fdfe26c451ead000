//! A keepalived.conf: an error naming its line, or a configuration, never a
//! panic. Includes point at a directory with nothing in it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = config::keepalived::parse_text("fuzz.conf", &text, std::path::Path::new("/nonexistent-fuzz-dir"));
});
