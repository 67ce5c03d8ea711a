//! pharmacy-to-fhir, run natively through weft_v2fhir::testing.

use pharmacy_to_fhir::PharmacyToFhir;
use weft_sdk::serde_json::Value;
use weft_v2fhir::testing::{Mapped, Mapping};

const RDE: &str = include_str!("../../../samples/rde-o11.hl7");
const RDS: &str = include_str!("../../../samples/rds-o13.hl7");
const RAS: &str = include_str!("../../../samples/ras-o17.hl7");

fn run(text: &str) -> Mapped {
    Mapping::<PharmacyToFhir>::new()
        .config("default_utc_offset", "+01:00")
        .bundle(text)
}

fn reason(text: &str) -> String {
    Mapping::<PharmacyToFhir>::new().reject(text)
}

fn request(text: &str) -> Value {
    run(text).first("MedicationRequest").clone()
}

const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

#[test]
fn maps_an_encoded_order() {
    let b = run(RDE);
    let r = b.first("MedicationRequest");
    assert_eq!(r["status"], "active");
    assert_eq!(r["intent"], "order");
    assert_eq!(r["priority"], "routine");
    assert_eq!(r["identifier"][0]["value"], "RX7001");
    assert_eq!(r["identifier"][0]["type"]["coding"][0]["code"], "PLAC");
    assert_eq!(r["identifier"][1]["value"], "RXN-88123");
    assert_eq!(r["authoredOn"], "2024-03-10T08:12:00+01:00");
    assert_eq!(r["subject"]["reference"], b.url_of("Patient"));
    assert_eq!(r["encounter"]["reference"], b.url_of("Encounter"));
    assert!(r["requester"]["reference"].is_string());
    assert!(r["recorder"]["reference"].is_string());
    // An RxNorm-coded drug is a Medication of its own, with its form.
    let m = b.first("Medication");
    assert_eq!(
        r["medicationReference"]["reference"],
        b.url_of("Medication")
    );
    assert_eq!(m["code"]["coding"][0]["system"], RXNORM);
    assert_eq!(m["code"]["coding"][0]["code"], "197361");
    assert_eq!(m["form"]["coding"][0]["code"], "TAB");
    let d = &r["dosageInstruction"][0];
    assert_eq!(d["text"], "Take with water");
    assert_eq!(d["route"]["coding"][0]["code"], "PO");
    assert_eq!(d["doseAndRate"][0]["doseQuantity"]["value"], 5);
    assert_eq!(d["doseAndRate"][0]["doseQuantity"]["code"], "mg");
    let t = &d["timing"];
    assert_eq!(t["code"]["coding"][0]["code"], "BID");
    assert_eq!(
        t["code"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0335"
    );
    assert_eq!(t["repeat"]["frequency"], 2);
    assert_eq!(t["repeat"]["period"], 1);
    assert_eq!(t["repeat"]["periodUnit"], "d");
    assert_eq!(t["repeat"]["timeOfDay"][0], "09:00:00");
    assert_eq!(t["repeat"]["timeOfDay"][1], "21:00:00");
    assert_eq!(
        t["repeat"]["boundsPeriod"]["start"],
        "2024-03-10T09:00:00+01:00"
    );
    let dr = &r["dispenseRequest"];
    assert_eq!(dr["quantity"]["value"], 20);
    assert_eq!(dr["quantity"]["unit"], "Tablet");
    assert_eq!(dr["numberOfRepeatsAllowed"], 2);
    assert_eq!(r["substitution"]["allowedBoolean"], false);
}

#[test]
fn the_same_order_and_drug_have_the_same_identity_in_every_message() {
    let a = run(RDE);
    let b = run(&RDE.replace("CTRL0501", "CTRL0999"));
    assert_eq!(a.url_of("MedicationRequest"), b.url_of("MedicationRequest"));
    assert_eq!(a.url_of("Medication"), b.url_of("Medication"));
    // Without placer or filler number the order's identity is the
    // message's, so two messages are two orders.
    let no_ids = RDE.replace("ORC|NW|RX7001^CPOE|", "ORC|NW||");
    let a = run(&no_ids);
    let b = run(&no_ids.replace("CTRL0501", "CTRL0999"));
    assert_ne!(a.url_of("MedicationRequest"), b.url_of("MedicationRequest"));
}

#[test]
fn a_drug_without_a_standard_code_stays_in_the_request() {
    let local = RDE.replace(
        "197361^Amlodipine 5 MG Oral Tablet^RXNORM",
        "AML5^Amlodipine 5 mg tab^99LOCAL",
    );
    let b = run(&local);
    assert!(b.all("Medication").is_empty());
    let r = b.first("MedicationRequest");
    assert_eq!(r["medicationCodeableConcept"]["coding"][0]["code"], "AML5");
    // Text alone is a drug too.
    let text_only = RDE.replace(
        "197361^Amlodipine 5 MG Oral Tablet^RXNORM",
        "^Amlodipine 5 mg tablet",
    );
    let r = request(&text_only);
    assert_eq!(
        r["medicationCodeableConcept"]["text"],
        "Amlodipine 5 mg tablet"
    );
}

#[test]
fn a_compound_is_a_medication_with_its_components() {
    let iv = RDE
        .replace(
            "197361^Amlodipine 5 MG Oral Tablet^RXNORM",
            "IVMIX1^Potassium in saline^99LOCAL",
        )
        .replace(
            "RXR|PO^Oral^HL70162\r",
            "RXR|IV^Intravenous^HL70162\rRXC|B|7967^Sodium chloride 0.9%^RXNORM|1000|mL^mL^UCUM\rRXC|A|8591^Potassium chloride^RXNORM|20|meq^meq^UCUM\r",
        );
    let b = run(&iv);
    let m = b.first("Medication");
    let ing = m["ingredient"].as_array().unwrap();
    assert_eq!(ing.len(), 2);
    assert_eq!(ing[0]["isActive"], false);
    assert_eq!(ing[0]["itemCodeableConcept"]["coding"][0]["code"], "7967");
    assert_eq!(ing[0]["strength"]["numerator"]["value"], 1000);
    assert_eq!(ing[0]["strength"]["denominator"]["value"], 1);
    assert_eq!(ing[1]["isActive"], true);
}

#[test]
fn status_from_the_order_status_then_the_order_control() {
    let with = |control: &str, status: &str| {
        request(&RDE.replace(
            "ORC|NW|RX7001^CPOE|||||",
            &format!("ORC|{control}|RX7001^CPOE|||{status}||"),
        ))["status"]
            .clone()
    };
    assert_eq!(with("NW", ""), "active");
    assert_eq!(with("CA", ""), "cancelled");
    assert_eq!(with("DC", ""), "stopped");
    assert_eq!(with("HD", ""), "on-hold");
    assert_eq!(with("NW", "CM"), "completed");
    assert_eq!(with("NW", "ER"), "entered-in-error");
    let r = reason(&RDE.replace("ORC|NW|RX7001^CPOE|||||", "ORC|NW|RX7001^CPOE|||ZZ||"));
    assert!(r.contains("ORC-5"), "{r}");
}

#[test]
fn timing_patterns_ranges_rates_and_as_needed() {
    let r = request(
        &RDE.replace(
            "TQ1|1||BID|0900~2100||10^D|20240310090000+0100||R",
            "TQ1|1||Q6H|||3^D|||PRN||Take for pain",
        )
        .replace("|5||mg^mg^UCUM|TAB", "|5|10|mg^mg^UCUM|TAB"),
    );
    let d = &r["dosageInstruction"][0];
    let repeat = &d["timing"]["repeat"];
    assert_eq!(repeat["frequency"], 1);
    assert_eq!(repeat["period"], 6);
    assert_eq!(repeat["periodUnit"], "h");
    assert_eq!(repeat["boundsDuration"]["value"], 3);
    assert_eq!(repeat["boundsDuration"]["code"], "d");
    assert_eq!(d["asNeededBoolean"], true);
    assert_eq!(d["text"], "Take with water; Take for pain");
    assert_eq!(d["doseAndRate"][0]["doseRange"]["low"]["value"], 5);
    assert_eq!(d["doseAndRate"][0]["doseRange"]["high"]["value"], 10);
    // A rate (RXE-23/24) for an infusion.
    let mut fields: Vec<String> = RDE
        .split('\r')
        .find(|s| s.starts_with("RXE"))
        .unwrap()
        .split('|')
        .map(str::to_string)
        .collect();
    fields.resize(25, String::new());
    fields[23] = "125".into();
    fields[24] = "mL/h^mL/h^UCUM".into();
    let rxe = RDE.split('\r').find(|s| s.starts_with("RXE")).unwrap();
    let r = request(&RDE.replace(rxe, &fields.join("|")));
    let rate = &r["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"];
    assert_eq!(rate["value"], 125);
    assert_eq!(rate["code"], "mL/h");
}

#[test]
fn rejects_name_the_field() {
    let r = reason(&RDE.replace("197361^Amlodipine 5 MG Oral Tablet^RXNORM", ""));
    assert!(r.contains("RXE-2"), "{r}");
    assert!(r.contains("code or a text"), "{r}");
    let r = reason(&RDE.replace("|20|TAB^Tablet^HL70292|2|", "|20|TAB^Tablet^HL70292|two|"));
    assert!(r.contains("RXE-12"), "{r}");
    let r = reason(&RDE.replace("20240310090000+0100||R", "20241310090000+0100||R"));
    assert!(r.contains("TQ1-7"), "{r}");
    let r = reason(&RDE.replace("RDE^O11^RDE_O11", "RDE^O01^RDE_O01"));
    assert!(r.contains("MSH-9"), "{r}");
    let no_drug: String = RDE
        .split('\r')
        .filter(|s| !s.starts_with("RXE") && !s.starts_with("RXO"))
        .map(|s| format!("{s}\r"))
        .collect();
    let r = reason(&no_drug);
    assert!(r.contains("RXE"), "{r}");
}

#[test]
fn maps_a_dispense_under_its_order() {
    let b = run(RDS);
    let d = b.first("MedicationDispense");
    assert_eq!(d["status"], "completed");
    assert_eq!(d["whenHandedOver"], "2024-03-10T10:10:00+01:00");
    assert_eq!(d["quantity"]["value"], 20);
    assert_eq!(d["note"][0]["text"], "Counselled on dizziness");
    assert_eq!(d["subject"]["reference"], b.url_of("Patient"));
    assert_eq!(d["context"]["reference"], b.url_of("Encounter"));
    assert_eq!(
        d["authorizingPrescription"][0]["reference"],
        b.url_of("MedicationRequest")
    );
    assert!(d["performer"][0]["actor"]["reference"].is_string());
    assert_eq!(
        d["dosageInstruction"][0]["route"]["coding"][0]["code"],
        "PO"
    );
    assert_eq!(
        d["medicationReference"]["reference"],
        b.url_of("Medication")
    );
    let r = b.first("MedicationRequest");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["identifier"][1]["value"], "F8801");
    // The same dispense sent again is the same resource.
    let again = run(&RDS.replace("CTRL0601", "CTRL0602"));
    assert_eq!(
        b.url_of("MedicationDispense"),
        again.url_of("MedicationDispense")
    );
    let r = reason(&RDS.replace("|20240310101000+0100|20|", "||20|"));
    assert!(r.contains("RXD-3"), "{r}");
    let no_rxd: String = RDS
        .split('\r')
        .filter(|s| !s.starts_with("RXD"))
        .map(|s| format!("{s}\r"))
        .collect();
    let r = reason(&no_rxd);
    assert!(r.contains("RXD"), "{r}");
}

