//! Hostile plugins against the real plugin host: every limit holds, and the
//! same host serves the next normal message correctly.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use weft::plugins::engine::LoadError;
use weft::plugins::plugin::Limit;
use weft::plugins::{CallError, EngineOptions, Message, Plugin, PluginEngine, PluginSpec};

/// The limit that stopped a call, if a limit did.
fn limit(err: &CallError) -> Option<&Limit> {
    match err {
        CallError::Limit { limit, .. } => Some(limit),
        _ => None,
    }
}

fn engine() -> &'static PluginEngine {
    static ENGINE: OnceLock<PluginEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PluginEngine::new(&EngineOptions::default()).unwrap())
}

fn hostile_spec(mode: &str, tweak: impl FnOnce(&mut PluginSpec)) -> PluginSpec {
    let mut spec = PluginSpec {
        name: format!("hostile-{mode}"),
        path: common::wasm("weft-test-hostile"),
        ..Default::default()
    };
    spec.config.insert("mode".into(), mode.into());
    tweak(&mut spec);
    spec
}

fn hostile(mode: &str, tweak: impl FnOnce(&mut PluginSpec)) -> Plugin {
    engine().load(&hostile_spec(mode, tweak)).unwrap()
}

fn msg(body: &str) -> Message {
    Message {
        id: "test-1".into(),
        content_type: "text/plain".into(),
        body: body.as_bytes().to_vec(),
        headers: vec![],
    }
}

fn text_of(p: &Plugin, body: &str) -> String {
    let out = p.call(&msg(body)).unwrap();
    assert_eq!(out.len(), 1);
    String::from_utf8(out[0].message.body.clone()).unwrap()
}

/// After any misbehaviour, a well-behaved plugin on the same engine works.
fn host_still_serves() {
    let echo = hostile("echo", |_| {});
    assert_eq!(text_of(&echo, "next message"), "next message");
}

#[test]
fn endless_loop_is_stopped_at_its_deadline() {
    let p = hostile("loop", |s| s.limits.deadline = Duration::from_millis(50));
    let started = Instant::now();
    let err = p.call(&msg("x")).unwrap_err();
    assert_eq!(
        err,
        CallError::Limit {
            plugin: "hostile-loop".into(),
            limit: Limit::Deadline(Duration::from_millis(50))
        }
    );
    assert_eq!(
        err.to_string(),
        "plugin hostile-loop stopped: deadline of 50 ms exceeded"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    host_still_serves();
}

#[test]
fn unbounded_allocation_is_stopped_at_the_memory_cap() {
    let p = hostile("alloc", |s| s.limits.memory_bytes = 16 << 20);
    let err = p.call(&msg("x")).unwrap_err();
    assert!(
        matches!(limit(&err), Some(Limit::Memory(cap)) if *cap == 16 << 20),
        "{err:?}"
    );
    assert!(err.to_string().contains("memory cap of 16 MiB"), "{err}");
    host_still_serves();
}

#[test]
fn unbounded_recursion_is_stopped() {
    let p = hostile("recurse", |_| {});
    let err = p.call(&msg("x")).unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::Stack)), "{err:?}");
    assert!(err.to_string().contains("call stack exhausted"), "{err}");
    host_still_serves();
}

#[test]
fn unbounded_recursion_in_linear_memory_is_stopped() {
    let p = hostile("recurse-shadow", |_| {});
    let err = p.call(&msg("x")).unwrap_err();
    assert!(matches!(err, CallError::Failed { .. }), "{err:?}");
    assert!(
        err.to_string().contains("stack overflow in linear memory"),
        "{err}"
    );
    host_still_serves();
}

#[test]
fn a_panic_fails_the_message_only() {
    let p = hostile("panic", |_| {});
    let err = p.call(&msg("x")).unwrap_err();
    assert!(matches!(err, CallError::Failed { .. }), "{err:?}");
    assert!(err.to_string().contains("crashed"), "{err}");
    // The panic text may hold patient data: it is not in the error.
    assert!(!err.to_string().contains("on purpose"), "{err}");
    host_still_serves();
}

#[test]
fn files_are_out_of_reach() {
    let p = hostile("read-file", |_| {});
    let got = text_of(&p, "x");
    assert!(got.starts_with("denied:"), "{got}");
    host_still_serves();
}

#[test]
fn the_environment_is_empty() {
    let p = hostile("read-env", |_| {});
    assert_eq!(text_of(&p, "x"), "vars=0 home=false");
    host_still_serves();
}

#[test]
fn oversized_output_is_refused() {
    let p = hostile("big-output", |s| {
        s.limits.max_output_bytes = 1 << 20;
        s.limits.memory_bytes = 256 << 20;
        s.config.insert("size".into(), (8 << 20).to_string());
    });
    let err = p.call(&msg("x")).unwrap_err();
    assert!(
        matches!(limit(&err), Some(Limit::OutputSize { produced, cap }) if *produced >= 8 << 20 && *cap == 1 << 20),
        "{err:?}"
    );
    host_still_serves();
}

