//! fhir-to-v2, run natively: FHIR in, HL7 v2 out, checked field by field
//! and by a round trip through the v2-to-FHIR plugins.

use adt_to_fhir::AdtToFhir;
use fhir_to_v2::FhirToV2;
use order_to_fhir::OrderToFhir;
use weft_sdk::hl7::Message as Hl7;
use weft_sdk::serde_json::{Value, json};
use weft_sdk::testing::TestHost;
use weft_sdk::{CONTENT_TYPE_FHIR_JSON, Message};
use weft_v2fhir::testing::Mapping;

const LAB_ORDER: &str = include_str!("../../../samples/fhir-lab-order.json");
const PATIENT: &str = include_str!("../../../samples/fhir-patient.json");
const ORM: &str = include_str!("../../../samples/orm-o01.hl7");
const A01: &str = include_str!("../../../samples/adt-a01.hl7");
const AUTHORITY: &str = "urn:oid:2.16.840.1.113883.3.9999.1,EDGE\n";
const ID: &str = "01920000-0000-7abc-8def-0123456789ab";

fn host() -> TestHost {
    TestHost::new()
}

fn fhir(body: &str) -> Message {
    Message::new(CONTENT_TYPE_FHIR_JSON, body.as_bytes().to_vec()).with_id(ID)
}

/// Every output as parsed HL7 v2, with its destination.
fn run(host: &TestHost, body: &str) -> Vec<(Option<String>, Hl7)> {
    host.run::<FhirToV2>(fhir(body))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|o| {
            let (to, m) = o.into_parts();
            assert_eq!(m.content_type(), "application/hl7-v2");
            let text = std::str::from_utf8(m.body()).unwrap().to_string();
            assert!(text.ends_with('\r') && !text.contains('\n'), "{text:?}");
            (
                to,
                Hl7::parse_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}")),
            )
        })
        .collect()
}

fn one(host: &TestHost, body: &str) -> Hl7 {
    let mut all = run(host, body);
    assert_eq!(all.len(), 1);
    all.remove(0).1
}

fn get(m: &Hl7, path: &str) -> String {
    m.get(path).unwrap().unwrap_or_default()
}

fn raw(m: &Hl7, path: &str) -> String {
    m.element(path)
        .unwrap()
        .map(|e| e.raw().to_string())
        .unwrap_or_default()
}

fn ids(m: &Hl7) -> Vec<&str> {
    m.segments().iter().map(|s| s.id()).collect()
}

fn reason(body: &str) -> String {
    host().reject_reason::<FhirToV2>(fhir(body))
}

#[test]
fn a_lab_order_bundle_becomes_an_oml_o21() {
    let m = one(&host().lookup_csv("authority", AUTHORITY), LAB_ORDER);
    assert_eq!(
        ids(&m),
        [
            "MSH", "PID", "PV1", "ORC", "TQ1", "OBR", "NTE", "DG1", "SPM"
        ]
    );
    assert_eq!(raw(&m, "MSH-9"), "OML^O21^OML_O21");
    assert_eq!(get(&m, "MSH-10"), "7abc8def0123456789ab");
    assert_eq!(get(&m, "MSH-11"), "P");
    assert_eq!(get(&m, "MSH-12"), "2.5.1");
    assert_eq!(get(&m, "MSH-3"), "WEFT");
    assert_eq!(get(&m, "MSH-7"), "20240917124052.992+0000");
    assert_eq!(raw(&m, "PID-3"), "100234^^^EDGE^MR");
    assert_eq!(raw(&m, "PID-5"), "Everywoman^Eve^E^^^^L");
    assert_eq!(get(&m, "PID-7"), "19620320");
    assert_eq!(get(&m, "PID-8"), "F");
    assert_eq!(
        raw(&m, "PID-11"),
        "2222 Home Street^^Ann Arbor^MI^99999^USA^H"
    );
    assert_eq!(raw(&m, "PID-13"), "555 555-2004^PRN^PH");
    assert_eq!(get(&m, "PV1-2"), "O");
    assert_eq!(raw(&m, "PV1-19"), "V5001^^^EDGE");
    assert_eq!(get(&m, "PV1-44"), "20261130081500+0100");
    assert_eq!(get(&m, "ORC-1"), "NW");
    assert_eq!(raw(&m, "ORC-2"), "ORD-77120^EDGE");
    assert_eq!(get(&m, "ORC-5"), "");
    assert_eq!(get(&m, "ORC-9"), "20261130083000+0100");
    assert_eq!(raw(&m, "ORC-12"), "1234567893^Welby^Marcus^^^Dr^^^NPI");
    assert_eq!(get(&m, "TQ1-7"), "20261130090000+0100");
    assert_eq!(get(&m, "TQ1-9"), "S");
    assert_eq!(get(&m, "OBR-1"), "1");
    assert_eq!(raw(&m, "OBR-2"), "ORD-77120^EDGE");
    assert_eq!(
        raw(&m, "OBR-4"),
        "4548-4^Hemoglobin A1c/Hemoglobin.total in Blood^LN"
    );
    assert_eq!(raw(&m, "OBR-16"), raw(&m, "ORC-12"));
    assert_eq!(
        raw(&m, "NTE-3"),
        "Fasting since midnight.\\.br\\Draw before insulin."
    );
    assert_eq!(get(&m, "NTE-2"), "P");
    assert_eq!(
        raw(&m, "DG1-3"),
        "E11.9^Type 2 diabetes mellitus without complications^I10C"
    );
    assert_eq!(get(&m, "DG1-6"), "W");
    assert_eq!(raw(&m, "SPM-2"), "SP-88121&EDGE");
    assert_eq!(raw(&m, "SPM-4"), "BLD^Whole blood");
    assert_eq!(get(&m, "SPM-17"), "20261130082000+0100");
}

