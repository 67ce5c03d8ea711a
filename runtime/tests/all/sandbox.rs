//! Hostile plugins against the real plugin host: every limit holds, and the
//! same host serves the next normal message correctly.

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
        path: crate::common::wasm("weft-test-hostile"),
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
    // Far over the cap: the host stops copying it before it allocates.
    assert_eq!(limit(&err), Some(&Limit::HostCopy(1 << 20)), "{err:?}");
    // Just over: copied, then counted.
    let p = hostile("big-output", |s| {
        s.limits.max_output_bytes = 1 << 20;
        s.config
            .insert("size".into(), ((1 << 20) + 1000).to_string());
    });
    let err = p.call(&msg("x")).unwrap_err();
    assert!(
        matches!(limit(&err), Some(Limit::OutputSize { produced, cap }) if *produced > 1 << 20 && *cap == 1 << 20),
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
        path: crate::common::wasm("weft-test-future-contract"),
        ..Default::default()
    };
    let err = engine().load(&spec).err().expect("must be refused");
    assert!(
        matches!(err, LoadError::IncompatibleContract { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("weft:plugin@1.0.0"), "{text}");
    assert!(text.contains("weft:plugin@0.2.0"), "{text}");
    assert!(text.contains("weft:plugin@0.1.x"), "{text}");
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
        path: crate::common::wasm("weft-test-hostile"),
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
        path: crate::common::wasm("weft-test-hostile"),
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

// ---------------------------------------------------------------------------
// A plugin built directly with wit-bindgen (`tests/plugins/raw`), as a
// hostile partner would: it blocks in WASI host calls, works in its start
// function, and hand-writes what its export returns.

fn raw_spec(
    mode: &str,
    settings: &[(&str, &str)],
    tweak: impl FnOnce(&mut PluginSpec),
) -> PluginSpec {
    let mut spec = PluginSpec {
        name: format!("raw-{mode}"),
        path: crate::common::wasm("weft-test-raw"),
        ..Default::default()
    };
    spec.config.insert("mode".into(), mode.into());
    for (k, v) in settings {
        spec.config.insert(k.to_string(), v.to_string());
    }
    tweak(&mut spec);
    spec
}

fn raw(mode: &str, settings: &[(&str, &str)], tweak: impl FnOnce(&mut PluginSpec)) -> Plugin {
    engine().load(&raw_spec(mode, settings, tweak)).unwrap()
}

fn deadline_ms(ms: u64) -> impl FnOnce(&mut PluginSpec) {
    move |s: &mut PluginSpec| s.limits.deadline = Duration::from_millis(ms)
}

/// Hole: a blocking host call outlived the deadline (a 5 s WASI sleep under
/// a 100 ms deadline returned after 5.3 s). Now the call is dropped where
/// it waits, on optimized and on baseline code.
#[test]
fn a_plugin_waiting_in_a_host_call_is_stopped_at_its_deadline() {
    use weft::plugins::Tier;
    for tier in [Tier::Optimized, Tier::Baseline] {
        let p = engine()
            .load_tier(
                &raw_spec("sleep", &[("ms", "10000")], deadline_ms(100)),
                tier,
            )
            .unwrap();
        let started = Instant::now();
        let err = p.call(&msg("x")).unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            limit(&err),
            Some(&Limit::Deadline(Duration::from_millis(100))),
            "{err:?}"
        );
        // ~2x the deadline, with room for a busy CI machine.
        assert!(
            took < Duration::from_millis(400),
            "{tier:?}: stopped after {took:?}"
        );
        eprintln!("{tier:?}: a 10 s sleep under a 100 ms deadline stopped after {took:?}");
    }
    // A short wait within the deadline is fine.
    let p = raw("sleep", &[("ms", "5")], deadline_ms(1000));
    assert_eq!(text_of(&p, "slept"), "slept");
    host_still_serves();
}

/// Many waiting plugins on many threads: each is stopped at its deadline,
/// and a normal plugin keeps serving meanwhile.
#[test]
fn waiting_plugins_do_not_hold_threads_past_their_deadlines() {
    let sleeper = Arc::new(raw("sleep", &[("ms", "10000")], deadline_ms(50)));
    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let p = sleeper.clone();
            std::thread::spawn(move || {
                for _ in 0..3 {
                    assert!(matches!(
                        p.call(&msg("x")),
                        Err(CallError::Limit {
                            limit: Limit::Deadline(_),
                            ..
                        })
                    ));
                }
            })
        })
        .collect();
    let echo = raw("echo", &[], |_| {});
    for i in 0..100 {
        assert_eq!(text_of(&echo, &format!("m{i}")), format!("m{i}"));
    }
    for t in threads {
        t.join().unwrap();
    }
    // 3 calls of 50 ms each per thread, in parallel: far from 3 x 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Hole: the deadline restarted after instantiation (80 ms of start-up work
