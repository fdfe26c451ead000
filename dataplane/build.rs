//! Compile the XDP steering program for the BPF target with clang.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    compile("steer");
    // The benchmark's programs, only for the bench crate (feature `bench`).
    if env::var_os("CARGO_FEATURE_BENCH").is_some() {
        compile("bench");
    }
}

/// Compile `src/xdp/NAME.bpf.c` to `$OUT_DIR/NAME.bpf.o`.
fn compile(name: &str) {
    let src = format!("src/xdp/{name}.bpf.c");
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=src/xdp/fast.bpf.h");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join(format!("{name}.bpf.o"));
    // Without the multiarch include directory clang for BPF cannot find
    // <asm/types.h> on Debian.
    let multiarch = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "x86_64-linux-gnu".into());
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", &src, "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {clang} (install clang and libbpf-dev: scripts/deps.sh): {e}")
        });
    assert!(status.success(), "{clang} failed to compile {src}");
}
