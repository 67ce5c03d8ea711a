//! Search by patient on a large journal: `cargo bench -p weft --bench search`.
//!
//! Fills a fresh journal (`journal_sync = normal`, group commit, as `weft
//! run` writes it) with `WEFT_BENCH_MESSAGES` synthetic ADT^A01 messages
//! (default 1,000,000; 20,000 when run as a test), ten per patient, each
//! with two PID-3 identifiers; prints the fill rate and the journal's size
//! on disk, then the time of `Journal::list` with a patient filter (what
//! `GET /messages?patient=` and `weft messages list --patient` run) for
//! 200 patients picked across the journal, for one that is not there, and
//! for a patient plus a status and a time range.

use std::time::{Duration, Instant};

use weft::journal::query::Filter;
use weft::journal::{self, JournalSync};

#[path = "common/adt.rs"]
mod adt;
use adt::message;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let total: usize = std::env::var("WEFT_BENCH_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 1_000_000 });
    let patients = (total / 10).max(1);
    let dir = tempfile::tempdir().unwrap();
    let journal = journal::open(dir.path(), JournalSync::Normal).unwrap();

    let started = Instant::now();
    let mut waiting = Vec::with_capacity(10_000);
    for n in 0..total {
        waiting.push(journal.append(message(n, patients)));
        if waiting.len() == 10_000 {
            for c in waiting.drain(..) {
                c.wait().unwrap();
            }
        }
    }
    for c in waiting.drain(..) {
        c.wait().unwrap();
    }
    let fill = started.elapsed();
    println!(
        "filled: {total} messages ({patients} patients, two identifiers each) in {:.1} s ({:.0} msg/s); journal {:.1} MiB on disk",
        fill.as_secs_f64(),
        total as f64 / fill.as_secs_f64(),
        journal.disk_bytes().unwrap() as f64 / (1024.0 * 1024.0)
    );

    let search = |filter: Filter| {
        let t = Instant::now();
        let rows = journal.list(&filter).unwrap();
        (t.elapsed(), rows.len())
    };
    let by = |patient: String| Filter {
        patient: Some(patient),
        limit: 50,
        ..Filter::default()
    };
    let mut times = Vec::new();
    for i in 0..200 {
        let patient = (i * 7919) % patients;
        let id = if i % 2 == 0 {
            format!("MRN{patient:07}")
        } else {
            format!("E{patient:09}")
        };
        let (took, rows) = search(by(id));
        assert_eq!(
            rows,
            (total / patients).min(50),
            "every message of the patient"
        );
        times.push(took);
    }
    times.sort();
    println!(
        "search by patient (limit 50, {} searches): p50 {} p99 {} max {}",
        times.len(),
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.99)),
        ms(*times.last().unwrap())
    );
    let (took, rows) = search(by("MRN-NOT-THERE".into()));
    assert_eq!(rows, 0);
    println!("a patient the journal does not have: {}", ms(took));
    let (took, rows) = search(Filter {
        status: Some("received".parse().unwrap()),
        since: Some(1_764_000_000_000),
        until: Some(1_764_000_000_000 + total as i64 * 100),
        ..by(format!("MRN{:07}", patients / 2))
    });
    assert!(rows > 0);
    println!("a patient with a status and a time range: {}", ms(took));
    journal.close();
}
