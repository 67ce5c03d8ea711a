//! `weft messages list/show` against the journal of a real `weft run`.

use std::process::Command;

use crate::common::run::{Weft, a01, adt_config};

fn messages(weft: &Weft, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("messages")
        .arg("--config")
        .arg(weft.config_path())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn operators_see_every_message_and_what_became_of_it() {
    let mut weft = Weft::start(|d| adt_config(d, "after-delivery", ""));
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("LIST-1", "1")).code, "AA");
    let bad = String::from_utf8(a01("LIST-2", "2"))
        .unwrap()
        .replace("19800101", "19801399");
    assert_eq!(c.exchange(bad.as_bytes()).code, "AR");
    drop(c);

    // Beside the running runtime (read-only). The source is answered as
    // soon as the plugins are done (the message itself is durable since
    // intake); the outcome is committed right after: looked for until it is.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (code, out) = loop {
        let (code, out) = messages(&weft, &["list"]);
        if out.contains("rejected") || std::time::Instant::now() > deadline {
            break (code, out);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].contains("LIST-2") && lines[1].contains("rejected"),
        "{out}"
    );
    assert!(
        lines[2].contains("LIST-1")
            && lines[2].contains("transformed")
            && lines[2].contains("1 delivered"),
        "{out}"
    );

    let (_, out) = messages(&weft, &["list", "--status", "rejected"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let (_, out) = messages(
        &weft,
        &["list", "--control-id", "LIST-1", "--type", "ADT^A0*"],
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    let (_, out) = messages(&weft, &["list", "--since", "2999-01-01"]);
    assert_eq!(out.lines().count(), 1, "{out}");

    let id = lines[2].split_whitespace().next().unwrap().to_string();
    let (code, out) = messages(&weft, &["show", &id]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("plugin      site-normalize@"), "{out}");
    assert!(out.contains("plugin      adt-to-fhir@"), "{out}");
    assert!(
        out.contains("-> files: delivered after 1 attempt(s)"),
        "{out}"
    );
    assert!(!out.contains("PID|"), "no body without --body: {out}");
    let (_, out) = messages(&weft, &["show", &id, "--body"]);
    assert!(
        out.contains("PID|1||1^^^EDGE^MR") && out.contains("\"resourceType\":\"Bundle\""),
        "{out}"
    );

    let rejected = lines[1].split_whitespace().next().unwrap().to_string();
    let (_, out) = messages(&weft, &["show", &rejected]);
    assert!(
        out.contains("error       plugin adt-to-fhir rejected the message: PID-7"),
        "{out}"
    );

    let (code, out) = messages(&weft, &["show", "no-such-id"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(weft.stop(), 0);
}

#[test]
fn duplicates_are_answered_as_the_original_and_not_processed_again() {
    let mut weft = Weft::start(|d| {
        adt_config(d, "after-transform", "").replace(
            "idle_timeout_s = 5",
            "idle_timeout_s = 5\ndedup_window_s = 600",
        )
    });
    let mut c = weft.client();
    let msg = a01("DUP-1", "1");
    assert_eq!(c.exchange(&msg).code, "AA");
    assert_eq!(c.exchange(&msg).code, "AA", "replayed");
    let bad = String::from_utf8(a01("DUP-2", "2"))
        .unwrap()
        .replace("19800101", "19801399");
    let first = c.exchange(bad.as_bytes());
    let again = c.exchange(bad.as_bytes());
    assert_eq!((first.code.as_str(), again.code.as_str()), ("AR", "AR"));
    assert_eq!(first.text, again.text);
    drop(c);
    assert_eq!(weft.stop(), 0);
    assert_eq!(
        weft.out_files().len(),
        1,
        "the duplicate was not delivered again"
    );
    let (_, out) = messages(&weft, &["list", "--control-id", "DUP-1"]);
    assert_eq!(out.lines().count(), 2, "recorded once: {out}");
}

#[test]
fn dead_deliveries_can_be_sent_again() {
    let server = crate::common::fhir_server::FhirServer::start(&[400]);
    let mut weft = Weft::start(|d| {
        adt_config(
            d,
            "after-delivery",
            &format!(
                "[destinations.fhir-server]\nkind = \"http\"\nurl = \"http://{}/fhir\"\n",
                server.addr
            ),
        )
        .replace(
            r#"destinations = ["files"]"#,
            r#"destinations = ["fhir-server"]"#,
        )
    });
    assert_eq!(weft.client().exchange(&a01("DEAD-1", "1")).code, "AE");
    let (_, out) = messages(&weft, &["list", "--status", "dead"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let (code, out) = messages(&weft, &["resend", "--dead"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 dead deliveries queued again"), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.accepted().is_empty() {
        assert!(std::time::Instant::now() < deadline, "not resent");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, out) = messages(&weft, &["list", "--status", "dead"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let (code, out) = messages(&weft, &["resend", "nope"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(weft.stop(), 0);
}

#[test]
fn purge_removes_settled_messages_and_never_pending_work() {
    let dead = crate::common::fhir_server::free_addr();
    let mut weft = Weft::start(|d| {
        adt_config(
            d,
            "after-transform",
            &format!(
                "[destinations.dead]\nkind = \"http\"\nurl = \"http://{dead}/fhir\"\n\
                 [routes.oru]\nmatch = [\"ORU^*\"]\ndestinations = [\"dead\"]\n\
                 [runtime]\nshutdown_grace_s = 1\n"
            ),
        )
    });
    let mut c = weft.client();
    for i in 0..3 {
        assert_eq!(c.exchange(&a01(&format!("P{i}"), "1")).code, "AA");
    }
    let bad = String::from_utf8(a01("P-BAD", "2"))
        .unwrap()
        .replace("19800101", "19801399");
    assert_eq!(c.exchange(bad.as_bytes()).code, "AR");
    let oru = b"MSH|^~\\&|LAB|EDGE|WEFT|EDGE|20240101||ORU^R01|P-ORU|P|2.5\rPID|1||9^^^EDGE^MR\r";
    assert_eq!(c.exchange(oru).code, "AA");
    drop(c);
    // Let the ADT deliveries settle: only the ORU stays pending.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while messages(&weft, &["list", "--status", "pending"])
        .1
        .lines()
        .count()
        != 2
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (code, out) = messages(&weft, &["purge", "--before", "2999-01-01"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("purged 4 messages and 3 deliveries"), "{out}");
    let (_, out) = messages(&weft, &["list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "only the pending ORU is kept: {out}");
    assert!(
        lines[1].contains("P-ORU") && lines[1].contains("1 pending"),
        "{out}"
    );
    assert_eq!(weft.stop(), 0);
}

#[test]
fn a_size_cap_purges_the_oldest_settled_messages_and_frees_the_disk() {
    let dead = crate::common::fhir_server::free_addr();
    let mut weft = Weft::start(|d| {
        adt_config(
            d,
            "after-commit",
            &format!(
                "[destinations.dead]\nkind = \"http\"\nurl = \"http://{dead}/fhir\"\n\
                 [routes.oru]\nmatch = [\"ORU^*\"]\ndestinations = [\"dead\"]\n\
                 [runtime]\nretain_max_mb = 1\nshutdown_grace_s = 1\n"
            ),
        )
    });
    let mut c = weft.client();
    // The oldest message is pending (its destination is down): it must
    // survive any purge.
    let oru = b"MSH|^~\\&|LAB|EDGE|WEFT|EDGE|20240101||ORU^R01|S-ORU|P|2.5\rPID|1||9^^^EDGE^MR\r";
    assert_eq!(c.exchange(oru).code, "AA");
    let total = 700;
    for i in 0..total {
        assert_eq!(
            c.exchange(&a01(&format!("S{i}"), &i.to_string())).code,
            "AA"
        );
    }
    drop(c);
    let journal = weft.dir().join("data").join("journal.db");
    let size = || std::fs::metadata(&journal).map_or(0, |m| m.len());
    assert!(
        weft.wait_for_log(
            "retention: purged the oldest settled messages",
            std::time::Duration::from_secs(40)
        ),
        "{}",
        weft.log_text()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while size() > 1024 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "journal.db is {} bytes, over its 1 MiB cap\n{}",
            size(),
            weft.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (_, out) = messages(&weft, &["list", "--limit", "1000"]);
    let kept = out.lines().count() - 1;
    assert!(kept > 10 && kept < total, "kept {kept}:\n{out}");
    assert!(out.contains(&format!("S{} ", total - 1)), "the newest stay");
    assert!(!out.contains("S0 "), "the oldest settled go");
    assert!(out.contains("S-ORU"), "pending work is never purged");
    assert_eq!(weft.stop(), 0);
}
