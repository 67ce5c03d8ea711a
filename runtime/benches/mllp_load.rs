//! Load on a real `weft run` over MLLP: `cargo bench -p weft --bench mllp_load`.
//!
//! Each message goes through site-normalize and adt-to-fhir to the file
//! destination (atomic write + fsync). The source ACKs after the plugins ran
//! (after-transform). Prints, for 1, 8 and 64 connections sending as fast as
//! ACKs come back, the ACK rate and latency (p50/p99/max), then an open-loop
//! run at a fixed rate (default 5,000 msg/s over 8 connections) where latency
//! is measured from each message's scheduled send time. All of it twice: with
//! the journal fsyncing every group commit (`journal_sync = "full"`, the
//! default) and without (`"normal"`), side by side.
//! Then the cost of TLS: the same closed-loop runs against an MLLP-over-TLS
//! source (rustls, TLS 1.3) beside a plain one, in the same `weft run`
//! (plain, TLS, TLS, plain at each connection count, so neither has the
//! better place), and the time of a full TLS handshake (connect to done).
//! Then the cost of metrics: two `weft run`s side by side, one recording
//! metrics (the default) and one with `WEFT_METRICS=off`, each scraped
//! once a second as Prometheus would, the closed-loop runs alternating
//! (on, off, off, on at each connection count).
//! Then the cost of a shadow run: two `weft run`s side by side, one with a
//! candidate version of adt-to-fhir comparing every message, one without.
//! Then the fsyncs: for each ACK mode at one connection, and after-commit
//! at 64, each connection sending one message at a time, the `fsync`/`fdatasync`/`syncfs` calls of the weft process counted by
//! `perf stat` per thread, per message (skipped where `perf` cannot count
//! system calls).
//! Then the stages: at 64 connections (`WEFT_BENCH_CONNS`), the weft process's CPU time per
//! message split by stage (MLLP read, parse, journal, plugins, dispatch,
//! file writes, ACK, …) by where `perf record`'s call stacks fall.
//! The sync section also prints weft's resident memory: idle, after each
//! closed-loop run, and its peak.
//! Then the deciding figures (`figures`): closed loop with after-commit ACKs,
//! fsync on and off, and open loop at 1,000 / 5,000 / 10,000 msg/s for
//! after-commit and after-transform, each `WEFT_BENCH_RUNS` times (default
//! 3) as a median and its spread, with the CPU per message of weft and of
//! the load generator and this disk's `fdatasync` latency.
//! Then the cost of encryption at rest (`encryption`): two `weft run`s side
//! by side, ack after-commit, one sealing the journal with a key
//! (`[runtime] encryption_key`) and one without, the closed-loop runs
//! alternating; then the key of the first is rotated (`POST /journal/key`)
//! and the background pass's rate is read from its log.
//! `WEFT_BENCH_ONLY=sync,tls,metrics,shadow,encryption,fsyncs,stages,figures` runs only the sections named;
//! `WEFT_BENCH_SECS` sets each run's length (default 5),
//! `WEFT_BENCH_RATE` the open-loop rate.

#[path = "../tests/all/common/mod.rs"]
mod common;
#[path = "common/figures.rs"]
mod figures;
#[path = "common/load.rs"]
mod load;
#[path = "common/rotation.rs"]
mod rotation;
#[path = "common/stages.rs"]
mod stages;

use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::run::{Client, TlsClient, Weft, a01, adt_config};
use load::{Connect, Sender, closed_loop, ms, pct, plain};

fn open_loop(weft: &Weft, connections: usize, rate: u64, secs: u64) -> (usize, Vec<Duration>) {
    let addr = weft.addr;
    let per_conn = rate as f64 / connections as f64;
    let interval = Duration::from_secs_f64(1.0 / per_conn);
    let total_per_conn = (per_conn * secs as f64) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            std::thread::spawn(move || {
                let mut writer = Client::connect(addr);
                let mut reader = writer.reader();
                let (tx, rx) = mpsc::channel::<Instant>();
                let read = std::thread::spawn(move || {
                    let mut lat = Vec::new();
                    while let Ok(scheduled) = rx.recv() {
                        let ack = reader.read_ack().expect("ACK");
                        assert_eq!(ack.code, "AA", "{}", ack.raw);
                        lat.push(scheduled.elapsed());
                    }
                    lat
                });
                for i in 0..total_per_conn {
                    let scheduled = start + interval.mul_f64(i as f64);
                    if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let _ = tx.send(scheduled);
                    writer.send(&a01(&format!("OL-{c}-{i}"), &format!("{c}y{i}")));
                }
                drop(tx);
                read.join().unwrap()
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().unwrap());
    }
    all.sort();
    (all.len(), all)
}

