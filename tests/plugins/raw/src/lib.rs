//! A plugin written the way a hostile partner would write one: directly
//! against the contract with `wit-bindgen` (not through the SDK), with its
//! export written by hand in the canonical ABI, so that it can return what
//! the SDK never would. Its `mode` setting picks what it does:
//!
//! - `echo`: returns the input (the control case);
//! - `sleep`: sleeps `ms` milliseconds in a WASI clock poll (a host call),
//!   then echoes;
//! - `spin`: works `ms` milliseconds, then echoes; with `start_ms` set it also
//!   works that long in its start function, at instantiation;
//! - `aliased`: returns `count` outputs whose bodies are all the same `size`
//!   bytes of its memory (the host copies each one);
//! - `many`: returns `count` outputs with empty fields and `headers` empty
//!   headers each;
//! - `reason`: fails (`kind` = `failed`, `reject` or `retry`) with a reason
//!   of `size` bytes, or the text of `text` when set;
//! - `destination`: returns one output naming the destination `text`
//!   (`size` bytes of `D` when `text` is unset);
//! - `log`: writes `text` as a log record at `level` (default info), then
//!   echoes;
//! - `body`: returns one output whose body is `text` (after replacing `\x1c`,
//!   `\x0b` and `\r` escapes), with content type `content_type`;
//! - `remember`: fills `kib` KiB of fresh memory with copies of the message
//!   (say, a patient's record), waits `ms` milliseconds, then echoes; given
//!   the message `scan`, it looks through all of its linear memory for the
//!   bytes of `xor55` (hex, each byte XORed with 0x55, so the plain bytes are
//!   never in its own memory) and answers `found at OFFSET` or `clean` (one
//!   plugin for both, so that both run in the same memory slot).

// Only a WebAssembly component: natively (a workspace build) it is empty.
#![cfg(target_arch = "wasm32")]

use std::alloc::{Layout, alloc};
use std::time::{Duration, Instant};

wit_bindgen::generate!({
    world: "transformer",
    // The frozen 0.1.0 contract: this is also the tests' plugin built
    // against an older contract line, which the runtime still links.
    path: "../../../wit/0.1.0",
    // The export is written by hand below.
    skip: ["transform"],
});

use weft::plugin::host::{Level, config, log};

