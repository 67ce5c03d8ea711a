//! `weft replay` beside a live `weft run`: the journaled messages through a
//! candidate configuration (a changed setting and a fix) and a candidate
//! plugin file, compared with what was recorded; nothing delivered, the
//! messages untouched, the replay on the audit trail.

use std::time::{Duration, Instant};

use crate::common::fhir_server::free_addr;
use crate::common::run::{Weft, a01, adt_config};
use crate::common::weft_cli;

/// The count a report line gives a verdict (`  changed   20`).
fn count(report: &str, verdict: &str) -> u64 {
    report
        .lines()
        .find(|l| l.trim_start().starts_with(verdict) && l.starts_with("  "))
        .and_then(|l| l[verdict.len() + 2..].split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {verdict} line in:\n{report}"))
}

#[test]
fn a_replay_reports_what_a_candidate_would_change_and_changes_nothing() {
    let admin = free_addr();
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-transform",
            &format!("[admin]\nlisten = \"{admin}\"\n"),
        )
    });
    let api = weft.api(admin);
    let config = weft.config_path().display().to_string();
    let mut c = weft.client();
    for i in 0..20 {
        let ack = c.exchange(&a01(&format!("RP-{i}"), &format!("{}", 500 + i)));
        assert_eq!(ack.code, "AA");
    }
    // A sender's impossible birth date: rejected by adt-to-fhir.
    for i in 0..4 {
        let bad = String::from_utf8(a01(&format!("RPX-{i}"), &format!("{}", 900 + i)))
            .unwrap()
            .replace("19800101", "19801399");
        assert_eq!(c.exchange(bad.as_bytes()).code, "AR");
    }
    // Every outcome recorded (an AR can come before its record) and every
    // output delivered.
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        let (_, list) = api.call("GET", "/messages?limit=100", &[], "");
        let settled = list["messages"]
            .as_array()
            .is_some_and(|m| m.len() == 24 && m.iter().all(|m| m["status"] != "received"));
        if settled && weft.out_files().len() == 20 {
            break list;
        }
        assert!(Instant::now() < deadline, "not all settled: {list}");
        std::thread::sleep(Duration::from_millis(50));
    };

    // The candidate: another MRN prefix, and the birth-date fix.
    let dir = weft.dir();
    std::fs::write(dir.join("birth-dates.csv"), "19801399,19801231\n").unwrap();
    let candidate = std::fs::read_to_string(weft.config_path())
        .unwrap()
        .replace("mrn_prefix = \"EDGE-\"", "mrn_prefix = \"NORTH-\"")
        .replace(
            "drop_segments = \"ZPI\"",
            "drop_segments = \"ZPI\"\ntranslate = \"PID-7:birth_dates\"",
        )
        + &format!(
            "\n[plugins.site-normalize.lookups]\nbirth_dates = \"{}\"\n",
            dir.join("birth-dates.csv").display()
        );
    let candidate_path = dir.join("candidate.toml");
    std::fs::write(&candidate_path, candidate).unwrap();
    let diffs = dir.join("diffs");
    let (code, report) = weft_cli(&[
        "replay",
        "-c",
        &config,
        "--candidate-config",
        candidate_path.to_str().unwrap(),
        "--diff-dir",
        diffs.to_str().unwrap(),
        "--workers",
        "2",
    ]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("replayed 24 messages"), "{report}");
    assert_eq!(count(&report, "changed"), 20, "{report}");
    assert_eq!(count(&report, "newly mapped"), 4, "{report}");
    assert_eq!(count(&report, "identical"), 0, "{report}");
    assert!(
        report.contains("20  entry[].resource.identifier[].value"),
        "the field that changed, counted per message: {report}"
    );
    // Values are patient data: named only when asked for.
    assert!(!report.contains("NORTH-5"), "{report}");
    let written: Vec<_> = std::fs::read_dir(&diffs).unwrap().flatten().collect();
    assert_eq!(written.len(), 24, "{report}");
    let one = written[0].path();
    assert!(one.join("candidate/01.json").is_file(), "{}", one.display());
    assert!(one.join("differences.txt").is_file());

    // A candidate plugin file: site-normalize's second version adds a
    // segment that adt-to-fhir does not map, so the Bundles are the same.
    let variant = crate::common::site_normalize_variant();
    let (code, report) = weft_cli(&[
        "replay",
        "-c",
        &config,
        "--plugin",
        &format!("site-normalize={}", variant.display()),
        "--show-values",
        "--status",
        "transformed",
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "identical"), 20, "{report}");
    assert_eq!(count(&report, "changed"), 0, "{report}");
    assert_eq!(count(&report, "still rejected"), 0, "{report}");

    // With --show-values the example names both values.
    let (code, report) = weft_cli(&[
        "replay",
        "-c",
        &config,
        "--candidate-config",
        candidate_path.to_str().unwrap(),
        "--show-values",
        "--limit",
        "5",
    ]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("replayed 5 messages"), "{report}");
    assert!(
        report.contains("expected \"EDGE-5") && report.contains("got \"NORTH-5"),
        "{report}"
    );

    // Nothing was delivered, and the messages are as they were.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(weft.out_files().len(), 20);
    let (_, after) = api.call("GET", "/messages?limit=100", &[], "");
    assert_eq!(before["messages"], after["messages"]);
    // Each replay is on the audit trail, with what selected it.
    let (code, audit) = weft_cli(&["audit", "list", "-c", &config]);
    assert_eq!(code, 0, "{audit}");
    assert_eq!(audit.matches("messages.replay").count(), 3, "{audit}");
    assert!(audit.contains("status=transformed"), "{audit}");

    // What it refuses.
    let (code, out) = weft_cli(&["replay", "-c", &config]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("give a candidate"), "{out}");
    let (code, out) = weft_cli(&["replay", "-c", &config, "--limit", "100001"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--limit: from 1 to 100000"), "{out}");
    let (code, out) = weft_cli(&["replay", "-c", &config, "--plugin", "nope=x.wasm"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no plugin of that name") && out.contains("site-normalize"),
        "{out}"
    );
}
