//! A key rotation timed for the benches: the key files, the request, and
//! the pass's own figures from the log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::run::Weft;

/// `weft key generate` into `dir`: the key file.
pub fn new_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let (code, out) =
        crate::common::weft_cli(&["key", "generate", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 0, "{out}");
    path
}

/// Rotates `weft`'s key to `key` through its admin API on `admin`, waits
/// (half an hour at most) for the background pass to finish, and returns
/// the values it sealed again and its seconds, as its log line says.
pub fn rotate_and_time(weft: &Weft, admin: SocketAddr, key: &Path) -> (f64, f64) {
    let (code, answer) = weft.api(admin).call(
        "POST",
        "/journal/key",
        &[("content-type", "application/json")],
        &serde_json::json!({ "path": key.display().to_string() }).to_string(),
    );
    assert_eq!(code, 200, "{answer}");
    let id = answer["key_id"].as_str().unwrap_or_default().to_string();
    let done = |log: &str| {
        log.lines()
            .find(|l| l.contains("every value in the journal is sealed") && l.contains(&id))
            .map(str::to_string)
    };
    let started = Instant::now();
    while done(&weft.log_text()).is_none() && started.elapsed() < Duration::from_secs(1800) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = done(&weft.log_text()).unwrap_or_default();
    let field = |name: &str| {
        line.split(&format!("{name}="))
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field("values"), field("seconds"))
}