/// plus 80 ms in `transform` passed a 100 ms deadline).
#[test]
fn start_up_work_counts_against_the_deadline() {
    let p = raw(
        "spin",
        &[("start_ms", "80"), ("ms", "80")],
        deadline_ms(100),
    );
    let started = Instant::now();
    let err = p.call(&msg("x")).unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::Deadline(_))), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    // Start-up alone over the deadline: the probe a new version must pass
    // before it serves fails too.
    let slow_start = raw("echo", &[("start_ms", "300")], deadline_ms(100));
    let err = slow_start.probe().unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::Deadline(_))), "{err:?}");
    // Within the deadline together: served.
    let fine = raw(
        "spin",
        &[("start_ms", "10"), ("ms", "10")],
        deadline_ms(500),
    );
    assert_eq!(text_of(&fine, "ok"), "ok");
}

fn reason_of(err: &CallError) -> &str {
    match err {
        CallError::Reject { reason, .. }
        | CallError::Retry { reason, .. }
        | CallError::Failed { reason, .. }
        | CallError::Init { reason, .. } => reason,
        CallError::Limit { .. } => panic!("a limit, not a reason: {err:?}"),
    }
}

/// Hole: a 40 MB reason passed whole into the ACK, the journal and the log.
#[test]
fn reasons_are_capped_and_escaped() {
    // Room to build 40 MB inside the plugin, even on a busy machine.
    let big = |s: &mut PluginSpec| {
        s.limits.memory_bytes = 256 << 20;
        s.limits.deadline = Duration::from_secs(10);
    };
    // 100 kB: kept as its first KiB, with a marker.
    let p = raw("reason", &[("kind", "reject"), ("size", "100000")], big);
    let err = p.call(&msg("x")).unwrap_err();
    assert!(matches!(err, CallError::Reject { .. }), "{err:?}");
    let reason = reason_of(&err);
    assert!(reason.len() <= 1024 + 40, "{} bytes", reason.len());
    assert!(reason.ends_with("[98976 more bytes cut]"), "{reason}");
    // 40 MB: the host never copies it (over the output cap).
    let p = raw("reason", &[("size", "41943040")], big);
    let err = p.call(&msg("x")).unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::HostCopy(_))), "{err:?}");
    // Line breaks and framing bytes arrive escaped.
    let p = raw("reason", &[("text", "bad\\rMSH|forged\\x1c")], |_| {});
    let err = p.call(&msg("x")).unwrap_err();
    assert_eq!(reason_of(&err), "bad\\rMSH|forged\\u{1c}");
    host_still_serves();
}

