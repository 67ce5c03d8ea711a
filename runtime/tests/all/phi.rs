//! No patient data where it does not belong: the whole corpus, malformed
//! messages included, goes through every shipped route of the default
//! configuration (over MLLP with after-transform ACKs, and over HTTP), with
//! logging at info; no identifier (PID-3), name (PID-5), birth date
//! (PID-7), address (PID-11) or phone number (PID-13) of any of them may
//! appear in the log, in an ACK's ERR segment, in an HTTP answer, or in the
//! admin API's list and (read role) detail views.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::fhir_server::free_addr;
use crate::common::run::{Client, Weft};
use crate::common::{corpus_files, curl, repo, weft_cli};

/// The default `weft.toml`, runnable from a temporary directory: plugin,
/// table and sample paths made absolute, ports chosen by the system, the
/// admin API on `admin`.
fn default_config(admin: std::net::SocketAddr) -> String {
    let repo = repo().canonicalize().unwrap();
    let text = std::fs::read_to_string(repo.join("weft.toml")).unwrap();
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            let relative = ["path = \"", "input = \"", "keys = \""]
                .iter()
                .any(|k| t.starts_with(k))
                || t.contains("= \"lookups/");
            if relative {
                l.replacen("= \"", &format!("= \"{}/", repo.display()), 1)
            } else if t.starts_with("listen = \"127.0.0.1:8081\"") {
                format!("listen = \"{admin}\"")
            } else if t.starts_with("listen = ") {
                "listen = \"127.0.0.1:0\"".to_string()
            } else if t.starts_with("cache_dir = ") {
                format!(
                    "cache_dir = \"{}\"",
                    repo.join("target/weft-test-cache").display()
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The values of MSH-3, MSH-4 and MSH-10: what the lists show by design
/// (sender, control id). Sample data reuses some patient values in them
/// (`Test`, `123456789`): a patient value found inside one is not counted.
fn header_values(message: &str) -> Vec<String> {
    let Some(msh) = message.split('\r').find(|s| s.starts_with("MSH")) else {
        return Vec::new();
    };
    let Some(fs) = msh.chars().nth(3) else {
        return Vec::new();
    };
    let fields: Vec<&str> = msh.split(fs).collect();
    // MSH-1 is the separator itself: MSH-n is at index n - 1.
    [2usize, 3, 9]
        .iter()
        .filter_map(|i| fields.get(*i))
        .flat_map(|f| f.split(['^', '&']))
        .map(|v| v.trim().to_string())
        .collect()
}

/// The leaf values (components and subcomponents chosen per field) of
/// PID-3, -5, -7, -11 and -13 of an HL7 v2 message: what must not leak.
/// Short values (under 4 characters, or under 6 digits) are left out: they
/// would match anything.
fn patient_values(message: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let Some(msh) = message.split('\r').find(|s| s.starts_with("MSH")) else {
        return found;
    };
    let Some(fs) = msh.chars().nth(3) else {
        return found;
    };
    for seg in message.split('\r').filter(|s| s.starts_with("PID")) {
        let fields: Vec<&str> = seg.split(fs).collect();
        for (n, components) in [
            (3usize, &[1usize][..]),
            (5, &[1, 2, 3]),
            (7, &[1]),
            (11, &[1, 2, 3, 5]),
            (13, &[1, 6, 7]),
        ] {
            let Some(field) = fields.get(n) else { continue };
            for rep in field.split('~') {
                let parts: Vec<&str> = rep.split('^').collect();
                for c in components {
                    let Some(part) = parts.get(c - 1) else {
                        continue;
                    };
                    for sub in part.split('&') {
                        let v = sub.trim();
                        let digits = v.bytes().all(|b| b.is_ascii_digit() || b == b'-');
                        let long_enough = if digits { v.len() >= 6 } else { v.len() >= 4 };
                        if long_enough && !v.contains('\\') {
                            found.push((format!("PID-{n}.{c}"), v.to_string()));
                        }
                    }
                }
            }
        }
    }
    found
}

#[test]
fn no_patient_value_reaches_logs_acks_answers_or_lists() {
    let admin = free_addr();
    let weft = Weft::start(|_| default_config(admin));
    let api = weft.api(admin);
    let (mllp, http) = (weft.addrs["mllp"], weft.addrs["http"]);

    let mut files = corpus_files("hl7v2/fhir-converter");
    files.extend(corpus_files("malformed"));
    assert!(files.len() > 80, "the corpus is there");
    // Two made-up messages for the audit's findings: an impossible birth
    // date, and a stray carriage return that splits a patient's name and
    // address off into a line that is not a segment.
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "bad-date.hl7",
            "MSH|^~\\&|SYN|SYNFAC|WEFT|EDGE|20240102030405||ADT^A01^ADT_A01|SYN-1|P|2.5.1\r\
             PID|1||SYN4711^^^EDGE^MR||Zamboni^Philippa||19801345|F\rPV1|1|I|W1^1^1\r",
        ),
        (
            "stray-cr.hl7",
            "MSH|^~\\&|SYN|SYNFAC|WEFT|EDGE|20240102030405||ADT^A01^ADT_A01|SYN-2|P|2.5.1\r\
             PID|1||SYN4712^^^EDGE^MR||Quixote\rEzekiel lives at Windermere Close|F\r",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let mut values = BTreeSet::new();
    let mut by_design = BTreeSet::new();
    let mut answers = Vec::new();
    let mut sent = 0;
    for file in &files {
        let raw = std::fs::read(file).unwrap();
        let body = String::from_utf8_lossy(&raw)
            .replace("\r\n", "\r")
            .replace('\n', "\r")
            .into_bytes();
        let text = String::from_utf8_lossy(&body);
        let text = text.trim_start_matches('\u{feff}');
        values.extend(patient_values(text));
        by_design.extend(header_values(text));
        // One connection per file (a file may hold a batch): send, close
        // the sending side, read every ACK until Weft closes too.
        let mut client = Client::connect(mllp);
        client.send(&body);
        client.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut errs = Vec::new();
        while let Some(ack) = client.read_ack() {
            // What a sender sees of the refusal: the ERR segment.
            errs.extend(
                ack.raw
                    .split(['\r', '\n'])
                    .filter(|s| s.starts_with("ERR"))
                    .map(String::from),
            );
        }
        answers.push((format!("ACK of {}", file.display()), errs.join("\r")));
        let (code, text) = curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/hl7-v2",
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("http://{http}/messages"),
        ]);
        assert!(code > 0, "HTTP answered for {}", file.display());
        answers.push((format!("HTTP answer for {}", file.display()), text));
        sent += 2;
    }
    values.retain(|(_, v)| !by_design.iter().any(|h| h.contains(v.as_str())));
    values.insert(("PID-5 (split off)".into(), "Ezekiel".into()));
    values.insert(("PID-11 (split off)".into(), "Windermere".into()));
    for v in ["SYN4711", "Zamboni", "19801345", "Quixote"] {
        assert!(values.iter().any(|(_, x)| x == v), "{v} is looked for");
    }
    assert!(
        values.len() > 50,
        "the corpus holds patient values: {}",
        values.len()
    );

    // Everything the HTTP source accepted is processed before looking.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = crate::common::admin(&api, "GET", "/status");
        let done = ["transformed", "rejected", "failed"]
            .iter()
            .map(|k| s[k].as_u64().unwrap_or(0))
            .sum::<u64>();
        if s["queued"] == 0 && done == s["received"].as_u64().unwrap_or(0) && done > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not settled: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The admin views a read token gets: the list and each message.
    let config = weft.config_path().display().to_string();
    let reader = weft.add_token(admin, "viewer", "read");
    let (code, list) = reader.call("GET", "/messages?limit=1000", &[], "");
    assert_eq!(code, 200);
    let rows = list["messages"].as_array().unwrap();
    // Messages no route takes, and malformed ones, are refused unrecorded.
    assert!(rows.len() >= 40, "{} listed of {sent} sent", rows.len());
    answers.push(("the admin list".into(), list.to_string()));
    for row in rows {
        let id = row["id"].as_str().unwrap();
        let (_, detail) = reader.call("GET", &format!("/messages/{id}"), &[], "");
        answers.push((format!("the admin view of {id}"), detail.to_string()));
    }
    let (_, cli_list) = weft_cli(&["messages", "list", "--limit", "1000", "-c", &config]);
    answers.push(("weft messages list".into(), cli_list));
    answers.push(("the log at info".into(), weft.log_text()));

    // The refusals were seen: each made-up message got an ERR segment.
    for name in ["bad-date.hl7", "stray-cr.hl7"] {
        let (_, err) = answers
            .iter()
            .find(|(place, _)| place.starts_with("ACK of") && place.ends_with(name))
            .expect("an ACK");
        assert!(err.starts_with("ERR|"), "{name}: {err:?}");
    }
    let mut leaks = Vec::new();
    for (field, value) in &values {
        for (place, text) in &answers {
            if let Some(at) = text.find(value.as_str()) {
                let from = text.floor_char_boundary(at.saturating_sub(80));
                let to = text.ceil_char_boundary((at + value.len() + 40).min(text.len()));
                leaks.push(format!(
                    "{field} value {value:?} in {place}: …{}…",
                    &text[from..to]
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks of {} patient values:\n{}",
        leaks.len(),
        values.len(),
        leaks.join("\n")
    );
    // The log did say what happened, by field and count.
    let log = weft.log_text();
    assert!(
        log.contains("message not transformed") || log.contains("message refused"),
        "{log}"
    );
}