/// A closed-loop run's figures: connections, msgs/s, p50, p99.
type Row = (usize, f64, Duration, Duration);

/// One configuration's figures.
struct Run {
    /// Each closed-loop run.
    closed: Vec<Row>,
    /// Open loop: messages, p50, p99.
    open: (usize, Duration, Duration),
}

fn measure(sync: &str, secs: u64, rate: u64) -> Run {
    let extra = format!("[runtime]\njournal_sync = \"{sync}\"\nshutdown_grace_s = 600\n");
    let mut weft = Weft::start(|d| adt_config(d, "after-transform", &extra));
    let mut sent = 0;
    let mut closed = Vec::new();
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    let mut memory = vec![format!("idle {} MiB", mib(weft.status_kib("VmRSS")))];
    for n in [1usize, 8, 64] {
        let (count, lat, elapsed) = closed_loop(&plain(weft.addr), n, secs, &format!("N{n}"));
        memory.push(format!("{n} conn. {}", mib(weft.status_kib("VmRSS"))));
        sent += count;
        closed.push((
            n,
            count as f64 / elapsed.as_secs_f64(),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
        ));
    }
    let (count, lat) = open_loop(&weft, 8, rate, secs);
    sent += count;
    memory.push(format!("peak {} MiB", mib(weft.status_kib("VmHWM"))));
    println!(
        "journal_sync = {sync}: weft's resident memory, idle and at the end of each closed-loop run: {}",
        memory.join(", ")
    );
    let drained = drain_and_stop(&mut weft, sent);
    println!(
        "journal_sync = {sync}: the file destination's backlog drained {:.1} s after the load; {sent} of {sent} messages written",
        drained.as_secs_f64()
    );
    Run {
        closed,
        open: (count, pct(&lat, 0.5), pct(&lat, 0.99)),
    }
}

/// Closed-loop runs of two targets side by side at 1, 8 and 64
/// connections, in the order A, B, B, A at each (whichever runs second in
/// a pair has an edge on this box, the file destination's backlog of the
/// run before, so each runs once in each place): each one's rows and how
/// many messages each was sent. `tag` starts the control ids.
fn alternate(targets: [&Connect; 2], secs: u64, tag: &str) -> ((Vec<Row>, Vec<Row>), [usize; 2]) {
    let mut rows = (Vec::new(), Vec::new());
    let mut sent = [0usize; 2];
    for n in [1usize, 8, 64] {
        let mut runs = [
            (0usize, Vec::new(), Duration::ZERO),
            (0, Vec::new(), Duration::ZERO),
        ];
        for (i, kind) in [0usize, 1, 1, 0].into_iter().enumerate() {
            let (count, lat, elapsed) =
                closed_loop(targets[kind], n, secs, &format!("{tag}{kind}R{i}N{n}"));
            sent[kind] += count;
            let r = &mut runs[kind];
            r.0 += count;
            r.1.extend(lat);
            r.2 += elapsed;
        }
        for (kind, out) in [(0, &mut rows.0), (1, &mut rows.1)] {
            let (count, lat, elapsed) = &mut runs[kind];
            lat.sort();
            out.push((
                n,
                *count as f64 / elapsed.as_secs_f64(),
                pct(lat, 0.5),
                pct(lat, 0.99),
            ));
        }
    }
    (rows, sent)
}

