//! The admin HTTP API of a real `weft run`, driven with curl.

mod common;

use std::time::{Duration, Instant};

use common::curl;
use common::fhir_server::{FhirServer, free_addr};
use common::run::{Weft, a01, adt_config};
use serde_json::Value;

fn get(url: &str) -> (u16, Value) {
    let (code, body) = curl(&[url]);
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn post(url: &str, body: &str) -> (u16, Value) {
    let (code, text) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        url,
    ]);
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn operators_list_show_resend_and_purge_over_http() {
    // The FHIR server refuses twice for good (400), then accepts.
    let server = FhirServer::start(&[400, 400]);
    let admin = free_addr();
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-commit",
            &format!(
                "[destinations.fhir]\nkind = \"http\"\nurl = \"http://{}/fhir\"\n\
                 [sources.in2]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\nroute = \"adt2\"\n\
                 [routes.adt2]\nplugins = [\"adt-to-fhir\"]\ndestinations = [\"fhir\"]\n\
                 [admin]\nlisten = \"{admin}\"\n",
                server.addr
            ),
        )
    });
    assert!(
        weft.log_text()
            .contains(&format!("admin API listening on {admin}"))
    );
    let base = format!("http://{admin}");
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("ADM-1", "1")).code, "AA");
    let mut c = common::run::Client::connect(weft.addrs["in2"]);
    let a08 = |id: &str| {
        String::from_utf8(a01(id, "2"))
            .unwrap()
            .replace("ADT^A01", "ADT^A08")
            .replace("EVN|A01", "EVN|A08")
    };
    assert_eq!(c.exchange(a08("ADM-2").as_bytes()).code, "AA");
    assert_eq!(c.exchange(a08("ADM-3").as_bytes()).code, "AA");
    drop(c);

    // Both A08s die at the server (400 is for good).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, v) = get(&format!("{base}/messages?status=dead"));
        assert_eq!(code, 200, "{v}");
        if v["messages"].as_array().map_or(0, Vec::len) == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (code, status) = get(&format!("{base}/status"));
    assert_eq!(code, 200);
    assert_eq!(status["status"], "ok");
    assert_eq!(status["received"], 3);
    assert_eq!(status["delivery_failed"], 2);
    assert!(status["uptime_s"].is_u64() && status["version"].is_string());

    let (_, list) = get(&format!("{base}/messages?limit=2"));
    let rows = list["messages"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(list["more"], true);
    assert_eq!(rows[0]["control_id"], "ADM-3", "newest first");
    let (_, page2) = get(&format!("{base}/messages?limit=2&page=2"));
    assert_eq!(page2["messages"][0]["control_id"], "ADM-1");
    assert_eq!(page2["more"], false);
    let (_, typed) = get(&format!("{base}/messages?type=ADT%5EA0*&control_id=ADM-2"));
    assert_eq!(typed["messages"].as_array().unwrap().len(), 1);

    // One message: outcome, versions, deliveries; no body unless asked.
    let id = rows[0]["id"].as_str().unwrap().to_string();
    let (code, m) = get(&format!("{base}/messages/{id}"));
    assert_eq!(code, 200, "{m}");
    assert_eq!(m["status"], "transformed");
    assert_eq!(m["route"], "adt2");
    assert!(
        m["plugin_versions"][0]
            .as_str()
            .unwrap()
            .starts_with("adt-to-fhir@")
    );
    let d = &m["deliveries"][0];
    assert_eq!(d["destination"], "fhir");
    assert_eq!(d["state"], "dead");
    assert!(d["last_error"].as_str().unwrap().contains("400"), "{d}");
    assert!(m.get("body").is_none() && d.get("body").is_none());
    let (_, with) = get(&format!("{base}/messages/{id}?body=true"));
    assert!(with["body"].as_str().unwrap().starts_with("MSH|"));
    assert!(
        with["deliveries"][0]["body"]
            .as_str()
            .unwrap()
            .contains("\"resourceType\":\"Bundle\"")
    );

    // Resend the dead: the server now accepts.
    let (code, r) = post(&format!("{base}/messages/resend"), r#"{"dead": true}"#);
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["queued"], 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.accepted().len() < 2 {
        assert!(Instant::now() < deadline, "resent deliveries arrive");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, r) = post(
        &format!("{base}/messages/resend"),
        &format!(r#"{{"ids": ["{id}", "nope"]}}"#),
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["queued"], 1);
    assert_eq!(r["without_outputs"], serde_json::json!(["nope"]));

    // Errors say what is wrong.
    let (code, e) = get(&format!("{base}/messages?since=yesterday"));
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("since"), "{e}");
    let (code, _) = get(&format!("{base}/messages?colour=red"));
    assert_eq!(code, 400);
    let (code, _) = get(&format!("{base}/messages/no-such-id"));
    assert_eq!(code, 404);
    let (code, _) = post(&format!("{base}/messages/resend"), "not json");
    assert_eq!(code, 400);
    let (code, _) = post(&format!("{base}/messages/purge"), r#"{"before": 5}"#);
    assert_eq!(code, 400);
    let (code, _) = curl(&["-X", "DELETE", &format!("{base}/messages")]);
    assert_eq!(code, 405);
    let (code, _) = get(&format!("{base}/elsewhere"));
    assert_eq!(code, 404);

    // Purge: everything is settled once the resends are delivered.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&format!("{base}/messages?status=pending")).1["messages"]
        .as_array()
        .map_or(1, Vec::len)
        > 0
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, p) = post(
        &format!("{base}/messages/purge"),
        r#"{"before": "2999-01-01"}"#,
    );
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["messages"], 3);
    let (_, list) = get(&format!("{base}/messages"));
    assert_eq!(list["messages"].as_array().unwrap().len(), 0);
}

#[test]
fn the_admin_api_refuses_a_non_loopback_address_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weft.toml");
    std::fs::write(
        &config,
        adt_config(
            dir.path(),
            "after-commit",
            "[admin]\nlisten = \"0.0.0.0:9591\"\n",
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("admin.listen") && err.contains("not a loopback address"),
        "{err}"
    );
}
