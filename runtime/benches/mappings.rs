//! The HL7 v2 → FHIR mappings through the real sandbox:
//! `cargo bench -p weft --bench mappings`.
//!
//! For each shipped mapping plugin and a typical message of its type (the
//! files under `samples/`, and the largest corpus message of the type), a
//! fresh instance + call per message as in production: median and p99 µs
//! per message, messages per second on one core, and the Bundle's size;
//! then the same mapping compiled natively (the plugin crate as a Rust
//! library, run through `weft_sdk::testing` with the same settings and
//! tables) and the ratio of the two medians: what the sandbox costs.
//! "host µs" is the host's share of a call (store, instantiation in a pool
//! slot, teardown and the slot's reset), "call µs" the call itself
//! (copying the message in, the plugin's work, copying the outputs out).
//! `WEFT_BENCH_ITERS` sets the calls per case (default 5000).

#[path = "../tests/all/common/mappings.rs"]
mod mappings;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weft::plugins::{EngineOptions, Message, PluginEngine};
use weft_sdk::testing::TestHost;

/// Runs one mapping natively on a message.
type Native = fn(&TestHost, weft_sdk::Message) -> weft_sdk::Result<Vec<weft_sdk::Output>>;

/// The native build of mapping plugin `name`.
fn native(name: &str) -> Native {
    match name {
        "adt-to-fhir" => |h, m| h.run::<adt_to_fhir::AdtToFhir>(m),
        "oru-to-fhir" => |h, m| h.run::<oru_to_fhir::OruToFhir>(m),
        "order-to-fhir" => |h, m| h.run::<order_to_fhir::OrderToFhir>(m),
        "siu-to-fhir" => |h, m| h.run::<siu_to_fhir::SiuToFhir>(m),
        "vxu-to-fhir" => |h, m| h.run::<vxu_to_fhir::VxuToFhir>(m),
        "pharmacy-to-fhir" => |h, m| h.run::<pharmacy_to_fhir::PharmacyToFhir>(m),
        "mdm-to-fhir" => |h, m| h.run::<mdm_to_fhir::MdmToFhir>(m),
        "billing-to-fhir" => |h, m| h.run::<billing_to_fhir::BillingToFhir>(m),
        "fhir-to-v2" => |h, m| h.run::<fhir_to_v2::FhirToV2>(m),
        other => panic!("no native build of {other}"),
    }
}

/// The settings and tables `mappings::spec` gives the components.
fn native_host(repo: &std::path::Path) -> TestHost {
    let table =
        |file: &str| std::fs::read_to_string(repo.join("lookups").join(file)).expect("table");
    TestHost::new()
        .lookup_csv("gender", &table("gender.csv"))
        .lookup_csv("assigning_authority", &table("assigning-authority.csv"))
        .lookup_csv("authority", &table("authority.csv"))
}

/// Median and p99 of `times`, sorted in place.
fn median_p99(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let p99 = (times.len() * 99 / 100).min(times.len() - 1);
    (times[times.len() / 2], times[p99])
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The content type of a sample: FHIR JSON or HL7 v2.
fn content_type(path: &std::path::Path) -> &'static str {
    if path.extension().is_some_and(|e| e == "json") {
        "application/fhir+json"
    } else {
        "application/hl7-v2"
    }
}

