//! Hot reload against the real binary under MLLP load: the site-normalize
//! plugin file is replaced again and again (two versions whose outputs
//! differ, a broken file, a half-written file), and no message is refused,
//! lost, or processed by a version that was not live at the time.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::fhir_server::free_addr;
use common::run::{Client, Weft, a01};
use serde_json::Value;

/// A GET or POST on the admin API (std only: fast enough to poll).
pub fn admin(addr: SocketAddr, method: &str, path: &str) -> Value {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: weft\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn sha256_of(path: &Path) -> String {
    use std::fmt::Write;
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut s = String::new();
    let _ = write!(s, "{}", text.split_whitespace().next().unwrap_or_default());
    s
}

fn live_sha(admin_addr: SocketAddr, plugin: &str) -> String {
    let v = admin(admin_addr, "GET", "/plugins");
    v["plugins"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == plugin))
        .and_then(|p| p["sha256"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A config whose only route runs site-normalize (from `plugin`) and writes
/// its HL7 output to files, with the admin API on `admin_addr`.
fn config(dir: &Path, plugin: &Path, admin_addr: SocketAddr, lookups: &Path) -> String {
    format!(
        r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-transform"

[plugins.site-normalize]
path = "{plugin}"
[plugins.site-normalize.config]
mrn_prefix = "EDGE-"
translate = "PID-8:gender"
[plugins.site-normalize.lookups]
gender = "{lookups}"

[destinations.files]
kind = "file"
dir = "{out}"
filename = "{{control_id}}.hl7"

[routes.adt]
plugins = ["site-normalize"]
destinations = ["files"]
match = ["ADT^*"]

[admin]
listen = "{admin_addr}"
"#,
        plugin = plugin.display(),
        lookups = lookups.display(),
        out = dir.join("out").display(),
    )
}

struct Sent {
    control_id: String,
    sent: Instant,
    acked: Instant,
    code: String,
}

/// Keeps `n` connections sending A01s (each waits for its ACK) until `stop`.
fn load(
    addr: SocketAddr,
    n: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<Sent>>> {
    (0..n)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut log = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let control_id = format!("C{c}N{i}");
                    let sent = Instant::now();
                    let ack = client.exchange(&a01(&control_id, &format!("{c}-{i}")));
                    log.push(Sent {
                        control_id,
                        sent,
                        acked: Instant::now(),
                        code: ack.code,
                    });
                    i += 1;
                }
                log
            })
        })
        .collect()
}

/// Versions each message went through, from the journal.
fn versions(journal: &Path) -> HashMap<String, String> {
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

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One replacement of the plugin file: when the write began, when the new
/// version was seen live (None: it was to be refused), and its sha256.
struct Swap {
    began: Instant,
    live: Option<Instant>,
    sha: String,
}

#[test]
fn plugin_swaps_under_load_lose_nothing_and_switch_exactly() {
    let a = common::wasm("site-normalize");
    let b = common::repo().join("target/wasm32-wasip2/plugin/site_normalize_variant.wasm");
    assert!(b.is_file(), "{} is built by the test command", b.display());
    let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let (sha_a, sha_b) = (sha256_of(&a), sha256_of(&b));
    assert_ne!(sha_a, sha_b);

    let admin_addr = free_addr();
    let plugin_dir = tempfile::tempdir().unwrap();
    let plugin = plugin_dir.path().join("site_normalize.wasm");
    std::fs::write(&plugin, &a_bytes).unwrap();
    let lookups = plugin_dir.path().join("gender.csv");
    std::fs::write(&lookups, "code,value\nF,F\nM,M\n").unwrap();
    let mut weft = Weft::start(|d| config(d, &plugin, admin_addr, &lookups));
    assert_eq!(live_sha(admin_addr, "site-normalize"), sha_a);

    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(weft.addr, 4, stop.clone());
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let mut swaps: Vec<Swap> = vec![Swap {
        began: started - Duration::from_secs(3600),
        live: Some(started - Duration::from_secs(3600)),
        sha: sha_a.clone(),
    }];
    let mut current = sha_a.clone();
    for i in 0..20 {
        let (bytes, sha) = if i % 2 == 0 {
            (&b_bytes, &sha_b)
        } else {
            (&a_bytes, &sha_a)
        };
        if i == 6 {
            // A broken file: refused, the running version keeps serving.
            let began = Instant::now();
            std::fs::write(&plugin, b"\0asm this is not a component").unwrap();
            wait_until("the broken file's refusal", Duration::from_secs(10), || {
                let v = admin(admin_addr, "GET", "/plugins");
                v["plugins"][0]["last_refusal"]["at"].is_string()
            });
            swaps.push(Swap {
                began,
                live: None,
                sha: current.clone(),
            });
        }
        let began = Instant::now();
        if i == 12 {
            // Half a file, left alone for a while (a slow copy), then the rest.
            let half = bytes.len() / 2;
            std::fs::write(&plugin, &bytes[..half]).unwrap();
            std::thread::sleep(Duration::from_millis(700));
            assert_eq!(
                live_sha(admin_addr, "site-normalize"),
                current,
                "a half-written file is never live"
            );
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&plugin)
                .unwrap();
            f.write_all(&bytes[half..]).unwrap();
            drop(f);
        } else {
            // In place, like cp: truncate, then write.
            std::fs::write(&plugin, bytes).unwrap();
        }
        wait_until(&format!("swap {i} live"), Duration::from_secs(10), || {
            live_sha(admin_addr, "site-normalize") == *sha
        });
        swaps.push(Swap {
            began,
            live: Some(Instant::now()),
            sha: sha.clone(),
        });
        current = sha.clone();
        std::thread::sleep(Duration::from_millis(900));
    }
    // A lookup table edited under load: F now maps to U.
    std::fs::write(&lookups, "code,value\nF,U\nM,M\n").unwrap();
    wait_until("the table edit", Duration::from_secs(10), || {
        admin(admin_addr, "GET", "/plugins")["plugins"][0]["swaps"] == 21
    });
    let table_edit = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<Sent> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(20), "{elapsed:?} of load");

    // Zero NAKs.
    let naks: Vec<_> = sent.iter().filter(|s| s.code != "AA").collect();
    assert!(
        naks.is_empty(),
        "{} of {} messages were not AA",
        naks.len(),
        sent.len()
    );
    // Zero lost: every message has its output.
    let out = weft.out.clone();
    wait_until("every output written", Duration::from_secs(60), || {
        std::fs::read_dir(&out).map_or(0, |d| d.count()) >= sent.len()
    });
    assert_eq!(weft.stop(), 0);
    let journal = versions(&weft.dir().join("data/journal.db"));

    // Each message: its version was live while it was processed (between
    // its send and its ACK), and its output is that version's output.
    let mut by_version: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sent {
        let v = journal.get(&s.control_id).unwrap_or_else(|| {
            panic!("{} is not in the journal", s.control_id);
        });
        let sha = if v.contains(&sha_a) {
            sha_a.as_str()
        } else if v.contains(&sha_b) {
            sha_b.as_str()
        } else {
            panic!("{}: unknown version {v}", s.control_id);
        };
        *by_version.entry(sha).or_default() += 1;
        // Live while it was processed (between its send and its ACK): a
        // version is live from when its file began to be written until the
        // next version was confirmed live.
        let live: Vec<&Swap> = swaps.iter().filter(|w| w.live.is_some()).collect();
        let live_ok = live.iter().enumerate().any(|(k, w)| {
            let end = live.get(k + 1).and_then(|n| n.live);
            w.sha == sha && s.acked >= w.began && end.is_none_or(|end| s.sent <= end)
        });
        assert!(
            live_ok,
            "{} was processed by {sha}, which was not live then",
            s.control_id
        );
        let output = std::fs::read_to_string(out.join(format!("{}.hl7", s.control_id))).unwrap();
        assert_eq!(
            output.contains("ZWV|B"),
            sha == sha_b,
            "{}: the output is the output of the version recorded",
            s.control_id
        );
        // The table edit: messages sent after it map F to U.
        if s.sent > table_edit {
            assert!(output.contains("|19800101|U"), "{}: {output}", s.control_id);
        }
    }
    println!(
        "{} messages in {elapsed:?} over 4 connections, 20 swaps + a broken and a half-written file: {by_version:?}",
        sent.len()
    );
    assert!(
        by_version.len() == 2,
        "both versions served: {by_version:?}"
    );
}

