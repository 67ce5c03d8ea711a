//! The HL7 v2 → FHIR mappings through the real sandbox:
//! `cargo bench -p weft --bench mappings`.
//!
//! For each shipped mapping plugin and a typical message of its type (the
//! files under `samples/`, and the largest corpus message of the type), a
//! fresh instance + call per message as in production: median and p99 µs
//! per message, messages per second on one core, and the Bundle's size.
//! `WEFT_BENCH_ITERS` sets the calls per case (default 5000).

#[path = "../tests/all/common/mappings.rs"]
mod mappings;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weft::plugins::{EngineOptions, Message, PluginEngine};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn message(body: Vec<u8>) -> Message {
    Message {
        id: "bench".into(),
        content_type: "application/hl7-v2".into(),
        body,
        headers: Vec::new(),
    }
}

fn main() {
    let iters: usize = std::env::var("WEFT_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let repo = repo();
    let engine = PluginEngine::new(&EngineOptions::default()).expect("engine");
    let plugins = mappings::load_all(&engine, &repo);
    let corpus = |name: &str| repo.join("tests/corpus/hl7v2/fhir-converter").join(name);
    let cases: [(&str, &str, PathBuf); 10] = [
        (
            "adt-to-fhir",
            "ADT^A01 sample",
            repo.join("samples/adt-a01.hl7"),
        ),
        (
            "adt-to-fhir",
            "ADT^A01 corpus (NK1, AL1, DG1, IN1, OBX)",
            corpus("ADT-A01-01.hl7"),
        ),
        (
            "oru-to-fhir",
            "ORU^R01 sample (3 OBX)",
            repo.join("samples/oru-r01.hl7"),
        ),
        (
            "oru-to-fhir",
            "ORU^R01 corpus CBC (2 OBR, 10 OBX)",
            corpus("LAB-ORU-1.hl7"),
        ),
        (
            "order-to-fhir",
            "ORM^O01 sample",
            repo.join("samples/orm-o01.hl7"),
        ),
        (
            "order-to-fhir",
            "OML^O21 corpus (SPM, OBX)",
            corpus("OML-O21-01.hl7"),
        ),
        (
            "siu-to-fhir",
            "SIU^S12 sample",
            repo.join("samples/siu-s12.hl7"),
        ),
        ("siu-to-fhir", "SIU^S12 corpus", corpus("SIU-S12-01.hl7")),
        (
            "vxu-to-fhir",
            "VXU^V04 sample",
            repo.join("samples/vxu-v04.hl7"),
        ),
        ("vxu-to-fhir", "VXU^V04 corpus", corpus("VXU-V04-01.hl7")),
    ];
    println!(
        "HL7 v2 -> FHIR mappings in the sandbox: {iters} calls per case, fresh instance per call\n"
    );
    println!(
        "{:<14} {:<42} {:>7} {:>10} {:>10} {:>12} {:>9}",
        "plugin", "message", "bytes", "median µs", "p99 µs", "msgs/s/core", "out bytes"
    );
    for (name, label, path) in cases {
        let plugin = &plugins.iter().find(|(n, _)| *n == name).expect("loaded").1;
        // The sample ADT carries the site's sex code; the route's
        // site-normalize maps it, so give adt-to-fhir the mapped one.
        let body = std::fs::read(&path).expect("message").to_vec();
        let body = String::from_utf8_lossy(&body)
            .replace("|Female|", "|F|")
            .into_bytes();
        let msg = message(body.clone());
        let out = plugin.call(&msg).unwrap_or_else(|e| panic!("{label}: {e}"));
        let out_bytes: usize = out.iter().map(|o| o.message.body.len()).sum();
        for _ in 0..iters / 10 {
            plugin.call(&msg).expect("warm-up");
        }
        let mut times: Vec<Duration> = Vec::with_capacity(iters);
        let started = Instant::now();
        for _ in 0..iters {
            let t = Instant::now();
            plugin.call(&msg).expect("call");
            times.push(t.elapsed());
        }
        let wall = started.elapsed();
        times.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{:<14} {:<42} {:>7} {:>10.1} {:>10.1} {:>12.0} {:>9}",
            name,
            label,
            body.len(),
            us(times[times.len() / 2]),
            us(times[(times.len() * 99 / 100).min(times.len() - 1)]),
            iters as f64 / wall.as_secs_f64(),
            out_bytes
        );
    }
}
