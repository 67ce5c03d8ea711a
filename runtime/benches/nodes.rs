//! Nodes sharing a PostgreSQL journal beside one node on SQLite:
//! `cargo bench -p weft --bench nodes`.
//!
//! Each message goes through site-normalize and adt-to-fhir to each node's
//! own file destination (atomic write + fsync); the source ACKs after the
//! intake's commit (`ack = "after-commit"`: on PostgreSQL, after its COMMIT
//! with `synchronous_commit = on`). The PostgreSQL server is the test one
//! (Debian's package, `initdb` into a temporary directory) with `fsync` on.
//! For SQLite with one node and PostgreSQL with 1, 2 and 3 nodes, prints
//! the ACK rate and latency (p50/p99) at 8 and 64 connections spread
//! evenly over the nodes; every ACKed message is checked delivered before
//! the next configuration starts. On one machine the nodes share its
//! cores with each other and with the server: the figures show the
//! overhead of the shared journal, not scale-out.
//! Then failover: three nodes with `lease_s = 5`; one is sent a burst and
//! killed (SIGKILL) as its last ACK arrives; printed is the time from the
//! kill to the first of its messages delivered by another node, and until
//! all of them are.
//! Then what one database serves on its own, with no `weft run` beside it:
//! intakes (8 writers through one journal's group commit), outcomes with
//! one delivery each (ordered per patient, 1,000 patients), and
//! deliveries claimed (`FOR UPDATE SKIP LOCKED`, a key's head only) and
//! marked delivered by 4 dispatchers, each per second.
//! Then encryption at rest on PostgreSQL: one node without a key and one
//! with (`encryption_key`), each on a database of its own, at 8
//! connections; then the key of the second is rotated (`POST
//! /journal/key`) with nothing else going on, and printed is how fast the
//! background pass sealed its journal again.
//! `WEFT_BENCH_SECS` sets each run's length (default 5; 1 when run as a
//! test), `WEFT_BENCH_ONLY=throughput,failover,database,encryption` picks
//! sections.

#[path = "common/adt.rs"]
mod adt;
#[path = "../tests/all/common/mod.rs"]
mod common;
#[path = "common/load.rs"]
mod load;
#[path = "common/rotation.rs"]
mod rotation;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use weft::journal::postgres::PgJournal;
use weft::journal::{Journal, MessageStatus, NewDelivery, Outcome};

use common::run::{Weft, adt_config};
use load::{closed_loop, ms, pct, spread};

/// The configuration of node `name` of the journal at `url` (SQLite when
/// `url` is None).
fn node(url: Option<&str>, name: &str, lease_s: u64) -> Weft {
    let journal = match url {
        Some(url) => format!(
            "[journal]\nengine = \"postgres\"\nurl = \"{url}\"\nnode = \"{name}\"\nlease_s = {lease_s}\n"
        ),
        None => String::new(),
    };
    let extra = format!("[runtime]\nshutdown_grace_s = 600\n{journal}");
    Weft::start(|d| adt_config(d, "after-commit", &extra))
}

/// Node `name` of the journal at `url` sealing with `key`, with an admin
/// API on `admin`.
fn sealing_node(url: &str, key: &std::path::Path, admin: std::net::SocketAddr) -> Weft {
    let extra = format!(
        "[runtime]\nshutdown_grace_s = 600\nencryption_key = \"{}\"\n\
         [journal]\nengine = \"postgres\"\nurl = \"{url}\"\nnode = \"edge-k\"\n\
         [admin]\nlisten = \"{admin}\"\n",
        key.display()
    );
    Weft::start(|d| adt_config(d, "after-commit", &extra))
}

fn encryption(cluster: &weft_test_postgres::Cluster, secs: u64) {
    const CONNS: usize = 8;
    let keys = tempfile::tempdir().expect("a temporary directory");
    let (first, second) = (
        rotation::new_key(keys.path(), "a.key"),
        rotation::new_key(keys.path(), "b.key"),
    );
    let admin = common::fhir_server::free_addr();
    println!("\nencryption at rest on PostgreSQL, 1 node, {CONNS} connections");
    let mut plain = vec![node(
        Some(&cluster.database().expect("a database")),
        "edge-p",
        15,
    )];
    let mut sealed = vec![sealing_node(
        &cluster.database().expect("a database"),
        &first,
        admin,
    )];
    let mut sent = [0usize; 2];
    // Alternating, a second at a time, so both see the same machine.
    let mut rows: [(usize, Vec<Duration>, Duration); 2] = Default::default();
    for round in 0..secs.max(1) * 2 {
        for (i, nodes) in [&plain, &sealed].into_iter().enumerate() {
            let (n, lat, elapsed) = closed_loop(
                &spread(vec![nodes[0].addr]),
                CONNS,
                1,
                &format!("E{i}-{round}"),
            );
            sent[i] += n;
            rows[i].0 += n;
            rows[i].1.extend(lat);
            rows[i].2 += elapsed;
        }
    }
    for (label, (n, lat, elapsed)) in ["without a key", "with a key"].iter().zip(rows.iter_mut()) {
        lat.sort_unstable();
        println!(
            "{label:<22} {CONNS:>5} {:>10.0} {} {}",
            *n as f64 / elapsed.as_secs_f64(),
            ms(pct(lat, 0.5)),
            ms(pct(lat, 0.99)),
        );
    }
    let (values, seconds) = rotation::rotate_and_time(&sealed[0], admin, &second);
    println!(
        "key rotation on PostgreSQL: {} messages journaled, {values:.0} values sealed again in {seconds:.2} s ({:.0} values/s), in the background",
        sent[1],
        values / seconds.max(1e-9),
    );
    drain_and_stop(&mut plain, sent[0]);
    drain_and_stop(&mut sealed, sent[1]);
}

