//! The HTTP source (driven with curl) and the HTTP and MLLP destinations,
//! against the real `weft` binary and real peers on loopback.

use std::time::{Duration, Instant};

use crate::common::curl;
use crate::common::fhir_server::{FhirServer, free_addr};
use crate::common::run::{Weft, a01, adt_config};

fn http_source(ack: &str) -> String {
    format!(
        r#"
[sources.web]
kind = "http"
listen = "127.0.0.1:0"
path = "/messages"
ack = "{ack}"
max_body_kib = 64

[routes.fhir-pass]
match = ["Patient"]
destinations = ["files"]
"#
    )
}

fn http_destination(addr: std::net::SocketAddr) -> String {
    http_destination_with(addr, "")
}

fn http_destination_with(addr: std::net::SocketAddr, extra: &str) -> String {
    format!(
        r#"
[destinations.fhir-server]
kind = "http"
url = "http://{addr}/fhir"
timeout_s = 5
{extra}
[destinations.fhir-server.headers]
Authorization = "Bearer test-token"
"#
    )
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn curl_gets_the_documented_status_codes() {
    let mut weft = Weft::start(|d| adt_config(d, "on-receipt", &http_source("on-receipt")));
    let base = format!("http://{}", weft.addrs["web"]);
    let url = format!("{base}/messages");
    let dir = tempfile::tempdir().unwrap();
    let hl7 = dir.path().join("a01.hl7");
    // Segments on lines, as a file written by hand.
    std::fs::write(
        &hl7,
        String::from_utf8(a01("HTTP-1", "9"))
            .unwrap()
            .replace('\r', "\n"),
    )
    .unwrap();
    let data = format!("@{}", hl7.display());

    let (code, body) = curl(&[
        "-H",
        "Content-Type: application/hl7-v2",
        "--data-binary",
        &data,
        &url,
    ]);
    assert_eq!(code, 202, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["message_id"].as_str().is_some_and(|s| s.len() == 36),
        "{body}"
    );

    let second = String::from_utf8(a01("HTTP-2", "9")).unwrap();
    let (code, _) = curl(&[
        "-H",
        "Content-Type: x-application/hl7-v2+er7; charset=utf-8",
        "--data-binary",
        &second,
        &url,
    ]);
    assert_eq!(code, 202);

    let patient = r#"{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"1"}]}"#;
    let (code, body) = curl(&[
        "-H",
        "Content-Type: application/fhir+json",
        "--data-binary",
        patient,
        &url,
    ]);
    assert_eq!(code, 202, "{body}");

    let (code, body) = curl(&[
        "-H",
        "Content-Type: application/fhir+json",
        "--data-binary",
        r#"{"resourceType":"Observation"}"#,
        &url,
    ]);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("no route takes Observation"), "{body}");

    let (code, body) = curl(&[
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        "hello",
        &url,
    ]);
    assert_eq!(code, 415, "{body}");
    let (code, body) = curl(&[
        "-H",
        "Content-Type: application/hl7-v2",
        "--data-binary",
        "PID|1",
        &url,
    ]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("MSH"), "{body}");
    let (code, _) = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        "{not json",
        &url,
    ]);
    assert_eq!(code, 400);
    let big = format!("@{}", {
        let p = dir.path().join("big.hl7");
        let mut m = a01("BIG", "1");
        m.extend(std::iter::repeat_n(b'x', 70 * 1024));
        std::fs::write(&p, m).unwrap();
        p.display().to_string()
    });
    let (code, _) = curl(&[
        "-H",
        "Content-Type: application/hl7-v2",
        "--data-binary",
        &big,
        &url,
    ]);
    assert_eq!(code, 413);
    let (code, _) = curl(&[&format!("{base}/elsewhere")]);
    assert_eq!(code, 404);
    let (code, _) = curl(&[&url]);
    assert_eq!(code, 405);

    let (code, body) = curl(&[&format!("{base}/health")]);
    assert_eq!(code, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["received"], 3, "{body}");

    assert_eq!(weft.stop(), 0);
    // Two ADT Bundles and one Patient, as files.
    assert_eq!(weft.out_files().len(), 3, "{:?}", weft.out_files());
}

