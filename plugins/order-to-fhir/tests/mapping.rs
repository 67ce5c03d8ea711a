//! order-to-fhir, run natively through weft_v2fhir::testing.

use order_to_fhir::OrderToFhir;
use weft_v2fhir::testing::{Mapped, Mapping};

const ORM: &str = include_str!("../../../samples/orm-o01.hl7");

fn run(text: &str) -> Mapped {
    Mapping::<OrderToFhir>::new().bundle(text)
}

fn reason(text: &str) -> String {
    Mapping::<OrderToFhir>::new().reject(text)
}

#[test]
fn maps_an_order() {
    let b = run(ORM);
    let sr = b.first("ServiceRequest");
    assert_eq!(sr["status"], "active");
    assert_eq!(sr["intent"], "order");
    assert_eq!(sr["priority"], "stat");
    assert_eq!(sr["code"]["coding"][0]["code"], "24725-4");
    assert_eq!(sr["identifier"][0]["value"], "ORD1002");
    assert_eq!(sr["occurrenceDateTime"], "2024-01-05T09:00:00+01:00");
    assert_eq!(sr["requester"]["display"], "Dr Marcus Welby");
    assert_eq!(sr["subject"]["reference"], b.url_of("Patient"));
    assert_eq!(sr["encounter"]["reference"], b.url_of("Encounter"));
    assert_eq!(sr["reasonReference"][0]["reference"], b.url_of("Condition"));
    let c = b.first("Condition");
    assert_eq!(
        c["code"]["coding"][0]["system"],
        "http://hl7.org/fhir/sid/icd-10-cm"
    );
    assert!(b.entries().any(|e| e["request"]["url"]
        == "ServiceRequest?identifier=urn:weft:assigning-authority:EDGE|ORD1002"));
}

#[test]
fn lab_order_with_specimen() {
    let text = ORM.replace("ORM^O01^ORM_O01", "OML^O21^OML_O21").replace(
        "\rDG1",
        "\rSPM|1|SP1&EDGE||BLD^Whole blood^HL70487|||||||||||||20240105083000+0100\rDG1",
    );
    let b = run(&text);
    let sr = b.first("ServiceRequest");
    let sp = b.first("Specimen");
    assert_eq!(sr["specimen"][0]["reference"], b.url_of("Specimen"));
    assert_eq!(sp["type"]["coding"][0]["code"], "BLD");
    assert_eq!(sp["request"][0]["reference"], b.url_of("ServiceRequest"));
}

#[test]
fn status_from_order_control_and_status() {
    let b = run(&ORM.replace("ORC|NW|", "ORC|CA|"));
    assert_eq!(b.first("ServiceRequest")["status"], "revoked");
    let b = run(&ORM.replace("ORC|NW|ORD1002^EDGE|||", "ORC|NW|ORD1002^EDGE|||HD"));
    assert_eq!(b.first("ServiceRequest")["status"], "on-hold");
}

#[test]
fn rejects_what_it_cannot_map() {
    let r = reason(&ORM.replace("ORC|NW|ORD1002^EDGE|||", "ORC|NW|ORD1002^EDGE|||QQ"));
    assert!(r.starts_with("ORC-5 (order status) holds a code"), "{r}");
    let no_obr: Vec<&str> = ORM.split('\r').filter(|s| !s.starts_with("OBR")).collect();
    let r = reason(&no_obr.join("\r"));
    assert!(r.contains("no OBR segment"), "{r}");
    let r = reason(&ORM.replace("|24725-4^CT Head^LN|", "||"));
    assert!(
        r.starts_with("OBR-4 (universal service identifier) is empty"),
        "{r}"
    );
    let r = reason(&ORM.replace("ORM^O01^ORM_O01", "ORM^O02"));
    assert!(
        r.starts_with("MSH-9 ORM^O02 is not mapped by order-to-fhir"),
        "{r}"
    );
}

