//! The figures that decide issue 18's goals, each repeated and reported as
//! a median with its spread: closed loop at 1, 8 and 64 connections with
//! the journal's fsync on and off (`ack = "after-commit"`), open loop at
//! 1,000 / 5,000 / 10,000 msg/s over 8 connections for after-commit and
//! after-transform (latency from each message's scheduled send time), and
//! what bounds them on this machine: the CPU time weft and the load
//! generator spend per message (from `/proc`, against the cores there
//! are) and the latency of one `fdatasync` on the disk the journal is on.
//!
//! Every configuration runs in a fresh `weft run`, so no run inherits
//! another's backlog, and every ACKed message is checked delivered.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::run::{Weft, adt_config};
use crate::load::{self, closed_loop, ms, pct, plain};
use crate::stages::cpu_time;
use crate::{drain_and_stop, open_loop};

/// One measurement: messages a second, p50 and p99 ACK latency, and the
/// CPU time per message of weft and of this process (the load generator).
#[derive(Clone, Copy, Default)]
struct Sample {
    rate: f64,
    p50: Duration,
    p99: Duration,
    weft_cpu_us: f64,
    gen_cpu_us: f64,
}

/// This process's CPU time so far (user + system).
fn own_cpu() -> Duration {
    cpu_time(std::process::id())
}

/// A fresh `weft run` on the benched route with this ACK mode and sync.
fn start(ack: &str, sync: &str) -> Weft {
    let extra = format!("[runtime]\njournal_sync = \"{sync}\"\nshutdown_grace_s = 600\n");
    Weft::start(|d| adt_config(d, ack, &extra))
}

/// Closed loop at 1, 8 and 64 connections on one fresh run.
fn closed(sync: &str, secs: u64, tag: &str) -> Vec<Sample> {
    let mut weft = start("after-commit", sync);
    let mut sent = 0;
    let mut rows = Vec::new();
    for n in [1usize, 8, 64] {
        let (w0, g0) = (cpu_time(weft.pid()), own_cpu());
        let (count, lat, elapsed) = closed_loop(&plain(weft.addr), n, secs, &format!("{tag}{n}"));
        let (w1, g1) = (cpu_time(weft.pid()), own_cpu());
        sent += count;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / count.max(1) as f64;
        rows.push(Sample {
            rate: count as f64 / elapsed.as_secs_f64(),
            p50: pct(&lat, 0.5),
            p99: pct(&lat, 0.99),
            weft_cpu_us: per(w1 - w0),
            gen_cpu_us: per(g1 - g0),
        });
    }
    drain_and_stop(&mut weft, sent);
    rows
}

/// Open loop at `rate` over 8 connections on one fresh run.
fn open(ack: &str, rate: u64, secs: u64) -> Sample {
    let mut weft = start(ack, "full");
    let (w0, g0) = (cpu_time(weft.pid()), own_cpu());
    let began = Instant::now();
    let (count, lat) = open_loop(&weft, 8, rate, secs);
    let elapsed = began.elapsed();
    let (w1, g1) = (cpu_time(weft.pid()), own_cpu());
    drain_and_stop(&mut weft, count);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / count.max(1) as f64;
    Sample {
        // ACKed messages over the time until the last ACK came back.
        rate: count as f64 / elapsed.as_secs_f64(),
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        weft_cpu_us: per(w1 - w0),
        gen_cpu_us: per(g1 - g0),
    }
}

/// The median of `values` and their range, as "median (min–max)".
fn spread(values: &[f64], show: impl Fn(f64) -> String) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "-".into();
    }
    let median = v[v.len() / 2];
    if v.len() == 1 {
        return show(median);
    }
    format!("{} ({}–{})", show(median), show(v[0]), show(v[v.len() - 1]))
}

fn row(label: &str, runs: &[Sample]) {
    let of = |f: fn(&Sample) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let msec = |x: f64| format!("{:.2}", x * 1e3);
    println!(
        "{label:<28} | {:>22} | {:>22} | {:>24} | weft {:>5} µs + generator {:>4} µs CPU/msg",
        spread(&of(|s| s.rate), |x| format!("{x:.0}")),
        spread(&of(|s| s.p50.as_secs_f64()), msec),
        spread(&of(|s| s.p99.as_secs_f64()), msec),
        format!("{:.0}", median(&of(|s| s.weft_cpu_us))),
        format!("{:.0}", median(&of(|s| s.gen_cpu_us))),
    );
}