#[test]
fn settings_choose_orm_the_header_and_the_destination() {
    let h = host()
        .config("order_message", "ORM^O01")
        .config("sending_application", "WEFT^1.2.3^ISO")
        .config("receiving_application", "LIS")
        .config("receiving_facility", "LAB")
        .config("processing_id", "T")
        .config("orders_to", "lis");
    let out = run(&h, LAB_ORDER);
    assert_eq!(out.len(), 1);
    let (to, m) = &out[0];
    assert_eq!(to.as_deref(), Some("lis"));
    assert_eq!(raw(m, "MSH-9"), "ORM^O01^ORM_O01");
    assert_eq!(raw(m, "MSH-3"), "WEFT^1.2.3^ISO");
    assert_eq!(get(m, "MSH-5"), "LIS");
    assert_eq!(get(m, "MSH-6"), "LAB");
    assert_eq!(get(m, "MSH-11"), "T");
    // ORM^O01 has no SPM; without the authority table the OID is kept.
    assert_eq!(
        ids(m),
        ["MSH", "PID", "PV1", "ORC", "TQ1", "OBR", "NTE", "DG1"]
    );
    assert_eq!(
        raw(m, "PID-3"),
        "100234^^^&2.16.840.1.113883.3.9999.1&ISO^MR"
    );

    for (key, value) in [("order_message", "OML^O33"), ("processing_id", "X")] {
        let e = host()
            .config(key, value)
            .init::<FhirToV2>()
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{e}");
    }
}

#[test]
fn text_is_escaped_and_unicode_declared() {
    let mut b: Value = weft_sdk::serde_json::from_str(LAB_ORDER).unwrap();
    b["entry"][0]["resource"]["name"][0]["family"] = json!("Ström|X^Y&Z~W\\V");
    b["entry"][5]["resource"]["note"][0]["text"] = json!("line\r\nnext|one");
    let m = one(&host(), &b.to_string());
    assert_eq!(get(&m, "PID-5.1"), "Ström|X^Y&Z~W\\V");
    assert_eq!(
        raw(&m, "PID-5.1"),
        "Str\u{f6}m\\F\\X\\S\\Y\\T\\Z\\R\\W\\E\\V"
    );
    assert_eq!(raw(&m, "NTE-3"), "line\\.br\\next\\F\\one");
    assert_eq!(get(&m, "MSH-18"), "UNICODE UTF-8");
    assert_eq!(ids(&m).len(), 9);
}