#[test]
fn config_edits_apply_live_or_are_refused_whole() {
    let admin_addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("site_normalize.wasm");
    std::fs::copy(common::wasm("site-normalize"), &plugin).unwrap();
    let lookups = dir.path().join("gender.csv");
    std::fs::write(&lookups, "code,value\nF,F\n").unwrap();
    let mut weft = Weft::start(|d| config(d, &plugin, admin_addr, &lookups));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(weft.addr, 2, stop.clone());
    let oru = |id: &str| {
        format!("MSH|^~\\&|LAB|EDGE|WEFT|EDGE|20240101||ORU^R01|{id}|P|2.5\rPID|1||9^^^EDGE^MR\r")
            .into_bytes()
    };
    let mut c = weft.client();
    assert_eq!(
        c.exchange(&oru("ORU-1")).code,
        "AR",
        "no route takes ORU yet"
    );

    // A broken edit is refused whole; the running config stays.
    let path = weft.config_path().to_path_buf();
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace("[routes.adt]", "[routes.adt]\nplugins = 3\n"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = admin(admin_addr, "GET", "/plugins");
        if v["config"]["last_refusal"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("weft.toml:23:1: duplicate key"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal: {v}\n{}",
            weft.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.exchange(&a01("STILL", "1")).code, "AA");
    // So is one that parses but names a plugin that does not exist.
    std::fs::write(
        &path,
        good.replace(r#"plugins = ["site-normalize"]"#, r#"plugins = ["nope"]"#),
    )
    .unwrap();
    wait_until("the second refusal", Duration::from_secs(10), || {
        admin(admin_addr, "GET", "/plugins")["config"]["last_refusal"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no plugin named \"nope\""))
    });
    assert_eq!(c.exchange(&a01("STILL2", "1")).code, "AA");

    // Adding a route (and a plugin it uses) under load: live at once.
    let added = good.clone()
        + &format!(
            "\n[plugins.copy]\npath = \"{}\"\n[routes.oru]\nplugins = [\"copy\"]\ndestinations = [\"files\"]\nmatch = [\"ORU^*\"]\n",
            plugin.display()
        );
    std::fs::write(&path, added).unwrap();
    wait_until("the new route", Duration::from_secs(10), || {
        admin(admin_addr, "GET", "/plugins")["plugins"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "copy"))
    });
    assert_eq!(c.exchange(&oru("ORU-2")).code, "AA");
    drop(c);
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<Sent> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        sent.iter().all(|s| s.code == "AA"),
        "no NAK under the edits"
    );
    let out = weft.out.clone();
    wait_until("outputs", Duration::from_secs(30), || {
        out.join("ORU-2.hl7").is_file()
            && sent
                .iter()
                .all(|s| out.join(format!("{}.hl7", s.control_id)).is_file())
    });
    assert_eq!(weft.stop(), 0);
}
