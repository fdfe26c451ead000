//! A keepalived.conf and the files it may include, from memory: an error
//! naming its line, or a configuration whose rules save to text that
//! restores to the same save; never a panic.
//!
//! The input is up to five files separated by NUL bytes: the main file,
//! then `a.conf`, `conf.d/b.conf`, `conf.d/c.conf` and `conf.d/sub/d.conf`
//! beside it, so `include` (with patterns, `..` and nesting) reads them.
#![no_main]

use config::keepalived::{MemFiles, parse_files};
use config::{Names, Rules, render_save};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const DIR: &str = "/etc/keepalived";
const INCLUDED: [&str; 4] = ["a.conf", "conf.d/b.conf", "conf.d/c.conf", "conf.d/sub/d.conf"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let main = parts.next().unwrap_or("");
    let mut files = MemFiles::default();
    for (name, body) in INCLUDED.iter().zip(parts) {
        files.insert(Path::new(DIR).join(name), body);
    }
    let Ok(k) = parse_files("keepalived.conf", main, Path::new(DIR), &files) else {
        return;
    };
    let saved = render_save(&k.rules, true, &Names::default());
    let again = Rules::from_commands("saved", &saved).expect("a keepalived configuration's save restores");
    assert_eq!(render_save(&again, true, &Names::default()), saved);
});
