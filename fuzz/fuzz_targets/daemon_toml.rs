//! The daemon's TOML file: an error or settings, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = config::daemon::DaemonConf::parse("fuzz.toml", &text);
});