const REF: &str = include_str!("../../../samples/ref-i12.hl7");

/// The resource a Reference points at, in the Bundle.
fn target<'b>(b: &'b Mapped, r: &weft_sdk::serde_json::Value) -> &'b weft_sdk::serde_json::Value {
    let url = r["reference"].as_str().unwrap();
    &b.entries().find(|e| e["fullUrl"] == url).unwrap()["resource"]
}

#[test]
fn a_referral_goes_from_the_referring_provider_to_the_one_referred_to() {
    let b = run(REF);
    let sr = b.first("ServiceRequest");
    assert_eq!(sr["status"], "draft", "RF1-1 P (pending)");
    assert_eq!(sr["intent"], "order");
    assert_eq!(sr["priority"], "routine");
    assert_eq!(sr["code"]["coding"][0]["code"], "3457005");
    assert_eq!(sr["category"][0]["coding"][0]["code"], "Med");
    assert_eq!(sr["category"][1]["coding"][0]["code"], "O");
    assert_eq!(sr["identifier"][0]["value"], "RFR-5001");
    assert_eq!(sr["identifier"][0]["type"]["coding"][0]["code"], "PLAC");
    assert_eq!(sr["authoredOn"], "2024-03-12");
    assert_eq!(sr["occurrencePeriod"]["end"], "2024-06-12");
    assert_eq!(sr["reasonCode"][0]["coding"][0]["code"], "O");
    // Requester RP, performer RT, each a Practitioner matched on its NPI.
    let requester = target(&b, &sr["requester"]);
    assert_eq!(
        requester["identifier"][0]["system"],
        "http://hl7.org/fhir/sid/us-npi"
    );
    assert_eq!(requester["identifier"][0]["value"], "1234");
    assert_eq!(requester["address"][0]["city"], "Springfield");
    let performer = target(&b, &sr["performer"][0]);
    assert_eq!(performer["identifier"][0]["value"], "5678");
    assert_eq!(performer["name"][0]["family"], "Heart");
    // Made for the diagnosis; sent with the allergy and the observation.
    let reason = target(&b, &sr["reasonReference"][0]);
    assert_eq!(reason["code"]["coding"][0]["code"], "I20.9");
    let kinds: Vec<&str> = sr["supportingInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| target(&b, r)["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["AllergyIntolerance", "Observation"]);
    assert_eq!(sr["encounter"]["reference"], b.url_of("Encounter"));
}

#[test]
fn referral_events_and_statuses() {
    let with_status = |code: &str| REF.replacen("RF1|P^Pending^HL70283", &format!("RF1|{code}"), 1);
    for (code, status) in [
        ("A", "active"),
        ("R", "revoked"),
        ("E", "revoked"),
        ("", "active"),
    ] {
        assert_eq!(
            run(&with_status(code)).first("ServiceRequest")["status"],
            status,
            "{code}"
        );
    }
    // I14 cancels the referral, whatever RF1-1 says.
    let cancel = REF.replace("REF^I12^REF_I12", "REF^I14^REF_I14");
    assert_eq!(run(&cancel).first("ServiceRequest")["status"], "revoked");
    let r = reason(&with_status("Q"));
    assert!(r.contains("RF1-1") && r.contains("referral_status"), "{r}");
    let no_rf1: Vec<&str> = REF.split('\r').filter(|s| !s.starts_with("RF1")).collect();
    let r = reason(&no_rf1.join("\r"));
    assert!(r.contains("REF^I12 has no RF1"), "{r}");
    // Without a referral id it is keyed on the message: the same again is
    // the same referral.
    let no_id = REF.replace("|RFR-5001^EDGE|", "||");
    let a = run(&no_id);
    let b = run(&no_id);
    assert_eq!(a.url_of("ServiceRequest"), b.url_of("ServiceRequest"));
    assert_eq!(
        a.first("ServiceRequest")["identifier"][0]["system"],
        "urn:weft:v2fhir:derived"
    );
}