#[test]
fn maps_an_administration_and_its_observations() {
    let b = run(RAS);
    let a = b.first("MedicationAdministration");
    assert_eq!(a["status"], "completed");
    assert_eq!(a["effectiveDateTime"], "2024-03-10T09:05:00+01:00");
    assert_eq!(a["dosage"]["dose"]["value"], 5);
    assert_eq!(a["dosage"]["route"]["coding"][0]["code"], "PO");
    assert!(a["dosage"].get("doseAndRate").is_none());
    assert_eq!(a["note"][0]["text"], "Given with breakfast");
    assert_eq!(a["request"]["reference"], b.url_of("MedicationRequest"));
    let obs = b.first("Observation");
    assert_eq!(
        obs["partOf"][0]["reference"],
        b.url_of("MedicationAdministration")
    );
    assert_eq!(obs["valueQuantity"]["value"], 142);
    let refused = run(&RAS.replace("||CP|A", "||RE|A").replace(
        "|5678^Nurse^Nora||||||||",
        "|5678^Nurse^Nora||||||||00^Patient refused^NIP002",
    ));
    let a = refused.first("MedicationAdministration");
    assert_eq!(a["status"], "not-done");
    assert_eq!(a["statusReason"][0]["coding"][0]["code"], "00");
    let a = run(&RAS.replace("||CP|A", "||CP|D"))
        .first("MedicationAdministration")
        .clone();
    assert_eq!(a["status"], "entered-in-error");
    let r = reason(&RAS.replace("||CP|A", "||XX|A"));
    assert!(r.contains("RXA-20"), "{r}");
    let r = reason(&RAS.replace("|1|1|20240310090500+0100|", "|1|1||"));
    assert!(r.contains("RXA-3"), "{r}");
}

#[test]
fn the_fhir_converter_corpus_messages_map() {
    for name in ["RDE-O11-01", "RDE-O25-01", "RDS-O13-01"] {
        let path = format!(
            "{}/../../tests/corpus/hl7v2/fhir-converter/{name}.hl7",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let b = run(&text);
        assert!(!b.all("MedicationRequest").is_empty(), "{name}");
        if name.starts_with("RDS") {
            assert!(!b.all("MedicationDispense").is_empty(), "{name}");
        }
    }
}