/// Plain and TLS side by side in one `weft run` (journal fsync on): the
/// closed-loop figures of each, and handshake times.
fn measure_tls(secs: u64) -> (Vec<Row>, Vec<Row>, Vec<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let tls_source = format!(
        "[sources.tls]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\nack = \"after-transform\"\nroute = \"adt\"\n\
         tls = {{ cert = \"{}\", key = \"{}\" }}\n[runtime]\nshutdown_grace_s = 600\n",
        pki.path("server.pem"),
        pki.path("server.key")
    );
    let mut weft = Weft::start(|d| adt_config(d, "after-transform", &tls_source));
    let config = weft::tls::client_config(&weft::tls::ClientTls {
        ca: Some(pki.dir.join("server-ca.pem")),
        ..Default::default()
    })
    .unwrap();
    let tls_addr = weft.addrs["tls"];
    let tls: Connect = {
        let config = config.clone();
        Arc::new(move || Box::new(TlsClient::connect(tls_addr, &config)) as Box<dyn Sender>)
    };
    let (rows, counts) = alternate([&plain(weft.addr), &tls], secs, "K");
    let sent = counts[0] + counts[1];
    let mut handshakes: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            drop(TlsClient::connect(tls_addr, &config));
            t.elapsed()
        })
        .collect();
    handshakes.sort();
    drain_and_stop(&mut weft, sent);
    (rows.0, rows.1, handshakes)
}

/// The same closed-loop runs against a `weft run` recording metrics and
/// one that does not (`WEFT_METRICS=off`), alternating; both are scraped
/// once a second meanwhile. The rows of each, the last scrape's size and
/// the time of each scrape of the one recording (curl's, connection to
/// last byte).
fn measure_metrics(secs: u64) -> (Vec<Row>, Vec<Row>, usize, Vec<Duration>) {
    let extra = "[runtime]\nshutdown_grace_s = 600\n";
    let with_admin = |d: &std::path::Path, admin: SocketAddr| {
        adt_config(
            d,
            "after-transform",
            &format!("{extra}[admin]\nlisten = \"{admin}\"\n"),
        )
    };
    let (admin_on, admin_off) = (
        common::fhir_server::free_addr(),
        common::fhir_server::free_addr(),
    );
    let mut on = Weft::start(|d| with_admin(d, admin_on));
    let mut off = Weft::start_env(&[], &[("WEFT_METRICS", "off")], |d| {
        with_admin(d, admin_off)
    });
    let apis = [on.api(admin_on), off.api(admin_off)];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut last, mut times) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, api) in apis.iter().enumerate() {
                    let t = Instant::now();
                    let (code, text) = common::curl(&[
                        "-H",
                        &format!("Authorization: Bearer {}", api.token),
                        &format!("http://{}/metrics", api.addr),
                    ]);
                    assert_eq!(code, 200);
                    if i == 0 {
                        times.push(t.elapsed());
                        last = text.len();
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            (last, times)
        })
    };
    let (rows, sent) = alternate([&plain(on.addr), &plain(off.addr)], secs, "M");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (scrape_bytes, mut scrapes) = scraper.join().unwrap();
    scrapes.sort();
    for (weft, sent) in [(&mut on, sent[0]), (&mut off, sent[1])] {
        drain_and_stop(weft, sent);
    }
    (rows.0, rows.1, scrape_bytes, scrapes)
}

/// Waits (ten minutes at most) until `sent` outputs are written, stops
/// the weft, and checks that every ACKed message was delivered; returns
/// how long the backlog took to drain.
fn drain_and_stop(weft: &mut Weft, sent: usize) -> Duration {
    let drain = Instant::now();
    while weft.out_files().len() < sent && drain.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let drained = drain.elapsed();
    assert_eq!(weft.stop(), 0);
    assert_eq!(
        weft.out_files().len(),
        sent,
        "every ACKed message was delivered"
    );
    drained
}

