//! What a hospital's monitoring reads from a real `weft run`: `GET
//! /metrics`, scraped with curl as Prometheus would (the counters move as
//! messages flow, and no label carries a value from a message), and the
//! JSON log (`--log-format json`), where every line about one message
//! carries its id.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::curl;
use crate::common::fhir_server::{FhirServer, free_addr};
use crate::common::run::{Weft, a01, adt_config};

/// One scrape: the content type and every sample, `name{labels}` to value.
fn scrape(admin: std::net::SocketAddr, token: &str) -> (String, BTreeMap<String, f64>, String) {
    let (code, out) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-w",
        "\n%{content_type}\n%{http_code}",
        &format!("http://{admin}/metrics"),
    ]);
    assert_eq!(code, 200, "{out}");
    let (text, content_type) = out.rsplit_once('\n').unwrap();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (key, value) = line.rsplit_once(' ').unwrap();
        samples.insert(key.to_string(), value.parse::<f64>().unwrap());
    }
    (content_type.to_string(), samples, text.to_string())
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[test]
fn counters_move_as_messages_flow_and_labels_hold_no_message_values() {
    // The FHIR server answers 503 twice, then takes everything.
    let server = FhirServer::start(&[503, 503]);
    let admin = free_addr();
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-transform",
            &format!(
                "[destinations.fhir]\nkind = \"http\"\nurl = \"http://{}/fhir\"\n\
                 [sources.in2]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\nroute = \"adt2\"\n\
                 [routes.adt2]\nplugins = [\"adt-to-fhir\"]\ndestinations = [\"fhir\"]\n\
                 [admin]\nlisten = \"{admin}\"\n",
                server.addr
            ),
        )
    });
    let token = weft.api(admin).token;

    let (content_type, before, text) = scrape(admin, &token);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // Every configured source, route, plugin and destination has its
    // series from the start, at zero: a query for silence needs them.
    for series in [
        "weft_source_received_total{source=\"in2\"}",
        "weft_source_answer_seconds_count{source=\"in\"}",
        "weft_route_messages_total{route=\"adt\",status=\"failed\"}",
        "weft_plugin_calls_total{route=\"adt\",plugin=\"site-normalize\",outcome=\"limit\"}",
        "weft_plugin_call_seconds_count{route=\"adt2\",plugin=\"adt-to-fhir\"}",
        "weft_destination_dead_total{destination=\"fhir\"}",
        "weft_destination_pending{destination=\"files\"}",
        "weft_journal_commit_seconds_count",
    ] {
        assert_eq!(before.get(series), Some(&0.0), "{series}: {text}");
    }
    assert!(value(&before, "weft_journal_bytes") > 0.0);

    // Three admissions, a merge without MRG (the plugin rejects it), a
    // message no route takes, and junk.
    let mut c = weft.client();
    for i in 0..3 {
        assert_eq!(
            c.exchange(&a01(&format!("MET-{i}"), "MRN-SECRET-77")).code,
            "AA"
        );
    }
    let a40 = String::from_utf8(a01("MET-A40", "MRN-SECRET-77"))
        .unwrap()
        .replace("ADT^A01^ADT_A01", "ADT^A40^ADT_A39");
    assert_eq!(c.exchange(a40.as_bytes()).code, "AR");
    let oru = String::from_utf8(a01("MET-ORU", "MRN-SECRET-77"))
        .unwrap()
        .replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01");
    assert_eq!(c.exchange(oru.as_bytes()).code, "AR");
    assert_eq!(c.exchange(b"not HL7 at all").code, "AR");
    // One for the FHIR server, retried twice before it is delivered.
    let mut c2 = crate::common::run::Client::connect(weft.addrs["in2"]);
    assert_eq!(c2.exchange(&a01("MET-FHIR", "MRN-SECRET-77")).code, "AA");

    let deadline = Instant::now() + Duration::from_secs(30);
    let samples = loop {
        let (_, s, _) = scrape(admin, &token);
        let done = value(&s, "weft_destination_delivered_total{destination=\"fhir\"}") >= 1.0
            && value(
                &s,
                "weft_destination_delivered_total{destination=\"files\"}",
            ) >= 3.0;
        if done || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let v = |key: &str| value(&samples, key);
    assert_eq!(v("weft_source_received_total{source=\"in\"}"), 4.0);
    assert_eq!(v("weft_source_received_total{source=\"in2\"}"), 1.0);
    assert_eq!(
        v("weft_source_refused_total{source=\"in\",reason=\"no_route\"}"),
        1.0
    );
    assert_eq!(
        v("weft_source_refused_total{source=\"in\",reason=\"invalid\"}"),
        1.0
    );
    assert_eq!(v("weft_source_answer_seconds_count{source=\"in\"}"), 6.0);
    assert_eq!(
        v("weft_route_messages_total{route=\"adt\",status=\"transformed\"}"),
        3.0
    );
    assert_eq!(
        v("weft_route_messages_total{route=\"adt\",status=\"rejected\"}"),
        1.0
    );
    assert_eq!(
        v(
            "weft_plugin_calls_total{route=\"adt\",plugin=\"site-normalize\",outcome=\"transformed\"}"
        ),
        4.0
    );
    assert_eq!(
        v("weft_plugin_calls_total{route=\"adt\",plugin=\"adt-to-fhir\",outcome=\"transformed\"}"),
        3.0
    );
    assert_eq!(
        v("weft_plugin_calls_total{route=\"adt\",plugin=\"adt-to-fhir\",outcome=\"rejected\"}"),
        1.0
    );
    assert_eq!(
        v("weft_plugin_call_seconds_count{route=\"adt\",plugin=\"adt-to-fhir\"}"),
        4.0
    );
    assert!(v("weft_plugin_call_seconds_sum{route=\"adt\",plugin=\"adt-to-fhir\"}") > 0.0);
    assert_eq!(
        v("weft_destination_delivered_total{destination=\"files\"}"),
        3.0
    );
    assert_eq!(
        v("weft_destination_delivered_total{destination=\"fhir\"}"),
        1.0
    );
    assert_eq!(
        v("weft_destination_retries_total{destination=\"fhir\"}"),
        2.0
    );
    assert_eq!(
        v("weft_destination_attempt_seconds_count{destination=\"fhir\"}"),
        3.0
    );
    assert_eq!(v("weft_destination_pending{destination=\"fhir\"}"), 0.0);
    assert_eq!(v("weft_destination_pending{destination=\"files\"}"), 0.0);
    assert!(v("weft_journal_commit_seconds_count") >= 5.0);

    // A caller with a wrong token is refused, and counted.
    let (code, _) = curl(&[
        "-H",
        "Authorization: Bearer weft_wrong",
        &format!("http://{admin}/metrics"),
    ]);
    assert_eq!(code, 401);
    let (_, after, text) = scrape(admin, &token);
    assert_eq!(
        value(&after, "weft_admin_refusals_total{reason=\"bad_token\"}"),
        1.0
    );

    // Labels are names from the configuration: no MRN, no control id.
    for secret in ["MRN-SECRET-77", "MET-", "EDGE-"] {
        assert!(!text.contains(secret), "{secret} in the metrics:\n{text}");
    }
}

