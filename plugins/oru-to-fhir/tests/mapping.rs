//! oru-to-fhir, run natively through weft_v2fhir::testing.

use oru_to_fhir::OruToFhir;
use weft_v2fhir::testing::{Mapped, Mapping};

const ORU: &str = include_str!("../../../samples/oru-r01.hl7");

fn bundle(text: &str) -> Mapped {
    Mapping::<OruToFhir>::new().bundle(text)
}

fn reject(text: &str) -> String {
    Mapping::<OruToFhir>::new().reject(text)
}

/// The sample with its OBX segments replaced by `obx`.
fn with_obx(obx: &str) -> String {
    let kept: Vec<&str> = ORU.split('\r').filter(|s| !s.starts_with("OBX")).collect();
    let mut text = kept.join("\r");
    text = text.replace("\rSPM", &format!("\r{obx}\rSPM"));
    text
}

#[test]
fn maps_a_result() {
    let b = bundle(ORU);
    let r = b.first("DiagnosticReport");
    assert_eq!(r["status"], "final");
    assert_eq!(r["code"]["coding"][0]["system"], "http://loinc.org");
    assert_eq!(r["code"]["coding"][0]["code"], "24331-1");
    assert_eq!(r["category"][0]["coding"][0]["code"], "CH");
    assert_eq!(r["effectiveDateTime"], "2024-01-05T08:30:00+01:00");
    assert_eq!(r["issued"], "2024-01-05T10:14:00+01:00");
    assert_eq!(r["result"].as_array().unwrap().len(), 3);
    assert_eq!(r["identifier"][0]["value"], "LAB2002");

    let sr = b.first("ServiceRequest");
    assert_eq!(sr["status"], "completed");
    assert_eq!(sr["intent"], "order");
    assert_eq!(sr["identifier"][0]["type"]["coding"][0]["code"], "PLAC");
    assert_eq!(sr["requester"]["display"], "Dr Marcus Welby");

    let obs = b.all("Observation");
    let chol = obs[0];
    assert_eq!(chol["status"], "final");
    assert_eq!(chol["valueQuantity"]["value"], 212);
    assert_eq!(chol["valueQuantity"]["system"], "http://unitsofmeasure.org");
    assert_eq!(chol["valueQuantity"]["code"], "mg/dL");
    assert_eq!(chol["interpretation"][0]["coding"][0]["code"], "H");
    assert_eq!(chol["referenceRange"][0]["text"], "<200");
    assert_eq!(chol["basedOn"][0]["reference"], b.url_of("ServiceRequest"));
    let tg = obs[1];
    assert_eq!(tg["referenceRange"][0]["low"]["value"], 0);
    assert_eq!(tg["referenceRange"][0]["high"]["value"], 150);
    assert_eq!(obs[2]["valueString"], "Fasting sample");

    let spm = b.first("Specimen");
    assert_eq!(spm["type"]["coding"][0]["system"], "http://snomed.info/sct");
    assert_eq!(spm["identifier"][0]["value"], "SP3003");
    assert_eq!(
        spm["collection"]["collectedDateTime"],
        "2024-01-05T08:30:00+01:00"
    );
    assert_eq!(chol["specimen"]["reference"], r["specimen"][0]["reference"]);
}

#[test]
fn value_types() {
    let b = bundle(&with_obx(
        "OBX|1|SN|1^A^LN||<^5|mg^mg^UCUM||||F\rOBX|2|SN|2^B^LN||^1^:^128||||||F\rOBX|3|SN|3^C^LN||^2^-^4|g^g^UCUM||||F\r\
OBX|4|CWE|4^D^LN||260373001^Detected^SCT||||||F\rOBX|5|DT|5^E^LN||20240102||||||F\rOBX|6|TX|6^F^LN||line one~line two||||||F\r\
OBX|7|TM|7^G^LN||1130||||||F",
    ));
    let o = b.all("Observation");
    assert_eq!(o[0]["valueQuantity"]["comparator"], "<");
    assert_eq!(o[0]["valueQuantity"]["value"], 5);
    assert_eq!(o[1]["valueRatio"]["denominator"]["value"], 128);
    assert_eq!(o[2]["valueRange"]["high"]["value"], 4);
    assert_eq!(
        o[3]["valueCodeableConcept"]["coding"][0]["code"],
        "260373001"
    );
    assert_eq!(o[4]["valueDateTime"], "2024-01-02");
    assert_eq!(o[5]["valueString"], "line one\nline two");
    assert_eq!(o[6]["valueTime"], "11:30:00");
}