fn main() {
    let secs = load::env_or("WEFT_BENCH_SECS", 1, 5);
    let rate = load::env_or("WEFT_BENCH_RATE", 500, 5000);
    println!(
        "weft run over MLLP, site-normalize + adt-to-fhir -> file destination (fsync), ack after-transform, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // WEFT_BENCH_ONLY=sync,tls,metrics picks sections (default: all).
    let only = std::env::var("WEFT_BENCH_ONLY").unwrap_or_default();
    let wants = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    if wants("sync") {
        sync_section(secs, rate);
    }
    if wants("tls") {
        tls_section(secs);
    }
    if wants("metrics") {
        metrics_section(secs);
    }
    if wants("shadow") {
        shadow_section(secs);
    }
    if wants("encryption") {
        encryption_section(secs);
    }
    if wants("fsyncs") {
        fsyncs_section();
    }
    if wants("stages") {
        stages_section(secs);
    }
    if wants("figures") {
        figures::section(secs);
    }
}

/// The cost of each stage at 64 connections, closed loop, journal fsync
/// on: the weft process's CPU time per ACKed message (from `/proc`),
/// split by where `perf record`'s samples fall (`stages`); the bytes the
/// journal's writer and the I/O threads passed to `write` per message.
/// Two file destinations compared, alternating (A, B, B, A): each output
/// written alone (`batch = 1`, 32 under way: the way before batches) and
/// in batches (the defaults). `WEFT_BENCH_ACK` picks the ACK mode
/// (default after-commit); `WEFT_BENCH_PERF_DATA` keeps the last
/// recording at that path, for `perf report`.
fn stages_section(secs: u64) {
    let ack = std::env::var("WEFT_BENCH_ACK").unwrap_or_else(|_| "after-commit".into());
    let configs = [("alone", "batch = 1\nconcurrency = 32\n"), ("batched", "")];
    let mut totals: [StageRun; 2] = Default::default();
    for (i, kind) in [0usize, 1, 1, 0].into_iter().enumerate() {
        let run = stage_run(&ack, configs[kind].1, secs, &format!("S{i}"));
        totals[kind].add(run);
    }
    println!(
        "\nCost per message by stage: {} connections, closed loop, ack {ack}, journal fsync on; the file destination writing each output alone (batch = 1, concurrency = 32) or in batches (the defaults: batch = 64, concurrency = 4), two runs of each alternating",
        load::env_or("WEFT_BENCH_CONNS", 64, 64)
    );
    for (name, t) in configs.iter().map(|c| c.0).zip(&totals) {
        let m = t.messages.max(1) as f64;
        println!(
            "{name:<8}: {} ACKs in {:.1} s ({:.0} msg/s; {} outputs written meanwhile); weft's CPU {:.0} µs per message; bytes passed to write() per message: journal writer {:.0}, I/O threads {:.0}",
            t.messages,
            t.window.as_secs_f64(),
            m / t.window.as_secs_f64(),
            t.outputs,
            t.cpu.as_secs_f64() * 1e6 / m,
            t.journal_bytes as f64 / m,
            t.io_bytes as f64 / m,
        );
    }
    if totals.iter().any(|t| t.profile.total == 0) {
        println!("(perf could not record call stacks here: the split by stage is skipped)");
        return;
    }
    println!("stage                              | alone µs/msg (share) | batched µs/msg (share)");
    for stage in stages::STAGES {
        let cell = |t: &StageRun| {
            let share = t.profile.share(stage);
            let per = t.cpu.as_secs_f64() * 1e6 / t.messages.max(1) as f64;
            format!("{:>8.1} ({:>5.1}%)", share * per, share * 100.0)
        };
        println!(
            "{stage:<34} | {:>20} | {:>22}",
            cell(&totals[0]),
            cell(&totals[1])
        );
    }
    println!(
        "({} and {} samples)",
        totals[0].profile.total, totals[1].profile.total
    );
}

/// What one stage run measured over its window.
#[derive(Default)]
struct StageRun {
    messages: u64,
    window: Duration,
    cpu: Duration,
    journal_bytes: u64,
    io_bytes: u64,
    outputs: usize,
    profile: stages::Profile,
}

impl StageRun {
    fn add(&mut self, other: StageRun) {
        self.messages += other.messages;
        self.window += other.window;
        self.cpu += other.cpu;
        self.journal_bytes += other.journal_bytes;
        self.io_bytes += other.io_bytes;
        self.outputs += other.outputs;
        for (stage, n) in other.profile.samples {
            *self.profile.samples.entry(stage).or_default() += n;
        }
        self.profile.total += other.profile.total;
    }
}

/// One `weft run` with `destination` added to the file destination's
/// settings, under 64 closed-loop connections: a second of warm-up, then
/// `secs` recorded by `perf`.
fn stage_run(ack: &str, destination: &str, secs: u64, tag: &str) -> StageRun {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let connections = load::env_or("WEFT_BENCH_CONNS", 64, 64) as usize;
    let mut weft = Weft::start(|d| {
        adt_config(d, ack, "[runtime]\nshutdown_grace_s = 600\n").replace(
            "[destinations.files]\n",
            &format!("[destinations.files]\n{destination}"),
        )
    });
    let (acked, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let addr = weft.addr;
    let senders: Vec<_> = (0..connections)
        .map(|c| {
            let (acked, stop, tag) = (acked.clone(), stop.clone(), tag.to_string());
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let reply =
                        client.exchange(&a01(&format!("{tag}-{c}-{i}"), &format!("{c}s{i}")));
                    assert_eq!(reply.code, "AA", "{}", reply.raw);
                    acked.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let pid = weft.pid();
    let kept = std::env::var_os("WEFT_BENCH_PERF_DATA").map(std::path::PathBuf::from);
    let data = kept
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("weft-stages-{pid}.data")));
    let sample = |weft: &Weft| {
        (
            acked.load(Ordering::Relaxed),
            stages::cpu_time(pid),
            stages::written_by(pid, "weft-journal"),
            stages::written_by(pid, "weft-io"),
            weft.out_files().len(),
            Instant::now(),
        )
    };
    let before = sample(&weft);
    let recorded = stages::record(pid, secs, &data);
    let after = sample(&weft);
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().expect("sender");
    }
    let sent = acked.load(Ordering::Relaxed) as usize;
    let profile = recorded.then(|| stages::attribute(&data)).flatten();
    if kept.is_none() {
        let _ = std::fs::remove_file(&data);
    }
    drain_and_stop(&mut weft, sent);
    StageRun {
        messages: after.0 - before.0,
        window: after.5 - before.5,
        cpu: after.1 - before.1,
        journal_bytes: after.2 - before.2,
        io_bytes: after.3 - before.3,
        outputs: after.4 - before.4,
        profile: profile.unwrap_or_default(),
    }
}

/// For each ACK mode (and after-commit at 64 connections too): each
/// connection sending one message at a time, the
/// ACK latency and the `fsync`/`fdatasync`/`syncfs` calls per message, by thread
/// (the journal's writer, the rest: the file destination's writes run on
/// tokio's blocking threads), counted by `perf stat` on the weft process
/// until every output is delivered.
fn fsyncs_section() {
    let n = load::env_or("WEFT_BENCH_FSYNC_MSGS", 100, 500) as usize;
    println!(
        "\nfsync + fdatasync + syncfs calls per message, by thread; each connection one message at a time ({n} messages), until all are delivered; journal fsync on"
    );
    println!(
        "ack mode        | conns |  ACK p50     ACK p99    | journal writer | other threads | total"
    );
    for (ack, connections) in [
        ("after-commit", 1),
        ("after-transform", 1),
        ("after-delivery", 1),
        ("after-commit", 64),
    ] {
        let mut weft = Weft::start(|d| adt_config(d, ack, ""));
        let counts = std::env::temp_dir().join(format!("weft-fsyncs-{}.csv", weft.pid()));
        let perf = std::process::Command::new("perf")
            .args(["stat", "--per-thread", "-x,", "-e"])
            .arg("syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_syncfs")
            .arg("-p")
            .arg(weft.pid().to_string())
            .arg("-o")
            .arg(&counts)
            .spawn();
        let Ok(mut perf) = perf else {
            println!("(perf is not installed: skipped)");
            return;
        };
        // perf attaches to each thread as it starts counting.
        std::thread::sleep(Duration::from_millis(500));
        let addr = weft.addr;
        let senders: Vec<_> = (0..connections)
            .map(|c| {
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    let mut latencies = Vec::new();
                    for i in (c..n).step_by(connections) {
                        let t = Instant::now();
                        client.send(&a01(&format!("F{i}"), &format!("P{}", i % 50)));
                        let reply = client.read_ack().expect("ACK");
                        assert_eq!(reply.code, "AA", "{}", reply.raw);
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies: Vec<Duration> = senders
            .into_iter()
            .flat_map(|s| s.join().expect("sender"))
            .collect();
        latencies.sort();
        let drain = Instant::now();
        while weft.out_files().len() < n && drain.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SIGINT: perf prints its counts and exits.
        unsafe { libc::kill(perf.id() as i32, libc::SIGINT) };
        let _ = perf.wait();
        assert_eq!(weft.stop(), 0);
        let text = std::fs::read_to_string(&counts).unwrap_or_default();
        let _ = std::fs::remove_file(&counts);
        // Lines: "thread-tid,count,unit,event,…"; "<not counted>" or
        // "<not supported>" where perf cannot count system calls.
        let (mut journal, mut other, mut counted) = (0u64, 0u64, false);
        for line in text
            .lines()
            .filter(|l| l.contains("sys_enter_f") || l.contains("sys_enter_syncfs"))
        {
            let mut fields = line.split(',');
            let thread = fields.next().unwrap_or_default();
            if let Some(count) = fields.next().and_then(|c| c.trim().parse::<u64>().ok()) {
                counted = true;
                if thread.starts_with("weft-journal") {
                    journal += count;
                } else {
                    other += count;
                }
            }
        }
        if !counted {
            println!(
                "{ack:<15} | {connections:>5} | (perf could not count system calls here: skipped)"
            );
            continue;
        }
        let per = |c: u64| c as f64 / n as f64;
        println!(
            "{ack:<15} | {connections:>5} |  {}  {} | {:>14.2} | {:>13.2} | {:>5.2}",
            ms(pct(&latencies, 0.5)),
            ms(pct(&latencies, 0.99)),
            per(journal),
            per(other),
            per(journal + other)
        );
    }
}

/// Two weft runs side by side, one with a candidate version of adt-to-fhir
/// (the same component, so every message compared is compared in full) at
/// `candidate_share` `WEFT_BENCH_SHARE` (default 0.2), one without; the
/// closed-loop runs alternate.
fn shadow_section(secs: u64) {
    let share = std::env::var("WEFT_BENCH_SHARE").unwrap_or_else(|_| "0.2".into());
    let extra = "[runtime]\nshutdown_grace_s = 600\n";
    let admin = common::fhir_server::free_addr();
    let candidate = common::wasm("adt-to-fhir").display().to_string();
    let mut with = Weft::start(|d| {
        adt_config(
            d,
            "after-transform",
            &format!("{extra}[admin]\nlisten = \"{admin}\"\n"),
        )
        .replace(
            "[plugins.adt-to-fhir.config]",
            &format!(
                "candidate = \"{candidate}\"\ncandidate_share = {share}\n[plugins.adt-to-fhir.config]"
            ),
        )
    });
    let mut without = Weft::start(|d| adt_config(d, "after-transform", extra));
    let api = with.api(admin);
    let (rows, sent) = alternate([&plain(with.addr), &plain(without.addr)], secs, "S");
    let (_, status) = api.call("GET", "/plugins", &[], "");
    let shadow = status["plugins"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "adt-to-fhir"))
        .map(|p| p["candidate"].clone())
        .unwrap_or_default();
    for (weft, sent) in [(&mut with, sent[0]), (&mut without, sent[1])] {
        drain_and_stop(weft, sent);
    }
    println!(
        "\nshadow runs: a candidate of adt-to-fhir (candidate_share = {share}) beside a weft run without one, side by side, journal fsync on"
    );
    side_by_side("with a candidate", "without", &rows.0, &rows.1);
    println!(
        "the candidate: compared {}, skipped {}, time {} per thousand of the live version's",
        shadow["compared"], shadow["skipped"], shadow["time_permille"]
    );
}

/// Two closed-loop tables side by side: msgs/s, p50 and p99 at each
/// connection count.
fn side_by_side(left: &str, right: &str, a: &[Row], b: &[Row]) {
    println!("            |  {left:<34}|  {right}");
    println!("connections |  msgs/s      p50         p99      |  msgs/s      p50         p99");
    for (x, y) in a.iter().zip(b) {
        println!(
            "{:>11} | {:>7.0}  {}  {} | {:>7.0}  {}  {}",
            x.0,
            x.1,
            ms(x.2),
            ms(x.3),
            y.1,
            ms(y.2),
            ms(y.3)
        );
    }
}

fn sync_section(secs: u64, rate: u64) {
    println!(
        "journal fsync on every group commit (journal_sync = full, the default) vs not (normal)\n"
    );
    let full = measure("full", secs, rate);
    let normal = measure("normal", secs, rate);
    println!();
    side_by_side(
        "journal fsync (full)",
        "no journal fsync (normal)",
        &full.closed,
        &normal.closed,
    );
    println!(
        "\nopen loop at {rate} msg/s over 8 connections ({secs} s): full p50 {} p99 {} ({} msgs); normal p50 {} p99 {} ({} msgs)",
        ms(full.open.1),
        ms(full.open.2),
        full.open.0,
        ms(normal.open.1),
        ms(normal.open.2),
        normal.open.0
    );
}

fn tls_section(secs: u64) {
    let (plain_rows, tls_rows, handshakes) = measure_tls(secs);
    println!(
        "\nTLS (MLLP over TLS 1.3, rustls/ring) beside plain MLLP, same weft run, journal fsync on"
    );
    side_by_side("plain", "TLS", &plain_rows, &tls_rows);
    println!(
        "TLS handshake (connect to done, {} in a row): p50 {} p99 {}",
        handshakes.len(),
        ms(pct(&handshakes, 0.5)),
        ms(pct(&handshakes, 0.99))
    );
}

fn metrics_section(secs: u64) {
    let (on_rows, off_rows, scrape_bytes, scrapes) = measure_metrics(secs);
    println!(
        "\nmetrics recorded (the default) beside WEFT_METRICS=off, two weft runs side by side, each scraped once a second, journal fsync on"
    );
    side_by_side("metrics on", "metrics off", &on_rows, &off_rows);
    println!(
        "a scrape: {scrape_bytes} bytes; {} scrapes under load, curl's time p50 {} max {}",
        scrapes.len(),
        ms(pct(&scrapes, 0.5)),
        ms(scrapes.last().copied().unwrap_or_default())
    );
}

fn encryption_section(secs: u64) {
    let keys = tempfile::tempdir().expect("a temporary directory");
    let (first, second) = (
        rotation::new_key(keys.path(), "a.key"),
        rotation::new_key(keys.path(), "b.key"),
    );
    let admin = common::fhir_server::free_addr();
    let extra = "shutdown_grace_s = 600\n";
    let mut with = Weft::start(|d| {
        adt_config(
            d,
            "after-commit",
            &format!(
                "[runtime]\n{extra}encryption_key = \"{}\"\n[admin]\nlisten = \"{admin}\"\n",
                first.display()
            ),
        )
    });
    let mut without =
        Weft::start(|d| adt_config(d, "after-commit", &format!("[runtime]\n{extra}")));
    let (rows, sent) = alternate([&plain(with.addr), &plain(without.addr)], secs, "E");
    println!(
        "\nencryption at rest: a weft run sealing its journal (ChaCha20-Poly1305, keyed hashes of identifiers) beside one without a key, side by side, ack after-commit, journal fsync on"
    );
    side_by_side("with a key", "without", &rows.0, &rows.1);
    // The rotation of everything the first holds, with nothing else going on.
    let (values, seconds) = rotation::rotate_and_time(&with, admin, &second);
    println!(
        "key rotation: {} messages journaled, {values:.0} values sealed again in {seconds:.2} s ({:.0} values/s, {:.0} messages/s), in the background",
        sent[0],
        values / seconds.max(1e-9),
        sent[0] as f64 / seconds.max(1e-9)
    );
    for (weft, sent) in [(&mut with, sent[0]), (&mut without, sent[1])] {
        drain_and_stop(weft, sent);
    }
}
