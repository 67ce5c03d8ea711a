//! Replay speed: `cargo bench -p weft --bench replay`.
//!
//! Makes a journal of `WEFT_BENCH_MESSAGES` ADT^A01 messages (default
//! 100,000; 2,000 when run as a test), each through the embedded default's
//! ADT route (site-normalize, then adt-to-fhir) on every core, its outputs
//! recorded as `weft run` records them; prints how long that processing
//! took. Then replays every message, as `weft replay` does (read-only
//! connections, one per worker, compared with the record), on 1 worker and
//! on one per core: through the same plugins (every message identical) and
//! through a candidate whose MRN prefix differs (every message changed).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use weft::journal::{self, JournalSync, MessageStatus, NewDelivery, Outcome};
use weft::plugins::{EngineOptions, Message, PluginEngine};
use weft::replay::{self, Options, Verdict};

#[path = "common/adt.rs"]
mod adt;
use adt::message;

/// The embedded default configuration with the built plugins and the
/// repository's lookup tables, and `mrn_prefix` as given.
fn config(repo: &std::path::Path, mrn_prefix: &str) -> weft::config::Config {
    let mut text = weft::config::EMBEDDED_DEFAULT.replace(
        "mrn_prefix = \"EDGE-\"",
        &format!("mrn_prefix = \"{mrn_prefix}\""),
    );
    for name in [
        "site-normalize",
        "adt-to-fhir",
        "oru-to-fhir",
        "order-to-fhir",
        "siu-to-fhir",
        "vxu-to-fhir",
    ] {
        let signed = weft_test_artifacts::signed(name).unwrap();
        let file = signed.file_name().unwrap().to_string_lossy().into_owned();
        text = text.replace(
            &format!("\"target/signed/{file}\""),
            &format!("\"{}\"", signed.display()),
        );
    }
    text = text.replace(
        "\"target/plugin-key/weft-project.pub\"",
        &format!(
            "\"{}\"",
            weft_test_artifacts::project_trust_list().display()
        ),
    );
    weft::config::parse(&text, "<bench>", repo).unwrap()
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let total: usize = std::env::var("WEFT_BENCH_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 100_000 });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let engine = PluginEngine::new(&EngineOptions::default()).unwrap();
    let live = replay::routing(&config(&repo, "EDGE-"), &engine).unwrap();
    let candidate = replay::routing(&config(&repo, "NORTH-"), &engine).unwrap();
    let route = live.get("adt").unwrap();

    // Processing: every message through the route on every core, each
    // outcome recorded as the pipeline records it.
    let dir = tempfile::tempdir().unwrap();
    let journal = journal::open(dir.path(), JournalSync::Normal).unwrap();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                let mut waiting = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let m = message(n, usize::MAX);
                    let msg = Message {
                        id: m.id.clone(),
                        content_type: m.content_type.clone(),
                        body: m.body.clone(),
                        headers: weft::sources::message_headers("in", None, None),
                    };
                    let id = m.id.clone();
                    waiting.push(journal.append(m));
                    let out = route.run(msg).unwrap();
                    waiting.push(
                        journal.record(Outcome {
                            message_id: id,
                            status: MessageStatus::Transformed,
                            error: None,
                            versions: out.versions,
                            deliveries: out
                                .outputs
                                .into_iter()
                                .enumerate()
                                .map(|(i, o)| NewDelivery {
                                    destination: "fhir-files".into(),
                                    n: i + 1,
                                    content_type: o.message.content_type,
                                    body: o.message.body,
                                    ordering_key: None,
                                })
                                .collect(),
                        }),
                    );
                    if waiting.len() >= 2_000 {
                        for c in waiting.drain(..) {
                            c.wait().unwrap();
                        }
                    }
                }
                for c in waiting.drain(..) {
                    c.wait().unwrap();
                }
            });
        }
    });
    let processing = started.elapsed().as_secs_f64();
    println!(
        "processed: {total} messages through site-normalize and adt-to-fhir, outcomes journaled, on {cores} cores in {processing:.1} s ({:.0} msg/s)",
        total as f64 / processing
    );
    let ids = journal
        .select(&weft::journal::query::Filter::default(), total)
        .unwrap();
    journal.close();
    assert_eq!(ids.len(), total);

    let open = || journal::read_only(dir.path());
    for (what, routing, want) in [
        ("the same plugins", &live, "identical"),
        ("a changed MRN prefix", &candidate, "changed"),
    ] {
        for workers in [1, cores] {
            let options = Options {
                workers,
                volatile: vec!["meta.lastUpdated".into()],
            };
            let mut counts = [0u64; Verdict::KINDS.len()];
            let started = Instant::now();
            replay::replay(&open, &ids, routing, &options, |r| {
                counts[r.verdict.index()] += 1;
            })
            .unwrap();
            let took = started.elapsed().as_secs_f64();
            let n = counts[Verdict::KINDS.iter().position(|(v, _)| *v == want).unwrap()];
            assert_eq!(n as usize, total, "{what}: {counts:?}");
            println!(
                "replay, {what}: {total} messages ({want}) on {workers} worker(s) in {took:.1} s: {:.0} msg/s ({:.2}x the processing time)",
                total as f64 / took,
                took / processing
            );
        }
    }
}
