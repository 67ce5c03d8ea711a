//! Plugins compiled in a child process (`weft compile-plugin`, as every
//! command of the CLI does): the code it gives runs on the runtime's pooled
//! engine on both tiers with every limit, its refusals read as the
//! compiler's own, it is capped, and a missing compiler binary does not
//! stop a plugin from loading.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use weft::plugins::compiler::{CHILD_ADDRESS_SPACE, CHILD_COMMAND, ChildCompiler, CompileIn};
use weft::plugins::engine::LoadError;
use weft::plugins::plugin::Limit;
use weft::plugins::{CallError, EngineOptions, Message, PluginEngine, PluginSpec, Tier};

fn engine(compile_in: CompileIn, fuel: bool) -> PluginEngine {
    PluginEngine::new(&EngineOptions {
        fuel,
        compile_in,
        ..Default::default()
    })
    .unwrap()
}

fn weft_binary() -> CompileIn {
    CompileIn::Child(ChildCompiler::new(env!("CARGO_BIN_EXE_weft")))
}

fn hostile(mode: &str) -> PluginSpec {
    let mut spec = PluginSpec {
        name: format!("hostile-{mode}"),
        path: crate::common::wasm("weft-test-hostile"),
        ..Default::default()
    };
    spec.config.insert("mode".into(), mode.into());
    spec
}

fn msg(body: &str) -> Message {
    Message {
        id: "test-1".into(),
        content_type: "text/plain".into(),
        body: body.as_bytes().to_vec(),
        headers: vec![],
    }
}

/// The limit that stopped one call of `spec` on `tier`.
fn limit_hit(e: &PluginEngine, spec: &PluginSpec, tier: Tier) -> Limit {
    match e.load_tier(spec, tier).unwrap().call(&msg("x")) {
        Err(CallError::Limit { limit, .. }) => limit,
        other => panic!("{tier:?}: expected a limit, got {:?}", other.err()),
    }
}

#[test]
fn code_from_the_compiler_process_runs_on_both_tiers_with_fuel_and_deadlines() {
    let e = engine(weft_binary(), true);
    for tier in [Tier::Baseline, Tier::Optimized] {
        let echo = e.load_tier(&hostile("echo"), tier).unwrap();
        assert_eq!(echo.tier(), tier);
        let out = echo.call(&msg("through the child's code")).unwrap();
        assert_eq!(out[0].message.body, b"through the child's code");

        // Fuel and epoch checks are instrumentation the compiler put in:
        // the child must have compiled with both.
        let mut spec = hostile("loop");
        spec.limits.fuel = Some(5_000_000);
        spec.limits.deadline = Duration::from_secs(10);
        let hit = limit_hit(&e, &spec, tier);
        assert!(matches!(hit, Limit::Fuel(5_000_000)), "{tier:?}: {hit:?}");

        let mut spec = hostile("loop");
        spec.limits.deadline = Duration::from_millis(50);
        let hit = limit_hit(&e, &spec, tier);
        assert!(matches!(hit, Limit::Deadline(_)), "{tier:?}: {hit:?}");
    }
}

#[test]
fn a_component_the_compiler_refuses_reads_the_same_from_the_child_as_in_process() {
    let dir = tempfile::tempdir().unwrap();
    // A core module: well-formed WebAssembly, not a component.
    let path = dir.path().join("core.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap();
    let spec = PluginSpec {
        name: "core".into(),
        path,
        ..Default::default()
    };
    let reason = |e: &PluginEngine| match e.load(&spec) {
        Err(LoadError::Compile { reason, .. }) => reason,
        other => panic!("expected a compile refusal, got {:?}", other.err()),
    };
    let in_child = reason(&engine(weft_binary(), false));
    let in_process = reason(&engine(CompileIn::ThisProcess, false));
    assert!(!in_child.is_empty());
    assert_eq!(in_child, in_process);
}

#[test]
fn the_compiler_process_refuses_bad_input_with_exit_1_and_the_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([CHILD_COMMAND, "--compiler", "cranelift"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"not webassembly")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("magic header not detected"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([CHILD_COMMAND, "--compiler", "gcc"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown compiler \"gcc\""));
}

#[test]
fn the_compiler_process_caps_its_own_address_space() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([CHILD_COMMAND, "--compiler", "cranelift"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It caps itself first, then waits for its input.
    let limits = format!("/proc/{}/limits", child.id());
    let mut seen = String::new();
    for _ in 0..500 {
        seen = std::fs::read_to_string(&limits).unwrap_or_default();
        if seen.contains(&format!("{CHILD_ADDRESS_SPACE}")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(child.stdin.take());
    let _ = child.wait();
    let line = seen
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        line.split_whitespace().nth(3),
        Some(CHILD_ADDRESS_SPACE.to_string().as_str()),
        "{line}"
    );
}

#[test]
fn without_a_compiler_binary_plugins_still_load_in_process() {
    let e = engine(
        CompileIn::Child(ChildCompiler::new("/nonexistent/weft-compiler")),
        false,
    );
    let echo = e.load(&hostile("echo")).unwrap();
    assert_eq!(
        echo.call(&msg("still here")).unwrap()[0].message.body,
        b"still here"
    );
}

/// The reason `hostile echo` is refused with when compiled by `script` (a
/// stand-in for the compiler process) under `deadline` and `max_output`,
/// and how long the refusal took.
fn refused_by(script: &str, deadline: Duration, max_output: usize) -> (String, Duration) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("compiler");
    std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o700)).unwrap();
    let e = engine(
        CompileIn::Child(ChildCompiler {
            exe,
            deadline,
            max_output,
        }),
        false,
    );
    let started = std::time::Instant::now();
    match e.load(&hostile("echo")) {
        Err(LoadError::Compile { reason, .. }) => (reason, started.elapsed()),
        other => panic!("expected a compile refusal, got {:?}", other.err()),
    }
}

#[test]
fn a_compiler_process_past_its_deadline_is_killed_and_the_version_refused() {
    let (reason, took) = refused_by("exec sleep 60", Duration::from_secs(1), 1 << 20);
    assert!(reason.contains("took longer than 1s"), "{reason}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_compiler_process_that_crashes_or_fails_silently_is_named_so() {
    let (reason, _) = refused_by("kill -SEGV $$", Duration::from_secs(30), 1 << 20);
    assert!(reason.contains("killed by signal 11"), "{reason}");
    let (reason, _) = refused_by("cat > /dev/null; exit 7", Duration::from_secs(30), 1 << 20);
    assert!(reason.contains("ended without code"), "{reason}");
    assert!(reason.contains('7'), "{reason}");
}

#[test]
fn compiled_code_over_the_output_cap_is_refused() {
    let (reason, _) = refused_by(
        "head -c 3000000 /dev/zero",
        Duration::from_secs(30),
        1 << 20,
    );
    assert!(reason.contains("larger than 1 MiB"), "{reason}");
}