/// Hole: a 40 MB destination name passed under a 1 MiB output cap, and
/// empty fields weighed nothing.
#[test]
fn destination_names_and_empty_outputs_count_in_the_output_size() {
    let one_mib = |s: &mut PluginSpec| {
        s.limits.max_output_bytes = 1 << 20;
        s.limits.memory_bytes = 256 << 20;
        s.limits.deadline = Duration::from_secs(10);
    };
    // A name a little over the cap (within what the host may copy): the
    // size check counts it.
    let p = raw("destination", &[("size", "1058576")], one_mib);
    let err = p.call(&msg("x")).unwrap_err();
    assert!(
        matches!(limit(&err), Some(Limit::OutputSize { produced, cap }) if *produced > 1 << 20 && *cap == 1 << 20),
        "{err:?}"
    );
    // A 40 MB name: never copied.
    let p = raw("destination", &[("size", "41943040")], one_mib);
    let err = p.call(&msg("x")).unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::HostCopy(_))), "{err:?}");
    // 900 outputs with every field empty weigh 900 x 128 bytes: over 64 KiB.
    let p = raw("many", &[("count", "900")], |s| {
        s.limits.max_output_bytes = 64 << 10
    });
    let err = p.call(&msg("x")).unwrap_err();
    assert!(
        matches!(
            limit(&err),
            Some(Limit::OutputSize {
                produced: 115_200,
                ..
            })
        ),
        "{err:?}"
    );
}

/// Hole: one million outputs were accepted (487 MiB of host memory under a
/// 256 MiB output cap). Outputs and headers are counted.
#[test]
fn outputs_and_headers_are_counted() {
    let p = raw("many", &[("count", "1001")], |_| {});
    let err = p.call(&msg("x")).unwrap_err();
    assert_eq!(
        limit(&err),
        Some(&Limit::Outputs {
            produced: 1001,
            cap: 1000
        })
    );
    let p = raw("many", &[("count", "5"), ("headers", "201")], |_| {});
    let err = p.call(&msg("x")).unwrap_err();
    assert_eq!(
        limit(&err),
        Some(&Limit::Headers {
            produced: 1005,
            cap: 1000
        })
    );
    // Settable per plugin.
    let p = raw("many", &[("count", "1001")], |s| {
        s.limits.max_outputs = 2000
    });
    assert_eq!(p.call(&msg("x")).unwrap().len(), 1001);
    // A million: stopped while the host copies the list, in well under a
    // second.
    let p = raw("many", &[("count", "1000000")], |s| {
        s.limits.memory_bytes = 256 << 20;
        s.limits.deadline = Duration::from_secs(10);
    });
    let started = Instant::now();
    let err = p.call(&msg("x")).unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::HostCopy(_))), "{err:?}");
    eprintln!("a million outputs refused after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    host_still_serves();
}

/// Hole: outputs whose bodies all point at the same guest buffer made the
/// host copy it again and again (162 MiB under a 16 MiB memory cap). The
/// copy is bounded by the output cap.
#[test]
fn outputs_sharing_guest_memory_cannot_multiply_host_memory() {
    let p = raw("aliased", &[("count", "1000"), ("size", "1048576")], |s| {
        s.limits.memory_bytes = 16 << 20;
        s.limits.max_output_bytes = 16 << 20;
    });
    let err = p.call(&msg("x")).unwrap_err();
    assert_eq!(limit(&err), Some(&Limit::HostCopy(16 << 20)), "{err:?}");
    assert!(
        err.to_string()
            .contains("more than 16777216 bytes in one call"),
        "{err}"
    );
    // Under the cap, the same shape is served (each output counted).
    let p = raw("aliased", &[("count", "10"), ("size", "1000")], |_| {});
    assert_eq!(p.call(&msg("x")).unwrap().len(), 10);
    host_still_serves();
}

/// Captures what the log would show at info level while `f` runs on this
/// thread.
fn info_log_of(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

/// Hole: a log record with a newline forged a complete `INFO weft::...`
/// line.
#[test]
fn plugin_log_records_cannot_forge_log_lines() {
    let p = raw(
        "log",
        &[(
            "text",
            "mapped\\r\\nINFO weft::pipeline: message delivered\\x1c",
        )],
        |_| {},
    );
    let log = info_log_of(|| {
        assert_eq!(text_of(&p, "x"), "x");
    });
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("mapped\\r\\nINFO weft::pipeline: message delivered\\u{1c}"),
        "{log}"
    );
}

