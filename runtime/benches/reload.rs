//! Hot reload on a real `weft run` under MLLP traffic:
//! `cargo bench -p weft --bench reload`.
//!
//! The route is the default one (site-normalize, then adt-to-fhir, to the
//! file destination); two connections send A01s, each waiting for its ACK
//! (after-transform): either paced at `WEFT_BENCH_RATE` msg/s in all
//! (default 1,000), or as fast as the ACKs come back, which saturates both
//! cores. Each swap writes a new version of one plugin over its file
//! (another sha256: the same component with a custom section appended, so
//! it is really compiled again), the way `cp` does.
//!
//! Prints:
//! - **swap time**: from the start of the file write to the ACK of the
//!   first message the new version processed (from the journal's record of
//!   the versions each message went through), median and max over
//!   `WEFT_BENCH_SWAPS` swaps (default 20) of each shipped plugin, under
//!   both loads, with the reload's own share (compile, checks, swap);
//! - **memory**: the process's resident set after the first swap and after
//!   `WEFT_BENCH_MEMORY_SWAPS` swaps (default 200), with the curve between,
//!   each in a fresh process: without traffic, and under the paced load
//!   (after 5 s of it, so the caches traffic fills are full), beside a
//!   control run of the same load for the same time without swaps. Old versions must be
//!   freed, so the curve flattens instead of climbing.

#[path = "../tests/all/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fhir_server::free_addr;
use common::run::{Client, Weft, a01};
use common::{admin, live_sha, plugin_versions, with_custom_section};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// control id → when its ACK came.
type Acks = Arc<Mutex<HashMap<String, Instant>>>;