/// Every node's written outputs.
fn delivered(nodes: &[Weft]) -> usize {
    nodes.iter().map(|n| n.out_files().len()).sum()
}

/// Waits (ten minutes at most) until `sent` outputs are written across the
/// nodes, stops them, and checks every ACKed message was delivered.
fn drain_and_stop(nodes: &mut [Weft], sent: usize) -> Duration {
    let drain = Instant::now();
    while delivered(nodes) < sent && drain.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let drained = drain.elapsed();
    for n in nodes.iter_mut() {
        assert_eq!(n.stop(), 0, "{}", n.log_text());
    }
    assert_eq!(delivered(nodes), sent, "every ACKed message was delivered");
    drained
}

fn throughput(cluster: &weft_test_postgres::Cluster, secs: u64) {
    println!(
        "{:<22} {:>5} {:>10} {:>11} {:>11}",
        "journal", "conns", "msgs/s", "p50 ACK", "p99 ACK"
    );
    for (label, count) in [
        ("SQLite, 1 node", 0usize),
        ("PostgreSQL, 1 node", 1),
        ("PostgreSQL, 2 nodes", 2),
        ("PostgreSQL, 3 nodes", 3),
    ] {
        let url = (count > 0).then(|| cluster.database().expect("a database"));
        let mut nodes: Vec<Weft> = (0..count.max(1))
            .map(|i| node(url.as_deref(), &format!("edge-{i}"), 15))
            .collect();
        let connect = spread(nodes.iter().map(|n| n.addr).collect());
        let mut sent = 0;
        for conns in [8usize, 64] {
            let (n, lat, elapsed) =
                closed_loop(&connect, conns, secs, &format!("T{count}-{conns}"));
            sent += n;
            println!(
                "{label:<22} {conns:>5} {:>10.0} {} {}",
                n as f64 / elapsed.as_secs_f64(),
                ms(pct(&lat, 0.5)),
                ms(pct(&lat, 0.99)),
            );
        }
        let drained = drain_and_stop(&mut nodes, sent);
        println!(
            "{label:<22} all {sent} delivered; the destinations' backlog drained {:.1} s after the load",
            drained.as_secs_f64()
        );
    }
}

