//! What sealing at rest costs the processor, value by value:
//! `cargo bench -p weft --bench seal`.
//!
//! Seals and opens message bodies of several sizes with the journal's
//! cipher (ChaCha20-Poly1305 from `ring`, a fresh random nonce per value,
//! the row's id as associated data) and hashes a patient identifier with
//! the index key (HMAC-SHA256), each `WEFT_BENCH_N` times (default
//! 100,000), and prints the time of one. The MLLP load bench
//! (`WEFT_BENCH_ONLY=encryption cargo bench -p weft --bench mllp_load`)
//! measures what a key costs the whole message path.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use weft::journal::seal::{Index, JournalKey, Keyring};

/// The time of one call of `f`, in µs, over `n` calls.
fn each(n: usize, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed().as_secs_f64() / n as f64 * 1e6
}

fn main() {
    let n: usize = std::env::var("WEFT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let ring = Keyring::new(
        JournalKey::from_bytes(&[7; 32], Path::new("bench.key")),
        vec![],
    );
    let (index, _) = Index::generate().expect("the system's random source");
    let aad = "m:0190a3c4-5d6e-7f80-9a1b-2c3d4e5f6071";
    println!("{:>10} {:>10} {:>10}", "bytes", "seal µs", "open µs");
    for size in [200usize, 1_500, 16_384, 262_144] {
        let body = vec![b'x'; size];
        let seal = each(n, || {
            black_box(ring.seal(aad, black_box(&body)).expect("sealed"));
        });
        let sealed = ring.seal(aad, &body).expect("sealed");
        let open = each(n, || {
            black_box(ring.open(aad, black_box(&sealed)).expect("opened"));
        });
        println!("{size:>10} {seal:>10.2} {open:>10.2}");
    }
    let hash = each(n, || {
        black_box(index.hash(black_box("MRN0000123")));
    });
    println!("a patient identifier hashed: {hash:.2} µs");
}
