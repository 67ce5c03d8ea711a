//! Shadow runs in a live `weft run`: a candidate version of site-normalize
//! (its second version, which adds a `ZWV` segment) runs beside the live
//! one on every message within its share; the changed field is counted and
//! shown by `GET /plugins` and `weft plugins`, and nothing it makes is
//! delivered. A tiny share skips most messages, and says so.

use std::time::{Duration, Instant};

use crate::common::fhir_server::free_addr;
use crate::common::run::{Weft, a01};
use crate::common::weft_cli;
use serde_json::Value;

/// The live version is a copy: a promotion writes over it.
fn config(dir: &std::path::Path, admin: std::net::SocketAddr, share: &str) -> String {
    let live = dir.join("site_normalize.wasm");
    std::fs::copy(crate::common::wasm("site-normalize"), &live).unwrap();
    format!(
        "[sources.in]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\nack = \"after-transform\"\n\
         [admin]\nlisten = \"{admin}\"\n\
         [plugins.site-normalize]\npath = \"{live}\"\ncandidate = \"{candidate}\"\ncandidate_share = {share}\n\
         [plugins.site-normalize.config]\nmrn_prefix = \"EDGE-\"\n\
         [destinations.files]\nkind = \"file\"\ndir = \"{out}\"\nfilename = \"{{control_id}}.{{ext}}\"\n\
         [routes.adt]\nmatch = [\"ADT^*\"]\nplugins = [\"site-normalize\"]\ndestinations = [\"files\"]\n",
        live = live.display(),
        candidate = crate::common::site_normalize_variant().display(),
        out = dir.join("out").display(),
    )
}

/// `GET /plugins`' entry for `name` once `done(entry)` holds.
fn plugin_once(api: &crate::common::Api, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, v) = api.call("GET", "/plugins", &[], "");
        assert_eq!(code, 200, "{v}");
        let p = v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or(Value::Null);
        if done(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "not reached: {v:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_candidate_runs_beside_the_live_version_and_its_changes_are_counted_never_delivered() {
    let admin = free_addr();
    let weft = Weft::start(|d| config(d, admin, "1.0"));
    let api = weft.api(admin);
    let mut c = weft.client();
    // More messages than the 20 latest differing ids kept.
    const SENT: u64 = 60;
    for i in 0..SENT {
        assert_eq!(
            c.exchange(&a01(&format!("SH-{i}"), &format!("{i}"))).code,
            "AA"
        );
    }
    let compared = |p: &Value| {
        p["candidate"]["compared"]["changed"].as_u64().unwrap_or(0)
            + p["candidate"]["skipped"].as_u64().unwrap_or(0)
    };
    let p = plugin_once(&api, "site-normalize", |p| compared(p) == SENT);
    let changed = p["candidate"]["compared"]["changed"].as_u64().unwrap();
    assert!(changed > 20, "{p:#}");
    assert_eq!(
        p["candidate"]["compared"]["identical"],
        Value::Null,
        "{p:#}"
    );
    assert_eq!(
        p["candidate"]["changed_fields"][0],
        serde_json::json!(["ZWV", changed]),
        "the one field that changed: {p:#}"
    );
    let latest = p["candidate"]["latest_differing"].as_array().unwrap();
    assert_eq!(latest.len(), 20, "the cap: {p:#}");
    assert!(
        latest[0].as_str() > latest[19].as_str(),
        "newest first (ids sort by time): {p:#}"
    );
    // The candidate is loaded as a plugin of its own.
    let candidate = plugin_once(&api, "site-normalize@candidate", |p| !p.is_null());
    assert_eq!(p["candidate"]["sha256"], candidate["sha256"]);
    assert_ne!(p["sha256"], candidate["sha256"]);
    // Nothing of the candidate's was delivered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while weft.out_files().len() < SENT as usize {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let files = weft.out_files();
    assert_eq!(files.len(), SENT as usize);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains("ZWV"), "a candidate's output was delivered");
    }
    // The command line shows the same.
    let config = weft.config_path().display().to_string();
    let (code, out) = weft_cli(&["plugins", "-c", &config]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("    candidate "), "{out}");
    assert!(
        out.contains(&format!("changed   ZWV in {changed} messages")),
        "{out}"
    );

    // Promotion under traffic: every message answered AA is delivered, the
    // ones after the swap by the candidate's version.
    let addr = weft.addr;
    let senders: Vec<_> = (0..3)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = crate::common::run::Client::connect(addr);
                for i in 0..40 {
                    let ack = c.exchange(&a01(&format!("PR-{t}-{i}"), &format!("{t}{i}")));
                    assert_eq!(ack.code, "AA");
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let (code, out) = weft_cli(&["plugins", "-c", &config, "promote", "site-normalize"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("reload: plugin site-normalize now"), "{out}");
    for s in senders {
        s.join().unwrap();
    }
    let p = plugin_once(&api, "site-normalize", |p| p["swaps"] == 1);
    assert_eq!(p["sha256"], candidate["sha256"], "the candidate is live");
    let deadline = Instant::now() + Duration::from_secs(20);
    while weft.out_files().len() < SENT as usize + 120 {
        assert!(
            Instant::now() < deadline,
            "{} delivered",
            weft.out_files().len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = weft.dir().join("out/PR-0-39.hl7");
    assert!(
        std::fs::read_to_string(&last).unwrap().contains("ZWV|B"),
        "made by the promoted version"
    );

    // The shadow runs end: the candidate's lines leave the file, the
    // running weft drops it.
    let (code, out) = weft_cli(&["plugins", "-c", &config, "drop-candidate", "site-normalize"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("drop-candidate: 2 lines"), "{out}");
    let text = std::fs::read_to_string(weft.config_path()).unwrap();
    assert!(!text.contains("candidate"), "{text}");
    let p = plugin_once(&api, "site-normalize", |p| p["candidate"].is_null());
    assert_eq!(
        p["sha256"], candidate["sha256"],
        "the promoted version stays"
    );
    plugin_once(&api, "site-normalize@candidate", |p| p.is_null());
    let (code, out) = weft_cli(&["plugins", "-c", &config, "drop-candidate", "site-normalize"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("has no candidate"), "{out}");
}

#[test]
fn a_small_share_skips_messages_and_counts_them() {
    let admin = free_addr();
    let weft = Weft::start(|d| config(d, admin, "0.001"));
    let api = weft.api(admin);
    let mut c = weft.client();
    for i in 0..20 {
        assert_eq!(
            c.exchange(&a01(&format!("SK-{i}"), &format!("{i}"))).code,
            "AA"
        );
    }
    let p = plugin_once(&api, "site-normalize", |p| {
        p["candidate"]["skipped"].as_u64().unwrap_or(0)
            + p["candidate"]["compared"]["changed"].as_u64().unwrap_or(0)
            == 20
    });
    // The first message is always compared; after it, the candidate's time
    // is far past a thousandth of the live version's.
    assert!(p["candidate"]["skipped"].as_u64().unwrap() >= 15, "{p:#}");
    assert!(
        p["candidate"]["time_permille"].as_u64().unwrap() > 1,
        "{p:#}"
    );
}
