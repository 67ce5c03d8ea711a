//! The cost of a plugin call: `cargo bench -p weft --bench plugin_call`.
//!
//! Prints, for adt-to-fhir on a typical ADT^A01: the per-message cost of a
//! fresh instance + call (median, p99) and its phases, messages per second
//! on one core, the same for a trivial echo plugin (the host's share), the
//! HL7 parse alone, and the same mapping compiled natively.
//! `WEFT_BENCH_ITERS` sets the number of calls (default 20000).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weft::plugins::plugin::CallTimings;
use weft::plugins::{EngineOptions, Message, Plugin, PluginEngine, PluginSpec};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The component of plugin crate `name` (`adt-to-fhir`), built by cargo.
fn wasm(name: &str) -> PathBuf {
    weft_test_artifacts::component(name)
        .unwrap_or_else(|| panic!("weft-test-artifacts does not build {name}"))
        .to_path_buf()
}

struct Stats {
    median: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let sum: Duration = v.iter().sum();
    Stats {
        median: v[v.len() / 2],
        p99: v[(v.len() * 99 / 100).min(v.len() - 1)],
        mean: sum / v.len() as u32,
    }
}

fn us(d: Duration) -> String {
    format!("{:8.2} µs", d.as_secs_f64() * 1e6)
}

