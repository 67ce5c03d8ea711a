//! adt-to-fhir, run natively through weft_sdk::testing.

use adt_to_fhir::{AdtToFhir, resources};
use weft_sdk::serde_json::{self as serde_json, Value};
use weft_sdk::testing::TestHost;
use weft_sdk::{ErrorKind, Message};

const LOOKUPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../lookups");

fn host() -> TestHost {
    let read = |f: &str| std::fs::read_to_string(format!("{LOOKUPS}/{f}")).unwrap();
    TestHost::new()
        .config("default_utc_offset", "+01:00")
        .lookup_csv("gender", &read("gender.csv"))
        .lookup_csv("assigning_authority", &read("assigning-authority.csv"))
        .lookup("assigning_authority", "HOSP", "urn:oid:1.2.3.4")
}

const A01: &str = "MSH|^~\\&|EPIC|HOSP|WEFT|EDGE|20240102030405||ADT^A01^ADT_A01|CTRL1|P|2.5.1
EVN|A01|20240102030405
PID|1||123456^^^HOSP^MR~987-65-4321^^^SSA^SS||O'Brien\\T\\Sons^Mary^Ann^Jr^Dr^^L~Smith^Mary^^^^^M||19800229|F|||12 Main St^Apt 4^Springfield^IL^62701^USA^H||^PRN^PH^^1^217^5551234~^NET^Internet^mary@example.org|^WPN^PH^^1^217^5559876^12||M^Married
PV1|1|I|W1^101^A^HOSP||||1234^Welby^Marcus^^^Dr|||MED|||||||||V789^^^HOSP^VN|||||||||||||||||||||||||20240102030000|";

fn bundle(text: &str) -> Value {
    let out = host().run::<AdtToFhir>(Message::from_hl7(text)).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message().content_type(), "application/fhir+json");
    out[0].message().json().unwrap()
}

#[test]
fn maps_an_admit() {
    let b = bundle(A01);
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "transaction");
    let p = resources(&b, "Patient").next().unwrap();
    assert_eq!(p["identifier"][0]["system"], "urn:oid:1.2.3.4");
    assert_eq!(p["identifier"][0]["value"], "123456");
    assert_eq!(p["identifier"][0]["type"]["coding"][0]["code"], "MR");
    assert_eq!(
        p["identifier"][1]["system"],
        "http://hl7.org/fhir/sid/us-ssn"
    );
    assert_eq!(p["name"][0]["family"], "O'Brien&Sons");
    assert_eq!(p["name"][0]["given"], serde_json::json!(["Mary", "Ann"]));
    assert_eq!(p["name"][0]["prefix"][0], "Dr");
    assert_eq!(p["name"][0]["use"], "official");
    assert_eq!(p["name"][1]["use"], "maiden");
    assert_eq!(p["birthDate"], "1980-02-29");
    assert_eq!(p["gender"], "female");
    assert_eq!(
        p["address"][0]["line"],
        serde_json::json!(["12 Main St", "Apt 4"])
    );
    assert_eq!(p["address"][0]["city"], "Springfield");
    assert_eq!(p["address"][0]["use"], "home");
    assert_eq!(p["telecom"][0]["value"], "1 217 5551234");
    assert_eq!(p["telecom"][0]["use"], "home");
    assert_eq!(p["telecom"][1]["system"], "email");
    assert_eq!(p["telecom"][2]["value"], "1 217 5559876 ext. 12");
    assert_eq!(p["telecom"][2]["use"], "work");
    assert_eq!(p["maritalStatus"]["coding"][0]["code"], "M");

    let entry = &b["entry"][0];
    assert_eq!(entry["request"]["method"], "PUT");
    assert_eq!(
        entry["request"]["url"],
        "Patient?identifier=urn:oid:1.2.3.4|123456"
    );
    assert!(entry["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));

    let e = resources(&b, "Encounter").next().unwrap();
    assert_eq!(e["status"], "in-progress");
    assert_eq!(e["class"]["code"], "IMP");
    assert_eq!(e["subject"]["reference"], entry["fullUrl"]);
    assert_eq!(e["period"]["start"], "2024-01-02T03:00:00+01:00");
    assert_eq!(e["location"][0]["location"]["display"], "W1 101 A HOSP");
    assert_eq!(
        e["participant"][0]["individual"]["display"],
        "Dr Marcus Welby"
    );
    assert_eq!(
        b["entry"][1]["request"]["url"],
        "Encounter?identifier=urn:oid:1.2.3.4|V789"
    );
}

#[test]
fn status_follows_the_trigger() {
    for (trigger, status) in [
        ("A03", Some("finished")),
        ("A04", Some("arrived")),
        ("A08", Some("in-progress")),
        ("A28", None),
        ("A31", None),
    ] {
        let text = A01.replace("ADT^A01^ADT_A01", &format!("ADT^{trigger}"));
        let b = bundle(&text);
        let e = resources(&b, "Encounter").next();
        assert_eq!(
            e.map(|e| e["status"].as_str().unwrap()),
            status,
            "{trigger}"
        );
        assert_eq!(resources(&b, "Patient").count(), 1);
    }
}

#[test]
fn same_message_same_bundle() {
    assert_eq!(bundle(A01), bundle(A01));
}

fn reject_reason(text: &str) -> String {
    let e = host()
        .run::<AdtToFhir>(Message::from_hl7(text))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Reject, "{e}");
    e.reason().to_string()
}