/// Hole: an unknown destination name was echoed at WARN and in the AE text;
/// a plugin put a PID segment there.
#[test]
fn unknown_destination_names_are_counted_not_echoed() {
    use weft::routing::Chain;
    let pid = "PID|1||123456^^^HOSP^MR||DOE^JANE||19700101|F";
    let p = Arc::new(raw("destination", &[("text", pid)], |_| {}));
    let chain = Chain::new(vec![p]).of_route("adt", &["fhir-files".to_string()]);
    let mut err = None;
    let log = info_log_of(|| err = Some(chain.run(msg("x")).unwrap_err()));
    let err = err.unwrap();
    assert_eq!(
        err.to_string(),
        "plugin raw-destination failed: 1 of its outputs name a destination that route adt does not have"
    );
    assert!(!log.contains("DOE"), "{log}");
    // A destination of the route is fine.
    let ok = Arc::new(raw("destination", &[("text", "fhir-files")], |_| {}));
    let chain = Chain::new(vec![ok]).of_route("adt", &["fhir-files".to_string()]);
    assert_eq!(chain.run(msg("x")).unwrap().outputs.len(), 1);
}

/// A route fanning a message out: the next plugin's calls share one
/// deadline and one set of output caps per message.
#[test]
fn fan_out_shares_the_next_plugins_limits() {
    use weft::routing::Chain;
    let fan = Arc::new(raw("aliased", &[("count", "20"), ("size", "10")], |_| {}));
    let spin = Arc::new(raw("spin", &[("ms", "20")], deadline_ms(100)));
    let chain = Chain::new(vec![fan.clone(), spin]);
    let started = Instant::now();
    let err = chain.run(msg("x")).unwrap_err();
    assert!(matches!(limit(&err), Some(Limit::Deadline(_))), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let echo = Arc::new(raw("echo", &[], |s| s.limits.max_outputs = 10));
    let err = Chain::new(vec![fan, echo]).run(msg("x")).unwrap_err();
    assert_eq!(
        limit(&err),
        Some(&Limit::Outputs {
            produced: 11,
            cap: 10
        })
    );
}

// ---------------------------------------------------------------------------
// The same holes against the real `weft run`.

/// Hole: two messages whose plugin slept 10 s held both workers for 15 s,
/// and an ADT message on another route got no ACK for over 10 s. Now the
/// sleeping plugin is stopped at its 100 ms deadline, and a route never
/// holds every worker: the ADT route keeps its normal latency.
#[test]
fn a_hostile_route_cannot_starve_the_others() {
    use crate::common::run::{Client, Weft, a01, adt_config};
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-transform",
            &format!(
                r#"
[runtime]
workers = 2

[sources.slow]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-transform"
route = "slow"

[plugins.sleeper]
path = "{}"
deadline_ms = 100
[plugins.sleeper.config]
mode = "sleep"
ms = "10000"

[routes.slow]
plugins = ["sleeper"]
destinations = ["files"]
"#,
                crate::common::wasm("weft-test-raw").display()
            ),
        )
    });
    let slow = weft.addrs["slow"];
    let started = Instant::now();
    let hostile: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(slow);
                let ack = c.exchange(&a01(&format!("SLOW{i}"), "1"));
                (ack, started.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    let mut c = weft.client();
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let t = Instant::now();
        let ack = c.exchange(&a01(&format!("GOOD{i}"), &format!("{i}")));
        worst = worst.max(t.elapsed());
        assert_eq!(ack.code, "AA", "{}", ack.raw);
    }
    for h in hostile {
        let (ack, at) = h.join().unwrap();
        assert_eq!(ack.code, "AE", "{}", ack.raw);
        assert!(
            ack.text.contains("deadline of 100 ms exceeded"),
            "{}",
            ack.raw
        );
        // Six 100 ms calls, one at a time on the slow route's share.
        assert!(at < Duration::from_secs(5), "a hostile message took {at:?}");
    }
    eprintln!("ADT ACK latency beside a sleeping route: worst {worst:?}");
    assert!(
        worst < Duration::from_secs(1),
        "worst ADT ACK latency {worst:?}"
    );
}

