//! Builds every plugin crate into a WebAssembly component with the same
//! command `./scripts/run.sh` uses (`cargo build --locked --target
//! wasm32-wasip2 --profile plugin`), so the components land where the
//! embedded default `weft.toml` looks for them, and writes their paths,
//! read from cargo's own JSON messages, into `OUT_DIR/artifacts.rs`.
//!
//! The inner cargo shares the outer one's target directory: the outer build
//! holds the lock of its host profile (`target/debug` or `target/release`),
//! the inner one those of `target/wasm32-wasip2/plugin` and `target/plugin`,
//! so neither waits for the other, and nothing is built twice.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

// SHIPPED and TEST_ONLY, shared with the library.
include!("src/plugins.rs");

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest
        .parent()
        .and_then(Path::parent)
        .expect("tests/artifacts sits two levels below the workspace root")
        .to_path_buf();
    for watched in ["plugins", "tests/plugins", "sdk", "wit", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    // The variant first: the normal build then puts site_normalize.wasm back.
    let variant = build(&workspace, &["site-normalize"], Some("test-variant"));
    let Some((_, variant)) = variant.iter().find(|(name, _)| name == "site-normalize") else {
        fail("cargo named no component for site-normalize --features test-variant");
    };
    let variant_path = variant.with_file_name("site_normalize_variant.wasm");
    if let Err(e) = std::fs::copy(variant, &variant_path) {
        fail(&format!(
            "copying the test variant to {}: {e}",
            variant_path.display()
        ));
    }
    let all: Vec<&str> = SHIPPED.iter().chain(TEST_ONLY).copied().collect();
    let built = build(&workspace, &all, None);
    for name in &all {
        if !built.iter().any(|(n, _)| n == name) {
            fail(&format!("cargo named no component for {name}"));
        }
    }

    let mut code = String::from(
        "/// Every component built: (crate name, path).\nconst COMPONENTS: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &built {
        code.push_str(&format!(
            "    ({name:?}, {:?}),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    code.push_str(&format!(
        "/// site-normalize with its `test-variant` feature.\nconst SITE_NORMALIZE_VARIANT: &str = {:?};\n",
        variant_path.display().to_string()
    ));
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("artifacts.rs");
    if let Err(e) = std::fs::write(&out, code) {
        fail(&format!("writing {}: {e}", out.display()));
    }
}

/// Builds `packages` (with `feature`) and returns each one's component:
/// (package name, path of its `.wasm`).
fn build(workspace: &Path, packages: &[&str], feature: Option<&str>) -> Vec<(String, PathBuf)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "plugin",
        ])
        .args(["--message-format", "json-render-diagnostics"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    if let Some(f) = feature {
        cmd.args(["--features", f]);
    }
    // The outer build's settings are for the host: the plugins are built
    // as `./scripts/run.sh` builds them (and not through clippy when the
    // outer command is `cargo clippy`).
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo: {e}")));
    if !output.status.success() {
        fail(&format!(
            "building the plugins failed ({}); is the target installed? `rustup target add wasm32-wasip2`",
            output.status
        ));
    }
    let mut built = Vec::new();
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let name = msg["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .replace('_', "-");
        let package = packages
            .iter()
            .find(|p| **p == name || p.replace('_', "-") == name);
        let wasm = msg["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let (Some(package), Some(wasm)) = (package, wasm) {
            built.push((package.to_string(), PathBuf::from(wasm)));
        }
    }
    built
}

fn fail(why: &str) -> ! {
    eprintln!("error: weft-test-artifacts: {why}");
    std::process::exit(1);
}
