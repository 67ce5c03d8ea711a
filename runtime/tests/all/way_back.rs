//! The way back, end to end: FHIR POSTed to the HTTP source of the shipped
//! `weft.toml` goes through the fhir-to-v2 component and reaches a stand-in
//! lab system over MLLP as HL7 v2 — an OML^O21 for a lab order Bundle, an
//! ADT^A31 for a Patient — and the stand-in's ACK settles each delivery.
//! The stand-in is python-hl7's MLLP server (`tests/stand-ins/lis.py`): a
//! peer that is not Weft parses what Weft sends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::fhir_server::free_addr;
use crate::common::run::{Weft, shipped_config};
use crate::common::{Api, curl, repo};

/// The stand-in LIS: its port and the folder its messages land in.
struct Lis {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
}

impl Lis {
    fn start(ack_code: &str) -> Lis {
        let python = std::env::var_os("WEFT_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target/py/bin/python"));
        assert!(
            python.is_file(),
            "{} is missing: scripts/test.sh installs the Python hl7 package",
            python.display()
        );
        let out = tempfile::tempdir().unwrap();
        let mut child = Command::new(python)
            .arg(repo().join("tests/stand-ins/lis.py"))
            .arg(out.path())
            .arg(ack_code)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the stand-in LIS starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .expect("the stand-in LIS prints its port");
        Lis { child, port, out }
    }

    /// The messages received so far, in order.
    fn received(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "hl7"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped configuration's `weft run`, its `lis` destination pointed
/// at the stand-in, and its admin API.
fn start(lis: &Lis) -> (Weft, Api) {
    let admin = free_addr();
    let weft = Weft::start(|_| {
        shipped_config()
            .replace("127.0.0.1:2576", &format!("127.0.0.1:{}", lis.port))
            .replace(
                "[admin]\nlisten = \"127.0.0.1:0\"",
                &format!("[admin]\nlisten = \"{admin}\""),
            )
    });
    let api = weft.api(admin);
    (weft, api)
}

fn post(weft: &Weft, file: &Path) -> String {
    let url = format!("http://{}/messages", weft.addrs["http"]);
    let data = format!("@{}", file.display());
    let (code, body) = curl(&[
        "-H",
        "Content-Type: application/fhir+json",
        "--data-binary",
        &data,
        &url,
    ]);
    assert_eq!(code, 202, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["message_id"].as_str().unwrap().to_string()
}

fn settled(api: &Api, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, m) = api.call("GET", &format!("/messages/{id}"), &[], "");
        assert_eq!(code, 200, "{m}");
        let state = &m["deliveries"][0]["state"];
        if state == "delivered" || state == "dead" {
            return m;
        }
        assert!(Instant::now() < deadline, "not settled: {m:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn field(msg: &weft_hl7::Message, path: &str) -> String {
    msg.element(path)
        .unwrap()
        .map(|e| e.raw().to_string())
        .unwrap_or_default()
}

#[test]
fn a_fhir_lab_order_reaches_the_lis_as_oml_and_is_acked() {
    let lis = Lis::start("AA");
    let (mut weft, api) = start(&lis);

    let order = post(&weft, &repo().join("samples/fhir-lab-order.json"));
    let got = lis.wait_for(1);
    assert_eq!(got.len(), 1, "the OML reached the LIS");
    let oml = weft_hl7::Message::parse_str(&got[0]).unwrap();
    let ids: Vec<&str> = oml.segments().iter().map(|s| s.id()).collect();
    assert_eq!(
        ids,
        [
            "MSH", "PID", "PV1", "ORC", "TQ1", "OBR", "NTE", "DG1", "SPM"
        ]
    );
    assert_eq!(field(&oml, "MSH-9"), "OML^O21^OML_O21");
    assert_eq!(field(&oml, "MSH-5"), "LIS");
    assert_eq!(field(&oml, "MSH-12"), "2.5.1");
    assert_eq!(field(&oml, "PID-3"), "100234^^^EDGE^MR");
    assert_eq!(field(&oml, "ORC-1"), "NW");
    assert_eq!(field(&oml, "ORC-2"), "ORD-77120^EDGE");
    assert_eq!(field(&oml, "ORC-12"), "1234567893^Welby^Marcus^^^Dr^^^NPI");
    assert_eq!(
        field(&oml, "OBR-4"),
        "4548-4^Hemoglobin A1c/Hemoglobin.total in Blood^LN"
    );
    assert_eq!(field(&oml, "TQ1-9"), "S");
    assert_eq!(field(&oml, "SPM-2"), "SP-88121&EDGE");
    let m = settled(&api, &order);
    assert_eq!(m["deliveries"][0]["state"], "delivered", "{m:#}");
    assert_eq!(m["deliveries"][0]["destination"], "lis", "{m:#}");

    // A Patient with an id: an update, ADT^A31, to the same LIS.
    let patient = post(&weft, &repo().join("samples/fhir-patient.json"));
    let got = lis.wait_for(2);
    assert_eq!(got.len(), 2);
    let adt = weft_hl7::Message::parse_str(&got[1]).unwrap();
    assert_eq!(field(&adt, "MSH-9"), "ADT^A31^ADT_A05");
    assert_eq!(field(&adt, "PID-5"), "O'Brien^Seán^^^^^L");
    assert_eq!(field(&adt, "MSH-18"), "UNICODE UTF-8");
    assert_eq!(
        settled(&api, &patient)["deliveries"][0]["state"],
        "delivered"
    );
    assert_ne!(field(&oml, "MSH-10"), field(&adt, "MSH-10"));

    // What the plugin cannot send is refused with the element named.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    let mut b: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("samples/fhir-lab-order.json")).unwrap(),
    )
    .unwrap();
    b["entry"][5]["resource"]["code"] = Value::Null;
    std::fs::write(&bad, b.to_string()).unwrap();
    let id = post(&weft, &bad);
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let (_, m) = api.call("GET", &format!("/messages/{id}"), &[], "");
        if m["status"] == "rejected" || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(m["status"], "rejected", "{m:#}");
    assert!(
        m["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ServiceRequest.code is empty"),
        "{m:#}"
    );
    assert_eq!(lis.received().len(), 2, "nothing more reached the LIS");
    assert_eq!(weft.stop(), 0);
}

#[test]
fn a_lis_that_rejects_the_order_leaves_it_dead_with_its_reason() {
    let lis = Lis::start("AR");
    let (mut weft, api) = start(&lis);
    let order = post(&weft, &repo().join("samples/fhir-lab-order.json"));
    let m = settled(&api, &order);
    assert_eq!(m["deliveries"][0]["state"], "dead", "{m:#}");
    let error = m["deliveries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("answered AR"), "{m:#}");
    assert_eq!(lis.received().len(), 1);
    assert_eq!(weft.stop(), 0);
}
