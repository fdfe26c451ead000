//! `-R` text: all or nothing, and what it accepts saves to text that
//! restores to the same save (`-S | -C | -R`).
#![no_main]

use config::{Names, Rules, render_save};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(rules) = Rules::from_commands("fuzz", &text) else {
        return;
    };
    let saved = render_save(&rules, true, &Names::default());
    let again = Rules::from_commands("saved", &saved).expect("a save restores");
    assert_eq!(render_save(&again, true, &Names::default()), saved);
});