fn bench_plugin(label: &str, plugin: &Plugin, msg: &Message, iters: usize) {
    for _ in 0..iters / 10 {
        plugin.call(msg).expect("warm-up call succeeds");
    }
    let mut total = Vec::with_capacity(iters);
    let mut phases: Vec<CallTimings> = Vec::with_capacity(iters);
    let started = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        let (r, timings) = plugin.call_timed(msg);
        total.push(t.elapsed());
        r.expect("call succeeds");
        phases.push(timings);
    }
    let wall = started.elapsed();
    let s = stats(total);
    println!("{label}");
    println!(
        "  fresh instance + call   median {}   p99 {}   mean {}",
        us(s.median),
        us(s.p99),
        us(s.mean)
    );
    println!(
        "  messages/s on one core  {:.0}",
        iters as f64 / wall.as_secs_f64()
    );
    let phase = |f: fn(&CallTimings) -> Duration| stats(phases.iter().map(f).collect());
    for (name, st) in [
        ("store setup", phase(|t| t.setup)),
        ("instantiate", phase(|t| t.instantiate)),
        ("call (guest work + copies)", phase(|t| t.call)),
        ("teardown (store drop)", phase(|t| t.teardown)),
    ] {
        println!(
            "    {name:<28} median {}   p99 {}",
            us(st.median),
            us(st.p99)
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // and expects a quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let iters: usize = std::env::var("WEFT_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 200 } else { 20_000 });
    let mut options = EngineOptions::default();
    if let Some(n) = std::env::var("WEFT_BENCH_KEEP_RESIDENT")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        options.memory_keep_resident = Some(n);
    }
    let engine = PluginEngine::new(&options).expect("engine");
    println!(
        "pooling allocator: PAGEMAP_SCAN {}",
        if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
            "available"
        } else {
            "not available (kernel < 6.7)"
        }
    );

    // The sample, with the standard sex code the site mapping would produce.
    let body = std::fs::read_to_string(repo().join("samples/adt-a01.hl7"))
        .expect("sample")
        .replace("|Female|", "|F|")
        .into_bytes();
    let msg = Message {
        id: "bench".into(),
        content_type: "application/hl7-v2".into(),
        body: body.clone(),
        headers: vec![("source".into(), "bench".into())],
    };

    let mut adt = PluginSpec {
        name: "adt-to-fhir".into(),
        path: wasm("adt-to-fhir"),
        ..Default::default()
    };
    adt.config
        .insert("default_utc_offset".into(), "+00:00".into());
    adt.lookups
        .insert("gender".into(), repo().join("lookups/gender.csv"));
    adt.lookups.insert(
        "assigning_authority".into(),
        repo().join("lookups/assigning-authority.csv"),
    );
    let adt = engine.load(&adt).expect("adt-to-fhir loads");

    let mut echo = PluginSpec {
        name: "echo".into(),
        path: wasm("weft-test-hostile"),
        ..Default::default()
    };
    echo.config.insert("mode".into(), "echo".into());
    let echo = engine.load(&echo).expect("echo loads");

    // WEFT_BENCH_ONLY=native skips the sandboxed runs (for profiling).
    let native_only = std::env::var("WEFT_BENCH_ONLY").is_ok_and(|v| v == "native");
    println!(
        "Weft plugin call benchmark: {iters} calls, {} byte ADT^A01\n",
        body.len()
    );
    if !native_only {
        bench_plugin(
            "adt-to-fhir (real mapping, FHIR Bundle out)",
            &adt,
            &msg,
            iters,
        );
        println!();
        bench_plugin(
            "echo (trivial guest: the host's share of a call)",
            &echo,
            &msg,
            iters,
        );
        println!();
    }

    let parse: Vec<Duration> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            let m = weft_hl7::Message::parse(std::hint::black_box(&body)).unwrap();
            std::hint::black_box(&m);
            t.elapsed()
        })
        .collect();
    let s = stats(parse);
    println!(
        "HL7 parse alone (native)    median {}   p99 {}",
        us(s.median),
        us(s.p99)
    );

    let host = weft_sdk::testing::TestHost::new()
        .config("default_utc_offset", "+00:00")
        .lookup_csv(
            "gender",
            &std::fs::read_to_string(repo().join("lookups/gender.csv")).unwrap(),
        )
        .lookup_csv(
            "assigning_authority",
            &std::fs::read_to_string(repo().join("lookups/assigning-authority.csv")).unwrap(),
        );
    let native: Vec<Duration> = (0..iters)
        .map(|_| {
            let m = weft_sdk::Message::new("application/hl7-v2", body.clone());
            let t = Instant::now();
            let out = host.run::<adt_to_fhir::AdtToFhir>(m).unwrap();
            std::hint::black_box(&out);
            t.elapsed()
        })
        .collect();
    let s = stats(native);
    println!(
        "adt-to-fhir mapping, native median {}   p99 {}",
        us(s.median),
        us(s.p99)
    );

    // What checking a plugin's signature adds to each load (start, reload):
    // the SHA-256 of the component and one ed25519 verification.
    let component = std::fs::read(wasm("adt-to-fhir")).unwrap();
    let signed = weft::plugins::signature::sign(&component, "bench", &[7; 32]).unwrap();
    let trust = weft::plugins::trust::TrustList::parse(
        &weft::plugins::signature::keyfile::trust_entry(
            "bench",
            &weft::plugins::signature::public_key(&[7; 32]),
        ),
        "trust.toml",
    )
    .unwrap();
    let policy = weft::plugins::trust::SignaturePolicy {
        trust: std::sync::Arc::new(trust),
        require_signed: true,
        signer: None,
    };
    let checks: Vec<Duration> = (0..iters.min(2000))
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(policy.check(&signed).unwrap());
            t.elapsed()
        })
        .collect();
    let s = stats(checks);
    println!(
        "signature check per load ({} KiB component), median {}   p99 {}",
        signed.len() / 1024,
        us(s.median),
        us(s.p99)
    );

    // And reading its manifest and import names (a walk of every section,
    // nested modules included), then holding it against the grants.
    let spec = weft::plugins::PluginSpec {
        name: "adt-to-fhir".into(),
        ..Default::default()
    };
    let reads: Vec<Duration> = (0..iters.min(2000))
        .map(|_| {
            let t = Instant::now();
            let info = weft::plugins::signature::manifest::read(&signed).unwrap();
            let m = info.manifest.expect("adt-to-fhir declares a manifest");
            std::hint::black_box(weft::plugins::grants::findings(&m, &spec));
            t.elapsed()
        })
        .collect();
    let s = stats(reads);
    println!(
        "manifest read and grants check per load, median {}   p99 {}",
        us(s.median),
        us(s.p99)
    );
}
