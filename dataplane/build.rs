//! Compile the XDP programs for the BPF target with clang, and generate the
//! Rust side of what they share with the daemon (`src/xdp/layout.h`) with
//! bindgen.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let include = multiarch_include();
    layout(&include);
    compile("steer", &include);
    // The benchmark's programs, only for the bench crate (feature `bench`).
    if env::var_os("CARGO_FEATURE_BENCH").is_some() {
        compile("bench", &include);
    }
}

fn out_dir() -> PathBuf {
    PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
}

/// `-I/usr/include/<multiarch>`: without it clang for BPF cannot find
/// <asm/types.h> on Debian.
fn multiarch_include() -> String {
    let multiarch = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "x86_64-linux-gnu".into());
    format!("-I/usr/include/{multiarch}")
}

/// `$OUT_DIR/layout.rs` from `src/xdp/layout.h`, laid out as clang lays it
/// out for the BPF target; bindgen asserts each field's offset and each
/// struct's size against rustc's layout at compile time.
fn layout(include: &str) {
    println!("cargo:rerun-if-changed=src/xdp/layout.h");
    let types = [
        "svc_key",
        "svc6_key",
        "addr6",
        "flow_key",
        "flow_val",
        "flow6_key",
        "flow6_val",
        "punt_counts",
        "gen_cfg",
    ];
    let mut b = bindgen::Builder::default()
        .header("src/xdp/layout.h")
        .clang_args(["-target", "bpf", include])
        .allowlist_var("MAX_.*|FAST_.*|PUNT_.*|PARTIAL_DONE|HEAD_MAX|SERVER_ISN_XOR|SINK_.*|LAT_.*")
        .derive_default(true)
        .derive_hash(true)
        .derive_eq(true)
        .layout_tests(true);
    for t in types {
        b = b.allowlist_type(t);
    }
    let out = out_dir().join("layout.rs");
    b.generate()
        .unwrap_or_else(|e| panic!("bindgen over src/xdp/layout.h (install clang: scripts/deps.sh): {e}"))
        .write_to_file(&out)
        .unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}

/// Compile `src/xdp/NAME.bpf.c` to `$OUT_DIR/NAME.bpf.o`.
fn compile(name: &str, include: &str) {
    let src = format!("src/xdp/{name}.bpf.c");
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=src/xdp/fast.bpf.h");
    let out = out_dir().join(format!("{name}.bpf.o"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", include])
        .args(["-c", &src, "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {clang} (install clang and libbpf-dev: scripts/deps.sh): {e}")
        });
    assert!(status.success(), "{clang} failed to compile {src}");
}