#[test]
fn after_transform_answers_with_the_outputs() {
    let mut weft = Weft::start(|d| adt_config(d, "on-receipt", &http_source("after-transform")));
    let url = format!("http://{}/messages", weft.addrs["web"]);
    let msg = String::from_utf8(a01("HTTP-2", "10")).unwrap();
    let (code, body) = curl(&[
        "-H",
        "Content-Type: application/hl7-v2",
        "--data-binary",
        &msg,
        &url,
    ]);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["outputs"][0]["content_type"], "application/fhir+json");
    assert_eq!(v["outputs"][0]["body"]["resourceType"], "Bundle");
    let bad = msg.replace("19800101", "19800132");
    let (code, body) = curl(&[
        "-H",
        "Content-Type: application/hl7-v2",
        "--data-binary",
        &bad,
        &url,
    ]);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("PID-7"), "{body}");
    assert_eq!(weft.stop(), 0);
}

#[test]
fn http_destination_rides_out_503s_and_delivers_everything() {
    // The first four answers are 503 (with Retry-After: 1), then 200.
    let server = FhirServer::start(&[503, 503, 503, 503]);
    let mut weft = Weft::start(|d| {
        adt_config(d, "on-receipt", &http_destination(server.addr)).replace(
            r#"destinations = ["files"]"#,
            r#"destinations = ["fhir-server"]"#,
        )
    });
    let mut client = weft.client();
    for i in 0..10 {
        assert_eq!(
            client
                .exchange(&a01(&format!("D{i}"), &format!("{i}")))
                .code,
            "AA"
        );
    }
    wait_until("10 deliveries", Duration::from_secs(30), || {
        server.accepted().len() == 10
    });
    let got = server.accepted();
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.content_type, "application/fhir+json");
        assert_eq!(r.authorization, "Bearer test-token");
        let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["type"], "transaction");
    }
    assert_eq!(
        server.all().len(),
        14,
        "4 refused attempts, then 10 deliveries"
    );
    assert!(
        weft.log_text().contains("will retry"),
        "retries are visible in the log"
    );
    assert_eq!(weft.stop(), 0);
}

#[test]
fn http_4xx_fails_for_good_and_after_delivery_says_ae() {
    let server = FhirServer::start(&[400]);
    let mut weft = Weft::start(|d| {
        adt_config(d, "after-delivery", &http_destination(server.addr)).replace(
            r#"destinations = ["files"]"#,
            r#"destinations = ["fhir-server"]"#,
        )
    });
    let ack = weft.client().exchange(&a01("D400", "1"));
    assert_eq!(ack.code, "AE", "{}", ack.raw);
    assert!(ack.text.contains("400"), "{}", ack.raw);
    let ack = weft.client().exchange(&a01("D200", "2"));
    assert_eq!(ack.code, "AA", "{}", ack.raw);
    assert_eq!(server.all().len(), 2, "a 4xx is not retried");
    assert_eq!(weft.stop(), 0);
}

