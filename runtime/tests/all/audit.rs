//! The audit trail of a real `weft run`: who saw which message's body and
//! who did what, over the admin API and on the command line; `weft audit
//! verify` finds an edited or deleted entry.

use crate::common::fhir_server::free_addr;
use crate::common::run::{Weft, a01, adt_config};
use crate::common::weft_cli;

fn start(admin: std::net::SocketAddr) -> Weft {
    Weft::start(|d| {
        adt_config(
            d,
            "after-commit",
            &format!("[admin]\nlisten = \"{admin}\"\n"),
        )
    })
}

#[test]
fn every_body_view_and_operator_action_is_on_record_and_tampering_is_found() {
    let admin = free_addr();
    let mut weft = start(admin);
    let api = weft.api(admin);
    let config = weft.config_path().display().to_string();
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("AUD-1", "1")).code, "AA");
    assert_eq!(c.exchange(&a01("AUD-2", "2")).code, "AA");
    let list = crate::common::admin(&api, "GET", "/messages");
    let id = list["messages"][0]["id"].as_str().unwrap().to_string();
    let other = list["messages"][1]["id"].as_str().unwrap().to_string();

    let nurse = weft.add_token(admin, "nurse", "phi");
    let dash = weft.add_token(admin, "dashboard", "read");

    // Over the API: a body view, a refused one, a list (not audited: no
    // patient data), resend, purge, reload.
    let (code, _) = nurse.call("GET", &format!("/messages/{id}?body=true"), &[], "");
    assert_eq!(code, 200);
    let (code, _) = dash.call("GET", &format!("/messages/{other}?body=true"), &[], "");
    assert_eq!(code, 403);
    let (code, _) = dash.call("GET", "/messages", &[], "");
    assert_eq!(code, 200);
    let (code, _) = api.call(
        "POST",
        "/messages/resend",
        &[],
        &format!(r#"{{"ids": ["{id}"]}}"#),
    );
    assert_eq!(code, 200);
    let (code, _) = api.call(
        "POST",
        "/messages/purge",
        &[],
        r#"{"before": "2001-01-01"}"#,
    );
    assert_eq!(code, 200);
    let (code, _) = api.call("POST", "/reload", &[], "");
    assert_eq!(code, 200);
    // On the command line: a body shown, a resend, a token revoked.
    let (code, text) = weft_cli(&["messages", "show", &other, "--body", "-c", &config]);
    assert_eq!(code, 0, "{text}");
    let (code, _) = weft_cli(&["messages", "resend", &other, "-c", &config]);
    assert_eq!(code, 0);
    let (code, _) = weft_cli(&["admin", "token", "revoke", "dashboard", "-c", &config]);
    assert_eq!(code, 0);

    let (code, all) = weft_cli(&["audit", "list", "-c", &config]);
    assert_eq!(code, 0, "{all}");
    let user = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let os = format!("os:{}", user.trim());
    for (who, action, result) in [
        (os.as_str(), "token.add", "nurse (phi)"),
        (os.as_str(), "token.add", "dashboard (read)"),
        ("nurse", "message.body", "ok"),
        ("dashboard", "message.body", "refused: needs the phi role"),
        ("local", "messages.resend", "queued"),
        ("local", "messages.purge", "purged 0 messages"),
        ("local", "reload", "swapped 0"),
        (os.as_str(), "message.body", "ok"),
        (os.as_str(), "messages.resend", "queued"),
        (os.as_str(), "token.revoke", "dashboard"),
    ] {
        assert!(
            all.lines()
                .any(|l| l.contains(who) && l.contains(action) && l.contains(result)),
            "no entry: {who} {action} {result}\n{all}"
        );
    }
    assert!(
        all.contains("127.0.0.1:"),
        "the API's entries say where from:\n{all}"
    );
    assert_eq!(
        all.lines().count(),
        11,
        "a header and 10 entries; the list view is not audited:\n{all}"
    );
    // Filters.
    let (_, mine) = weft_cli(&["audit", "list", "--who", "nurse", "-c", &config]);
    assert_eq!(mine.lines().count(), 2, "{mine}");
    let (_, about) = weft_cli(&["audit", "list", "--message", &other, "-c", &config]);
    assert_eq!(
        about.lines().count(),
        4,
        "refused view, CLI view, CLI resend:\n{about}"
    );
    assert!(!about.contains("purge"));

    let (code, ok) = weft_cli(&["audit", "verify", "-c", &config]);
    assert_eq!(code, 0, "{ok}");
    assert!(ok.contains("intact: 10 entries"), "{ok}");
    let head = ok
        .split("newest ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap()
        .to_string();
    let (code, _) = weft_cli(&["audit", "verify", "--known", &head, "-c", &config]);
    assert_eq!(code, 0);

    // Tampering, with the runtime stopped: an update is refused by the
    // journal itself; one behind its back, or a deletion, is found.
    weft.stop();
    let db = weft.dir().join("data/journal.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert!(
        conn.execute("UPDATE audit SET who = 'nobody' WHERE seq = 3", [])
            .is_err()
    );
    conn.execute_batch(
        "DROP TRIGGER audit_append_only; UPDATE audit SET who = 'nobody' WHERE seq = 3;",
    )
    .unwrap();
    let (code, text) = weft_cli(&["audit", "verify", "-c", &config]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("entry #3") && text.contains("edited"),
        "{text}"
    );
    conn.execute("UPDATE audit SET who = 'nurse' WHERE seq = 3", [])
        .unwrap();
    assert_eq!(weft_cli(&["audit", "verify", "-c", &config]).0, 0);
    conn.execute("DELETE FROM audit WHERE seq = 5", []).unwrap();
    let (code, text) = weft_cli(&["audit", "verify", "-c", &config]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("entry #6") && text.contains("missing"),
        "{text}"
    );
    // Cutting the newest entries leaves a shorter chain that verifies;
    // the head kept elsewhere shows it.
    conn.execute("DELETE FROM audit WHERE seq >= 5", [])
        .unwrap();
    assert_eq!(weft_cli(&["audit", "verify", "-c", &config]).0, 0);
    let (code, text) = weft_cli(&["audit", "verify", "--known", &head, "-c", &config]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("cut short"), "{text}");
}

#[test]
fn a_search_by_patient_needs_phi_finds_every_identifier_and_is_on_record() {
    let admin = free_addr();
    let weft = start(admin);
    let config = weft.config_path().display().to_string();
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("PAT-1", "MRN-111")).code, "AA");
    assert_eq!(c.exchange(&a01("PAT-2", "MRN-111")).code, "AA");
    assert_eq!(c.exchange(&a01("PAT-3", "MRN-222")).code, "AA");
    // Two identifiers in PID-3 (MRN and an enterprise id): either finds it.
    let two = String::from_utf8(a01("PAT-4", "MRN-333"))
        .unwrap()
        .replace("MRN-333^^^EDGE^MR", "MRN-333^^^EDGE^MR~EID-9^^^HIE^PI");
    assert_eq!(c.exchange(two.as_bytes()).code, "AA");
    let nurse = weft.add_token(admin, "nurse", "phi");
    let dash = weft.add_token(admin, "dashboard", "read");

    let found = |token: &crate::common::Api, mrn: &str| {
        let (code, body) = token.call("GET", &format!("/messages?patient={mrn}"), &[], "");
        let controls: Vec<String> = body["messages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["control_id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        (code, controls)
    };
    assert_eq!(
        found(&nurse, "MRN-111"),
        (200, vec!["PAT-2".into(), "PAT-1".into()])
    );
    assert_eq!(found(&nurse, "MRN-222"), (200, vec!["PAT-3".into()]));
    assert_eq!(found(&nurse, "EID-9"), (200, vec!["PAT-4".into()]));
    assert_eq!(found(&nurse, "MRN-333"), (200, vec!["PAT-4".into()]));
    // Exact, not a prefix; and the site's MRN prefix is not part of PID-3
    // as received.
    assert_eq!(found(&nurse, "MRN-1"), (200, vec![]));
    // A read token may list messages, not ask which ones concern a patient.
    let (code, _) = found(&dash, "MRN-111");
    assert_eq!(code, 403);

    // On the command line, the same search; every search is on record
    // with the messages it found, a refused one too.
    let (code, text) = weft_cli(&["messages", "list", "--patient", "MRN-222", "-c", &config]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("PAT-3") && !text.contains("PAT-1"), "{text}");
    let (_, trail) = weft_cli(&["audit", "list", "-c", &config]);
    let searches: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("messages.search-patient"))
        .collect();
    assert_eq!(searches.len(), 7, "{trail}");
    assert!(
        searches
            .iter()
            .any(|l| l.contains("dashboard") && l.contains("refused"))
    );
    assert!(
        searches
            .iter()
            .any(|l| l.contains("os:") && l.contains("cli"))
    );
    // The identifier searched for is not written to the trail or the log.
    assert!(!trail.contains("MRN-"), "{trail}");
    assert!(!weft.log_text().contains("MRN-"));
}