#[test]
fn oddities_map_with_a_warning() {
    let m = Mapping::<OruToFhir>::new();
    let text = with_obx("OBX|1|ED|1^A^LN||^AP^PDF^Base64^AAAA||||||\rOBX|2|NM|2^B^LN||5|||ZZ|||F");
    let b = m.bundle(&text);
    let o = b.all("Observation");
    assert_eq!(o[0]["status"], "unknown");
    assert_eq!(o[0]["dataAbsentReason"]["coding"][0]["code"], "unsupported");
    assert_eq!(o[1]["interpretation"][0]["coding"][0]["code"], "ZZ");
    assert_eq!(
        o[1]["interpretation"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0078"
    );
    let warnings: Vec<String> = m
        .host()
        .logs()
        .into_iter()
        .filter(|(l, _)| *l == weft_sdk::log::Level::Warn)
        .map(|(_, m)| m)
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("OBX-11")),
        "{warnings:?}"
    );
    assert!(warnings.iter().any(|w| w.contains("OBX-8")), "{warnings:?}");
    assert!(
        warnings.iter().all(|w| !w.contains("ZZ")),
        "codes are not logged above debug"
    );
}

#[test]
fn rejects_what_it_cannot_map() {
    let r = reject(&with_obx("OBX|1|NM|1^A^LN||about five||||||F"));
    assert!(r.starts_with("OBX-5 is not a number"), "{r}");
    let r = reject(&with_obx(
        "OBX|1|NM|1^A^LN||5||||||Q\rOBX|2|NM|2^B^LN||5||||||F",
    ));
    assert!(
        r.starts_with("OBX-11 at segment 6 (observation result status) holds a code"),
        "{r}"
    );
    let r = reject(&with_obx("OBX|1|NM|||5||||||F"));
    assert!(
        r.starts_with("OBX-3 (observation identifier) is empty"),
        "{r}"
    );
    let r = reject(&with_obx("OBX|1|DT|1^A^LN||20240231||||||F"));
    assert!(r.starts_with("OBX-5 is not a valid HL7 date/time"), "{r}");
    let no_obr: Vec<&str> = ORU.split('\r').filter(|s| !s.starts_with("OBR")).collect();
    let r = reject(&no_obr.join("\r"));
    assert!(r.contains("no OBR segment"), "{r}");
    let r = reject(&ORU.replace("ORU^R01^ORU_R01", "ORU^R30"));
    assert!(
        r.starts_with("MSH-9 ORU^R30 is not mapped by oru-to-fhir"),
        "{r}"
    );
    let r = reject(&ORU.replace(
        "ORD1001^EDGE|LAB2002^LAB||CM",
        "ORD1001^EDGE|LAB2002^LAB||XX",
    ));
    assert!(
        r.starts_with("ORC-5 (order status) holds a code with no FHIR mapping"),
        "{r}"
    );
}

#[test]
fn result_comments_become_notes() {
    let b = bundle(&with_obx(
        "OBX|1|NM|1^A^LN||5||||||F\rNTE|1||Haemolysed sample\rNTE|2||Repeat advised\rOBX|2|NM|2^B^LN||6||||||F",
    ));
    let o = b.all("Observation");
    assert_eq!(o[0]["note"][0]["text"], "Haemolysed sample");
    assert_eq!(o[0]["note"][1]["text"], "Repeat advised");
    assert!(o[1].get("note").is_none());
}

