//! adt-to-fhir, run natively through weft_v2fhir::testing.

use adt_to_fhir::AdtToFhir;
use weft_sdk::serde_json;
use weft_v2fhir::testing::{Mapped, Mapping};

const LOOKUPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../lookups");

/// The plugin with the shipped lookup tables and one more authority.
fn mapping() -> Mapping<AdtToFhir> {
    Mapping::new()
        .config("default_utc_offset", "+01:00")
        .lookup_file("gender", format!("{LOOKUPS}/gender.csv"))
        .lookup_file(
            "assigning_authority",
            format!("{LOOKUPS}/assigning-authority.csv"),
        )
        .lookup("assigning_authority", "HOSP", "urn:oid:1.2.3.4")
}

const A01: &str = "MSH|^~\\&|EPIC|HOSP|WEFT|EDGE|20240102030405||ADT^A01^ADT_A01|CTRL1|P|2.5.1
EVN|A01|20240102030405
PID|1||123456^^^HOSP^MR~987-65-4321^^^SSA^SS||O'Brien\\T\\Sons^Mary^Ann^Jr^Dr^^L~Smith^Mary^^^^^M||19800229|F|||12 Main St^Apt 4^Springfield^IL^62701^USA^H||^PRN^PH^^1^217^5551234~^NET^Internet^mary@example.org|^WPN^PH^^1^217^5559876^12||M^Married
PV1|1|I|W1^101^A^HOSP||||1234^Welby^Marcus^^^Dr|||MED|||||||||V789^^^HOSP^VN|||||||||||||||||||||||||20240102030000|";

fn bundle(text: &str) -> Mapped {
    mapping().bundle(text)
}

#[test]
fn maps_an_admit() {
    let b = bundle(A01);
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "transaction");
    let p = b.first("Patient");
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

    let e = b.first("Encounter");
    assert_eq!(e["status"], "in-progress");
    assert_eq!(e["class"]["code"], "IMP");
    assert_eq!(e["subject"]["reference"], entry["fullUrl"]);
    assert_eq!(e["period"]["start"], "2024-01-02T03:00:00+01:00");
    assert_eq!(e["location"][0]["location"]["display"], "W1 101 A");
    let loc = b.first("Location");
    assert_eq!(loc["identifier"][0]["system"], "urn:oid:1.2.3.4");
    assert_eq!(loc["identifier"][0]["value"], "W1^101^A");
    assert_eq!(loc["physicalType"]["coding"][0]["code"], "bd");
    assert_eq!(
        e["participant"][0]["individual"]["display"],
        "Dr Marcus Welby"
    );
    let doc = b.first("Practitioner");
    assert_eq!(doc["identifier"][0]["value"], "1234");
    assert_eq!(doc["name"][0]["family"], "Welby");
    assert!(
        b.entries()
            .any(|e| e["request"]["url"] == "Encounter?identifier=urn:oid:1.2.3.4|V789")
    );
}

#[test]
fn status_follows_the_trigger() {
    for (trigger, status) in [
        ("A03", Some("finished")),
        ("A04", Some("planned")),
        ("A08", Some("in-progress")),
        ("A28", None),
        ("A31", None),
    ] {
        let text = A01.replace("ADT^A01^ADT_A01", &format!("ADT^{trigger}"));
        let b = bundle(&text);
        let e = b.all("Encounter").first().copied();
        assert_eq!(
            e.map(|e| e["status"].as_str().unwrap()),
            status,
            "{trigger}"
        );
        assert_eq!(b.all("Patient").len(), 1);
    }
}

#[test]
fn same_message_same_bundle() {
    assert_eq!(bundle(A01), bundle(A01));
}

fn reject_reason(text: &str) -> String {
    mapping().reject(text)
}

#[test]
fn rejects_what_it_cannot_map_faithfully() {
    let r = reject_reason(&A01.replace("19800229", "2023130"));
    assert!(r.starts_with("PID-7 is not a valid HL7 date"), "{r}");
    assert!(!r.contains("2023130"), "the value is patient data: {r}");
    let r = reject_reason(&A01.replace("|19800229|", "|19810229|"));
    assert!(r.contains("day out of range"), "{r}");
    let r = reject_reason(&A01.replace("123456^^^HOSP^MR~987-65-4321^^^SSA^SS", ""));
    assert!(r.starts_with("PID-3"), "{r}");
    let r = reject_reason(&A01.replace("ADT^A01^ADT_A01", "ORU^R01"));
    assert!(
        r.starts_with("MSH-9 ORU^R01 is not mapped by adt-to-fhir (it maps ADT^A01,"),
        "{r}"
    );
    let r = reject_reason(&A01.replace("ADT^A01^ADT_A01", "ADT^A23"));
    assert!(
        r.starts_with("MSH-9 ADT^A23 is not mapped by adt-to-fhir"),
        "{r}"
    );
    let r = reject_reason(&A01.replace("PV1|1|I|", "PV1|1|Z|"));
    assert!(r.starts_with("PV1-2 (patient class)"), "{r}");
    let r = reject_reason(&A01.replace("|20240102030000", "|20241302030000"));
    assert!(r.starts_with("PV1-44"), "{r}");
    let r = reject_reason(&format!("{A01}\rAL1|1|DA||SV"));
    assert!(r.starts_with("AL1-3 (allergen) is empty"), "{r}");
    let r = reject_reason(&A01.replace("ADT^A01^ADT_A01", "ADT^A40"));
    assert!(r.contains("no MRG segment"), "{r}");
}

