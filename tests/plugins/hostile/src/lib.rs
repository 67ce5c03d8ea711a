//! A plugin that misbehaves on purpose. Its `mode` setting picks how:
//!
//! - `echo`: behaves: returns the input unchanged (the control case);
//! - `loop`: spins forever;
//! - `alloc`: allocates without bound;
//! - `recurse`: recurses without bound on the WebAssembly stack;
//! - `recurse-shadow`: recurses without bound with frames in linear memory
//!   (Rust's shadow stack);
//! - `panic`: panics;
//! - `read-file`: tries to read `/etc/passwd`, and says what it got;
//! - `read-env`: tries to read environment variables, and says what it got;
//! - `big-output`: returns an output of `size` bytes (default 32 MiB);
//! - `spin`: works for `ms` milliseconds (default 10), then echoes;
//! - `keep-state`: returns how many messages this instance has seen (a
//!   fresh instance per message always says 1).

use std::sync::atomic::{AtomicU64, Ordering};

use weft_sdk::{Error, Message, Output, Plugin, Result, config};

/// The plugin.
pub struct Hostile;

static SEEN: AtomicU64 = AtomicU64::new(0);

impl Plugin for Hostile {
    fn transform(msg: Message) -> Result<Vec<Output>> {
        let mode = config("mode").unwrap_or_else(|| "echo".into());
        match mode.as_str() {
            "echo" => Ok(vec![Output::bytes(msg.content_type(), msg.body())]),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => Ok(vec![Output::bytes("text/plain", recurse(1).to_string())]),
            "recurse-shadow" => Ok(vec![Output::bytes(
                "text/plain",
                recurse_with_frame(1).to_string(),
            )]),
            "panic" => panic!("hostile plugin panics on purpose"),
            "read-file" => {
                let got = match std::fs::read_to_string("/etc/passwd") {
                    Ok(text) => format!("READ {} bytes", text.len()),
                    Err(e) => format!("denied: {e}"),
                };
                Ok(vec![Output::bytes("text/plain", got)])
            }
            "read-env" => {
                let vars: Vec<(String, String)> = std::env::vars().collect();
                let home = std::env::var("HOME");
                let got = format!("vars={} home={}", vars.len(), home.is_ok());
                Ok(vec![Output::bytes("text/plain", got)])
            }
            "big-output" => {
                let size: usize = config("size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(32 << 20);
                Ok(vec![Output::bytes(
                    "application/octet-stream",
                    vec![b'x'; size],
                )])
            }
            "spin" => {
                let ms: u64 = config("ms").and_then(|s| s.parse().ok()).unwrap_or(10);
                let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                Ok(vec![Output::bytes(msg.content_type(), msg.body())])
            }
            "keep-state" => {
                let n = SEEN.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(vec![Output::bytes("text/plain", n.to_string())])
            }
            other => Err(Error::failed(format!("unknown mode {other:?}"))),
        }
    }
}

/// Recursion on the WebAssembly stack.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))).wrapping_add(depth)
}

/// Recursion with a frame in linear memory (Rust's shadow stack).
#[inline(never)]
fn recurse_with_frame(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    // 4 KiB a frame in linear memory: the 1 MiB shadow stack runs out
    // after ~256 calls, long before the engine's own stack does, however
    // the compiler lays out the frames.
    let frame = std::hint::black_box([depth; 512]);
    recurse_with_frame(depth + 1).wrapping_add(frame[depth as usize % 512])
}

weft_sdk::export!(Hostile);
