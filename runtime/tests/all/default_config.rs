//! The shipped `weft.toml`, run by the real binary: each message type of
//! the samples (ADT, ORU, OUL, ORM, REF, SIU, VXU, RDE, RDS, RAS, MDM, BAR, DFT) reaches its mapping over MLLP and
//! comes out as a FHIR transaction Bundle with the resource it is about;
//! each shipped plugin it loads is signed by the build's project key, which
//! its trust list names.

use std::time::{Duration, Instant};

use crate::common::run::{Client, Weft, shipped_config};

#[test]
fn each_message_type_reaches_its_mapping() {
    for p in weft_test_artifacts::SHIPPED {
        let signed = weft_test_artifacts::signed(p).unwrap();
        assert!(signed.is_file(), "{}", signed.display());
    }
    let weft = Weft::start(|_| shipped_config());
    let log = weft.log_text();
    for p in weft_test_artifacts::SHIPPED {
        assert!(
            log.lines().any(|l| l.contains("plugin loaded")
                && l.contains(&format!("plugin={p}"))
                && l.contains("provenance=signed by weft-project (key ")),
            "{p} not loaded as signed by weft-project:\n{log}"
        );
    }
    let addr = weft.addrs["mllp"];
    let mut client = Client::connect(addr);
    let cases = [
        ("adt-a01.hl7", "CTRL0001", "Encounter"),
        ("oru-r01.hl7", "CTRL0101", "DiagnosticReport"),
        ("oul-r22.hl7", "CTRL1001", "Specimen"),
        ("orm-o01.hl7", "CTRL0201", "ServiceRequest"),
        ("ref-i12.hl7", "CTRL1101", "ServiceRequest"),
        ("siu-s12.hl7", "CTRL0301", "Appointment"),
        ("vxu-v04.hl7", "CTRL0401", "Immunization"),
        ("rde-o11.hl7", "CTRL0501", "MedicationRequest"),
        ("rds-o13.hl7", "CTRL0601", "MedicationDispense"),
        ("ras-o17.hl7", "CTRL0701", "MedicationAdministration"),
        ("mdm-t02.hl7", "CTRL0801", "DocumentReference"),
        ("bar-p01.hl7", "CTRL0902", "Account"),
        ("dft-p03.hl7", "CTRL0901", "ChargeItem"),
    ];
    for (file, control, _) in cases {
        let body = std::fs::read(crate::common::repo().join("samples").join(file)).unwrap();
        let ack = client.exchange(&body);
        assert_eq!(ack.code, "AA", "{file}: {}", ack.raw);
        assert_eq!(ack.control_id, control);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (file, control, kind) in cases {
        let found = loop {
            let hit = weft.out_files().into_iter().find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(&format!("-{control}-")))
            });
            if let Some(p) = hit {
                break p;
            }
            assert!(Instant::now() < deadline, "{file}: no output under out/");
            std::thread::sleep(Duration::from_millis(50));
        };
        let bundle: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&found).unwrap()).unwrap();
        assert_eq!(bundle["type"], "transaction", "{file}");
        assert!(
            bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["resource"]["resourceType"] == kind),
            "{file}: no {kind} in {}",
            found.display()
        );
    }
}