#[test]
fn orders_for_two_patients_make_two_messages_and_statuses_map() {
    let mut b: Value = weft_sdk::serde_json::from_str(LAB_ORDER).unwrap();
    let mut second = b["entry"][5].clone();
    second["resource"]["subject"] =
        json!({"identifier": {"system": "urn:weft:assigning-authority:EDGE", "value": "555"}});
    second["resource"]["status"] = json!("revoked");
    second["resource"]["priority"] = json!("routine");
    b["entry"].as_array_mut().unwrap().push(second);
    let mut third = b["entry"][5].clone();
    third["resource"]["status"] = json!("on-hold");
    third["resource"]["identifier"][0]["value"] = json!("ORD-2");
    b["entry"].as_array_mut().unwrap().push(third);
    let out = run(&host(), &b.to_string());
    assert_eq!(out.len(), 2);
    let (first, other) = (&out[0].1, &out[1].1);
    assert_eq!(first.segments_named("ORC").count(), 2);
    assert_eq!(get(first, "ORC[2]-1"), "HD");
    assert_eq!(get(first, "ORC[2]-5"), "HD");
    assert_eq!(get(first, "OBR[2]-1"), "2");
    assert_eq!(raw(other, "PID-3"), "555^^^EDGE");
    assert_eq!(get(other, "ORC-1"), "CA");
    assert_eq!(get(other, "ORC-5"), "CA");
    assert_eq!(get(other, "TQ1-9"), "R");
    assert_ne!(get(first, "MSH-10"), get(other, "MSH-10"));
    assert!(get(other, "MSH-10").len() <= 20);
}

#[test]
fn patients_become_a28_or_a31() {
    let m = one(&host(), PATIENT);
    assert_eq!(ids(&m), ["MSH", "EVN", "PID", "PV1"]);
    assert_eq!(raw(&m, "MSH-9"), "ADT^A31^ADT_A05");
    assert_eq!(get(&m, "EVN-1"), "A31");
    assert_eq!(raw(&m, "PID-5"), "O'Brien^Seán^^^^^L");
    assert_eq!(raw(&m, "PID-13"), "^NET^Internet^sean@example.org");
    assert_eq!(raw(&m, "PID-14"), "555 0100^WPN^PH");
    // A system with no v2 name is sent as its URI.
    assert_eq!(
        raw(&m, "PID-16"),
        "M^^http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
    );
    assert_eq!(get(&m, "PV1-2"), "N");

    let mut p: Value = weft_sdk::serde_json::from_str(PATIENT).unwrap();
    p.as_object_mut().unwrap().remove("id");
    assert_eq!(
        raw(&one(&host(), &p.to_string()), "MSH-9"),
        "ADT^A28^ADT_A05"
    );
    let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": p, "request": {"method": "POST", "url": "Patient"}},
        {"resource": p, "request": {"method": "PUT", "url": "Patient?identifier=x|1"}},
    ]});
    let out = run(&host().config("patients_to", "registry"), &b.to_string());
    let types: Vec<String> = out.iter().map(|(_, m)| raw(m, "MSH-9")).collect();
    assert_eq!(types, ["ADT^A28^ADT_A05", "ADT^A31^ADT_A05"]);
    assert!(out.iter().all(|(to, _)| to.as_deref() == Some("registry")));
}

#[test]
fn rejects_name_the_element() {
    let order: Value = weft_sdk::serde_json::from_str(LAB_ORDER).unwrap();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut b = order.clone();
        f(&mut b["entry"][5]["resource"]);
        reason(&b.to_string())
    };
    let r = edit(&|sr| sr["identifier"] = json!([]));
    assert!(
        r.starts_with("ServiceRequest.identifier holds no placer"),
        "{r}"
    );
    let r = edit(&|sr| {
        sr.as_object_mut().unwrap().remove("code");
    });
    assert!(r.starts_with("ServiceRequest.code is empty"), "{r}");
    let r = edit(&|sr| sr["status"] = json!("draft"));
    assert!(
        r.starts_with("ServiceRequest.status is not an order"),
        "{r}"
    );
    let r = edit(&|sr| sr["authoredOn"] = json!("30/11/2026"));
    assert!(
        r.starts_with("ServiceRequest.authoredOn is not a FHIR date"),
        "{r}"
    );
    assert!(!r.contains("30/11"), "{r}");
    let r = edit(&|sr| sr["subject"] = json!({"reference": "Patient/elsewhere"}));
    assert!(r.contains("points at no Patient"), "{r}");
    let mut b = order.clone();
    b["entry"][0]["resource"]["identifier"] = json!([]);
    let r = reason(&b.to_string());
    assert!(
        r.starts_with("Patient.identifier holds no identifier"),
        "{r}"
    );

    let r = reason(r#"{"resourceType":"Observation","status":"final"}"#);
    assert!(r.starts_with("the input holds Observation"), "{r}");
    let r = reason("[1,2]");
    assert!(r.contains("no resourceType"), "{r}");
    let r = reason("{not json");
    assert!(r.starts_with("the body is not JSON"), "{r}");
    let r = host().reject_reason::<FhirToV2>(Message::from_hl7(ORM));
    assert!(r.contains("not FHIR JSON"), "{r}");
}