#[test]
fn http_source_answers_503_when_the_workers_are_saturated_and_loses_nothing() {
    // One worker, a plugin that takes 100 ms a message: the workers' queue
    // (64) fills and the HTTP source pushes back instead of taking more.
    // (With 20 ms, a busy machine's curl could start no faster than the
    // worker drained, and the queue never filled.)
    let mut weft = Weft::start(|d| {
        format!(
            r#"
[runtime]
workers = 1
[sources.web]
kind = "http"
listen = "127.0.0.1:0"
path = "/messages"
[plugins.slow]
path = "{}"
deadline_ms = 1000
[plugins.slow.config]
mode = "spin"
ms = "100"
[destinations.files]
kind = "file"
dir = "{}"
filename = "{{control_id}}.{{ext}}"
[routes.slow]
match = ["ADT^*"]
plugins = ["slow"]
destinations = ["files"]
"#,
            crate::common::wasm("weft-test-hostile").display(),
            d.join("out").display()
        )
    });
    let url = format!("http://{}/messages", weft.addrs["web"]);
    let (mut accepted, mut busy) = (0, 0);
    for i in 0..600 {
        let msg = String::from_utf8(a01(&format!("BP{i}"), &format!("{i}"))).unwrap();
        let (code, body) = curl(&[
            "-i",
            "-H",
            "Content-Type: application/hl7-v2",
            "--data-binary",
            &msg,
            &url,
        ]);
        match code {
            202 => accepted += 1,
            503 => {
                assert!(
                    body.to_ascii_lowercase().contains("retry-after: 1"),
                    "{body}"
                );
                busy += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
        if busy >= 5 {
            break;
        }
    }
    assert!(
        busy >= 5,
        "the source never pushed back ({accepted} accepted)"
    );
    wait_until("the backlog to drain", Duration::from_secs(60), || {
        weft.out_files().len() == accepted
    });
    assert_eq!(weft.stop(), 0);
    assert_eq!(
        weft.out_files().len(),
        accepted,
        "nothing accepted was lost, nothing doubled"
    );
}

#[test]
fn mllp_destination_forwards_to_another_weft() {
    // Downstream: a weft that writes what it receives, unchanged.
    let mut downstream = Weft::receiver();
    let target = downstream.addr;
    let mut upstream = Weft::start(|_| {
        format!(
            r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-delivery"
[plugins.site-normalize]
path = "{}"
[plugins.site-normalize.config]
mrn_prefix = "UP-"
[destinations.next]
kind = "mllp"
address = "{target}"
timeout_s = 5
[routes.forward]
match = ["ADT^*"]
plugins = ["site-normalize"]
destinations = ["next"]
"#,
            crate::common::wasm("site-normalize").display()
        )
    });
    let mut c = upstream.client();
    for i in 0..20 {
        let ack = c.exchange(&a01(&format!("FW{i}"), &format!("{i}")));
        assert_eq!(ack.code, "AA", "{}", ack.raw);
    }
    let files = downstream.out_files();
    assert_eq!(files.len(), 20);
    let first = std::fs::read_to_string(&files[0]).unwrap();
    assert!(first.contains("|UP-0^^^EDGE^MR|"), "{first}");
    drop(c);
    assert_eq!(upstream.stop(), 0);
    assert_eq!(downstream.stop(), 0);
}

#[test]
fn mllp_destination_retries_ae_and_reconnects() {
    use std::io::{Read, Write};
    // A peer that answers AE to the first message and AA after; it drops the
    // connection once in between.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(k) = s.read(&mut chunk) {
                if k == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..k]);
                while let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
                    let frame: Vec<u8> = buf.drain(..end + 2).collect();
                    let m = weft_hl7::Message::parse(&frame[1..frame.len() - 2]).unwrap();
                    let id = m.get("MSH-10").unwrap().unwrap();
                    seen2.lock().unwrap().push(id.clone());
                    n += 1;
                    if n == 2 {
                        // Drop the connection without answering.
                        break;
                    }
                    let code = if n == 1 { "AE" } else { "AA" };
                    let ack = format!("MSH|^~\\&|P|P|W|W|2024||ACK|A{n}|P|2.5\rMSA|{code}|{id}\r");
                    s.write_all(&weft::mllp::framed(ack.as_bytes()).unwrap())
                        .unwrap();
                }
                if n == 2 {
                    break;
                }
            }
        }
    });
    let mut weft = Weft::start(|_| {
        format!(
            r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-delivery"
[destinations.peer]
kind = "mllp"
address = "{peer}"
timeout_s = 5
on_error = "retry"
[routes.forward]
match = ["*"]
destinations = ["peer"]
"#
        )
    });
    let ack = weft.client().exchange(&a01("RETRY-1", "1"));
    assert_eq!(ack.code, "AA", "{}", ack.raw);
    assert_eq!(*seen.lock().unwrap(), vec!["RETRY-1", "RETRY-1", "RETRY-1"]);
    assert_eq!(weft.stop(), 0);
}

