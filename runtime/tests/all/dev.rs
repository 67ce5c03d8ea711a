//! `weft dev` on a crate `weft new` made: it starts a `weft run`, builds
//! and loads the plugin, and on each save rebuilds, runs the golden cases,
//! shows what the first case's output changed, and reloads only a build
//! whose cases pass; Ctrl-C stops it and the weft run it started.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::fhir_server::free_addr;

/// Waits until the output holds `want` after byte `from`; returns where
/// it ends.
fn wait_for(out: &Mutex<String>, from: usize, want: &str, secs: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        {
            let text = out.lock().unwrap();
            if let Some(at) = text[from.min(text.len())..].find(want) {
                return from + at + want.len();
            }
            assert!(
                Instant::now() < deadline,
                "no {want:?} after byte {from} in:\n{text}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn weft_dev_rebuilds_tests_and_reloads_on_each_save() {
    let outside = tempfile::tempdir().unwrap();
    let target_dir = crate::common::repo().join("target/weft-new");
    let weft = env!("CARGO_BIN_EXE_weft");
    let made = Command::new(weft)
        .current_dir(outside.path())
        .args(["new", "north-dev", "--template", "hl7-rewrite"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let root = outside.path().join("north-dev");

    // A development configuration: the plugin as cargo builds it, an
    // admin API for the reloads.
    let admin = free_addr();
    let wasm = target_dir.join("wasm32-wasip2/release/north_dev.wasm");
    let config = root.join("dev.toml");
    std::fs::write(
        &config,
        format!(
            "[runtime]\ndata_dir = \"data\"\ncache_dir = \"cache\"\n\
             [admin]\nlisten = \"{admin}\"\n\
             [sources.mllp]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\n\
             [destinations.out]\nkind = \"file\"\ndir = \"out\"\n\
             [plugins.north-dev]\npath = \"{}\"\n\
             [plugins.north-dev.config]\nreceiving_application = \"LAB\"\n\
             [routes.north-dev]\nmatch = [\"ADT^*\"]\nplugins = [\"north-dev\"]\ndestinations = [\"out\"]\n",
            wasm.display()
        ),
    )
    .unwrap();

    let mut child = Command::new(weft)
        .args(["dev"])
        .arg(&root)
        .arg("--config")
        .arg(&config)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    for mut pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let out = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }

    // The first build: a weft run started for it, the cases pass, live.
    let at = wait_for(&out, 0, "started weft run", 120);
    let at = wait_for(&out, at, "cases    2 passed, 0 failed", 180);
    let at = wait_for(&out, at, "(this build)", 30);
    let at = wait_for(&out, at, "watching src/", 10);

    // A save that changes the output: the case shows it, nothing loaded.
    let lib = root.join("src/lib.rs");
    let code = std::fs::read_to_string(&lib).unwrap();
    let changed = code.replace(
        "hl7.set(\"MSH-5\", &app)?;",
        "hl7.set(\"MSH-5\", &app)?;\n            hl7.set(\"MSH-6\", \"EDGE2\")?;",
    );
    assert_ne!(code, changed);
    std::fs::write(&lib, changed).unwrap();
    let at = wait_for(
        &out,
        at,
        "FAILED admit: output 1 (01.hl7): MSH-6: expected EDGE, got EDGE2",
        120,
    );
    let at = wait_for(&out, at, "differences since the last build: MSH-6", 10);
    let at = wait_for(&out, at, "not loaded: a case failed", 10);

    // The expectation brought up to date: the cases pass, the build goes live.
    let expected = root.join("cases/admit/expected/01.hl7");
    let text = std::fs::read_to_string(&expected).unwrap();
    std::fs::write(&expected, text.replace("|LAB|EDGE|", "|LAB|EDGE2|")).unwrap();
    let at = wait_for(&out, at, "cases    2 passed, 0 failed", 120);
    wait_for(&out, at, "(this build)", 30);

    // Ctrl-C: it stops, and so does the weft run it started.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "weft dev did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(admin).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the weft run it started still answers"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(root.join("target/weft-dev-run.log").is_file());
}