#[test]
fn json_log_lines_carry_the_message_they_are_about() {
    let server = FhirServer::start(&[503]);
    let weft = Weft::start_with(&["--log-format", "json"], |d| {
        adt_config(
            d,
            "after-transform",
            &format!(
                "[destinations.fhir]\nkind = \"http\"\nurl = \"http://{}/fhir\"\n\
                 [sources.in2]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\nroute = \"adt2\"\n\
                 [routes.adt2]\nplugins = [\"adt-to-fhir\"]\ndestinations = [\"fhir\"]\n",
                server.addr
            ),
        )
    });
    let mut c = weft.client();
    let a40 = String::from_utf8(a01("LOG-A40", "MRN-LOG-1"))
        .unwrap()
        .replace("ADT^A01^ADT_A01", "ADT^A40^ADT_A39");
    assert_eq!(c.exchange(a40.as_bytes()).code, "AR");
    let mut c2 = crate::common::run::Client::connect(weft.addrs["in2"]);
    assert_eq!(c2.exchange(&a01("LOG-FHIR", "MRN-LOG-2")).code, "AA");
    assert!(weft.wait_for_log("will retry", Duration::from_secs(20)));

    let lines: Vec<serde_json::Value> = weft
        .log_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["message"].is_string(), "{l}");
    }
    // The plugin's rejection, logged by a worker inside the message's span.
    let rejected = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().contains("not transformed"))
        .expect("the rejection is logged");
    assert_eq!(rejected["level"], "WARN");
    assert_eq!(rejected["span"]["name"], "message");
    assert_eq!(rejected["span"]["route"], "adt");
    let id = rejected["span"]["message_id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "{rejected}");
    // The retried delivery, inside its delivery's span.
    let retry = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().contains("will retry"))
        .expect("the retry is logged");
    assert_eq!(retry["span"]["name"], "delivery");
    assert_eq!(retry["span"]["destination"], "fhir");
    assert_eq!(retry["span"]["message_id"].as_str().unwrap().len(), 36);
    assert_ne!(retry["span"]["message_id"].as_str(), Some(id));
    // No patient data at info level, in JSON as in text.
    let text = weft.log_text();
    assert!(!text.contains("MRN-LOG"), "{text}");
}