fn setting<T: std::str::FromStr>(key: &str, default: T) -> T {
    config(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn spin(ms: u64) {
    let until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Runs at instantiation: the component model calls a module's
/// `_initialize` export as part of instantiating it.
#[unsafe(export_name = "_initialize")]
pub extern "C" fn initialize() {
    spin(setting("start_ms", 0));
}

/// Memory that lives until the instance ends (a fresh instance per message).
fn leak(bytes: &[u8]) -> (*const u8, usize) {
    let v = bytes.to_vec().into_boxed_slice();
    let len = v.len();
    (Box::leak(v).as_ptr(), len)
}

fn alloc_words(bytes: usize) -> *mut u32 {
    // SAFETY: size is non-zero and the alignment a power of two.
    let layout = Layout::from_size_align(bytes.max(4), 4).unwrap();
    unsafe { alloc(layout) as *mut u32 }
}

/// The canonical ABI layout of `output` (size 44, align 4): option tag at 0,
/// destination (ptr, len) at 4; message: id at 12, content-type at 20, body
/// at 28, headers at 36.
struct RawOutput {
    destination: Option<(*const u8, usize)>,
    content_type: (*const u8, usize),
    body: (*const u8, usize),
    headers: (*const u8, usize),
}

const OUTPUT_SIZE: usize = 44;

/// Writes `result::ok(list<output>)` into a return area.
fn ok(outputs: &[RawOutput]) -> *mut u8 {
    let list = alloc_words(outputs.len() * OUTPUT_SIZE);
    for (i, o) in outputs.iter().enumerate() {
        let w = |word: usize, v: usize| unsafe {
            *list.add(i * OUTPUT_SIZE / 4 + word) = v as u32;
        };
        match o.destination {
            Some((p, l)) => {
                w(0, 1);
                w(1, p as usize);
                w(2, l);
            }
            None => {
                w(0, 0);
                w(1, 0);
                w(2, 0);
            }
        }
        w(3, 1); // id: empty, any non-null pointer
        w(4, 0);
        w(5, o.content_type.0 as usize);
        w(6, o.content_type.1);
        w(7, o.body.0 as usize);
        w(8, o.body.1);
        w(9, o.headers.0 as usize);
        w(10, o.headers.1);
    }
    let ret = alloc_words(12);
    unsafe {
        *ret = 0;
        *ret.add(1) = list as u32;
        *ret.add(2) = outputs.len() as u32;
    }
    ret as *mut u8
}

/// Writes `result::err(plugin-error)` into a return area.
fn err(kind: u32, reason: &[u8]) -> *mut u8 {
    let (p, l) = leak(reason);
    let ret = alloc_words(16);
    unsafe {
        *ret = 1;
        *ret.add(1) = kind;
        *ret.add(2) = p as u32;
        *ret.add(3) = l as u32;
    }
    ret as *mut u8
}

fn unescape(text: &str) -> Vec<u8> {
    text.replace("\\x1c", "\x1c")
        .replace("\\x0b", "\x0b")
        .replace("\\r", "\r")
        .into_bytes()
}

fn text_or(size: usize, fill: u8) -> Vec<u8> {
    match config("text") {
        Some(t) => unescape(&t),
        None => vec![fill; size],
    }
}

/// `weft:plugin/transform@0.1.0#transform`, flattened: the message's id,
/// content type, body and headers as (pointer, length) pairs.
///
/// # Safety
/// Called by the component model with pointers into this instance's memory.
#[unsafe(export_name = "weft:plugin/transform@0.1.0#transform")]
pub unsafe extern "C" fn transform(
    _id: *const u8,
    _id_len: usize,
    ct: *const u8,
    ct_len: usize,
    body: *const u8,
    body_len: usize,
    _headers: *const u8,
    _headers_len: usize,
) -> *mut u8 {
    wit_bindgen::rt::maybe_link_cabi_realloc();
    let echo = RawOutput {
        destination: None,
        content_type: (ct, ct_len),
        body: (body, body_len),
        headers: (std::ptr::null(), 0),
    };
    let empty = RawOutput {
        destination: None,
        content_type: (std::ptr::null(), 0),
        body: (std::ptr::null(), 0),
        headers: (std::ptr::null(), 0),
    };
    let mode = config("mode").unwrap_or_else(|| "echo".into());
    match mode.as_str() {
        "echo" => ok(&[echo]),
        "sleep" => {
            std::thread::sleep(Duration::from_millis(setting("ms", 10_000)));
            ok(&[echo])
        }
        "spin" => {
            spin(setting("ms", 10));
            ok(&[echo])
        }
        "aliased" => {
            let size: usize = setting("size", 1 << 20);
            let count: usize = setting("count", 1000);
            let (p, l) = leak(&vec![b'x'; size]);
            let outputs: Vec<RawOutput> = (0..count)
                .map(|_| RawOutput {
                    body: (p, l),
                    ..empty
                })
                .collect();
            ok(&outputs)
        }
        "many" => {
            let count: usize = setting("count", 1_000_000);
            let headers: usize = setting("headers", 0);
            // Every header an empty (name, value) pair.
            let pairs = alloc_words(headers.max(1) * 16);
            for i in 0..headers * 4 {
                unsafe { *pairs.add(i) = if i % 2 == 0 { 1 } else { 0 } };
            }
            let one = RawOutput {
                headers: (pairs as *const u8, headers),
                ..empty
            };
            let outputs: Vec<RawOutput> = (0..count).map(|_| RawOutput { ..one }).collect();
            ok(&outputs)
        }
        "reason" => {
            let kind = match config("kind").as_deref() {
                Some("reject") => 0,
                Some("retry") => 1,
                _ => 2,
            };
            err(kind, &text_or(setting("size", 40 << 20), b'R'))
        }
        "destination" => {
            let name = leak(&text_or(setting("size", 40 << 20), b'D'));
            ok(&[RawOutput {
                destination: Some(name),
                ..echo
            }])
        }
        "log" => {
            let level = match config("level").as_deref() {
                Some("warn") => Level::Warn,
                Some("error") => Level::Error,
                Some("debug") => Level::Debug,
                _ => Level::Info,
            };
            let text = String::from_utf8_lossy(&text_or(64, b'L')).into_owned();
            log(level, &text);
            ok(&[echo])
        }
        "body" => {
            let content_type = leak(
                config("content_type")
                    .unwrap_or_else(|| "application/hl7-v2".into())
                    .as_bytes(),
            );
            let out = leak(&text_or(0, b' '));
            ok(&[RawOutput {
                content_type,
                body: out,
                ..empty
            }])
        }
        "remember" if unsafe { std::slice::from_raw_parts(body, body_len) } == b"scan" => {
            let masked: Vec<u8> = config("xor55")
                .unwrap_or_default()
                .as_bytes()
                .chunks(2)
                .filter_map(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
                .collect();
            let size = core::arch::wasm32::memory_size(0) * 65536;
            let byte = |i: usize| unsafe { std::ptr::read_volatile(i as *const u8) };
            let found = (1..size.saturating_sub(masked.len())).find(|&i| {
                masked
                    .iter()
                    .enumerate()
                    .all(|(j, m)| byte(i + j) ^ 0x55 == *m)
            });
            let answer = match found {
                Some(at) => format!("found at {at}"),
                None => "clean".to_string(),
            };
            ok(&[RawOutput {
                content_type: (b"text/plain".as_ptr(), 10),
                body: leak(answer.as_bytes()),
                ..empty
            }])
        }
        "remember" => {
            let kib: usize = setting("kib", 512);
            let record = unsafe { std::slice::from_raw_parts(body, body_len) };
            let mut hoard = Vec::with_capacity(kib * 1024);
            while hoard.len() + record.len() <= kib * 1024 && !record.is_empty() {
                hoard.extend_from_slice(record);
            }
            std::hint::black_box(Box::leak(hoard.into_boxed_slice()));
            std::thread::sleep(Duration::from_millis(setting("ms", 0)));
            ok(&[echo])
        }
        other => err(2, format!("unknown mode {other:?}").as_bytes()),
    }
}