const EXTRAS: &str = "\rNK1|1|Doe^Jane|SPO^Spouse^HL70063|1 Elm St^^Springfield^IL^62701|^PRN^PH^^1^217^5550000\r\
AL1|1|DA^Drug allergy^HL70127|70618^Penicillin^RXNORM|SV|Hives~Rash|20200101\r\
DG1|1||J18.9^Pneumonia^I10C||20240102|A\r\
IN1|1|PLAN1^Gold plan|BCBS^^^HOSP|Blue Cross||||||||20240101|20241231||HMO||SEL|||||||||||||||||||POL123";

#[test]
fn maps_next_of_kin_allergies_diagnoses_and_insurance() {
    let b = bundle(&format!("{A01}{EXTRAS}"));
    let patient_url = b["entry"][0]["fullUrl"].clone();
    let rp = b.first("RelatedPerson");
    assert_eq!(rp["patient"]["reference"], patient_url);
    assert_eq!(rp["relationship"][0]["coding"][0]["code"], "SPO");
    assert_eq!(rp["name"][0]["family"], "Doe");
    let al = b.first("AllergyIntolerance");
    assert_eq!(
        al["code"]["coding"][0]["system"],
        "http://www.nlm.nih.gov/research/umls/rxnorm"
    );
    assert_eq!(al["category"][0], "medication");
    assert_eq!(al["criticality"], "high");
    assert_eq!(al["reaction"][0]["manifestation"][1]["text"], "Rash");
    assert_eq!(al["onsetDateTime"], "2020-01-01");
    let c = b.first("Condition");
    assert_eq!(
        c["code"]["coding"][0]["system"],
        "http://hl7.org/fhir/sid/icd-10-cm"
    );
    assert_eq!(c["encounter"]["reference"], b.url_of("Encounter"));
    let cov = b.first("Coverage");
    assert_eq!(cov["status"], "active");
    assert_eq!(cov["beneficiary"]["reference"], patient_url);
    assert_eq!(cov["subscriberId"], "POL123");
    assert_eq!(cov["relationship"]["coding"][0]["code"], "self");
    assert_eq!(cov["period"]["end"], "2024-12-31");
    let payor = b.first("Organization");
    assert_eq!(payor["name"], "Blue Cross");
    // Derived identities: the same message twice, the same Bundle.
    assert_eq!(b, bundle(&format!("{A01}{EXTRAS}")));
    for e in b.entries() {
        let url = e["request"]["url"].as_str().unwrap();
        assert!(url.contains("?identifier="), "{url}");
        assert_eq!(e["request"]["method"], "PUT");
    }
}

#[test]
fn primary_care_provider_from_pd1() {
    let b = bundle(&A01.replace("\nPV1", "\nPD1|||North Clinic|5678^Gp^Gina^^^Dr\nPV1"));
    let p = b.first("Patient");
    assert_eq!(p["generalPractitioner"][0]["display"], "Dr Gina Gp");
    let gp_url = p["generalPractitioner"][0]["reference"].as_str().unwrap();
    assert!(
        b.entries()
            .any(|e| e["fullUrl"] == gp_url && e["resource"]["identifier"][0]["value"] == "5678")
    );
    assert_eq!(b["entry"][0]["resource"]["resourceType"], "Patient");
}

#[test]
fn a40_links_the_merged_patients() {
    let text = A01
        .replace("ADT^A01^ADT_A01", "ADT^A40^ADT_A39")
        .replace("\nPV1", "\nMRG|654321^^^HOSP^MR\nPV1");
    let b = bundle(&text);
    let survivor = b.first("Patient");
    assert_eq!(survivor["link"][0]["type"], "replaces");
    assert_eq!(
        survivor["link"][0]["other"]["identifier"]["value"],
        "654321"
    );
    let patch = b
        .entries()
        .find(|e| e["request"]["method"] == "PATCH")
        .unwrap();
    assert_eq!(
        patch["request"]["url"],
        "Patient?identifier=urn:oid:1.2.3.4|654321"
    );
    assert_eq!(patch["resource"]["resourceType"], "Parameters");
    assert_eq!(
        patch["resource"]["parameter"][0]["part"][3]["part"][0]["valueReference"]["reference"],
        b["entry"][0]["fullUrl"]
    );
    assert_eq!(b.all("Encounter").len(), 0);
    let r = reject_reason(&text.replace("654321", "123456"));
    assert!(r.starts_with("MRG-1 names the same patient"), "{r}");
}

