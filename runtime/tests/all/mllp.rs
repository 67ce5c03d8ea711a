//! `weft run` with an MLLP source, against the real binary on loopback.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::run::{Client, Weft, a01, adt_config};
use weft::mllp::framed;

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    crate::common::corpus_files(dir)
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_corpus_message_gets_one_correct_ack() {
    let server = crate::common::fhir_server::FhirServer::start(&[]);
    let mut weft = Weft::start(|d| {
        adt_config(
            d,
            "after-transform",
            &format!(
                "[destinations.fhir-server]\nkind = \"http\"\nurl = \"http://{}/fhir\"\n",
                server.addr
            ),
        )
        .replace(
            r#"destinations = ["files"]"#,
            r#"destinations = ["files", "fhir-server"]"#,
        )
    });
    let mut client = weft.client();
    let mut mapped = Vec::new();
    for (name, bytes) in corpus("hl7v2/fhir-converter") {
        let msg = weft_hl7::Message::parse(&bytes).unwrap();
        let h = msg.header().unwrap();
        let ack = client.exchange(&bytes);
        assert_eq!(
            ack.control_id, h.control_id,
            "{name}: MSA-2 must echo MSH-10"
        );
        // Enhanced mode (MSH-15/16 set) answers CA/CE/CR instead.
        let code = ack.code.replacen('C', "A", 1);
        match (h.message_code.as_str(), code.as_str()) {
            ("ADT", "AA") => mapped.push(h.control_id.clone()),
            ("ADT", "AR") => assert!(
                ack.text.contains("is not mapped by adt-to-fhir") || ack.text.contains("PID"),
                "{name}: {}",
                ack.raw
            ),
            (_, "AR") => {
                assert_eq!(ack.error_code, "200", "{name}: {}", ack.raw);
                assert!(
                    ack.text.starts_with("no route takes"),
                    "{name}: {}",
                    ack.raw
                );
            }
            (code, other) => panic!("{name}: {code} answered {other}: {}", ack.raw),
        }
    }
    assert!(
        mapped.len() >= 15,
        "only {} ADT messages mapped",
        mapped.len()
    );
    drop(client);
    assert_eq!(weft.stop(), 0);
}

#[test]
fn mapped_messages_reach_the_file_destination() {
    let mut weft = Weft::start(|d| adt_config(d, "after-delivery", ""));
    let mut client = weft.client();
    for i in 0..5 {
        let ack = client.exchange(&a01(&format!("FILE-{i}"), &format!("M{i}")));
        assert_eq!(ack.code, "AA", "{}", ack.raw);
    }
    // after-delivery: the files exist once the ACK is back.
    let files = weft.out_files();
    assert_eq!(files.len(), 5, "{files:?}");
    for (i, f) in files.iter().enumerate() {
        assert_eq!(
            f.file_name().unwrap().to_string_lossy(),
            format!("FILE-{i}-1.json")
        );
        assert_eq!(f.parent().unwrap().file_name().unwrap(), "ADT_A01");
        let bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        assert_eq!(
            bundle["entry"][0]["resource"]["identifier"][0]["value"],
            format!("EDGE-M{i}")
        );
    }
    drop(client);
    assert_eq!(weft.stop(), 0);
}

#[test]
fn malformed_input_gets_a_nak_and_the_listener_keeps_serving() {
    let mut weft = Weft::start(|d| adt_config(d, "on-receipt", ""));
    for (name, bytes) in corpus("malformed") {
        let mut client = weft.client();
        client.send(&bytes);
        match client.read_ack() {
            Some(ack) => {
                assert_eq!(ack.code, "AR", "{name}: {}", ack.raw);
                assert!(
                    !ack.error_code.is_empty() && !ack.text.is_empty(),
                    "{name}: {}",
                    ack.raw
                );
                // Never a made-up control id.
                let original = weft_hl7::Message::parse(&bytes)
                    .ok()
                    .and_then(|m| m.get("MSH-10").ok().flatten())
                    .unwrap_or_default();
                assert_eq!(ack.control_id, original, "{name}");
            }
            None => panic!("{name}: connection closed without a NAK"),
        }
        // The next connection is served normally.
        let ack = weft.client().exchange(&a01("NEXT", "1"));
        assert_eq!(ack.code, "AA", "after {name}");
    }
    assert_eq!(weft.stop(), 0);
}

