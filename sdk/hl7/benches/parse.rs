//! What parsing costs: `cargo bench -p weft-hl7 --bench parse`.
//!
//! For each message (the shipped samples, a corpus lab result, a result
//! with 1,000 OBX segments, and a 4 MiB message that is one field
//! separator after another), prints the median and p99 time of
//! `Message::parse`, of parse and ten reads by path, and of parse, one
//! edit and serialization; and, from a counting allocator, how many heap
//! allocations one parse makes and how many bytes the parsed message keeps
//! alive (its memory amplification over the message's own size).
//! `WEFT_BENCH_ITERS` sets the rounds per case (default 2000; the 4 MiB
//! case runs a tenth as many).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use weft_hl7::Message;

/// The system allocator, counting allocations and live bytes.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PATHS: [&str; 10] = [
    "MSH-9.1", "MSH-10", "PID-3.1", "PID-5.1", "PID-5.2", "PID-7", "PID-8", "PV1-2", "OBX-5",
    "OBR-4.2",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn many_obx(n: usize) -> Vec<u8> {
    let mut m = String::from(
        "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240102030405||ORU^R01^ORU_R01|C1|P|2.5.1\r\
         PID|1||123^^^HOSP^MR||Doe^Jane^Q||19800101|F\r\
         OBR|1|ORD1|FIL1|58410-2^CBC panel^LN|||20240102\r",
    );
    for i in 1..=n {
        m.push_str(&format!(
            "OBX|{i}|NM|718-7^Hemoglobin^LN||13.{i}|g/dL^g/dL^UCUM|12-16|N|||F|||20240102\r"
        ));
    }
    m.into_bytes()
}

fn flood(size: usize) -> Vec<u8> {
    let mut m = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID".to_vec();
    m.resize(size, b'|');
    m
}

fn percentiles(mut t: Vec<Duration>) -> (f64, f64) {
    t.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (
        us(t[t.len() / 2]),
        us(t[(t.len() * 99 / 100).min(t.len() - 1)]),
    )
}

fn time(iters: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..iters.div_ceil(10) {
        f();
    }
    let times = (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    percentiles(times)
}

fn main() {
    let iters: usize = std::env::var("WEFT_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let repo = repo();
    let cases: [(&str, Vec<u8>); 6] = [
        ("ADT^A01 sample", read(repo.join("samples/adt-a01.hl7"))),
        ("ORU^R01 sample", read(repo.join("samples/oru-r01.hl7"))),
        (
            "ORU^R01 corpus CBC",
            read(repo.join("tests/corpus/hl7v2/fhir-converter/LAB-ORU-1.hl7")),
        ),
        (
            "ADT^A01 corpus",
            read(repo.join("tests/corpus/hl7v2/fhir-converter/ADT-A01-01.hl7")),
        ),
        ("ORU^R01, 1,000 OBX", many_obx(1000)),
        ("4 MiB of field separators", flood(4 << 20)),
    ];
    println!(
        "{:<28} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7}",
        "message",
        "bytes",
        "parse p50",
        "parse p99",
        "+10 gets",
        "+edit+ser",
        "allocs",
        "kept",
        "x size"
    );
    for (name, bytes) in &cases {
        let n = if bytes.len() > 1 << 20 {
            (iters / 10).max(5)
        } else {
            iters
        };
        let (p50, p99) = time(n, || {
            black_box(Message::parse(black_box(bytes)).ok());
        });
        let (gets, _) = time(n, || {
            let m = Message::parse(bytes).expect("parses");
            for p in PATHS {
                black_box(m.get(p).ok());
            }
        });
        let (edit, _) = time(n, || {
            let mut m = Message::parse(bytes).expect("parses");
            m.set("MSH-3", "WEFT").expect("sets");
            black_box(m.to_bytes());
        });
        let allocs_before = ALLOCS.load(Ordering::Relaxed);
        let live_before = LIVE.load(Ordering::Relaxed);
        let m = Message::parse(bytes).expect("parses");
        let allocs = ALLOCS.load(Ordering::Relaxed) - allocs_before;
        let kept = LIVE.load(Ordering::Relaxed).saturating_sub(live_before);
        drop(black_box(m));
        println!(
            "{:<28} {:>9} {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>10} {:>7}K {:>6.1}x",
            name,
            bytes.len(),
            p50,
            p99,
            gets,
            edit,
            allocs,
            kept / 1024,
            kept as f64 / bytes.len() as f64
        );
    }
}