#[test]
fn unknown_gender_is_left_out_with_a_warning() {
    let m = mapping();
    let b = m.bundle(&A01.replace("|F|||", "|Q|||"));
    assert!(b.first("Patient").get("gender").is_none());
    let warn = m
        .host()
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
fn a29_marks_the_patient_inactive_and_maps_nothing_else() {
    let b = bundle(&A01.replace("ADT^A01^ADT_A01", "ADT^A29^ADT_A21").replace(
        "\nPV1|",
        "\nOBX|1|NM|8867-4^Heart rate^LN||60|/min|||||F\nPV1|",
    ));
    assert_eq!(b.kinds(), vec!["Patient"]);
    assert_eq!(b.first("Patient")["active"], false);
}

#[test]
fn a41_and_a45_update_the_patient_and_its_visit() {
    for (event, structure) in [("A41", "ADT_A39"), ("A45", "ADT_A45")] {
        let text = A01
            .replace("ADT^A01^ADT_A01", &format!("ADT^{event}^{structure}"))
            .replace("\nPV1|", "\nMRG|OLD1^^^HOSP^MR||ACC9||V788^^^HOSP^VN\nPV1|");
        let b = bundle(&text);
        let e = b.first("Encounter");
        assert_eq!(e["subject"]["reference"], b.url_of("Patient"), "{event}");
        assert_eq!(e["identifier"][0]["value"], "V789", "{event}");
        assert!(b.first("Patient").get("active").is_none(), "{event}");
    }
}

#[test]
fn a60_adverse_reactions_update_the_allergies() {
    let iam = "IAM|1|FA^Food allergy^HL70127|12345^Peanut^L|SV^Severe^HL70128|Hives~Wheeze|A^Add^HL70206|AL-77^HOSP||AL^Allergy^HL70436||20230101||20240101120000||||C";
    let text = A01
        .replace("ADT^A01^ADT_A01", "ADT^A60^ADT_A60")
        .replace("\nPV1|", &format!("\n{iam}\nPV1|"));
    let b = bundle(&text);
    let a = b.first("AllergyIntolerance");
    assert_eq!(a["code"]["coding"][0]["code"], "12345");
    assert_eq!(a["identifier"][0]["value"], "AL-77");
    assert_eq!(a["type"], "allergy");
    assert_eq!(a["category"][0], "food");
    assert_eq!(a["criticality"], "high");
    assert_eq!(a["onsetDateTime"], "2023-01-01");
    assert_eq!(a["recordedDate"], "2024-01-01T12:00:00+01:00");
    assert_eq!(a["verificationStatus"]["coding"][0]["code"], "confirmed");
    assert_eq!(a["reaction"][0]["manifestation"][1]["text"], "Wheeze");
    // The same allergen as an AL1 is the same record.
    let al1 = A01.replace(
        "\nPV1|",
        "\nAL1|1|FA^Food allergy^HL70127|12345^Peanut^L|SV\nPV1|",
    );
    assert_eq!(
        bundle(&al1).url_of("AllergyIntolerance"),
        b.url_of("AllergyIntolerance")
    );
    // Deleted: entered in error, and no clinical status (FHIR forbids one).
    let deleted = bundle(&text.replace("|A^Add^HL70206|", "|D^Delete^HL70206|"));
    let a = deleted.first("AllergyIntolerance");
    assert_eq!(
        a["verificationStatus"]["coding"][0]["code"],
        "entered-in-error"
    );
    assert!(a.get("clinicalStatus").is_none());
    let inactive = bundle(&text.replace("||||C", "||||I"));
    assert_eq!(
        inactive.first("AllergyIntolerance")["clinicalStatus"]["coding"][0]["code"],
        "inactive"
    );
}

#[test]
fn race_and_ethnicity_are_us_core_extensions() {
    let text = A01;
    // PID-10 (race) and PID-22 (ethnic group) on the sample's PID.
    let mut pid: Vec<String> = text
        .split('\n')
        .find(|l| l.starts_with("PID"))
        .unwrap()
        .split('|')
        .map(str::to_string)
        .collect();
    pid.resize(23, String::new());
    pid[10] =
        "2106-3^White^CDCREC~2028-9^Asian^HL70005~2029-7^Asian Indian^CDCREC~ZZ^Martian".into();
    pid[22] = "N^Not Hispanic^HL70189".into();
    let old = text.split('\n').find(|l| l.starts_with("PID")).unwrap();
    let b = bundle(&text.replace(old, &pid.join("|")));
    let p = b.first("Patient");
    let ext = p["extension"].as_array().expect("extensions");
    let race = ext
        .iter()
        .find(|e| e["url"] == "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race")
        .expect("race");
    let parts: Vec<(&str, &str)> = race["extension"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["url"].as_str().unwrap(),
                e["valueCoding"]["code"]
                    .as_str()
                    .or(e["valueString"].as_str())
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        parts,
        [
            ("ombCategory", "2106-3"),
            ("ombCategory", "2028-9"),
            ("detailed", "2029-7"),
            ("text", "White, Asian, Asian Indian, Martian"),
        ]
    );
    assert_eq!(
        race["extension"][0]["valueCoding"]["system"],
        "urn:oid:2.16.840.1.113883.6.238"
    );
    let eth = ext
        .iter()
        .find(|e| e["url"] == "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity")
        .expect("ethnicity");
    assert_eq!(eth["extension"][0]["url"], "ombCategory");
    assert_eq!(eth["extension"][0]["valueCoding"]["code"], "2186-5");
    assert_eq!(eth["extension"][1]["valueString"], "Not Hispanic");
    // A code that is not CDC's ("ZZ") is kept in the text only. No race,
    // no extension.
    assert!(bundle(A01).first("Patient").get("extension").is_none());
}

/// The codes of the `ombCategory` parts of `url`'s extension on the
/// Patient `b` maps.
fn omb_codes(b: &Mapped, url: &str) -> Vec<String> {
    let p = b.first("Patient");
    let ext = p["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == url)
        .unwrap();
    ext["extension"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["url"] == "ombCategory")
        .map(|e| e["valueCoding"]["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn us_core_caps_hold_against_a_flood_of_categories() {
    let old = A01.split('\n').find(|l| l.starts_with("PID")).unwrap();
    let mut pid: Vec<String> = old.split('|').map(str::to_string).collect();
    pid.resize(23, String::new());
    // Every OMB race category, the null flavours, each sent twice, and
    // 200 detailed codes: at most 6 ombCategory (US Core's max), each once.
    let mut race: Vec<String> = Vec::new();
    for _ in 0..2 {
        for c in [
            "1002-5", "2028-9", "2054-5", "2076-8", "2106-3", "UNK", "ASKU",
        ] {
            race.push(format!("{c}^x^CDCREC"));
        }
    }
    race.extend((0..200).map(|i| format!("{:04}-{}^d^CDCREC", 3000 + i, i % 10)));
    pid[10] = race.join("~");
    // Ethnicity: one OMB category (US Core's max 1), the second left out.
    pid[22] = "2135-2^Hispanic^CDCREC~2186-5^Not Hispanic^CDCREC".into();
    let b = bundle(&A01.replace(old, &pid.join("|")));
    let omb = omb_codes(
        &b,
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
    );
    assert_eq!(omb.len(), 6, "{omb:?}");
    let mut unique = omb.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "no category twice: {omb:?}");
    let eth = omb_codes(
        &b,
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
    );
    assert_eq!(eth, ["2135-2"]);
}

#[test]
fn a47_moves_the_prior_identifier_to_the_new_one() {
    let a47 = "MSH|^~\\&|EPIC|HOSP|WEFT|EDGE|20240102030405||ADT^A47^ADT_A30|CTRL47|P|2.5.1
EVN|A47|20240102030405
PID|1||777^^^HOSP^MR||Doe^Jane||19700101|F
MRG|123456^^^HOSP^MR";
    let b = bundle(a47);
    assert_eq!(b.kinds(), ["Patient"]);
    let entry = b.entries().next().unwrap();
    assert_eq!(
        entry["request"]["url"], "Patient?identifier=urn:oid:1.2.3.4|123456",
        "matched on the prior identifier"
    );
    let ids = entry["resource"]["identifier"].as_array().unwrap();
    assert_eq!(ids[0]["value"], "777");
    assert_eq!(ids[1]["value"], "123456");
    assert_eq!(ids[1]["use"], "old");
    let r = mapping().reject(&a47.replace("MRG|123456", "MRG|777"));
    assert!(
        r.starts_with("MRG-1 (prior patient identifier list) names"),
        "{r}"
    );
    let r = mapping().reject(&a47.replace("\nMRG|123456^^^HOSP^MR", ""));
    assert!(r.contains("needs a PID") && r.contains("MRG-1"), "{r}");
}