/// Two connections sending until stopped: `rate` msg/s in all, or as fast
/// as ACKs come back (`None`).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, acks: &Acks, rate: Option<u64>, tag: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|c| {
                let (stop, acks, tag) = (stop.clone(), acks.clone(), tag.to_string());
                let interval = rate.map(|r| Duration::from_secs_f64(2.0 / r as f64));
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    let started = Instant::now();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(every) = interval {
                            let due = started + every * i as u32;
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                        let id = format!("{tag}{c}N{i}");
                        let ack = client.exchange(&a01(&id, &format!("{c}-{}", i % 500)));
                        assert_eq!(ack.code, "AA", "{}", ack.raw);
                        acks.lock().unwrap().insert(id, Instant::now());
                        i += 1;
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

struct Plugin {
    name: &'static str,
    path: PathBuf,
    bytes: Vec<u8>,
}

/// Writes version `n` of `p` and waits until the runtime says it is live;
/// returns (write start, sha256, the reload's own time).
fn swap(p: &Plugin, n: usize, admin_addr: &common::Api) -> (Instant, String, Duration) {
    let bytes = with_custom_section(&p.bytes, &format!("v{n}"));
    let sha = sha256(&bytes);
    let began = Instant::now();
    std::fs::write(&p.path, &bytes).unwrap();
    let deadline = began + Duration::from_secs(30);
    while live_sha(admin_addr, p.name) != sha {
        assert!(Instant::now() < deadline, "{} v{n} never went live", p.name);
        std::thread::sleep(Duration::from_millis(2));
    }
    let reload = admin(admin_addr, "GET", "/plugins")["last_reload"]["elapsed_ms"]
        .as_u64()
        .unwrap_or_default();
    // A new version serves on baseline code first; wait for its optimized
    // code, as a site would between two deployments.
    while admin(admin_addr, "GET", "/plugins")["plugins"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p["code"] != "optimized"))
    {
        assert!(Instant::now() < deadline, "{} v{n} never optimized", p.name);
        std::thread::sleep(Duration::from_millis(2));
    }
    (began, sha, Duration::from_millis(reload))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Starts `weft run` on the two plugin files, with its admin API on
/// `admin_addr`.
fn start(plugins: &[Plugin], admin_addr: SocketAddr) -> Weft {
    let repo = common::repo();
    Weft::start(|d| {
        format!(
            r#"
[runtime]
cache_dir = "{cache}"

[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-transform"

[plugins.site-normalize]
path = "{sn}"
[plugins.site-normalize.config]
mrn_prefix = "EDGE-"

[plugins.adt-to-fhir]
path = "{adt}"
[plugins.adt-to-fhir.lookups]
gender = "{repo}/lookups/gender.csv"

[destinations.files]
kind = "file"
dir = "{out}"
filename = "{{type}}/{{control_id}}-{{n}}.{{ext}}"

[routes.adt]
plugins = ["site-normalize", "adt-to-fhir"]
destinations = ["files"]
match = ["ADT^*"]

[admin]
listen = "{admin_addr}"
"#,
            cache = d.join("cache").display(),
            sn = plugins[0].path.display(),
            adt = plugins[1].path.display(),
            repo = repo.display(),
            out = d.join("out").display(),
        )
    })
}

/// Resident memory after swap 1 and every 50th, in a fresh process, with
/// `rate` msg/s of traffic (or none); with `swaps` = 0 a control run: the
/// same samples at the times a swapping run took them.
fn memory_curve(
    plugins: &[Plugin],
    rate: Option<u64>,
    swaps: usize,
    control_times: &[Duration],
    n: &mut usize,
) -> (Vec<(usize, u64)>, Vec<Duration>) {
    let admin_addr = free_addr();
    let mut weft = start(plugins, admin_addr);
    let admin_addr = weft.api(admin_addr);
    let acks: Acks = Arc::default();
    let load = rate.map(|r| Load::start(weft.addr, &acks, Some(r), "M"));
    if load.is_some() {
        // Let the traffic fill the caches it fills (journal pages, buffers)
        // before the first sample.
        std::thread::sleep(Duration::from_secs(5));
    }
    let pid = weft.pid();
    let began = Instant::now();
    let mut curve = Vec::new();
    let mut times = Vec::new();
    if swaps == 0 {
        for (k, at) in control_times.iter().enumerate() {
            if let Some(wait) = (began + *at).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            curve.push((k, rss_kib(pid)));
        }
    }
    for i in 1..=swaps {
        *n += 1;
        swap(&plugins[i % 2], *n, &admin_addr);
        if i == 1 || i % 50 == 0 || i == swaps {
            std::thread::sleep(Duration::from_millis(200));
            times.push(began.elapsed());
            curve.push((i, rss_kib(pid)));
        }
    }
    if let Some(l) = load {
        l.stop();
    }
    assert_eq!(weft.stop(), 0);
    (curve, times)
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let swaps = env("WEFT_BENCH_SWAPS", if quick { 2 } else { 20 });
    let memory_swaps = env("WEFT_BENCH_MEMORY_SWAPS", if quick { 4 } else { 200 });
    let rate = env("WEFT_BENCH_RATE", 1000) as u64;

    let plugin_dir = tempfile::tempdir().unwrap();
    let plugins: Vec<Plugin> = ["site-normalize", "adt-to-fhir"]
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(common::wasm(name)).unwrap();
            let path = plugin_dir
                .path()
                .join(format!("{}.wasm", name.replace('-', "_")));
            std::fs::write(&path, &bytes).unwrap();
            Plugin { name, path, bytes }
        })
        .collect();
    println!(
        "weft run, site-normalize + adt-to-fhir -> files, 2 MLLP connections sending A01s (ack after-transform), {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let admin_addr = free_addr();
    let mut weft = start(&plugins, admin_addr);
    let admin_addr = weft.api(admin_addr);
    let acks: Acks = Arc::default();
    let mut n = 0;
    // (load, plugin, write start, sha256, reload's own time)
    let mut timed: Vec<(&str, &str, Instant, String, Duration)> = Vec::new();
    let paced = format!("{rate} msg/s");
    let light = format!("{} msg/s", rate / 10);
    let loads = [
        (light.as_str(), Some(rate / 10), "L"),
        (paced.as_str(), Some(rate), "P"),
        ("saturating", None, "S"),
    ];
    for (what, load_rate, tag) in loads {
        let load = Load::start(weft.addr, &acks, load_rate, tag);
        std::thread::sleep(Duration::from_millis(500));
        for p in &plugins {
            for _ in 0..swaps {
                n += 1;
                let (began, sha, reload) = swap(p, n, &admin_addr);
                timed.push((what, p.name, began, sha, reload));
                // Let a few messages through on this version.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        load.stop();
    }
    let sent = acks.lock().unwrap().len();
    assert_eq!(weft.stop(), 0);

    let versions = plugin_versions(&weft.dir().join("data/journal.db"));
    let acks = acks.lock().unwrap();
    println!(
        "\nswap time: file write -> ACK of the first message processed by the new version ({swaps} swaps of each plugin under each load; {sent} messages in all, every one AA)"
    );
    println!(
        "load         plugin          size      median    max      reload itself (median / max)"
    );
    for (what, _, _) in loads {
        for p in &plugins {
            let mut t = Vec::new();
            let mut own = Vec::new();
            for (_, _, began, sha, reload) in timed.iter().filter(|t| t.0 == what && t.1 == p.name)
            {
                let first = versions
                    .iter()
                    .filter(|(_, v)| v.contains(sha.as_str()))
                    .filter_map(|(c, _)| acks.get(c))
                    .min()
                    .unwrap_or_else(|| panic!("no message went through {} {sha}", p.name));
                t.push(first.duration_since(*began));
                own.push(*reload);
            }
            t.sort();
            own.sort();
            println!(
                "{what:<11}  {:<14}  {:>4} KiB  {:>7}  {:>6}   {} / {}",
                p.name,
                p.bytes.len() / 1024,
                ms(t[t.len() / 2]),
                ms(t[t.len() - 1]),
                ms(own[own.len() / 2]),
                ms(own[own.len() - 1])
            );
        }
    }

    let (idle, _) = memory_curve(&plugins, None, memory_swaps, &[], &mut n);
    let (busy, times) = memory_curve(&plugins, Some(rate), memory_swaps, &[], &mut n);
    let (control, _) = memory_curve(&plugins, Some(rate), 0, &times, &mut n);
    println!(
        "\nresident memory, MiB (each column a fresh process; swaps alternate the two plugins):"
    );
    println!("swaps   no traffic        {paced:<16}  {paced} without swaps (control, same times)");
    let pct = |curve: &[(usize, u64)], k: usize| {
        let (first, now) = (curve[0].1.max(1) as f64, curve[k].1 as f64);
        format!(
            "{:>5.1} ({:+5.1}%)",
            now / 1024.0,
            (now / first - 1.0) * 100.0
        )
    };
    for k in 0..idle.len() {
        println!(
            "{:>5}   {}   {}   {}",
            idle[k].0,
            pct(&idle, k),
            pct(&busy, k),
            pct(&control, k)
        );
    }
}
