//! One ipvsadm command line, words as the shell splits them: an error or a
//! command, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<&str> = text.split_whitespace().collect();
    if let Ok(cmd) = config::ipvsadm::parse(&words) {
        let mut rules = config::Rules::default();
        let _ = rules.apply(&cmd);
    }
});