#[test]
fn hostile_input_is_bounded() {
    let sr = json!({"resourceType": "ServiceRequest", "status": "active",
        "identifier": [{"value": "1"}], "code": {"text": "x"},
        "subject": {"identifier": {"value": "p"}}});
    let many: Vec<Value> = (0..501).map(|_| json!({"resource": sr})).collect();
    let r = reason(&json!({"resourceType": "Bundle", "entry": many}).to_string());
    assert!(r.contains("more than 500"), "{r}");
    let many: Vec<Value> = (0..5001)
        .map(|_| json!({"resource": {"resourceType": "Basic"}}))
        .collect();
    let r = reason(&json!({"resourceType": "Bundle", "entry": many}).to_string());
    assert!(r.contains("more than 5000"), "{r}");
    // A reference cycle through PractitionerRole does not loop.
    let b = json!({"resourceType": "Bundle", "entry": [
        {"fullUrl": "urn:uuid:r", "resource": {"resourceType": "PractitionerRole", "practitioner": {"reference": "urn:uuid:r"}}},
        {"resource": {"resourceType": "ServiceRequest", "status": "active", "identifier": [{"value": "1"}],
            "code": {"text": "x"}, "subject": {"identifier": {"value": "p"}}, "requester": {"reference": "urn:uuid:r"}}},
    ]});
    let m = one(&host(), &b.to_string());
    assert_eq!(get(&m, "ORC-2"), "1");
}

/// The v2 message mapped to FHIR, and the FHIR mapped back to v2 and to
/// FHIR again: the resources both directions map come out the same, with
/// references compared by what they point at.
fn round_trip_resources(
    mapping: &Mapping<impl weft_sdk::Plugin>,
    hl7: &str,
    kinds: &[&str],
    back: &TestHost,
) {
    let first = mapping.bundle(hl7).into_value();
    let outputs = run(back, &first.to_string());
    let text = outputs[0].1.to_text();
    let second = mapping.bundle(&text).into_value();
    for kind in kinds {
        let a = normalized(&first, kind);
        let b = normalized(&second, kind);
        assert!(!a.is_null(), "{kind} missing from the first mapping");
        assert_eq!(a, b, "{kind} differs after the round trip; v2 was {text:?}");
    }
}

/// The first resource of `kind`, each `urn:uuid:` reference replaced by
/// the type it points at, derived identifiers left out.
fn normalized(bundle: &Value, kind: &str) -> Value {
    let entries = bundle["entry"].as_array().unwrap();
    let type_of = |url: &str| {
        entries
            .iter()
            .find(|e| e["fullUrl"] == url)
            .map(|e| e["resource"]["resourceType"].clone())
            .unwrap_or(Value::Null)
    };
    fn walk(v: &mut Value, type_of: &dyn Fn(&str) -> Value) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("reference")
                    && r.starts_with("urn:uuid:")
                {
                    let t = type_of(r);
                    o.insert("reference".into(), t);
                }
                if let Some(Value::Array(ids)) = o.get_mut("identifier") {
                    ids.retain(|i| i["system"] != weft_v2fhir::ids::DERIVED_SYSTEM);
                }
                o.values_mut().for_each(|x| walk(x, type_of));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, type_of)),
            _ => {}
        }
    }
    let mut r = entries
        .iter()
        .find(|e| e["resource"]["resourceType"] == kind)
        .map(|e| e["resource"].clone())
        .unwrap_or(Value::Null);
    walk(&mut r, &type_of);
    r
}

