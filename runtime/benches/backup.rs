//! Backup and restore of a large journal while `weft run` serves:
//! `cargo bench -p weft --bench backup`.
//!
//! Fills a journal with `WEFT_BENCH_MESSAGES` settled synthetic ADT^A01
//! messages (default 100,000; 2,000 as a quick check), starts `weft run` on
//! it (MLLP in, a file destination out), and drives it with
//! `WEFT_BENCH_CONNS` senders (default 4) that wait for each ACK. It
//! measures the senders for `WEFT_BENCH_SECS` (default 5) without a backup,
//! then runs `weft backup` beside them and measures them again while it
//! runs; then `weft restore` of the archive on a fresh directory. Prints
//! the backup's time and size, the senders' throughput and p99 with and
//! without it, and the restore's time.

#[path = "common/adt.rs"]
mod adt;
#[path = "../tests/all/common/mod.rs"]
mod common;
#[path = "common/load.rs"]
mod load;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::run::{Client, Weft, a01};
use weft::journal::{self, JournalSync, MessageStatus, Outcome};

fn main() {
    let total = load::env_or("WEFT_BENCH_MESSAGES", 2_000, 100_000) as usize;
    let conns = load::env_or("WEFT_BENCH_CONNS", 4, 4) as usize;
    let secs = load::env_or("WEFT_BENCH_SECS", 1, 5);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");

    let started = Instant::now();
    let journal = journal::open(&data, JournalSync::Normal).unwrap();
    let mut waiting = Vec::with_capacity(5_000);
    for n in 0..total {
        let m = adt::message(n, (total / 10).max(1));
        let outcome = Outcome {
            message_id: m.id.clone(),
            status: MessageStatus::Transformed,
            error: None,
            versions: Vec::new(),
            deliveries: Vec::new(),
        };
        waiting.push(journal.append_settled(m, outcome));
        if waiting.len() == 5_000 {
            for c in waiting.drain(..) {
                c.wait().unwrap();
            }
        }
    }
    for c in waiting.drain(..) {
        c.wait().unwrap();
    }
    let bytes = journal.disk_bytes().unwrap();
    journal.close();
    println!(
        "journal: {total} messages, {:.1} MiB, filled in {:.1} s",
        mib(bytes),
        started.elapsed().as_secs_f64()
    );

    let mut weft = Weft::start(|d| {
        format!(
            r#"[runtime]
data_dir = "{data}"
retain_days = 3650
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-commit"
[destinations.files]
kind = "file"
dir = "{out}"
filename = "{{control_id}}.{{ext}}"
[routes.all]
match = ["ADT^*"]
destinations = ["files"]
"#,
            data = data.display(),
            out = d.join("out").display()
        )
    });

    let connect = load::plain(weft.addr);
    let (n, lat, took) = load::closed_loop(&connect, conns, secs, "QUIET");
    println!(
        "senders alone:        {:6.0} msg/s, p99 {} ({n} messages)",
        n as f64 / took.as_secs_f64(),
        load::ms(load::pct(&lat, 0.99))
    );

    // The same senders, measured while the backup runs (and as long as
    // it takes, at least the same length).
    let running = Arc::new(AtomicBool::new(true));
    let senders: Vec<_> = (0..conns)
        .map(|c| {
            let (running, addr) = (running.clone(), weft.addr);
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut lat = Vec::new();
                let mut i = 0;
                while running.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ack = client.exchange(&a01(&format!("BUSY-{c}-{i}"), &format!("{c}y{i}")));
                    lat.push(t.elapsed());
                    assert_eq!(ack.code, "AA");
                    i += 1;
                }
                lat
            })
        })
        .collect();
    let archive = work.path().join("weft.tar");
    let began = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["backup", archive.to_str().unwrap(), "--config"])
        .arg(weft.config_path())
        .output()
        .unwrap();
    let backup_took = began.elapsed();
    assert!(out.status.success(), "{}", common::printed(&out));
    while began.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(10));
    }
    running.store(false, Ordering::Relaxed);
    let busy = began.elapsed();
    let mut lat: Vec<Duration> = senders
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    lat.sort();
    println!(
        "senders during backup: {:6.0} msg/s, p99 {} ({} messages)",
        lat.len() as f64 / busy.as_secs_f64(),
        load::ms(load::pct(&lat, 0.99)),
        lat.len()
    );
    let size = std::fs::metadata(&archive).unwrap().len();
    println!(
        "backup: {:.2} s, archive {:.1} MiB (journal {:.1} MiB before)",
        backup_took.as_secs_f64(),
        mib(size),
        mib(bytes)
    );
    assert_eq!(weft.stop(), 0);

    let restored = work.path().join("restored");
    let began = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["restore", archive.to_str().unwrap(), "--to"])
        .arg(&restored)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::printed(&out));
    println!(
        "restore (checked, audit trail verified): {:.2} s",
        began.elapsed().as_secs_f64()
    );
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}
