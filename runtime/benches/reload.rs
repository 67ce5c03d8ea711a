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
use common::run::{Client, Weft, a01, status_kib};
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

/// A process's resident memory, in KiB: in all, and its anonymous, file
/// and shared (memfd: plugin memory images) parts.
#[derive(Clone, Copy)]
struct Rss {
    total: u64,
    anon: u64,
    file: u64,
    shmem: u64,
}

fn rss(pid: u32) -> Rss {
    Rss {
        total: status_kib(pid, "VmRSS"),
        anon: status_kib(pid, "RssAnon"),
        file: status_kib(pid, "RssFile"),
        shmem: status_kib(pid, "RssShmem"),
    }
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
fn start(plugins: &[Plugin], admin_addr: SocketAddr, env: &[(String, String)]) -> Weft {
    let repo = common::repo();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Weft::start_env(&[], &env, |d| {
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

/// With `WEFT_BENCH_SMAPS=DIR`, copies the process's `/proc/PID/smaps` to
/// `DIR/{idle,busy}-SWAPS.smaps`, to see which mappings grew.
fn keep_smaps(pid: u32, rate: Option<u64>, swaps: usize) {
    let Some(dir) = std::env::var_os("WEFT_BENCH_SMAPS") else {
        return;
    };
    let name = format!(
        "{}-{swaps}.smaps",
        if rate.is_some() { "busy" } else { "idle" }
    );
    let smaps = std::fs::read(format!("/proc/{pid}/smaps")).unwrap_or_default();
    std::fs::write(PathBuf::from(dir).join(name), smaps).unwrap();
}

/// With `WEFT_BENCH_HEAPTRACK=PATH`, the process swapping under traffic
/// runs with Debian's `heaptrack` preloaded (its interpreter reading a
/// FIFO, as the `heaptrack` script does, so the process stays `weft`'s own)
/// and is killed at the end, so `PATH.zst` holds everything still allocated
/// then as leaked (read with `heaptrack_print --print-leaks 1`). Returns
/// the environment to start with and the interpreter to wait for.
fn heaptrack(
    rate: Option<u64>,
    swaps: usize,
) -> Option<(Vec<(String, String)>, std::process::Child)> {
    let out = std::env::var("WEFT_BENCH_HEAPTRACK").ok()?;
    if rate.is_none() || swaps == 0 {
        return None;
    }
    let fifo = format!("{out}.fifo");
    let _ = std::fs::remove_file(&fifo);
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
    );
    let interpreter = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "/usr/lib/heaptrack/libexec/heaptrack_interpret < {fifo} | zstd -q -c > {out}.zst; rm -f {fifo}"
        ))
        .spawn()
        .expect("heaptrack (Debian package heaptrack) and zstd");
    let env = vec![
        (
            "LD_PRELOAD".to_string(),
            "/usr/lib/heaptrack/libheaptrack_preload.so".to_string(),
        ),
        ("DUMP_HEAPTRACK_OUTPUT".to_string(), fifo),
    ];
    Some((env, interpreter))
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
) -> (Vec<(usize, Rss)>, Vec<Duration>) {
    let admin_addr = free_addr();
    let heaptrack = heaptrack(rate, swaps);
    let env = heaptrack.as_ref().map(|h| h.0.clone()).unwrap_or_default();
    let mut weft = start(plugins, admin_addr, &env);
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
            curve.push((k, rss(pid)));
        }
    }
    for i in 1..=swaps {
        *n += 1;
        swap(&plugins[i % 2], *n, &admin_addr);
        if i == 1 || i % 50 == 0 || i == swaps {
            std::thread::sleep(Duration::from_millis(200));
            times.push(began.elapsed());
            curve.push((i, rss(pid)));
            keep_smaps(pid, rate, i);
        }
    }
    if let Some(l) = load {
        l.stop();
    }
    match heaptrack {
        Some((_, mut interpreter)) => {
            // Let the last version's optimized compile and the traffic's
            // work in hand finish, so what is left is what stays.
            std::thread::sleep(Duration::from_secs(5));
            weft.kill();
            let _ = interpreter.wait();
        }
        None => assert_eq!(weft.stop(), 0),
    }
    (curve, times)
}

/// Swap times under three loads, printed as a table.
fn swap_times(plugins: &[Plugin], swaps: usize, rate: u64, paced: &str, n: &mut usize) {
    let admin_addr = free_addr();
    let mut weft = start(plugins, admin_addr, &[]);
    let admin_addr = weft.api(admin_addr);
    let acks: Acks = Arc::default();
    // (load, plugin, write start, sha256, reload's own time)
    let mut timed: Vec<(&str, &str, Instant, String, Duration)> = Vec::new();
    let light = format!("{} msg/s", rate / 10);
    let loads = [
        (light.as_str(), Some(rate / 10), "L"),
        (paced, Some(rate), "P"),
        ("saturating", None, "S"),
    ];
    for (what, load_rate, tag) in loads {
        let load = Load::start(weft.addr, &acks, load_rate, tag);
        std::thread::sleep(Duration::from_millis(500));
        for p in plugins {
            for _ in 0..swaps {
                *n += 1;
                let (began, sha, reload) = swap(p, *n, &admin_addr);
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
        for p in plugins {
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
    let paced = format!("{rate} msg/s");
    let mut n = 0;
    // `WEFT_BENCH_ONLY=memory`: the memory curves alone.
    if std::env::var("WEFT_BENCH_ONLY").as_deref() != Ok("memory") {
        swap_times(&plugins, swaps, rate, &paced, &mut n);
    }
    let (idle, _) = memory_curve(&plugins, None, memory_swaps, &[], &mut n);
    let (busy, times) = memory_curve(&plugins, Some(rate), memory_swaps, &[], &mut n);
    let (control, _) = memory_curve(&plugins, Some(rate), 0, &times, &mut n);
    println!(
        "\nresident memory, MiB (each column a fresh process; swaps alternate the two plugins):"
    );
    println!("swaps   no traffic        {paced:<16}  {paced} without swaps (control, same times)");
    let pct = |curve: &[(usize, Rss)], k: usize| {
        let (first, now) = (curve[0].1.total.max(1) as f64, curve[k].1.total as f64);
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
    println!("\nof which, MiB, first sample -> last: anonymous / file-backed / shared (memfd)");
    let mib = |k: u64| k as f64 / 1024.0;
    for (what, curve) in [
        ("no traffic", &idle),
        (paced.as_str(), &busy),
        ("control", &control),
    ] {
        let (a, b) = (curve[0].1, curve[curve.len() - 1].1);
        println!(
            "{what:<12}  {:.1} -> {:.1}  /  {:.1} -> {:.1}  /  {:.1} -> {:.1}",
            mib(a.anon),
            mib(b.anon),
            mib(a.file),
            mib(b.file),
            mib(a.shmem),
            mib(b.shmem)
        );
    }
}
