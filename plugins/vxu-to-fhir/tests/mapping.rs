//! vxu-to-fhir, run natively through weft_v2fhir::testing.

use vxu_to_fhir::VxuToFhir;
use weft_sdk::serde_json::Value;
use weft_v2fhir::testing::{Mapped, Mapping};

const VXU: &str = include_str!("../../../samples/vxu-v04.hl7");

fn run(text: &str) -> Mapped {
    Mapping::<VxuToFhir>::new().bundle(text)
}

fn reason(text: &str) -> String {
    Mapping::<VxuToFhir>::new().reject(text)
}

fn immunization(text: &str) -> Value {
    run(text).first("Immunization").clone()
}

#[test]
fn maps_an_administration() {
    let b = run(VXU);
    let im = b.first("Immunization");
    assert_eq!(im["status"], "completed");
    assert_eq!(
        im["vaccineCode"]["coding"][0]["system"],
        "http://hl7.org/fhir/sid/cvx"
    );
    assert_eq!(im["vaccineCode"]["coding"][0]["code"], "208");
    assert_eq!(im["occurrenceDateTime"], "2024-01-05");
    assert_eq!(im["primarySource"], true);
    assert_eq!(im["lotNumber"], "LOT42");
    assert_eq!(im["expirationDate"], "2024-12-31");
    assert_eq!(
        im["manufacturer"]["identifier"]["system"],
        "http://hl7.org/fhir/sid/mvx"
    );
    assert_eq!(im["manufacturer"]["identifier"]["value"], "PFR");
    assert_eq!(im["route"]["coding"][0]["code"], "C28161");
    assert_eq!(
        im["site"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0163"
    );
    assert_eq!(im["doseQuantity"]["value"], 0.3);
    assert_eq!(im["doseQuantity"]["code"], "mL");
    assert_eq!(im["performer"][0]["function"]["coding"][0]["code"], "AP");
    assert_eq!(im["programEligibility"][0]["coding"][0]["code"], "V01");
    assert_eq!(im["identifier"][0]["value"], "IZ3003");
    let obs = b.first("Observation");
    assert_eq!(obs["partOf"][0]["reference"], b.url_of("Immunization"));
}

#[test]
fn status_and_origin() {
    let im = immunization(&VXU.replace("|||CP|A", "|||RE|A"));
    assert_eq!(im["status"], "not-done");
    let im = immunization(&VXU.replace("|||CP|A", "|||CP|D"));
    assert_eq!(im["status"], "entered-in-error");
    let im = immunization(&VXU.replace(
        "|00^New immunization record^NIP001|",
        "|01^Historical^NIP001|",
    ));
    assert_eq!(im["primarySource"], false);
    assert_eq!(im["reportOrigin"]["coding"][0]["code"], "01");
    // 999 is "amount unknown".
    let im = immunization(&VXU.replace("|0.3|", "|999|"));
    assert!(im.get("doseQuantity").is_none());
}

#[test]
fn rejects_what_it_cannot_map() {
    let r = reason(&VXU.replace("208^COVID-19, mRNA^CVX", ""));
    assert!(r.starts_with("RXA-5 (administered code) is empty"), "{r}");
    let r = reason(&VXU.replace("RXA|0|1|20240105|", "RXA|0|1||"));
    assert!(
        r.starts_with("RXA-3 (date/time start of administration) is empty"),
        "{r}"
    );
    let r = reason(&VXU.replace("|||CP|A", "|||XX|A"));
    assert!(
        r.starts_with("RXA-20 (completion status) holds a code"),
        "{r}"
    );
    let no_rxa: Vec<&str> = VXU.split('\r').filter(|s| !s.starts_with("RXA")).collect();
    let r = reason(&no_rxa.join("\r"));
    assert!(r.contains("no RXA segment"), "{r}");
    let r = reason(&VXU.replace("PID|1||123456^^^EDGE^MR|", "PID|1|||"));
    assert!(r.starts_with("PID-3"), "{r}");
}
