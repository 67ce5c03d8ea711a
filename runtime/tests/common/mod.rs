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
