//! Shared helpers: where the compiled plugins and the repository are.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `.hl7` files of `tests/corpus/<dir>`, sorted.
pub fn corpus_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/corpus").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .collect();
    files.sort();
    files
}

/// A plugin component built by the test command (`./test.sh`).
pub fn wasm(crate_name: &str) -> PathBuf {
    let file = crate_name.replace('-', "_");
    let p = repo().join(format!("target/wasm32-wasip2/plugin/{file}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: build the plugins first (./test.sh does)",
        p.display()
    );
    p
}
pub mod fhir_compare;
pub mod fhir_server;
pub mod mappings;
pub mod pki;
pub mod run;

/// Runs curl (a real third-party client) with `args`; its status code and
/// body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A GET or POST on the admin API (std only: fast enough to poll).
pub fn admin(addr: std::net::SocketAddr, method: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: weft\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

/// `bytes` (a component) with a custom section appended: another sha256,
/// the same behaviour, so a new version to swap in.
pub fn with_custom_section(bytes: &[u8], tag: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let name = b"weft-test";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// The sha256 of the version of `plugin` the runtime serves now.
pub fn live_sha(admin_addr: std::net::SocketAddr, plugin: &str) -> String {
    let v = admin(admin_addr, "GET", "/plugins");
    v["plugins"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == plugin))
        .and_then(|p| p["sha256"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// control id → the `plugin@sha256` list of each message's versions, from
/// the journal.
pub fn plugin_versions(journal: &std::path::Path) -> std::collections::HashMap<String, String> {
    let conn =
        rusqlite::Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT control_id, plugin_versions FROM messages")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
    })
    .unwrap()
    .map(|r| {
        let (c, v) = r.unwrap();
        (c, v.unwrap_or_default())
    })
    .collect()
}