fn failover(cluster: &weft_test_postgres::Cluster) {
    const LEASE_S: u64 = 5;
    const BURST: usize = 400;
    let url = cluster.database().expect("a database");
    let mut nodes: Vec<Weft> = (0..3)
        .map(|i| node(Some(&url), &format!("edge-{i}"), LEASE_S))
        .collect();
    // A burst at edge-1 alone, then SIGKILL as its last ACK arrives: what
    // it accepted and had not yet delivered is the others' to take over.
    let connect = spread(vec![nodes[1].addr]);
    let threads: Vec<_> = (0..8)
        .map(|c| {
            let connect = connect.clone();
            std::thread::spawn(move || {
                let mut client = connect();
                for i in 0..BURST / 8 {
                    let msg = common::run::a01(&format!("FO-{c}-{i}"), &format!("F{c}x{i}"));
                    assert_eq!(client.exchange(&msg), "AA");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a sender");
    }
    nodes[1].kill();
    let killed = Instant::now();
    // Outputs by name: one edge-1 wrote and then died before recording is
    // written again by its taker (at least once), and counted once.
    let names = |n: &Weft| -> BTreeSet<String> {
        n.out_files()
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect()
    };
    let own = names(&nodes[1]);
    let taken = |nodes: &[Weft]| -> BTreeSet<String> {
        names(&nodes[0]).union(&names(&nodes[2])).cloned().collect()
    };
    let mut first = None;
    let mut all = BTreeSet::new();
    while all.len() < BURST && killed.elapsed() < Duration::from_secs(300) {
        let by_others = taken(&nodes);
        if first.is_none() && !by_others.is_empty() {
            first = Some(killed.elapsed());
        }
        all = own.union(&by_others).cloned().collect();
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = killed.elapsed();
    let first = first.unwrap_or(done);
    println!(
        "failover (3 nodes, lease_s = {LEASE_S}): {BURST} messages ACKed by edge-1, {} delivered by it before \
         SIGKILL; the first of the rest delivered by another node {:.2} s after the kill, all {:.2} s after",
        own.len(),
        first.as_secs_f64(),
        done.as_secs_f64()
    );
    assert_eq!(all.len(), BURST, "every ACKed message was delivered");
    for i in [0, 2] {
        assert_eq!(nodes[i].stop(), 0, "{}", nodes[i].log_text());
    }
}

/// `threads` threads doing `step(i)` with i = 0, 1, 2… (shared) for
/// `secs`, or until a step says there is no more: how many steps were
/// begun, and how long it took.
fn for_secs(
    threads: usize,
    secs: u64,
    step: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> (usize, Duration) {
    let (next, step) = (Arc::new(AtomicUsize::new(0)), Arc::new(step));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (next, step) = (next.clone(), step.clone());
            std::thread::spawn(move || {
                while Instant::now() < until && step(next.fetch_add(1, Ordering::Relaxed)) {}
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker");
    }
    (next.load(Ordering::Relaxed), start.elapsed())
}

fn database(cluster: &weft_test_postgres::Cluster, secs: u64) {
    let url = cluster.database().expect("a database");
    let journal = Arc::new(
        PgJournal::open(&url, "bench", "bench", Duration::from_secs(15)).expect("the journal"),
    );
    let rate = |n: usize, took: Duration| n as f64 / took.as_secs_f64();
    let j = journal.clone();
    let (intakes, took) = for_secs(8, secs, move |i| {
        j.append(adt::message(i, 1_000)).wait().expect("an intake");
        true
    });
    let j = journal.clone();
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let (outcomes, took_outcomes) = for_secs(8, secs, move |i| {
        if i >= intakes {
            return false;
        }
        let outcome = Outcome {
            message_id: adt::message(i, 1_000).id,
            status: MessageStatus::Transformed,
            error: None,
            versions: Vec::new(),
            deliveries: vec![NewDelivery {
                destination: "out".into(),
                n: 1,
                content_type: "application/fhir+json".into(),
                body: br#"{"resourceType":"Bundle"}"#.to_vec(),
                // Each patient's messages in order, as `ordering = "per-key"`.
                ordering_key: Some(format!("p{}", i % 1_000)),
            }],
        };
        j.record(outcome).wait().expect("an outcome");
        d.fetch_add(1, Ordering::Relaxed);
        true
    });
    let outcomes = outcomes.min(done.load(Ordering::Relaxed));
    // Four dispatchers, each of its own node run (one run's dispatcher
    // keeps its own claims apart by its `busy` list; four runs need nothing).
    let mut dispatchers = vec![journal.clone()];
    for k in 1..4 {
        dispatchers.push(Arc::new(
            PgJournal::open(
                &url,
                &format!("bench-{k}"),
                "bench",
                Duration::from_secs(15),
            )
            .expect("the journal"),
        ));
    }
    let delivered = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let handles: Vec<_> = dispatchers
        .iter()
        .map(|j| {
            let (j, d) = (j.clone(), delivered.clone());
            std::thread::spawn(move || {
                while Instant::now() < until {
                    let due = j
                        .due("out", weft::journal::now_ms(), 32, &[])
                        .expect("due deliveries");
                    if due.is_empty() && d.load(Ordering::Relaxed) >= outcomes {
                        break;
                    }
                    let commits: Vec<_> = due
                        .iter()
                        .map(|x| j.delivered(x.id, weft::journal::now_ms()))
                        .collect();
                    for c in commits {
                        c.wait().expect("delivered");
                    }
                    d.fetch_add(due.len(), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a dispatcher");
    }
    let took_claims = start.elapsed();
    let delivered = delivered.load(Ordering::Relaxed);
    println!(
        "one database, no weft run beside it: {:.0} intakes/s (8 writers, group commit), \
         {:.0} outcomes/s with a delivery each (8 writers), {:.0} deliveries/s claimed and \
         marked delivered (4 node runs' dispatchers, up to 32 a claim); {intakes} intakes, {outcomes} outcomes, \
         {delivered} deliveries",
        rate(intakes, took),
        rate(outcomes, took_outcomes),
        rate(delivered, took_claims),
    );
    for j in dispatchers {
        j.close();
    }
}

fn main() {
    let secs = load::env_or("WEFT_BENCH_SECS", 1, 5);
    let only = std::env::var("WEFT_BENCH_ONLY").unwrap_or_default();
    let wants = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    println!(
        "weft run over MLLP, site-normalize + adt-to-fhir -> file destination (fsync), ack after-commit, \
         {} cores shared by every node and the PostgreSQL server (fsync on)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let cluster = weft_test_postgres::Cluster::start(true).expect("a PostgreSQL server");
    if wants("throughput") {
        throughput(&cluster, secs);
    }
    if wants("failover") {
        failover(&cluster);
    }
    if wants("database") {
        database(&cluster, secs);
    }
    if wants("encryption") {
        encryption(&cluster, secs);
    }
}
