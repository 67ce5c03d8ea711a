//! Hot reload against the real binary under MLLP load: the site-normalize
//! plugin file is replaced again and again (two versions whose outputs
//! differ, a broken file, a half-written file), and no message is refused,
//! lost, or processed by a version that was not live at the time.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::fhir_server::free_addr;
use crate::common::run::{Client, Weft, a01};
use crate::common::{admin, live_sha, plugin_versions, with_custom_section};
use serde_json::Value;

pub(crate) fn sha256_of(path: &Path) -> String {
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

/// A config whose only route runs site-normalize (from `plugin`, with
/// `plugin_extra` lines in its table) and writes its HL7 output to files,
/// with the admin API on `admin_addr`.
pub(crate) fn config(
    dir: &Path,
    plugin: &Path,
    admin_addr: SocketAddr,
    plugin_extra: &str,
) -> String {
    format!(
        r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-transform"

[plugins.site-normalize]
path = "{plugin}"
{plugin_extra}

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
        out = dir.join("out").display(),
    )
}

/// site-normalize's settings: the MRN prefix and a gender table.
fn normalizing(lookups: &Path) -> String {
    format!(
        "[plugins.site-normalize.config]\nmrn_prefix = \"EDGE-\"\ntranslate = \"PID-8:gender\"\n\
         [plugins.site-normalize.lookups]\ngender = \"{}\"\n",
        lookups.display()
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

/// `weft plugins --reload` on `weft`'s configuration, which must refuse
/// `plugin` saying `why` (exit 1), with `live`, the version before, still
/// serving.
pub(crate) fn reload_refused(
    weft: &Weft,
    api: &crate::common::Api,
    plugin: &str,
    live: &str,
    why: &str,
) {
    let config = weft.config_path().display().to_string();
    let (code, out, err) = weft_cli(weft.dir(), &["plugins", "--reload", "--config", &config]);
    assert_eq!(code, 1, "a refusal is an error: {out}{err}");
    assert!(
        out.contains(&format!("plugin {plugin} refused")) && out.contains(why),
        "{why}: {out}"
    );
    assert_eq!(live_sha(api, plugin), live, "the old version serves");
}

pub(crate) fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
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
    let a = crate::common::wasm("site-normalize");
    let b = crate::common::site_normalize_variant();
    let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let (sha_a, sha_b) = (sha256_of(&a), sha256_of(&b));
    assert_ne!(sha_a, sha_b);

    let admin_addr = free_addr();
    let plugin_dir = tempfile::tempdir().unwrap();
    let plugin = plugin_dir.path().join("site_normalize.wasm");
    std::fs::write(&plugin, &a_bytes).unwrap();
    let lookups = plugin_dir.path().join("gender.csv");
    std::fs::write(&lookups, "code,value\nF,F\nM,M\n").unwrap();
    let mut weft = Weft::start(|d| config(d, &plugin, admin_addr, &normalizing(&lookups)));
    let admin_addr = weft.api(admin_addr);
    assert_eq!(live_sha(&admin_addr, "site-normalize"), sha_a);

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
                let v = admin(&admin_addr, "GET", "/plugins");
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
                live_sha(&admin_addr, "site-normalize"),
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
            live_sha(&admin_addr, "site-normalize") == *sha
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
        admin(&admin_addr, "GET", "/plugins")["plugins"][0]["swaps"] == 21
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
    wait_until("every output written", Duration::from_secs(60), || {
        weft.out_files().len() >= sent.len()
    });
    assert_eq!(weft.stop(), 0);
    let journal = plugin_versions(&weft.dir().join("data/journal.db"));

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
        let output =
            std::fs::read_to_string(weft.out.join(format!("{}.hl7", s.control_id))).unwrap();
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
    std::fs::copy(crate::common::wasm("site-normalize"), &plugin).unwrap();
    let lookups = dir.path().join("gender.csv");
    std::fs::write(&lookups, "code,value\nF,F\n").unwrap();
    let mut weft = Weft::start(|d| config(d, &plugin, admin_addr, &normalizing(&lookups)));
    let admin_addr = weft.api(admin_addr);
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
        let v = admin(&admin_addr, "GET", "/plugins");
        if v["config"]["last_refusal"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("weft.toml:24:1: duplicate key"))
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
        admin(&admin_addr, "GET", "/plugins")["config"]["last_refusal"]["reason"]
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
        admin(&admin_addr, "GET", "/plugins")["plugins"]
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

fn journal_count(journal: &Path, sql: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// `weft` with `args`, in `dir`; (exit code, stdout, stderr).
pub(crate) fn weft_cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sources_and_destinations_change_live_one_at_a_time() {
    let admin_addr = free_addr();
    let dead = free_addr();
    let new_mllp = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("site_normalize.wasm");
    std::fs::copy(crate::common::wasm("site-normalize"), &plugin).unwrap();
    let base = |d: &Path, mllp: &str, destinations: &str, more: &str| {
        format!(
            r#"
[sources.in]
kind = "mllp"
listen = "{mllp}"
ack = "after-transform"

[sources.web]
kind = "http"
listen = "127.0.0.1:0"
path = "/messages"

[plugins.site-normalize]
path = "{plugin}"

[destinations.files]
kind = "file"
dir = "{out}"
filename = "{{control_id}}.hl7"

[routes.adt]
plugins = ["site-normalize"]
destinations = [{destinations}]
match = ["ADT^*"]

[admin]
listen = "{admin_addr}"
{more}"#,
            plugin = plugin.display(),
            out = d.join("out").display(),
        )
    };
    let down = format!("\n[destinations.down]\nkind = \"http\"\nurl = \"http://{dead}/fhir\"\n");
    let v1 = {
        let down = down.clone();
        move |d: &Path| base(d, "127.0.0.1:0", r#""files", "down""#, &down)
    };
    let mut weft = Weft::start(v1);
    let admin_addr = weft.api(admin_addr);
    let (old_mllp, web) = (weft.addr, weft.addrs["web"]);
    let mut c = weft.client();
    for i in 1..=3 {
        assert_eq!(
            c.exchange(&a01(&format!("C{i}"), &format!("{i}"))).code,
            "AA"
        );
    }
    drop(c);
    let journal = weft.dir().join("data/journal.db");
    let pending_down =
        "SELECT COUNT(*) FROM deliveries WHERE destination = 'down' AND state = 'pending'";
    wait_until(
        "3 pending for the dead destination",
        Duration::from_secs(10),
        || journal_count(&journal, pending_down) == 3,
    );

    // The MLLP source moves, `down` goes (its work stays in the journal), a
    // destination and a route come in; the HTTP source is left alone.
    let more = weft.dir().join("more");
    let v2 = base(
        weft.dir(),
        &new_mllp.to_string(),
        r#""files""#,
        &format!(
            "\n[destinations.more]\nkind = \"file\"\ndir = \"{}\"\nfilename = \"{{control_id}}.hl7\"\n\
             [routes.oru]\nplugins = []\ndestinations = [\"more\"]\nmatch = [\"ORU^*\"]\n",
            more.display()
        ),
    );
    std::fs::write(weft.config_path(), &v2).unwrap();
    wait_until("the config applied", Duration::from_secs(10), || {
        admin(&admin_addr, "GET", "/plugins")["last_reload"]["config_applied"] == true
    });
    let report = admin(&admin_addr, "GET", "/plugins")["last_reload"].clone();
    let changes: Vec<&str> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        changes.contains(&"destination down removed: 3 pending deliveries stay in the journal"),
        "{changes:?}"
    );
    assert!(changes.contains(&"destination more added"), "{changes:?}");
    assert!(
        changes.contains(&format!("source in restarted (was on {old_mllp})").as_str()),
        "{changes:?}"
    );
    assert_eq!(changes.len(), 3, "nothing else restarted: {changes:?}");
    assert!(report["needs_restart"].as_array().unwrap().is_empty());

    // The old address is closed, the new one serves, the new route works.
    wait_until("the old listener closed", Duration::from_secs(5), || {
        TcpStream::connect(old_mllp).is_err()
    });
    let mut c = Client::connect(new_mllp);
    assert_eq!(c.exchange(&a01("C4", "4")).code, "AA");
    let oru = b"MSH|^~\\&|LAB|EDGE|WEFT|EDGE|20240101||ORU^R01|ORU-1|P|2.5\rPID|1||9^^^EDGE^MR\r";
    assert_eq!(c.exchange(oru).code, "AA");
    drop(c);
    wait_until("C4 and ORU-1 delivered", Duration::from_secs(10), || {
        weft.out.join("C4.hl7").is_file() && more.join("ORU-1.hl7").is_file()
    });
    // The HTTP source kept its listener.
    let (code, _) = crate::common::curl(&[
        "-H",
        "Content-Type: application/hl7-v2",
        "--data-binary",
        &String::from_utf8(a01("H1", "5")).unwrap(),
        &format!("http://{web}/messages"),
    ]);
    assert_eq!(code, 202);
    assert_eq!(
        weft.log_text().matches("source web listening on").count(),
        1,
        "the HTTP source was not restarted"
    );
    assert_eq!(journal_count(&journal, pending_down), 3, "nothing lost");

    // `down` comes back, pointing at a live server: its pending work goes out.
    let server = crate::common::fhir_server::FhirServer::start(&[]);
    let v3 = base(
        weft.dir(),
        &new_mllp.to_string(),
        r#""files", "down""#,
        &down.replace(&dead.to_string(), &server.addr.to_string()),
    );
    std::fs::write(weft.config_path(), &v3).unwrap();
    // Delivered, and recorded so (the record follows the receiver's answer).
    wait_until(
        "the pending deliveries made and recorded",
        Duration::from_secs(30),
        || server.accepted().len() >= 3 && journal_count(&journal, pending_down) == 0,
    );
    assert_eq!(weft.stop(), 0);
}

#[test]
fn refused_versions_leave_the_running_one_serving() {
    let admin_addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let a = std::fs::read(crate::common::wasm("site-normalize")).unwrap();
    let b = std::fs::read(crate::common::site_normalize_variant()).unwrap();
    let plugin = dir.path().join("site_normalize.wasm");
    std::fs::write(&plugin, &b).unwrap();
    let sample = dir.path().join("sample.hl7");
    std::fs::write(&sample, a01("SAMPLE", "1")).unwrap();
    // No watcher: reloads come from `weft plugins --reload` and SIGHUP.
    let samples = format!(
        "[[plugins.site-normalize.samples]]\ninput = \"{}\"\ncontains = [\"ZWV|B\"]\n\
         [runtime]\ncache_dir = \"cache\"\n",
        sample.display()
    );
    let mut weft = Weft::start_with(&["--no-watch"], |d| {
        config(d, &plugin, admin_addr, &samples)
    });
    let admin_addr = weft.api(admin_addr);
    let config = weft.config_path().display().to_string();
    let sha_b = sha256_of(&plugin);
    let served = |weft: &Weft, id: &str| {
        let mut c = weft.client();
        assert_eq!(c.exchange(&a01(id, "7")).code, "AA");
        let out = weft.out.join(format!("{id}.hl7"));
        wait_until(id, Duration::from_secs(10), || out.is_file());
        std::fs::read_to_string(out).unwrap()
    };
    assert!(served(&weft, "M1").contains("ZWV|B"));

    // Version A fails the sample: refused, B keeps serving.
    std::fs::write(&plugin, &a).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        live_sha(&admin_addr, "site-normalize"),
        sha_b,
        "not watched"
    );
    let (code, out, err) = weft_cli(weft.dir(), &["plugins", "--reload", "--config", &config]);
    assert_eq!(code, 1, "a refusal is an error: {out}{err}");
    assert!(
        out.contains("reload: plugin site-normalize refused: sample ")
            && out.contains("no output contains \"ZWV|B\""),
        "{out}"
    );
    assert_eq!(live_sha(&admin_addr, "site-normalize"), sha_b);
    assert!(served(&weft, "M2").contains("ZWV|B"));

    // A plugin built against another major version of the contract.
    std::fs::copy(crate::common::wasm("weft-test-future-contract"), &plugin).unwrap();
    weft.signal("HUP");
    wait_until("the contract refusal", Duration::from_secs(10), || {
        admin(&admin_addr, "GET", "/plugins")["plugins"][0]["last_refusal"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("weft:plugin@1.0.0"))
    });
    assert_eq!(live_sha(&admin_addr, "site-normalize"), sha_b);
    assert!(served(&weft, "M3").contains("ZWV|B"));

    // A new version that passes goes live on SIGHUP.
    std::fs::write(&plugin, with_custom_section(&b, "2")).unwrap();
    let sha_b2 = sha256_of(&plugin);
    weft.signal("HUP");
    wait_until("B2 live", Duration::from_secs(10), || {
        live_sha(&admin_addr, "site-normalize") == sha_b2
    });
    assert!(served(&weft, "M4").contains("ZWV|B"));
    // It served on baseline code first; the optimized code follows.
    wait_until("B2 on optimized code", Duration::from_secs(30), || {
        admin(&admin_addr, "GET", "/plugins")["plugins"][0]["code"] == "optimized"
    });
    assert!(served(&weft, "M5").contains("ZWV|B"));
    assert_eq!(
        live_sha(&admin_addr, "site-normalize"),
        sha_b2,
        "the same version"
    );
    // A rollback to a version whose optimized code is in the compile cache
    // goes straight to it.
    std::fs::write(&plugin, &b).unwrap();
    weft.signal("HUP");
    wait_until("B back", Duration::from_secs(10), || {
        live_sha(&admin_addr, "site-normalize") == sha_b
    });
    assert_eq!(
        admin(&admin_addr, "GET", "/plugins")["plugins"][0]["code"],
        "optimized"
    );
    std::fs::write(&plugin, with_custom_section(&b, "2")).unwrap();
    weft.signal("HUP");
    wait_until("B2 again", Duration::from_secs(10), || {
        live_sha(&admin_addr, "site-normalize") == sha_b2
    });
    let (code, out, _) = weft_cli(weft.dir(), &["plugins", "--config", &config]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("site-normalize 0.1.0  sha256 {sha_b2}"))
            && out.contains("(3 swaps, optimized code, unsigned)")
            && out.contains(&format!("replaced  {sha_b}"))
            && out.contains("refused")
            && out.contains("weft:plugin@1.0.0"),
        "{out}"
    );
    // Each message's journal entry names the version that made it.
    let (_, list, list_err) = weft_cli(
        weft.dir(),
        &[
            "messages",
            "--config",
            &config,
            "list",
            "--control-id",
            "M4",
        ],
    );
    let id = list
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{list}{list_err}"))
        .to_string();
    let (_, show, _) = weft_cli(weft.dir(), &["messages", "--config", &config, "show", &id]);
    assert!(show.contains(&format!("site-normalize@{sha_b2}")), "{show}");
    assert_eq!(weft.stop(), 0);
}

#[test]
fn a_relative_config_path_reloads_without_phantom_changes() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_addr();
    std::fs::write(
        dir.path().join("weft.toml"),
        format!(
            "[runtime]\ndata_dir = \"data\"\n[admin]\nlisten = \"{admin}\"\n\
             [sources.in]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\n\
             [destinations.out]\nkind = \"file\"\ndir = \"out\"\n\
             [routes.all]\nmatch = [\"*\"]\ndestinations = [\"out\"]\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(dir.path())
        .args(["run", "--config", "weft.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let api = crate::common::Api::new(admin, &dir.path().join("data"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.call("GET", "/status", &[], "").0 != 200 {
        assert!(Instant::now() < deadline, "weft run did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    let file = dir.path().join("weft.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}# an edit that changes nothing\n")).unwrap();
    let (code, report) = api.call("POST", "/reload", &[], "");
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["needs_restart"], serde_json::json!([]), "{report}");
    assert_eq!(report["changes"], serde_json::json!([]), "{report}");
}