#[test]
fn round_trip_keeps_what_both_directions_map() {
    let assigning = "../../lookups/assigning-authority.csv";
    let orders = Mapping::<OrderToFhir>::new().lookup_file("assigning_authority", assigning);
    let oml = [
        "MSH|^~\\&|EHR|EDGE|WEFT|EDGE|20240105090000+0100||OML^O21^OML_O21|CTRL0301|P|2.5.1",
        "PID|1||123456^^^EDGE^MR||Sample^Pat^Q^^Ms^^L||19800229|F|||12 Main St^Apt 4^Springfield^IL^62701^USA^H||^PRN^PH^^1^217^5551234~^NET^Internet^pat@example.org||en^English|M^Married",
        "PV1|1|O|CLINIC^^^EDGE||||1234^Welby^Marcus^^^Dr||||||||||||V790^^^EDGE^VN",
        "ORC|NW|ORD1002^EDGE|||||||20240105084500+0100||1234^Welby^Marcus^^^Dr",
        "TQ1|1||||||20240105090000+0100||S",
        "OBR|1|ORD1002^EDGE||24725-4^CT Head^LN||||||||||||||||||||||||||||R/O fracture^^^^^^^^Rule out fracture",
        "NTE|1|P|Patient is claustrophobic",
        "DG1|1||S06.9^Traumatic brain injury^I10C||20240104|W",
        "SPM|1|SP1&EDGE||BLD^Whole blood^HL70487|||||||||||||20240105083000+0100",
        "",
    ]
    .join("\r");
    let back = host().lookup_csv("authority", AUTHORITY);
    round_trip_resources(
        &orders,
        &oml,
        &[
            "Patient",
            "Encounter",
            "ServiceRequest",
            "Specimen",
            "Condition",
            "Practitioner",
        ],
        &back,
    );
    let adt = Mapping::<AdtToFhir>::new().lookup_file("assigning_authority", assigning);
    round_trip_resources(&adt, A01, &["Patient"], &back);
    // With race and ethnicity (US Core extensions, PID-10 and PID-22).
    let with_race = A01
        .replace(
            "|Female|||12 Main St",
            "|Female||2106-3^White^CDCREC~2028-9^Asian^CDCREC~2029-7^Asian Indian^CDCREC|12 Main St",
        )
        .replace(
            "|M^Married\r",
            "|M^Married||||||2186-5^Not Hispanic or Latino^CDCREC\r",
        );
    assert_ne!(with_race, A01);
    let first = adt.bundle(&with_race).into_value();
    assert!(first.to_string().contains("us-core-ethnicity"));
    round_trip_resources(&adt, &with_race, &["Patient"], &back);
}

/// Every element of the sample Bundle and Patient (and of the FHIR the
/// RDE sample maps to), removed or replaced by
/// a value of each wrong JSON type: the plugin answers with valid HL7 v2
/// or a reject, never a panic or a failure, and never puts a raw
/// delimiter or line break where the message structure would break.
#[test]
fn damaged_elements_are_sent_or_rejected_never_crash() {
    fn paths(v: &Value, at: &mut Vec<Vec<PathStep>>, here: Vec<PathStep>) {
        at.push(here.clone());
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    let mut p = here.clone();
                    p.push(PathStep::Key(k.clone()));
                    paths(x, at, p);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let mut p = here.clone();
                    p.push(PathStep::Index(i));
                    paths(x, at, p);
                }
            }
            _ => {}
        }
    }
    fn edit(v: &mut Value, path: &[PathStep], with: Option<&Value>) {
        let Some((last, parent)) = path.split_last() else {
            return;
        };
        let mut node = v;
        for step in parent {
            node = match step {
                PathStep::Key(k) => &mut node[k.as_str()],
                PathStep::Index(i) => &mut node[*i],
            };
        }
        match (last, with, node) {
            (PathStep::Key(k), None, Value::Object(o)) => {
                o.remove(k);
            }
            (PathStep::Index(i), None, Value::Array(a)) => {
                a.remove(*i);
            }
            (PathStep::Key(k), Some(w), n) => n[k.as_str()] = w.clone(),
            (PathStep::Index(i), Some(w), n) => n[*i] = w.clone(),
            _ => {}
        }
    }
    let wrong = [
        json!(null),
        json!(7),
        json!(-1.5e300),
        json!("x|y^z~\\&\r\nMSH|"),
        json!(""),
        json!([]),
        json!({}),
        json!(true),
    ];
    let h = host();
    let mut tried = 0;
    let medication_order = Mapping::<pharmacy_to_fhir::PharmacyToFhir>::new()
        .bundle(RDE)
        .into_value()
        .to_string();
    for sample in [LAB_ORDER, PATIENT, medication_order.as_str()] {
        let root: Value = weft_sdk::serde_json::from_str(sample).unwrap();
        let mut all = Vec::new();
        paths(&root, &mut all, Vec::new());
        for path in all.iter().filter(|p| !p.is_empty()) {
            for with in std::iter::once(None).chain(wrong.iter().map(Some)) {
                let mut v = root.clone();
                edit(&mut v, path, with);
                tried += 1;
                match h.run::<FhirToV2>(fhir(&v.to_string())) {
                    Ok(outputs) => {
                        for o in outputs {
                            let text = std::str::from_utf8(o.message().body()).unwrap();
                            assert!(!text.contains('\n'), "{path:?} {with:?}: a raw line feed");
                            let m = Hl7::parse_str(text)
                                .unwrap_or_else(|e| panic!("{path:?} {with:?}: {e}"));
                            let ids: Vec<&str> = m.segments().iter().map(|s| s.id()).collect();
                            assert_eq!(
                                ids.iter().filter(|s| **s == "MSH").count(),
                                1,
                                "{path:?} {with:?}: {text:?}"
                            );
                            assert!(
                                ids.iter().all(|s| [
                                    "MSH", "EVN", "PID", "PV1", "ORC", "TQ1", "OBR", "NTE", "DG1",
                                    "SPM", "RXE", "RXR"
                                ]
                                .contains(s)),
                                "{path:?} {with:?}: {ids:?}"
                            );
                        }
                    }
                    Err(e) => assert_eq!(
                        e.kind(),
                        weft_sdk::ErrorKind::Reject,
                        "{path:?} {with:?}: {e}"
                    ),
                }
            }
        }
    }
    assert!(tried > 1000, "{tried}");
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