/// The latency of writing 4 KiB and `fdatasync`ing it, `count` times, in
/// a file under `dir` (the disk the journal and the outputs are on):
/// median and p99.
fn fdatasync_latency(dir: &Path, count: usize) -> (Duration, Duration) {
    let path = dir.join("fdatasync-probe");
    let Ok(mut file) = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
    else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let block = [7u8; 4096];
    let _ = file.write_all(&block);
    let _ = file.sync_all();
    let mut lat = Vec::with_capacity(count);
    for i in 0..count {
        let t = Instant::now();
        let _ = file.write_at(&block, (i % 256) as u64 * 4096);
        let _ = file.sync_data();
        lat.push(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    lat.sort();
    (pct(&lat, 0.5), pct(&lat, 0.99))
}

/// `WEFT_BENCH_ONLY=figures`: each configuration `WEFT_BENCH_RUNS` times
/// (default 3), the runs of one round taken in turn so that a slow spell
/// of this shared machine falls on all of them.
pub fn section(secs: u64) {
    let runs = load::env_or("WEFT_BENCH_RUNS", 1, 3) as usize;
    let rates = [1_000u64, 5_000, 10_000];
    let acks = ["after-commit", "after-transform"];
    let mut closed_runs: [Vec<Vec<Sample>>; 2] = Default::default();
    let mut open_runs = vec![Vec::new(); acks.len() * rates.len()];
    for r in 0..runs {
        for (i, sync) in ["full", "normal"].into_iter().enumerate() {
            closed_runs[i].push(closed(sync, secs, &format!("F{r}{i}-")));
        }
        for (a, ack) in acks.iter().enumerate() {
            for (k, &rate) in rates.iter().enumerate() {
                open_runs[a * rates.len() + k].push(open(ack, rate, secs));
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\nThe deciding figures: median (min–max) of {runs} runs, {secs} s each, a fresh weft run per configuration, {cores} cores shared with the load generator; route site-normalize + adt-to-fhir -> file destination (fsync)"
    );
    println!(
        "{:<28} | {:>22} | {:>22} | {:>24} |",
        "closed loop, after-commit", "msgs/s", "ACK p50 ms", "ACK p99 ms"
    );
    for (i, sync) in ["journal fsync on", "journal fsync off"].iter().enumerate() {
        for (c, n) in [1, 8, 64].iter().enumerate() {
            let col: Vec<Sample> = closed_runs[i].iter().map(|r| r[c]).collect();
            row(&format!("{n:>2} conn., {sync}"), &col);
        }
    }
    println!(
        "{:<28} | {:>22} | {:>22} | {:>24} |",
        "open loop, 8 conn., fsync on", "msgs/s ACKed", "ACK p50 ms", "ACK p99 ms"
    );
    for (a, ack) in acks.iter().enumerate() {
        for (k, rate) in rates.iter().enumerate() {
            row(
                &format!("{rate:>6}/s {ack}"),
                &open_runs[a * rates.len() + k],
            );
        }
    }
    let dir = std::env::temp_dir();
    let (p50, p99) = fdatasync_latency(&dir, 500);
    println!(
        "this disk ({}): 4 KiB write + fdatasync p50 {} p99 {} (500 in a row)",
        dir.display(),
        ms(p50),
        ms(p99)
    );
    let best: Vec<f64> = closed_runs[0].iter().map(|r| r[2].weft_cpu_us).collect();
    let gen_cpu: Vec<f64> = closed_runs[0].iter().map(|r| r[2].gen_cpu_us).collect();
    let (w, g) = (median(&best).max(1.0), median(&gen_cpu));
    println!(
        "CPU bound at 64 connections, fsync on: weft {w:.0} µs + load generator {g:.0} µs per message on {cores} cores: at most {:.0} msg/s with the generator on the same cores, {:.0} msg/s for weft alone",
        cores as f64 * 1e6 / (w + g),
        cores as f64 * 1e6 / w
    );
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
