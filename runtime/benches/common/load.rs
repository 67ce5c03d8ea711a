//! What the load benches share: senders that wait for each ACK, and the
//! closed loop that drives them.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::run::{Client, TlsClient, a01};

/// A sender that waits for each ACK: MSA-1 of the answer.
pub trait Sender: Send {
    /// Sends one message and waits for its ACK: MSA-1.
    fn exchange(&mut self, message: &[u8]) -> String;
}

impl Sender for Client {
    fn exchange(&mut self, message: &[u8]) -> String {
        Client::exchange(self, message).code
    }
}

impl Sender for TlsClient {
    fn exchange(&mut self, message: &[u8]) -> String {
        TlsClient::exchange(self, message)
    }
}

/// Makes a connection for one sending thread.
pub type Connect = Arc<dyn Fn() -> Box<dyn Sender> + Send + Sync>;

/// Plain MLLP connections to `addr`.
pub fn plain(addr: SocketAddr) -> Connect {
    Arc::new(move || Box::new(Client::connect(addr)) as Box<dyn Sender>)
}

/// The `p` quantile of sorted latencies.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// A latency in milliseconds, aligned.
pub fn ms(d: Duration) -> String {
    format!("{:7.2} ms", d.as_secs_f64() * 1e3)
}

/// `connections` threads each sending as fast as ACKs come back for
/// `secs` (control ids start with `tag`): the count, the sorted latencies
/// and the time it took.
pub fn closed_loop(
    connect: &Connect,
    connections: usize,
    secs: u64,
    tag: &str,
) -> (usize, Vec<Duration>, Duration) {
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let tag = tag.to_string();
            let connect = connect.clone();
            std::thread::spawn(move || {
                let mut client = connect();
                let mut lat = Vec::new();
                let mut i = 0;
                while Instant::now() < until {
                    let msg = a01(&format!("{tag}-{c}-{i}"), &format!("{c}x{i}"));
                    let t = Instant::now();
                    let code = client.exchange(&msg);
                    lat.push(t.elapsed());
                    assert_eq!(code, "AA");
                    i += 1;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().unwrap());
    }
    let elapsed = start.elapsed();
    all.sort();
    (all.len(), all, elapsed)
}

/// Plain MLLP connections spread over `addrs` in turn: the sending
/// threads of a closed loop share the nodes evenly.
pub fn spread(addrs: Vec<SocketAddr>) -> Connect {
    let next = AtomicUsize::new(0);
    Arc::new(move || {
        let i = next.fetch_add(1, Ordering::Relaxed) % addrs.len();
        Box::new(Client::connect(addrs[i])) as Box<dyn Sender>
    })
}

/// Whether cargo runs the bench as a bench (`cargo bench`), not as a quick
/// check (`cargo test --benches`).
pub fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A number from the environment variable `name`, else `quick` when run
/// as a quick check, `full` as a bench.
pub fn env_or(name: &str, quick: u64, full: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if self::full() { full } else { quick })
}
