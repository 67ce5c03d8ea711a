//! Reprocessing on a real `weft run`: a message a plugin rejected runs
//! again after the site's fix is hot-reloaded, chosen by a search whose
//! count the operator confirms (API) or by id (command line); its first
//! outcome is kept, its new outputs delivered, every action audited.

use std::time::{Duration, Instant};

use crate::common::fhir_server::free_addr;
use crate::common::run::{Weft, a01, adt_config};
use crate::common::{Api, weft_cli};
use serde_json::Value;

/// The message `id` once `done(message)` holds (20 s at most).
fn wait_for(api: &Api, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, m) = api.call("GET", &format!("/messages/{id}"), &[], "");
        assert_eq!(code, 200, "{m}");
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "not reached: {m:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The id of the only message with control id `control`.
fn id_of(api: &Api, control: &str) -> String {
    let (_, list) = api.call("GET", &format!("/messages?control_id={control}"), &[], "");
    list["messages"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn a_rejected_message_runs_again_after_the_fix_and_keeps_its_first_outcome() {
    let admin = free_addr();
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-delivery",
            &format!("[admin]\nlisten = \"{admin}\"\n"),
        )
    });
    let api = weft.api(admin);
    let config = weft.config_path().display().to_string();
    let mut c = weft.client();
    // A sender's quirk: a birth date that is not a date. adt-to-fhir
    // rejects it.
    let quirk = String::from_utf8(a01("REP-1", "41"))
        .unwrap()
        .replace("19800101", "19801399");
    assert_eq!(c.exchange(quirk.as_bytes()).code, "AR");
    assert_eq!(c.exchange(&a01("REP-2", "42")).code, "AA");
    let rejected = id_of(&api, "REP-1");
    let good = id_of(&api, "REP-2");

    // A search's result is acted on only once its count is confirmed:
    // without a terminal, the command line asks for --yes...
    let (code, out) = weft_cli(&[
        "messages",
        "reprocess",
        "--status",
        "rejected",
        "--route",
        "adt",
        "-c",
        &config,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("1 messages match") && out.contains("--yes"),
        "{out}"
    );
    // ...and the API answers 409 with the count to confirm.
    let filter = r#"{"filter": {"status": "rejected", "route": "adt"}}"#;
    let (code, r) = api.call("POST", "/messages/reprocess", &[], filter);
    assert_eq!((code, r["matched"].as_u64()), (409, Some(1)), "{r}");
    let wrong = r#"{"filter": {"status": "rejected", "route": "adt"}, "expect": 3}"#;
    let (code, r) = api.call("POST", "/messages/reprocess", &[], wrong);
    assert_eq!(code, 409, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("not the 3 expected"),
        "{r}"
    );
    // A bulk action never takes every message, and a read token none.
    let (code, _) = api.call(
        "POST",
        "/messages/reprocess",
        &[],
        r#"{"filter": {}, "expect": 2}"#,
    );
    assert_eq!(code, 400);
    let reader = weft.add_token(admin, "viewer", "read");
    let (code, _) = reader.call(
        "POST",
        "/messages/reprocess",
        &[],
        &format!(r#"{{"ids": ["{rejected}"]}}"#),
    );
    assert_eq!(code, 403);

    // The site's fix, hot-reloaded.
    crate::common::run::fix_birth_dates(&weft, &api);

    let confirmed = r#"{"filter": {"status": "rejected", "route": "adt"}, "expect": 1}"#;
    let (code, r) = api.call("POST", "/messages/reprocess", &[], confirmed);
    assert_eq!((code, r["queued"].as_u64()), (200, Some(1)), "{r}");
    let m = wait_for(&api, &rejected, |m| {
        m["status"] == "transformed" && m["deliveries"][0]["state"] == "delivered"
    });
    assert_eq!(m["run"], 2, "{m:#}");
    assert_eq!(m["earlier"][0]["run"], 1);
    assert_eq!(m["earlier"][0]["status"], "rejected");
    assert!(
        m["earlier"][0]["error"].as_str().unwrap().contains("PID-7"),
        "the operate token sees the first run's reason: {m:#}"
    );
    assert_eq!(m["deliveries"][0]["run"], 2);
    assert!(
        weft.out_files()
            .iter()
            .any(|f| f.to_string_lossy().contains("REP-1-1")),
        "the new output reached its destination: {:?}",
        weft.out_files()
    );
    // Nothing is rejected any more.
    let (code, r) = api.call("POST", "/messages/reprocess", &[], filter);
    assert_eq!((code, r["matched"].as_u64()), (409, Some(0)), "{r}");

    // From the command line, confirmed with --yes: a transformed message
    // runs again; its first delivery stays done, its new one is made.
    let (code, out) = weft_cli(&[
        "messages",
        "reprocess",
        "--control-id",
        "REP-2",
        "--yes",
        "-c",
        &config,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 messages queued"), "{out}");
    let m = wait_for(&api, &good, |m| {
        m["status"] == "transformed"
            && m["deliveries"][0]["run"] == 2
            && m["deliveries"][0]["state"] == "delivered"
    });
    let runs: Vec<(i64, &str)> = m["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["run"].as_i64().unwrap(), d["state"].as_str().unwrap()))
        .collect();
    assert_eq!(runs, vec![(2, "delivered"), (1, "delivered")], "{m:#}");
    assert_eq!(m["earlier"][0]["status"], "transformed");
    let (_, out) = weft_cli(&["messages", "show", &good, "-c", &config]);
    assert!(
        out.contains("(run 2)") && out.contains("earlier     run 1: transformed"),
        "{out}"
    );
    // A resend takes a confirmed search too, and sends this run's output.
    let (code, r) = api.call(
        "POST",
        "/messages/resend",
        &[],
        r#"{"filter": {"control_id": "REP-2"}, "expect": 1}"#,
    );
    assert_eq!((code, r["queued"].as_u64()), (200, Some(1)), "{r}");
    // Unknown ids are named, and fail the command.
    let (code, out) = weft_cli(&["messages", "reprocess", "nope", "-c", &config]);
    assert_eq!(code, 1);
    assert!(out.contains("nope: no such message"), "{out}");

    // Each action is on record: who, which messages, what selected them.
    let (_, trail) = weft_cli(&["audit", "list", "-c", &config]);
    let api_line = trail
        .lines()
        .find(|l| {
            l.contains("messages.reprocess")
                && l.contains("selected 1 by status=rejected route=adt")
        })
        .unwrap_or_else(|| panic!("{trail}"));
    assert!(api_line.contains("api"), "{api_line}");
    assert!(
        trail
            .lines()
            .any(|l| l.contains("messages.reprocess") && l.contains("refused")),
        "the read token's attempt: {trail}"
    );
    assert!(
        trail.lines().any(|l| l.contains("messages.reprocess")
            && l.contains("cli")
            && l.contains("queued 1; selected 1 by control_id=REP-2")),
        "{trail}"
    );
}
