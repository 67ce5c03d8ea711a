//! Shared helpers: where the compiled plugins and the repository are.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

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

/// The component of plugin crate `crate_name`, built by cargo (the
/// `weft-test-artifacts` dev-dependency).
pub fn wasm(crate_name: &str) -> PathBuf {
    let p = weft_test_artifacts::component(crate_name)
        .unwrap_or_else(|| panic!("weft-test-artifacts does not build {crate_name}"));
    assert!(
        p.is_file(),
        "{} is missing (deleted since it was built?): `touch tests/artifacts/build.rs` rebuilds it",
        p.display()
    );
    p.to_path_buf()
}

/// site-normalize built with its `test-variant` feature: a second version
/// of a plugin, for hot-reload tests.
pub fn site_normalize_variant() -> PathBuf {
    weft_test_artifacts::site_normalize_variant().to_path_buf()
}
pub mod browser;
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

/// Runs the `weft` binary with `args`: its exit code and its stdout and
/// stderr together.
pub fn weft_cli(args: &[&str]) -> (i32, String) {
    weft_cli_in(Path::new("."), args)
}

/// [`weft_cli`], run in `dir`.
pub fn weft_cli_in(dir: &Path, args: &[&str]) -> (i32, String) {
    weft_cli_env(dir, &[], args)
}

/// [`weft_cli`], run in `dir` with these environment variables set.
pub fn weft_cli_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), printed(&out))
}

/// What a finished command printed: its standard output, then its errors.
pub fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A running Weft's admin API: its address and a token.
#[derive(Debug, Clone)]
pub struct Api {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The `operate` token its first run wrote to `data_dir/admin.token`.
    pub token: String,
}

impl Api {
    /// The API on `addr` of the Weft whose data directory is `data_dir`,
    /// once it listens.
    pub fn new(addr: std::net::SocketAddr, data_dir: &std::path::Path) -> Api {
        let file = data_dir.join("admin.token");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let token = loop {
            match std::fs::read_to_string(&file) {
                Ok(t) if !t.trim().is_empty() => break t.trim().to_string(),
                _ if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => panic!("no token in {}", file.display()),
            }
        };
        // The token is written before the API listens.
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the admin API on {addr} does not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Api { addr, token }
    }

    /// `method path` with `headers` and `body` over a fresh connection: the
    /// status and the JSON answer (std only: fast enough to poll).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, serde_json::Value) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.addr).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let lower: Vec<String> = headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect();
        if !lower.iter().any(|k| k == "host") {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        if !lower.iter().any(|k| k == "authorization") {
            head.push_str(&format!("Authorization: Bearer {}\r\n", self.token));
        }
        if !lower.iter().any(|k| k == "content-type") {
            head.push_str("Content-Type: application/json\r\n");
        }
        write!(s, "{head}\r\n{body}").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (
            status,
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// A GET or POST without a body on the admin API, with its token: the
/// JSON answer.
pub fn admin(api: &Api, method: &str, path: &str) -> serde_json::Value {
    api.call(method, path, &[], "").1
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
pub fn live_sha(api: &Api, plugin: &str) -> String {
    let v = admin(api, "GET", "/plugins");
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