fn message(body: Vec<u8>, content_type: &str) -> Message {
    Message {
        id: "bench".into(),
        content_type: content_type.into(),
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
    // WEFT_BENCH_KEEP_RESIDENT_KIB overrides the memory each pool slot
    // keeps resident (the engine's choice otherwise).
    let options = EngineOptions {
        memory_keep_resident: std::env::var("WEFT_BENCH_KEEP_RESIDENT_KIB")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .map(|k| k << 10),
        ..EngineOptions::default()
    };
    let engine = PluginEngine::new(&options).expect("engine");
    let mut plugins = mappings::load_all(&engine, &repo);
    plugins.extend(mappings::load(
        &engine,
        &repo,
        mappings::WAY_BACK.iter().copied(),
    ));
    let corpus = |name: &str| repo.join("tests/corpus/hl7v2/fhir-converter").join(name);
    let cases: [(&str, &str, PathBuf); 22] = [
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
        (
            "pharmacy-to-fhir",
            "RDE^O11 sample",
            repo.join("samples/rde-o11.hl7"),
        ),
        (
            "pharmacy-to-fhir",
            "RDE^O11 corpus (RXO, RXE, RXC, OBX)",
            corpus("RDE-O11-01.hl7"),
        ),
        (
            "pharmacy-to-fhir",
            "RDS^O13 sample",
            repo.join("samples/rds-o13.hl7"),
        ),
        (
            "pharmacy-to-fhir",
            "RAS^O17 sample",
            repo.join("samples/ras-o17.hl7"),
        ),
        (
            "mdm-to-fhir",
            "MDM^T02 sample (2 TX lines)",
            repo.join("samples/mdm-t02.hl7"),
        ),
        (
            "oru-to-fhir",
            "OUL^R22 sample (SPM, 3 OBX)",
            repo.join("samples/oul-r22.hl7"),
        ),
        (
            "order-to-fhir",
            "REF^I12 sample (RF1, 2 PRD)",
            repo.join("samples/ref-i12.hl7"),
        ),
        (
            "billing-to-fhir",
            "BAR^P01 sample (2 IN1, GT1)",
            repo.join("samples/bar-p01.hl7"),
        ),
        (
            "billing-to-fhir",
            "DFT^P03 sample (2 FT1, PR1)",
            repo.join("samples/dft-p03.hl7"),
        ),
        (
            "billing-to-fhir",
            "DFT^P03 corpus",
            corpus("DFT-P03-01.hl7"),
        ),
        (
            "fhir-to-v2",
            "lab order Bundle (6 entries) -> OML^O21",
            repo.join("samples/fhir-lab-order.json"),
        ),
        (
            "fhir-to-v2",
            "Patient -> ADT^A31",
            repo.join("samples/fhir-patient.json"),
        ),
    ];
    let host = native_host(&repo);
    println!(
        "Mappings (HL7 v2 -> FHIR and back) in the sandbox: {iters} calls per case, fresh instance per call;\n\
         native: the same crate compiled for this machine, the same calls\n"
    );
    println!(
        "{:<14} {:<42} {:>7} {:>10} {:>10} {:>12} {:>9} {:>8} {:>8} {:>10} {:>8}",
        "plugin",
        "message",
        "bytes",
        "median µs",
        "p99 µs",
        "msgs/s/core",
        "out bytes",
        "host µs",
        "call µs",
        "native µs",
        "× native"
    );
    for (name, label, path) in cases {
        let plugin = &plugins.iter().find(|(n, _)| *n == name).expect("loaded").1;
        // The sample ADT carries the site's sex code; the route's
        // site-normalize maps it, so give adt-to-fhir the mapped one.
        let body = std::fs::read(&path).expect("message").to_vec();
        let body = String::from_utf8_lossy(&body)
            .replace("|Female|", "|F|")
            .into_bytes();
        let ct = content_type(&path);
        let msg = message(body.clone(), ct);
        let out = plugin.call(&msg).unwrap_or_else(|e| panic!("{label}: {e}"));
        let out_bytes: usize = out.iter().map(|o| o.message.body.len()).sum();
        for _ in 0..iters / 10 {
            plugin.call(&msg).expect("warm-up");
        }
        let run = native(name);
        let native_msg = || weft_sdk::Message::new(ct, body.clone()).with_id("bench");
        let native_out =
            run(&host, native_msg()).unwrap_or_else(|e| panic!("{label} natively: {e}"));
        assert_eq!(
            native_out
                .iter()
                .map(|o| o.message().body().len())
                .sum::<usize>(),
            out_bytes,
            "{label}: the native build and the component agree"
        );
        for _ in 0..iters / 10 {
            run(&host, native_msg()).expect("warm-up");
        }
        // Sandboxed and native calls alternate, so both see the same
        // machine (this shared box's speed drifts by half over minutes).
        let mut times: Vec<Duration> = Vec::with_capacity(iters);
        let mut host_times: Vec<Duration> = Vec::with_capacity(iters);
        let mut call_times: Vec<Duration> = Vec::with_capacity(iters);
        let mut native_times: Vec<Duration> = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            let (r, timings) = plugin.call_timed(&msg);
            r.expect("call");
            times.push(t.elapsed());
            host_times.push(timings.setup + timings.instantiate + timings.teardown);
            call_times.push(timings.call);

            let m = native_msg();
            let t = Instant::now();
            std::hint::black_box(run(&host, m).expect("native call"));
            native_times.push(t.elapsed());
        }
        let busy: Duration = times.iter().sum();
        let (median, p99) = median_p99(&mut times);
        let (host_median, _) = median_p99(&mut host_times);
        let (call_median, _) = median_p99(&mut call_times);
        let (native_median, _) = median_p99(&mut native_times);

        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{:<14} {:<42} {:>7} {:>10.1} {:>10.1} {:>12.0} {:>9} {:>8.1} {:>8.1} {:>10.1} {:>8.2}",
            name,
            label,
            body.len(),
            us(median),
            us(p99),
            iters as f64 / busy.as_secs_f64(),
            out_bytes,
            us(host_median),
            us(call_median),
            us(native_median),
            us(median) / us(native_median),
        );
    }
}