#[test]
fn no_state_survives_between_messages() {
    let p = hostile("keep-state", |_| {});
    for _ in 0..5 {
        assert_eq!(text_of(&p, "x"), "1");
    }
}

#[test]
fn hostile_and_normal_plugins_run_side_by_side() {
    let looping = Arc::new(hostile("loop", |s| {
        s.limits.deadline = Duration::from_millis(30)
    }));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let p = looping.clone();
            std::thread::spawn(move || {
                for _ in 0..3 {
                    assert!(matches!(p.call(&msg("x")), Err(CallError::Limit { .. })));
                }
            })
        })
        .collect();
    let echo = hostile("echo", |_| {});
    for i in 0..200 {
        assert_eq!(text_of(&echo, &format!("m{i}")), format!("m{i}"));
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn incompatible_contract_is_refused_with_both_versions() {
    let spec = PluginSpec {
        name: "future".into(),
        path: common::wasm("weft-test-future-contract"),
        ..Default::default()
    };
    let err = engine().load(&spec).err().expect("must be refused");
    assert!(
        matches!(err, LoadError::IncompatibleContract { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("weft:plugin@1.0.0"), "{text}");
    assert!(text.contains("weft:plugin@0.1.0"), "{text}");
}

#[test]
fn a_file_that_is_not_a_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"\0asm junk").unwrap();
    let spec = PluginSpec {
        name: "junk".into(),
        path,
        ..Default::default()
    };
    let err = engine().load(&spec).err().expect("must be refused");
    assert!(matches!(err, LoadError::Compile { .. }), "{err:?}");
}

#[test]
fn fuel_limits_when_enabled() {
    let fueled = PluginEngine::new(&EngineOptions {
        fuel: true,
        ..Default::default()
    })
    .unwrap();
    let mut spec = PluginSpec {
        name: "hostile-loop".into(),
        path: common::wasm("weft-test-hostile"),
        ..Default::default()
    };
    spec.config.insert("mode".into(), "loop".into());
    spec.limits.fuel = Some(5_000_000);
    spec.limits.deadline = Duration::from_secs(10);
    let p = fueled.load(&spec).unwrap();
    let err = p.call(&msg("x")).unwrap_err();
    assert!(
        matches!(limit(&err), Some(Limit::Fuel(5_000_000))),
        "{err:?}"
    );
}

#[test]
fn compiled_components_are_cached_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let e = PluginEngine::new(&EngineOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let spec = PluginSpec {
        name: "echo".into(),
        path: common::wasm("weft-test-hostile"),
        ..Default::default()
    };
    let first = e.load(&spec).unwrap();
    // The entry is written in the background.
    let deadline = Instant::now() + Duration::from_secs(10);
    let entries = loop {
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if entries.len() == 1 && !entries[0].starts_with('.') || Instant::now() > deadline {
            break entries;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].starts_with(first.sha256()), "{entries:?}");
    let started = Instant::now();
    let second = e.load(&spec).unwrap();
    assert_eq!(second.sha256(), first.sha256());
    // A cache hit deserializes instead of compiling.
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(text_of(&second, "cached"), "cached");
}

/// Code from the baseline compiler (what a hot reload serves first) is held
/// to the same limits as optimized code.
#[test]
fn baseline_code_is_held_to_the_same_limits() {
    use weft::plugins::Tier;
    assert!(engine().has_baseline(), "Winch is built in");
    let baseline = |mode: &str, tweak: &dyn Fn(&mut PluginSpec)| {
        let p = engine()
            .load_tier(&hostile_spec(mode, tweak), Tier::Baseline)
            .unwrap();
        assert_eq!(p.tier(), Tier::Baseline);
        p
    };
    let echo = baseline("echo", &|_| {});
    assert_eq!(text_of(&echo, "on baseline code"), "on baseline code");

    let looping = baseline("loop", &|s| s.limits.deadline = Duration::from_millis(50));
    let started = Instant::now();
    let err = looping.call(&msg("x")).unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::Deadline(_))), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let alloc = baseline("alloc", &|s| s.limits.memory_bytes = 16 << 20);
    let err = alloc.call(&msg("x")).unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::Memory(_))), "{err:?}");

    let recurse = baseline("recurse", &|_| {});
    let err = recurse.call(&msg("x")).unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::Stack)), "{err:?}");

    let files = baseline("read-file", &|_| {});
    assert!(text_of(&files, "x").starts_with("denied:"));
    let state = baseline("keep-state", &|_| {});
    for _ in 0..3 {
        assert_eq!(text_of(&state, "x"), "1");
    }
    assert_eq!(text_of(&echo, "still serving"), "still serving");
}
