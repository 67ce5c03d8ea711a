//! The weft-v2fhir example of sdk/README.md, compiled and tested as written.

// The example is as the guide shows it, docs and all.
#![allow(missing_docs)]

use weft_sdk::{Message, Output, Plugin, Result};
use weft_v2fhir::resources::{condition, patient};
use weft_v2fhir::{Bundle, Context};

pub struct Diagnoses;

impl Plugin for Diagnoses {
    fn transform(msg: Message) -> Result<Vec<Output>> {
        let hl7 = msg.hl7()?;
        let ctx = Context::new(&hl7)?;
        ctx.require_type("diagnoses", &["ADT^A01", "ADT^A08"])?;
        let mut bundle = Bundle::new();
        let patient = patient::required(&ctx, &mut bundle)?;
        condition::map_all(&ctx, &mut bundle, &patient, None)?;
        Ok(vec![bundle.into_output()])
    }
}

weft_sdk::export!(Diagnoses);

use weft_sdk::testing::TestHost;
use weft_v2fhir::bundle_resources;

const A01: &str = "MSH|^~\\&|EHR|NORTH|WEFT|EDGE|20240102030405||ADT^A01|C1|P|2.5.1\r\
PID|1||42^^^NORTH^MR||Doe^Jane||19700101|F\r\
DG1|1||J18.9^Pneumonia^I10C\r\
DG1|2||E11.9^Type 2 diabetes^I10C";

#[test]
fn the_guide_example_maps_diagnoses() {
    let out = TestHost::new()
        .run::<Diagnoses>(Message::from_hl7(A01))
        .unwrap();
    let b = out[0].message().json().unwrap();
    assert_eq!(b["type"], "transaction");
    let p = bundle_resources(&b, "Patient").next().unwrap();
    assert_eq!(
        p["identifier"][0]["system"],
        "urn:weft:assigning-authority:NORTH"
    );
    let codes: Vec<&str> = bundle_resources(&b, "Condition")
        .map(|c| c["code"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["J18.9", "E11.9"]);
    let e = TestHost::new()
        .run::<Diagnoses>(Message::from_hl7(&A01.replace("ADT^A01", "ADT^A03")))
        .unwrap_err();
    assert!(
        e.reason()
            .starts_with("MSH-9 ADT^A03 is not mapped by diagnoses")
    );
    let e = TestHost::new()
        .run::<Diagnoses>(Message::from_hl7(&A01.replace("42^^^NORTH^MR", "")))
        .unwrap_err();
    assert!(e.reason().starts_with("PID-3"), "{e}");
}

/// The guide's `Mapping` example, with the repository's lookup table.
#[test]
fn the_guide_mapping_test_runs() {
    use weft_v2fhir::testing::Mapping;
    const A08: &str = "MSH|^~\\&|EHR|NORTH|WEFT|EDGE|20240102030405||ADT^A08|C1|P|2.5.1\r\
PID|1||42^^^EDGE^MR||Doe^Jane||19700101|F\r\
DG1|1||J18.9^Pneumonia^I10C";
    let mapping = Mapping::<Diagnoses>::new().lookup_file(
        "assigning_authority",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../lookups/assigning-authority.csv"
        ),
    );
    let bundle = mapping.bundle(A08);
    assert_eq!(
        bundle.first("Condition")["code"]["coding"][0]["code"],
        "J18.9"
    );
    assert_eq!(
        bundle.first("Condition")["subject"]["reference"],
        bundle.url_of("Patient")
    );
    assert_eq!(
        bundle.first("Patient")["identifier"][0]["system"],
        "urn:oid:2.16.840.1.113883.3.9999.1"
    );
    assert!(
        mapping
            .reject(&A08.replace("ADT^A08", "ADT^A03"))
            .starts_with("MSH-9")
    );
}
