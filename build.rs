//! Build facts for `ferrovs --version` and `ferrovs_build_info`: the git
//! commit the binary was built from (`FERROVS_COMMIT` overrides it, as a
//! package build from a tarball without `.git` sets it; "unknown" where
//! neither says).

fn main() {
    println!("cargo:rerun-if-env-changed=FERROVS_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    let commit = std::env::var("FERROVS_COMMIT").ok().or_else(|| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=FERROVS_COMMIT={}",
        // A label value and a word on the command line: keep it one.
        commit
            .map(|c| c
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect::<String>())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
}