const REAL: &str = "MSH|^~\\&|LAB|H|EHR|H|20240101||ADT^A01|REAL1|P|2.5.1\rPID|1||100^^^H^MR\r";
const FORGED: &str = "MSH|^~\\&|LAB|H|EHR|H|20240101||ADT^A01|FORGED1|P|2.5.1\rPID|1||666^^^H^MR\r";

/// Hole: plugin output holding `0x1C 0x0D` and a forged message reached an
/// MLLP receiver as two messages; an HTTP intake with `0x1C 0x0B` in a field
/// did the same on a pass-through route. Now the HTTP source refuses the
/// bytes (400), an output bound for MLLP with them fails for good, and
/// `weft send` refuses to send them.
#[test]
fn mllp_frames_cannot_be_smuggled() {
    use crate::common::run::{Weft, a01};
    let downstream = crate::common::run::Weft::receiver();
    let target = downstream.addr;
    let smuggling_output = format!("{REAL}\\x1c\\r\\x0b{FORGED}").replace('\r', "\\r");
    let upstream = Weft::start(|_| {
        format!(
            r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-delivery"
route = "smuggle"
[sources.http]
kind = "http"
listen = "127.0.0.1:0"
path = "/messages"
ack = "after-commit"
route = "pass"
[plugins.smuggler]
path = "{raw}"
[plugins.smuggler.config]
mode = "body"
text = '{smuggling_output}'
[destinations.next]
kind = "mllp"
address = "{target}"
timeout_s = 5
ordering = "none"
[routes.smuggle]
plugins = ["smuggler"]
destinations = ["next"]
[routes.pass]
destinations = ["next"]
"#,
            raw = crate::common::wasm("weft-test-raw").display(),
        )
    });
    // Through a plugin: the delivery fails for good, with the reason.
    let ack = upstream.client().exchange(&a01("TRIGGER1", "1"));
    assert_eq!(ack.code, "AE", "{}", ack.raw);
    assert!(
        ack.text.contains("MLLP end-block byte (0x1C)"),
        "{}",
        ack.raw
    );
    // Over HTTP: refused at the door.
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("smuggle.hl7");
    let url = format!("http://{}/messages", upstream.addrs["http"]);
    let post = |message: &str| {
        std::fs::write(&body, message).unwrap();
        crate::common::curl(&[
            "-H",
            "Content-Type: application/hl7-v2",
            "--data-binary",
            &format!("@{}", body.display()),
            &url,
        ])
    };
    let injected = format!("{}|x\x1c\x0b{FORGED}", REAL.trim_end_matches('\r'));
    let (code, text) = post(&injected);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("MLLP end-block byte (0x1C)"), "{text}");
    // A clean message on the same path arrives (the receiver works).
    let (code, text) = post(REAL);
    assert_eq!(code, 202, "{text}");
    // `weft send` refuses it before sending a byte.
    std::fs::write(&body, &injected).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["send", "--to", &target.to_string()])
        .arg(&body)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("ERROR") && stdout.contains("MLLP end-block byte"),
        "{stdout}"
    );
    // The receiver got the clean message once, and nothing forged.
    let deadline = Instant::now() + Duration::from_secs(10);
    while downstream.out_files().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let names: Vec<String> = downstream
        .out_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["REAL1.hl7".to_string()]);
}

// ---------------------------------------------------------------------------
// Swap and memory reuse.

