//! Clinical documents end to end: an MDM^T02 sent over MLLP to the real
//! `weft run` goes through the mdm-to-fhir component and reaches a
//! stand-in FHIR server as a transaction Bundle whose DocumentReference
//! carries the document's text.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::common::fhir_server::FhirServer;
use crate::common::run::Weft;

#[test]
fn an_mdm_over_mllp_becomes_a_document_reference_at_the_fhir_server() {
    let server = FhirServer::start(&[]);
    let mut weft = Weft::start(|_| {
        format!(
            r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-commit"

[plugins.mdm-to-fhir]
path = "{mdm}"
[plugins.mdm-to-fhir.config]
default_utc_offset = "+00:00"

[destinations.fhir]
kind = "http"
url = "http://{addr}/fhir"

[routes.documents]
match = ["MDM^*"]
plugins = ["mdm-to-fhir"]
destinations = ["fhir"]
"#,
            mdm = crate::common::wasm("mdm-to-fhir").display(),
            addr = server.addr,
        )
    });
    let body = std::fs::read(crate::common::repo().join("samples/mdm-t02.hl7")).unwrap();
    let ack = weft.client().exchange(&body);
    assert_eq!(ack.code, "AA", "{}", ack.raw);
    let start = Instant::now();
    while server.accepted().is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = server.accepted();
    assert_eq!(got.len(), 1, "one Bundle delivered");
    assert_eq!(got[0].content_type, "application/fhir+json");
    let bundle: Value = serde_json::from_slice(&got[0].body).unwrap();
    let doc = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "DocumentReference")
        .expect("a DocumentReference");
    assert_eq!(
        doc["request"]["url"],
        "DocumentReference?identifier=urn:weft:assigning-authority:EDGE|DOC-5501"
    );
    let attachment = &doc["resource"]["content"][0]["attachment"];
    let text = base64::engine::general_purpose::STANDARD
        .decode(attachment["data"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8(text)
            .unwrap()
            .contains("Impression: stable angina"),
        "the document's text is the attachment"
    );
    assert_eq!(weft.stop(), 0);
}
