//! The plugin from sdk/README.md, compiled and tested as written there.

// The example is as the guide shows it, docs and all.
#![allow(missing_docs)]

use weft_sdk::{Message, Output, Plugin, Result, config, log, lookup};

pub struct NorthAdt;

impl Plugin for NorthAdt {
    fn transform(msg: Message) -> Result<Vec<Output>> {
        let mut hl7 = msg.hl7()?;
        let mrn = hl7.get("PID-3.1")?.unwrap_or_default();
        if mrn.is_empty() {
            weft_sdk::reject!("PID-3.1 (MRN) is empty");
        }
        let prefix = config("mrn_prefix").unwrap_or_default();
        hl7.set("PID-3.1", &format!("{prefix}{mrn}"))?;
        if let Some(code) = hl7.get("PV1-2")? {
            match lookup("patient_class", &code) {
                Some(mapped) => hl7.set("PV1-2", &mapped)?,
                None => log::warn!("PV1-2 has no entry in patient_class"),
            }
        }
        Ok(vec![Output::hl7(&hl7)])
    }
}

weft_sdk::export!(NorthAdt);
weft_sdk::manifest! {
    maps: &["ADT^A01..A40"],
    optional_tables: &["patient_class"],
    config: &["mrn_prefix"],
    memory_mib: 16,
    deadline_ms: 50,
}

#[test]
fn the_manifest_names_the_crate_and_what_it_reads() {
    assert_eq!(MANIFEST.name, "weft-sdk");
    assert_eq!(MANIFEST.contract, weft_sdk::WIT_VERSION);
    assert_eq!(MANIFEST.config, ["mrn_prefix"]);
    let json: weft_sdk::serde_json::Value =
        weft_sdk::serde_json::from_slice(&MANIFEST.encode::<{ MANIFEST.encoded_len() }>()).unwrap();
    assert_eq!(json["optional_tables"][0], "patient_class");
}

use weft_sdk::testing::TestHost;

#[test]
fn prefixes_the_mrn() {
    let host = TestHost::new()
        .config("mrn_prefix", "N-")
        .lookup_csv("patient_class", "I,IMP\nO,AMB\n");
    let msg = Message::from_hl7(
        "MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5
PID|1||42^^^H^MR
PV1|1|I",
    );
    let out = host.run::<NorthAdt>(msg).unwrap();
    let m = out[0].message().hl7().unwrap();
    assert_eq!(m.get("PID-3.1").unwrap().as_deref(), Some("N-42"));
    assert_eq!(m.get("PV1-2").unwrap().as_deref(), Some("IMP"));
}

#[test]
fn rejects_a_missing_mrn() {
    let msg = Message::from_hl7("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\nPID|1");
    let err = TestHost::new().run::<NorthAdt>(msg).unwrap_err();
    assert_eq!(err.kind(), weft_sdk::ErrorKind::Reject);
}

#[test]
fn unknown_class_is_kept_and_logged() {
    let host = TestHost::new();
    let msg = Message::from_hl7("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\nPID|1||42\nPV1|1|Q");
    let out = host.run::<NorthAdt>(msg).unwrap();
    assert_eq!(
        out[0]
            .message()
            .hl7()
            .unwrap()
            .get("PV1-2")
            .unwrap()
            .as_deref(),
        Some("Q")
    );
    assert_eq!(host.logs()[0].0, weft_sdk::log::Level::Warn);
}

#[test]
fn a_panic_is_a_failure() {
    struct Panics;
    impl Plugin for Panics {
        fn transform(_: Message) -> Result<Vec<Output>> {
            panic!("boom")
        }
    }
    let err = TestHost::new()
        .run::<Panics>(Message::new("text/plain", "x"))
        .unwrap_err();
    assert_eq!(err.kind(), weft_sdk::ErrorKind::Failed);
}