/// A swap file, active until dropped; `None` where this machine cannot turn
/// one on (not root, no `swapon`, a file system that refuses swap files).
struct Swap {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Swap {
    fn on(mib: usize) -> Option<Swap> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("swap");
        std::fs::write(&path, vec![0u8; mib << 20]).ok()?;
        let run = |cmd: &str, args: &[&str]| {
            std::process::Command::new(cmd)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let p = path.to_str()?;
        let _ = run("chmod", &["600", p]);
        (run("mkswap", &[p]) && run("swapon", &[p])).then_some(Swap { path, _dir: dir })
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        let _ = std::process::Command::new("swapoff")
            .arg(&self.path)
            .status();
    }
}

/// Asks the kernel to write out to swap the accessible part of every
/// WebAssembly linear memory in this process: read-write anonymous mappings
/// that sit right below a large reserved (inaccessible) region, which is how
/// wasmtime lays out a memory slot.
fn page_out_linear_memories() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let vmas: Vec<(usize, usize, String, bool)> = maps
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, perms) = (f.next()?, f.next()?);
            let path = f.nth(3).is_some();
            let (a, b) = range.split_once('-')?;
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
                perms.to_string(),
                path,
            ))
        })
        .collect();
    let mut paged = 0;
    for w in vmas.windows(2) {
        let ((start, end, perms, path), (next_start, next_end, next_perms, _)) = (&w[0], &w[1]);
        if perms == "rw-p"
            && !path
            && end == next_start
            && next_perms == "---p"
            && next_end - next_start >= 1 << 30
        {
            // SAFETY: advice only; the range is a mapping of this process.
            let r = unsafe { libc::madvise(*start as *mut _, end - start, libc::MADV_PAGEOUT) };
            if r == 0 {
                paged += end - start;
            }
        }
    }
    paged
}

/// Hole: with swap, a page an instance wrote that is swapped out when its
/// memory slot is reset escapes `PAGEMAP_SCAN` (which looks at pages in
/// memory only), and the next instance in the slot reads it. Forced on, the
/// scan leaks a previous message's data here; by default, Weft turns the
/// scan off when swap is active and the next instance sees nothing.
#[test]
fn with_swap_a_previous_messages_data_never_reaches_the_next_instance() {
    if !wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
        eprintln!("skipped: this kernel has no PAGEMAP_SCAN (the reset path at issue)");
        return;
    }
    let Some(_swap) = Swap::on(256) else {
        eprintln!("skipped: cannot turn on a swap file here (needs root and swapon)");
        return;
    };
    let record = "PID|1||S3CR3T-MRN-8841^^^H^MR||ROE^RICHARD||19610203|M";
    let masked: String = record
        .bytes()
        .map(|b| format!("{:02x}", b ^ 0x55))
        .collect();
    let leaks = |options: EngineOptions| -> (bool, String) {
        // One slot: the second instance reuses the first one's memory.
        let e = PluginEngine::new(&EngineOptions {
            max_instances: 1,
            ..options
        })
        .unwrap();
        let scan = e.uses_pagemap_scan();
        let spec = |mode: &str, extra: &[(&str, &str)]| {
            let mut s = raw_spec(mode, extra, |s| s.limits.deadline = Duration::from_secs(20));
            s.name = "leak".into();
            s
        };
        let remember = e
            .load(&spec(
                "remember",
                &[("kib", "512"), ("ms", "1500"), ("xor55", &masked)],
            ))
            .unwrap();
        // While the first message's instance waits, its pages go to swap.
        let pager = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(700));
            page_out_linear_memories()
        });
        assert_eq!(text_of(&remember, record), record);
        let paged = pager.join().unwrap();
        assert!(paged > 0, "nothing was paged out");
        let seen = text_of(&remember, "scan");
        (scan, seen)
    };
    let (scan, seen) = leaks(EngineOptions {
        pagemap_scan: Some(true),
        ..Default::default()
    });
    assert!(scan);
    eprintln!("PAGEMAP_SCAN forced on with swap: the next instance saw {seen:?}");
    assert!(
        seen.starts_with("found"),
        "the hole this test guards against did not show: the test no longer proves anything"
    );
    let (scan, seen) = leaks(EngineOptions::default());
    assert!(
        !scan,
        "with swap active, the default must not reset memory with PAGEMAP_SCAN"
    );
    assert_eq!(seen, "clean");
}
