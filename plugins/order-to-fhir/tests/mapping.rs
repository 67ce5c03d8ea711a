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
