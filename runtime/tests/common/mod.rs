//! Shared helpers: where the compiled plugins and the repository are.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A plugin component built by the test command (`./test.sh`).
pub fn wasm(crate_name: &str) -> PathBuf {
    let file = crate_name.replace('-', "_");
    let p = repo().join(format!("target/wasm32-wasip2/plugin/{file}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: build the plugins first (./test.sh does)",
        p.display()
    );
    p
}
pub mod fhir_server;
pub mod run;

/// Runs curl (a real third-party client) with `args`; its status code and
/// body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}