const RDE: &str = include_str!("../../../samples/rde-o11.hl7");

#[test]
fn a_medication_request_becomes_an_rde_o11_and_round_trips() {
    let assigning = "../../lookups/assigning-authority.csv";
    let pharmacy = Mapping::<pharmacy_to_fhir::PharmacyToFhir>::new()
        .lookup_file("assigning_authority", assigning);
    // MSH-4 is the authority of identifiers sent without one (RXE-15).
    let back = host()
        .lookup_csv("authority", AUTHORITY)
        .config("sending_facility", "EDGE")
        .config("pharmacy_to", "pharmacy");
    let bundle = pharmacy.bundle(RDE).into_value();
    let out = run(&back, &bundle.to_string());
    assert_eq!(out.len(), 1);
    let (to, m) = &out[0];
    assert_eq!(to.as_deref(), Some("pharmacy"));
    assert_eq!(
        ids(m),
        ["MSH", "PID", "PV1", "ORC", "RXE", "TQ1", "RXR"],
        "{}",
        m.to_text()
    );
    assert_eq!(raw(m, "MSH-9"), "RDE^O11^RDE_O11");
    assert_eq!(raw(m, "ORC-2"), "RX7001^CPOE");
    assert_eq!(raw(m, "RXE-2"), "197361^Amlodipine 5 MG Oral Tablet^RXNORM");
    assert_eq!(get(m, "RXE-3"), "5");
    assert_eq!(raw(m, "RXE-5"), "mg^mg^UCUM");
    assert_eq!(raw(m, "RXE-6"), "TAB^Tablet^HL70292");
    assert_eq!(raw(m, "RXE-7"), "^Take with water");
    assert_eq!(get(m, "RXE-9"), "N");
    assert_eq!(get(m, "RXE-10"), "20");
    assert_eq!(get(m, "RXE-12"), "2");
    assert_eq!(get(m, "RXE-15"), "RXN-88123");
    assert_eq!(raw(m, "TQ1-3"), "BID");
    assert_eq!(m.field(m.segment("TQ1").unwrap(), 4).raw(), "0900~2100");
    assert_eq!(get(m, "TQ1-9"), "R");
    assert_eq!(raw(m, "RXR-1"), "PO^Oral");

    round_trip_resources(
        &pharmacy,
        RDE,
        &["Patient", "MedicationRequest", "Medication", "Practitioner"],
        &back,
    );

    // The route is required; the drug is required.
    let mut b = bundle.clone();
    for e in b["entry"].as_array_mut().unwrap() {
        if e["resource"]["resourceType"] == "MedicationRequest" {
            e["resource"]["dosageInstruction"][0]
                .as_object_mut()
                .unwrap()
                .remove("route");
        }
    }
    let r = reason(&b.to_string());
    assert!(
        r.starts_with("MedicationRequest.dosageInstruction.route is empty"),
        "{r}"
    );
    let mut b = bundle;
    for e in b["entry"].as_array_mut().unwrap() {
        if e["resource"]["resourceType"] == "MedicationRequest" {
            let r = e["resource"].as_object_mut().unwrap();
            r.remove("medicationReference");
            r.remove("medicationCodeableConcept");
        }
    }
    let r = reason(&b.to_string());
    assert!(
        r.starts_with("MedicationRequest.medication[x] has no code"),
        "{r}"
    );
}
