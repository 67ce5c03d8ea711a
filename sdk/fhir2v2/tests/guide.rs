//! The weft-fhir2v2 example of sdk/README.md, compiled and tested as written.

// The example is as the guide shows it, docs and all.
#![allow(missing_docs)]

use weft_fhir2v2::write::SegmentBuilder;
use weft_fhir2v2::{Resources, Settings, input, orders};
use weft_sdk::hl7::Delimiters;
use weft_sdk::{Message, Output, Plugin, Result};

pub struct LabOrders;

impl Plugin for LabOrders {
    fn transform(msg: Message) -> Result<Vec<Output>> {
        let settings = Settings::read()?; // MSH-3..6, OML^O21 or ORM^O01
        let root = input::parse(&msg)?; // FHIR JSON, or a reject
        let res = Resources::new(&root)?; // references resolved inside it
        let mut out = Vec::new();
        for made in orders(&res, msg.id(), &settings)? {
            // One OML^O21 per patient; add the site's own Z-segment.
            let mut zls = SegmentBuilder::new("ZLS");
            zls.set_text(1, "EDGE-LAB");
            let text = format!("{}{}\r", made.text, zls.encode(&Delimiters::default()));
            out.push(Output::bytes("application/hl7-v2", text).to("lis"));
        }
        Ok(out)
    }
}

weft_sdk::export!(LabOrders);

use weft_sdk::testing::TestHost;

#[test]
fn the_guide_example_sends_an_oml_with_its_z_segment() {
    let sr = r#"{"resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "identifier": [{"system": "urn:weft:assigning-authority:EDGE", "value": "O-1"}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"identifier": {"system": "urn:oid:1.2.3", "value": "42"}}}"#;
    let out = TestHost::new()
        .run::<LabOrders>(Message::new(
            "application/fhir+json",
            sr.as_bytes().to_vec(),
        ))
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].destination(), Some("lis"));
    let text = std::str::from_utf8(out[0].message().body()).unwrap();
    let lines: Vec<&str> = text.split('\r').collect();
    assert!(lines[0].contains("|OML^O21^OML_O21|"), "{text:?}");
    assert_eq!(lines[1], "PID|1||42^^^&1.2.3&ISO");
    assert_eq!(lines[2], "ORC|NW|O-1^EDGE");
    assert_eq!(lines[3], "OBR|1|O-1^EDGE||2345-7^^LN");
    assert_eq!(lines[4], "ZLS|EDGE-LAB");
}