#[test]
fn a_resend_is_the_same_bundle() {
    assert_eq!(bundle(ORU), bundle(ORU));
    let b = bundle(ORU);
    for e in b.entries() {
        assert_eq!(e["request"]["method"], "PUT");
        assert!(e["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
    }
}

#[test]
fn a_narrative_report_has_its_text_and_impression() {
    use base64::Engine as _;
    let text = with_obx(
        "OBX|1|TX|18782-3^Radiology Study observation^LN||CHEST PA AND LATERAL~Lungs are clear.||||||F\r\
         OBX|2|FT|19005-8^Radiology Imaging study [Impression]^LN||\\H\\No acute\\N\\\\.br\\cardiopulmonary disease.||||||F",
    );
    let b = bundle(&text);
    let r = b.first("DiagnosticReport");
    assert_eq!(r["conclusion"], "No acute\ncardiopulmonary disease.");
    let form = &r["presentedForm"][0];
    assert_eq!(form["contentType"], "text/plain; charset=utf-8");
    let data = base64::engine::general_purpose::STANDARD
        .decode(form["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(data).unwrap(),
        "CHEST PA AND LATERAL\nLungs are clear.\nNo acute\ncardiopulmonary disease."
    );
    // Without an impression, the whole text is the conclusion.
    let plain = with_obx("OBX|1|TX|18782-3^Radiology Study observation^LN||Normal study.||||||F");
    assert_eq!(
        bundle(&plain).first("DiagnosticReport")["conclusion"],
        "Normal study."
    );
    // A lab report with numbers is not a narrative.
    assert!(
        bundle(ORU)
            .first("DiagnosticReport")
            .get("presentedForm")
            .is_none()
    );
}

const OUL: &str = include_str!("../../../samples/oul-r22.hl7");

/// The Observation coded `code`.
fn observation<'b>(b: &'b Mapped, code: &str) -> &'b weft_sdk::serde_json::Value {
    b.all("Observation")
        .into_iter()
        .find(|o| o["code"]["coding"][0]["code"] == code)
        .unwrap_or_else(|| panic!("no Observation {code}"))
}

#[test]
fn a_specimen_oriented_oul_maps_the_specimen_its_own_observations_and_its_orders() {
    let b = bundle(OUL);
    let specimen = b.url_of("Specimen");
    assert_eq!(
        b.first("Specimen")["identifier"][0]["value"],
        "SP4004",
        "SPM-2"
    );
    let report = b.first("DiagnosticReport");
    assert_eq!(report["code"]["coding"][0]["code"], "58410-2");
    assert_eq!(report["result"].as_array().unwrap().len(), 2);
    assert_eq!(report["specimen"][0]["reference"], specimen);
    // The results of the order: on the specimen, for the order.
    for code in ["6690-2", "718-7"] {
        let o = observation(&b, code);
        assert_eq!(o["specimen"]["reference"], specimen, "{code}");
        assert_eq!(o["basedOn"][0]["reference"], b.url_of("ServiceRequest"));
    }
    // The specimen's own observation: on it, for no order.
    let own = observation(&b, "33882-2");
    assert_eq!(own["specimen"]["reference"], specimen);
    assert!(own["basedOn"].is_null());
    // The ORC after the OBR belongs to that order.
    let order = b.first("ServiceRequest");
    assert_eq!(order["identifier"][0]["value"], "ORD1101");
    assert_eq!(b.all("ServiceRequest").len(), 1);
}

#[test]
fn an_order_oriented_oul_takes_the_specimens_after_each_obr() {
    // OUL^R24: the SPM follows its OBR (and ORC).
    let lines: Vec<&str> = OUL.split('\r').collect();
    let spm = lines.iter().find(|s| s.starts_with("SPM")).unwrap();
    let r24: Vec<String> = lines
        .iter()
        .filter(|s| !s.starts_with("SPM") && !s.starts_with("OBX|1|ST"))
        .map(|s| s.replace("OUL^R22^OUL_R22", "OUL^R24^OUL_R24"))
        .flat_map(|s| {
            if s.starts_with("ORC") {
                vec![s, spm.to_string()]
            } else {
                vec![s]
            }
        })
        .collect();
    let b = bundle(&r24.join("\r"));
    assert_eq!(b.all("Specimen").len(), 1);
    let report = b.first("DiagnosticReport");
    assert_eq!(report["specimen"][0]["reference"], b.url_of("Specimen"));
    assert_eq!(report["result"].as_array().unwrap().len(), 2);
}

#[test]
fn an_oul_without_an_order_is_a_reject() {
    let text: Vec<&str> = OUL
        .split('\r')
        .filter(|s| !s.starts_with("OBR") && !s.starts_with("ORC"))
        .collect();
    let r = reject(&text.join("\r"));
    assert!(r.contains("OUL^R22 has no OBR"), "{r}");
}