#[test]
fn a_destination_down_at_shutdown_keeps_its_work_for_the_restart() {
    let server_addr = free_addr();
    let mut weft = Weft::start(|d| {
        (adt_config(d, "after-delivery", &http_destination(server_addr)).replace(
            r#"destinations = ["files"]"#,
            r#"destinations = ["fhir-server"]"#,
        )) + "\n[runtime]\nshutdown_grace_s = 1\n"
    });
    let addr = weft.addr;
    let waiting = std::thread::spawn(move || {
        let mut c = crate::common::run::Client::connect(addr);
        c.send(&a01("STUCK", "1"));
        c.read_ack()
    });
    assert!(weft.wait_for_log("will retry", Duration::from_secs(10)));
    let started = Instant::now();
    assert_eq!(weft.stop(), 0);
    assert!(started.elapsed() < Duration::from_secs(20));
    let ack = waiting
        .join()
        .unwrap()
        .expect("the waiting sender gets an answer");
    assert_eq!(ack.code, "AE", "{}", ack.raw);
    assert!(ack.text.contains("pending in the journal"), "{}", ack.raw);
    assert!(weft.log_text().contains("resume at the next start"));
    // The server comes up, the runtime restarts: the delivery goes through.
    let server = FhirServer::start_on(server_addr, &[]);
    weft.restart();
    wait_until("the pending delivery", Duration::from_secs(30), || {
        server.accepted().len() == 1
    });
    assert_eq!(weft.stop(), 0);
}

#[test]
fn per_key_ordering_holds_back_only_the_stuck_patient() {
    // The first request (patient A's first message) is refused for 4 s.
    let server = FhirServer::start(&[503]);
    server
        .retry_after
        .store(4, std::sync::atomic::Ordering::Relaxed);
    let mut weft = Weft::start(|d| {
        adt_config(d, "after-commit", &http_destination(server.addr)).replace(
            r#"destinations = ["files"]"#,
            r#"destinations = ["fhir-server"]"#,
        )
    });
    let mut c = weft.client();
    let send = |c: &mut crate::common::run::Client, ctrl: &str, mrn: &str| {
        // The given name tells the messages apart at the server.
        let msg = String::from_utf8(a01(ctrl, mrn))
            .unwrap()
            .replace("Test^Pat", &format!("Test^{ctrl}"));
        assert_eq!(c.exchange(msg.as_bytes()).code, "AA");
    };
    send(&mut c, "A-1", "A");
    send(&mut c, "A-2", "A");
    // B is sent once A-1 has been refused (and waits to retry).
    wait_until("A-1's first attempt", Duration::from_secs(10), || {
        !server.all().is_empty()
    });
    send(&mut c, "B-1", "B");
    wait_until("three deliveries", Duration::from_secs(20), || {
        server.accepted().len() == 3
    });
    let order: Vec<String> = server
        .all()
        .iter()
        .map(|r| {
            let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            format!(
                "{}:{}",
                b["entry"][0]["resource"]["name"][0]["given"][0]
                    .as_str()
                    .unwrap_or_default(),
                r.status
            )
        })
        .collect();
    // A's second message waited for its first; B did not wait for A.
    assert_eq!(
        order,
        ["A-1:503", "B-1:200", "A-1:200", "A-2:200"],
        "{order:?}"
    );
    drop(c);
    assert_eq!(weft.stop(), 0);
}

#[test]
fn a_destination_down_for_a_while_gets_everything_in_per_patient_order() {
    let addr = free_addr();
    let mut weft = Weft::start(|d| {
        adt_config(d, "after-commit", &http_destination(addr)).replace(
            r#"destinations = ["files"]"#,
            r#"destinations = ["fhir-server"]"#,
        )
    });
    let mut c = weft.client();
    let mut sent: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for i in 0..60 {
        let (ctrl, mrn) = (format!("D{i:02}"), format!("P{}", i % 5));
        let msg = String::from_utf8(a01(&ctrl, &mrn))
            .unwrap()
            .replace("Test^Pat", &format!("Test^{ctrl}"));
        assert_eq!(c.exchange(msg.as_bytes()).code, "AA");
        sent.entry(mrn).or_default().push(ctrl);
    }
    drop(c);
    // Down for a while: attempts fail and back off.
    wait_until("failed attempts", Duration::from_secs(20), || {
        weft.log_text()
            .matches("delivery failed; will retry")
            .count()
            >= 10
    });
    std::thread::sleep(Duration::from_secs(2));
    let server = FhirServer::start_on(addr, &[]);
    wait_until("60 deliveries", Duration::from_secs(60), || {
        server.accepted().len() == 60
    });
    let mut got: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in server.accepted() {
        let (ctrl, mrn) = crate::common::fhir_server::control_id_and_mrn(&r.body);
        got.entry(mrn).or_default().push(ctrl);
    }
    assert_eq!(
        got, sent,
        "each patient's messages arrive in the order sent"
    );
    assert_eq!(weft.stop(), 0);
}