#[test]
fn rejects_what_it_cannot_map_faithfully() {
    let r = reject_reason(&A01.replace("19800229", "2023130"));
    assert!(
        r.starts_with("PID-7 \"2023130\" is not a valid HL7 date"),
        "{r}"
    );
    let r = reject_reason(&A01.replace("|19800229|", "|19810229|"));
    assert!(r.contains("day out of range"), "{r}");
    let r = reject_reason(&A01.replace("123456^^^HOSP^MR~987-65-4321^^^SSA^SS", ""));
    assert!(r.starts_with("PID-3"), "{r}");
    let r = reject_reason(&A01.replace("ADT^A01^ADT_A01", "ORU^R01"));
    assert!(r.contains("not an ADT message"), "{r}");
    let r = reject_reason(&A01.replace("ADT^A01^ADT_A01", "ADT^A40"));
    assert!(r.contains("ADT^A40 is not supported"), "{r}");
    let r = reject_reason(&A01.replace("PV1|1|I|", "PV1|1|Z|"));
    assert!(r.starts_with("PV1-2"), "{r}");
    let r = reject_reason(&A01.replace("|20240102030000", "|20241302030000"));
    assert!(r.starts_with("PV1-44"), "{r}");
}

#[test]
fn unknown_gender_is_left_out_with_a_warning() {
    let h = host();
    let out = h
        .run::<AdtToFhir>(Message::from_hl7(&A01.replace("|F|||", "|Q|||")))
        .unwrap();
    let b = out[0].message().json().unwrap();
    assert!(
        resources(&b, "Patient")
            .next()
            .unwrap()
            .get("gender")
            .is_none()
    );
    let warn = h
        .logs()
        .into_iter()
        .find(|(l, _)| *l == weft_sdk::log::Level::Warn)
        .unwrap();
    assert!(
        warn.1.contains("PID-8") && !warn.1.contains("\"Q\""),
        "{}",
        warn.1
    );
}

#[test]
fn every_corpus_adt_maps_or_is_rejected_with_a_reason() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/corpus/hl7v2/fhir-converter"
    );
    let mut mapped = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("ADT") {
            continue;
        }
        let msg = Message::new("application/hl7-v2", std::fs::read(&path).unwrap());
        match host().run::<AdtToFhir>(msg) {
            Ok(out) => {
                let b = out[0].message().json().unwrap();
                assert!(!b["entry"].as_array().unwrap().is_empty(), "{name}");
                mapped += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Reject, "{name}: {e}");
                assert!(
                    e.reason().contains("PID")
                        || e.reason().contains("PV1")
                        || e.reason().contains("MSH-9"),
                    "{name}: {e}"
                );
                println!("{name}: rejected: {e}");
            }
        }
    }
    assert!(mapped >= 15, "only {mapped} ADT messages mapped");
}
