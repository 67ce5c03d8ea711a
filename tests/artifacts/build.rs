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
//!
//! Then it signs the shipped plugins as `./scripts/run.sh` does: copies
//! under `target/signed/`, signed with the local build's project key
//! (`target/plugin-key/weft-project.key`, made on the first build; its
//! trust list entry `weft-project.pub` beside it is the embedded default's
//! trust list). Signing is deterministic, so both produce the same files.

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
    for watched in [
        "plugins",
        "tests/plugins",
        "sdk",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let all: Vec<&str> = SHIPPED.iter().chain(TEST_ONLY).copied().collect();
    let built = build(&workspace, &all);
    for name in &all {
        if !built.iter().any(|(n, _)| n == name) {
            fail(&format!("cargo named no component for {name}"));
        }
    }

    let (signed, trust_list) = sign_shipped(&built);

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
    code.push_str(
        "/// The shipped plugins, signed: (crate name, path).\nconst SIGNED: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &signed {
        code.push_str(&format!(
            "    ({name:?}, {:?}),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    code.push_str(&format!(
        "/// The project key's trust list entry.\nconst PROJECT_TRUST_LIST: &str = {:?};\n",
        trust_list.display().to_string()
    ));
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("artifacts.rs");
    if let Err(e) = std::fs::write(&out, code) {
        fail(&format!("writing {}: {e}", out.display()));
    }
}

/// The project key's name in the default trust list.
const PROJECT_KEY: &str = "weft-project";

/// Signs each shipped component into `target/signed/` with the local
/// project key, made if there is none yet; returns (crate name, signed
/// path), and the key's trust list entry.
fn sign_shipped(built: &[(String, PathBuf)]) -> (Vec<(String, PathBuf)>, PathBuf) {
    let Some((_, any)) = built.first() else {
        fail("no components to sign");
    };
    // target/wasm32-wasip2/plugin/x.wasm -> target
    let Some(target) = any.parent().and_then(Path::parent).and_then(Path::parent) else {
        fail(&format!("{}: not under a target directory", any.display()));
    };
    let key_dir = target.join("plugin-key");
    let (name, secret) = project_key(&key_dir);
    let out_dir = target.join("signed");
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        fail(&format!("creating {}: {e}", out_dir.display()));
    }
    let mut signed = Vec::new();
    for (crate_name, path) in built.iter().filter(|(n, _)| SHIPPED.contains(&n.as_str())) {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        let bytes = weft_signature::sign(&bytes, &name, &secret)
            .unwrap_or_else(|e| fail(&format!("signing {}: {e}", path.display())));
        let Some(file) = path.file_name() else {
            fail(&format!("{}: no file name", path.display()));
        };
        let dest = out_dir.join(file);
        replace(&dest, &bytes);
        signed.push((crate_name.clone(), dest));
    }
    (signed, key_dir.join(format!("{PROJECT_KEY}.pub")))
}

/// Reads `DIR/weft-project.key`, or makes it (0600) when there is none;
/// (re)writes its trust list entry `DIR/weft-project.pub`.
fn project_key(dir: &Path) -> (String, [u8; 32]) {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let key = dir.join(format!("{PROJECT_KEY}.key"));
    // A deleted or replaced key: sign again.
    println!("cargo:rerun-if-changed={}", key.display());
    if !key.exists() {
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            fail(&format!("creating {}: {e}", dir.display()));
        }
        let secret = weft_signature::keyfile::generate_secret().unwrap_or_else(|e| fail(&e));
        let text = weft_signature::keyfile::secret_text(PROJECT_KEY, &secret);
        // create_new: a build running beside this one may have made it
        // first; then that key is the one.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key)
        {
            Ok(mut f) => {
                if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()) {
                    fail(&format!("writing {}: {e}", key.display()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => fail(&format!("creating {}: {e}", key.display())),
        }
    }
    let text = std::fs::read_to_string(&key)
        .unwrap_or_else(|e| fail(&format!("reading {}: {e}", key.display())));
    let (name, secret) = weft_signature::keyfile::parse_secret(&text)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", key.display())));
    let public = weft_signature::public_key(&secret);
    let entry = weft_signature::keyfile::trust_entry(&name, &public);
    replace(&dir.join(format!("{PROJECT_KEY}.pub")), entry.as_bytes());
    (name, secret)
}

/// Writes `path` whole, by a rename, unless it already holds `bytes`
/// (a running test or `weft run` may be reading it).
fn replace(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)) {
        fail(&format!("writing {}: {e}", path.display()));
    }
}

/// Builds `packages` and returns each one's component: (package name,
/// path of its `.wasm`).
fn build(workspace: &Path, packages: &[&str]) -> Vec<(String, PathBuf)> {
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
