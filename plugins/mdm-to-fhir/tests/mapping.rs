//! mdm-to-fhir, run natively through weft_v2fhir::testing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mdm_to_fhir::MdmToFhir;
use weft_sdk::serde_json::Value;
use weft_v2fhir::testing::{Mapped, Mapping};

const MDM: &str = include_str!("../../../samples/mdm-t02.hl7");

fn run(text: &str) -> Mapped {
    Mapping::<MdmToFhir>::new()
        .config("default_utc_offset", "+01:00")
        .bundle(text)
}

fn reason(text: &str) -> String {
    Mapping::<MdmToFhir>::new().reject(text)
}

fn document(text: &str) -> Value {
    run(text).first("DocumentReference").clone()
}

fn decoded(attachment: &Value) -> String {
    let bytes = STANDARD
        .decode(attachment["data"].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn maps_a_document_with_its_text() {
    let b = run(MDM);
    let d = b.first("DocumentReference");
    assert_eq!(d["status"], "current");
    assert_eq!(d["docStatus"], "final");
    assert_eq!(d["masterIdentifier"]["value"], "DOC-5501");
    assert_eq!(d["identifier"][0]["value"], "DOC-5501");
    assert_eq!(d["type"]["coding"][0]["code"], "CN");
    assert_eq!(
        d["type"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0270"
    );
    assert_eq!(d["date"], "2024-03-11T14:15:00+01:00");
    assert_eq!(d["subject"]["reference"], b.url_of("Patient"));
    assert_eq!(
        d["context"]["encounter"][0]["reference"],
        b.url_of("Encounter")
    );
    assert!(d["author"][0]["reference"].is_string());
    let a = &d["content"][0]["attachment"];
    assert_eq!(a["contentType"], "text/plain; charset=utf-8");
    assert_eq!(a["title"], "consult-5501.txt");
    assert_eq!(
        decoded(a),
        "Reason for consultation: chest pain on exertion.\nImpression: stable angina; start aspirin and a beta blocker."
    );
    // Sent again, the same document.
    let again = run(&MDM.replace("CTRL0801", "CTRL0802"));
    assert_eq!(
        b.url_of("DocumentReference"),
        again.url_of("DocumentReference")
    );
}

#[test]
fn formatted_text_and_encapsulated_data() {
    let ft = MDM.replace(
        "OBX|1|TX|11488-4^Consult note^LN|1|Reason for consultation: chest pain on exertion.",
        r"OBX|1|FT|11488-4^Consult note^LN|1|\H\REASON\N\\.br\chest pain \T\ dyspnea",
    );
    let d = document(&ft);
    assert!(decoded(&d["content"][0]["attachment"]).starts_with("REASON\nchest pain & dyspnea\n"));
    let pdf = STANDARD.encode(b"%PDF-1.4 stand-in");
    let ed = MDM.replace(
        "OBX|2|TX|11488-4^Consult note^LN|2|Impression: stable angina; start aspirin and a beta blocker.",
        &format!("OBX|2|ED|11488-4^Consult note^LN|2|EDGE^application^pdf^Base64^{pdf}"),
    );
    let d = document(&ed);
    let list = d["content"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["attachment"]["contentType"], "application/pdf");
    assert_eq!(decoded(&list[1]["attachment"]), "%PDF-1.4 stand-in");
    let r = reason(&ed.replace(&pdf, "!!not-base64!!"));
    assert!(r.contains("OBX-5"), "{r}");
}

#[test]
fn status_replacement_and_cancel() {
    let replaced = MDM
        .replace("MDM^T02^MDM_T02", "MDM^T10^MDM_T10")
        .replace("|DOC-5501^EDGE||||", "|DOC-5502^EDGE|DOC-5501^EDGE|||");
    let d = document(&replaced);
    assert_eq!(d["docStatus"], "amended");
    assert_eq!(d["relatesTo"][0]["code"], "replaces");
    assert_eq!(
        d["relatesTo"][0]["target"]["identifier"]["value"],
        "DOC-5501"
    );
    let cancelled = document(&MDM.replace("MDM^T02^MDM_T02", "MDM^T11^MDM_T11"));
    assert_eq!(cancelled["status"], "entered-in-error");
    assert_eq!(cancelled["docStatus"], "entered-in-error");
    let draft = document(&MDM.replace("|AU||AV", "|DI||AV"));
    assert_eq!(draft["docStatus"], "preliminary");
    let old = document(&MDM.replace("|AU||AV", "|AU||OB"));
    assert_eq!(old["status"], "superseded");
    // A notification without content still names its document.
    let bare: String = MDM
        .split('\r')
        .filter(|s| !s.starts_with("OBX"))
        .map(|s| format!("{s}\r"))
        .collect();
    let d = document(&bare.replace("MDM^T02^MDM_T02", "MDM^T01^MDM_T01"));
    assert_eq!(d["content"][0]["attachment"]["title"], "consult-5501.txt");
    assert!(d["content"][0]["attachment"].get("data").is_none());
}

#[test]
fn rejects_name_the_field() {
    let r = reason(&MDM.replace("CN^Consultation^HL70270", ""));
    assert!(r.contains("TXA-2"), "{r}");
    let r = reason(&MDM.replace("|AU||AV", "|ZZ||AV"));
    assert!(r.contains("TXA-17"), "{r}");
    let r = reason(&MDM.replace("20240311141500+0100", "20241311141500+0100"));
    assert!(r.contains("TXA-6"), "{r}");
    let no_txa: String = MDM
        .split('\r')
        .filter(|s| !s.starts_with("TXA"))
        .map(|s| format!("{s}\r"))
        .collect();
    let r = reason(&no_txa);
    assert!(r.contains("TXA"), "{r}");
}

#[test]
fn the_fhir_converter_corpus_messages_map() {
    let dir = format!(
        "{}/../../tests/corpus/hl7v2/fhir-converter",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("MDM-")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let b = run(&text);
        assert_eq!(b.all("DocumentReference").len(), 1, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 7, "{seen} MDM corpus messages");
}

#[test]
fn a_document_past_16_mib_is_refused_at_the_obx_that_crosses_it() {
    // Text lines: 17 lines of 1 MiB.
    let line = "x".repeat(1 << 20);
    let big: Vec<String> = (0..17).map(|_| line.clone()).collect();
    let text = MDM.replace(
        "Reason for consultation: chest pain on exertion.",
        &big.join("~"),
    );
    let r = reason(&text);
    assert!(r.contains("OBX-5"), "{r}");
    assert!(r.contains("larger than 16 MiB"), "{r}");
    // Encapsulated data counts decoded: 12 MiB of Base64 is 9 MiB, twice
    // is past the cap at the second OBX.
    let data = STANDARD.encode(vec![7u8; 9 << 20]);
    let ed = |n: u32| {
        format!("OBX|{n}|ED|11488-4^Consult note^LN|{n}|EDGE^application^pdf^Base64^{data}||||||F")
    };
    let two: String = MDM
        .split('\r')
        .filter(|s| !s.starts_with("OBX"))
        .map(|s| format!("{s}\r"))
        .chain([format!("{}\r", ed(1)), format!("{}\r", ed(2))])
        .collect();
    let r = reason(&two);
    assert!(r.contains("OBX-5 at segment"), "{r}");
    assert!(r.contains("larger than 16 MiB"), "{r}");
    // One of them alone is under the cap.
    let one: String = MDM
        .split('\r')
        .filter(|s| !s.starts_with("OBX"))
        .map(|s| format!("{s}\r"))
        .chain([format!("{}\r", ed(1))])
        .collect();
    assert_eq!(document(&one)["content"].as_array().unwrap().len(), 1);
}