#[test]
fn framing_junk_resync_pipelining_and_oversize() {
    let mut weft = Weft::start(|d| {
        adt_config(d, "after-transform", "").replace(
            "idle_timeout_s = 5",
            "idle_timeout_s = 1\nmax_frame_kib = 64",
        )
    });
    let mut c = weft.client();
    // Junk before a start block, then a partial frame cut by a new one.
    c.write(b"garbage\r\n");
    c.write(b"\x0bMSH|^~\\&|partial");
    c.send(&a01("RESYNC", "1"));
    let ack = c.read_ack().unwrap();
    assert_eq!(
        (ack.code.as_str(), ack.control_id.as_str()),
        ("AA", "RESYNC")
    );
    // Pipelined: three frames in one write, three ACKs in order.
    let mut burst = Vec::new();
    for i in 0..3 {
        burst.extend(framed(&a01(&format!("P{i}"), "2")).unwrap());
    }
    c.write(&burst);
    for i in 0..3 {
        assert_eq!(c.read_ack().unwrap().control_id, format!("P{i}"));
    }
    // Too large: NAK, then the connection is closed.
    let mut big = a01("BIG", "3");
    big.extend(std::iter::repeat_n(b'x', 70 * 1024));
    c.send(&big);
    let nak = c.read_ack().unwrap();
    assert_eq!(nak.code, "AR");
    assert_eq!(nak.error_code, "104");
    assert!(c.read_ack().is_none(), "connection must be closed");
    // A half-sent frame is dropped at the idle timeout, never ACKed.
    let mut half = weft.client();
    half.write(b"\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|HALF|P|2.5\r");
    let started = std::time::Instant::now();
    assert!(half.read_ack().is_none());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(weft.wait_for_log("partial message dropped", Duration::from_secs(5)));
    assert_eq!(weft.stop(), 0);
}

#[test]
fn enhanced_mode_and_plugin_rejects() {
    let mut weft = Weft::start(|d| adt_config(d, "after-transform", ""));
    let mut c = weft.client();
    let bad_date = String::from_utf8(a01("BAD", "4"))
        .unwrap()
        .replace("19800101", "19801301");
    let ack = c.exchange(bad_date.as_bytes());
    assert_eq!(ack.code, "AR", "{}", ack.raw);
    // The reason names the field, not the value (patient data).
    assert!(
        ack.text.contains("PID-7 is not a valid HL7 date/time"),
        "{}",
        ack.raw
    );
    assert!(!ack.raw.contains("19801301"), "{}", ack.raw);
    let enhanced = String::from_utf8(a01("ENH", "5"))
        .unwrap()
        .replace("|P|2.5.1\r", "|P|2.5.1|||AL|NE\r");
    let ack = c.exchange(enhanced.as_bytes());
    assert_eq!(ack.code, "CA", "{}", ack.raw);
    assert_eq!(weft.stop(), 0);
}

#[test]
fn fifty_connections_two_hundred_messages_each() {
    let mut weft = Weft::start(|d| adt_config(d, "on-receipt", ""));
    let addr = weft.addr;
    let threads: Vec<_> = (0..50)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut acked = Vec::new();
                for m in 0..200 {
                    let id = format!("C{c}-M{m}");
                    let ack = client.exchange(&a01(&id, &format!("{c}x{m}")));
                    assert_eq!(ack.code, "AA", "{}", ack.raw);
                    assert_eq!(ack.control_id, id);
                    acked.push(id);
                }
                acked
            })
        })
        .collect();
    let mut acked = BTreeSet::new();
    for t in threads {
        for id in t.join().unwrap() {
            assert!(acked.insert(id), "an ACK came twice");
        }
    }
    assert_eq!(acked.len(), 10_000);
    // A clean stop delivers everything queued.
    assert_eq!(weft.stop(), 0);
    let files = weft.out_files();
    let delivered: BTreeSet<String> = files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches("-1.json")
                .to_string()
        })
        .collect();
    assert_eq!(files.len(), 10_000, "each message delivered exactly once");
    assert_eq!(delivered, acked);
}

#[test]
fn weft_send_reports_each_ack() {
    let mut weft = Weft::start(|d| adt_config(d, "after-transform", ""));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch.hl7");
    let mut batch = a01("S1", "1");
    batch.extend(b"\n");
    batch.extend(
        String::from_utf8(a01("S2", "2"))
            .unwrap()
            .replace('\r', "\n")
            .into_bytes(),
    );
    batch.extend(b"MSH|^~\\&|X|Y|Z|W|2024||ORU^R01|S3|P|2.5\rPID|1\r");
    std::fs::write(&file, &batch).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["send", "--to", &weft.addr.to_string()])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].ends_with("#1\tAA\tS1"), "{stdout}");
    assert!(lines[1].ends_with("#2\tAA\tS2"), "{stdout}");
    assert!(
        lines[2].contains("#3\tAR\tS3\tno route takes ORU^R01"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1), "not every message was accepted");
    assert_eq!(weft.stop(), 0);
}

/// The `mllp_send` client of the Python `hl7` package (installed by
/// scripts/test.sh into target/py, or named by WEFT_MLLP_SEND).
fn mllp_send() -> std::path::PathBuf {
    let path = std::env::var_os("WEFT_MLLP_SEND")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::common::repo().join("target/py/bin/mllp_send"));
    assert!(
        path.is_file(),
        "{} is missing: scripts/test.sh installs the Python hl7 package",
        path.display()
    );
    path
}

#[test]
fn python_hl7_mllp_send_gets_aa() {
    let mut weft = Weft::start(|d| adt_config(d, "after-transform", ""));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a01.hl7");
    // A file as an editor leaves it: one segment per line.
    let text = String::from_utf8(a01("PY-1", "77"))
        .unwrap()
        .replace('\r', "\n");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(mllp_send())
        .args(["--loose", "--port", &weft.addr.port().to_string(), "--file"])
        .arg(&file)
        .arg("127.0.0.1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("MSA|AA|PY-1"), "{stdout}");
    assert_eq!(weft.stop(), 0);
    assert_eq!(weft.out_files().len(), 1);
}