/// The alert events a webhook took (2xx), in order: (alert, subject, state).
fn events(hook: &FhirServer) -> Vec<(String, String, String)> {
    hook.accepted()
        .iter()
        .map(|r| {
            let e: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(r.content_type, "application/json");
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("alert"), s("subject"), s("state"))
        })
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "not reached: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn alerts_fire_once_clear_once_and_reach_a_webhook_that_was_down() {
    // The webhook's receiver refuses the first event (503): it arrives on
    // a retry, as any delivery would.
    let hook = FhirServer::start(&[503]);
    let fhir = free_addr(); // nothing listens there yet
    let lab = free_addr(); // nor there, ever
    let admin = free_addr();
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-commit",
            &format!(
                "[destinations.hook]\nkind = \"http\"\nurl = \"http://{hook}/alerts\"\n\
                 [destinations.fhir]\nkind = \"http\"\nurl = \"http://{fhir}/fhir\"\n\
                 [destinations.lab]\nkind = \"http\"\nurl = \"http://{lab}/lab\"\nmax_attempts = 1\n\
                 [sources.in2]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\nroute = \"adt2\"\n\
                 [routes.adt2]\nplugins = [\"adt-to-fhir\"]\ndestinations = [\"fhir\", \"lab\"]\n\
                 [alerts.quiet]\nkind = \"silence\"\nsource = \"in\"\nfor_s = 3\nnotify = [\"hook\"]\n\
                 [alerts.down]\nkind = \"failing\"\ndestination = \"fhir\"\nfor_s = 1\nnotify = [\"hook\"]\n\
                 [alerts.dead]\nkind = \"dead\"\nnotify = [\"hook\"]\n\
                 [admin]\nlisten = \"{admin}\"\n",
                hook = hook.addr,
            ),
        )
    });
    let api = weft.api(admin);

    // The EHR sends nothing: silence, once.
    wait_until("the silence alert at the webhook", || {
        events(&hook).contains(&("quiet".into(), "source in".into(), "firing".into()))
    });
    assert!(
        hook.all().len() >= 2,
        "the first attempt was refused and retried"
    );
    assert!(weft.wait_for_log(
        "alert firing: no message from source in for",
        Duration::from_secs(5)
    ));
    assert_eq!(weft.client().exchange(&a01("AL-1", "1")).code, "AA");
    wait_until("the silence cleared", || {
        events(&hook).contains(&("quiet".into(), "source in".into(), "cleared".into()))
    });

    // A message for fhir (down) and lab (refused once: dead at once).
    let mut c = crate::common::run::Client::connect(weft.addrs["in2"]);
    assert_eq!(c.exchange(&a01("AL-2", "2")).code, "AA");
    wait_until("dead and failing fired", || {
        let e = events(&hook);
        e.contains(&("dead".into(), "destination lab".into(), "firing".into()))
            && e.contains(&("down".into(), "destination fhir".into(), "firing".into()))
    });
    let (code, now) = api.call("GET", "/alerts", &[], "");
    assert_eq!(code, 200);
    let active: Vec<(String, String)> = now["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["alert"].as_str().unwrap().into(),
                a["subject"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        active.contains(&("dead".into(), "destination lab".into())),
        "{now:#}"
    );
    assert!(
        active.contains(&("down".into(), "destination fhir".into())),
        "{now:#}"
    );

    // The FHIR server comes up: the next retry delivers, failing clears.
    let _server = FhirServer::start_on(fhir, &[]);
    wait_until("failing cleared", || {
        events(&hook).contains(&("down".into(), "destination fhir".into(), "cleared".into()))
    });
    // A few evaluations later: no event twice in a row for one subject.
    std::thread::sleep(Duration::from_secs(5));
    let all = events(&hook);
    for subject in ["source in", "destination lab", "destination fhir"] {
        let states: Vec<&str> = all
            .iter()
            .filter(|(_, s, _)| s == subject)
            .map(|(_, _, st)| st.as_str())
            .collect();
        assert!(
            states.windows(2).all(|w| w[0] != w[1]),
            "{subject} alternates firing and cleared: {all:?}"
        );
    }
    let dead: Vec<_> = all.iter().filter(|(a, _, _)| a == "dead").collect();
    assert_eq!(
        dead.len(),
        1,
        "the dead delivery stays dead: fired once, {all:?}"
    );
    // Each event is a message of the journal's own source.
    let (_, list) = api.call("GET", "/messages?source=weft:alerts&limit=100", &[], "");
    assert_eq!(
        list["messages"].as_array().unwrap().len(),
        all.len(),
        "{list:#}"
    );
}
