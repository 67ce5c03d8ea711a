//! siu-to-fhir, run natively through weft_v2fhir::testing.

use siu_to_fhir::SiuToFhir;
use weft_sdk::serde_json::Value;
use weft_v2fhir::testing::{Mapped, Mapping};

const SIU: &str = include_str!("../../../samples/siu-s12.hl7");

fn run(text: &str) -> Mapped {
    Mapping::<SiuToFhir>::new().bundle(text)
}

fn reason(text: &str) -> String {
    Mapping::<SiuToFhir>::new().reject(text)
}

fn appointment(text: &str) -> Value {
    run(text).first("Appointment").clone()
}

#[test]
fn maps_a_booking() {
    let b = run(SIU);
    let a = b.first("Appointment");
    assert_eq!(a["status"], "booked");
    assert_eq!(a["start"], "2024-01-10T10:00:00+01:00");
    assert_eq!(a["end"], "2024-01-10T10:30:00+01:00");
    assert_eq!(a["minutesDuration"], 30);
    assert_eq!(a["identifier"][0]["value"], "APT200");
    assert_eq!(a["appointmentType"]["coding"][0]["code"], "FOLLOWUP");
    let parts = a["participant"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0]["status"], "accepted");
    assert_eq!(parts[1]["actor"]["display"], "Dr Marcus Welby");
    assert!(!b.all("Practitioner").is_empty());
    assert_eq!(b.first("Location")["name"], "CLINIC 2");
}

#[test]
fn status_follows_the_event() {
    for (trigger, status) in [
        ("S13", "booked"),
        ("S14", "booked"),
        ("S15", "cancelled"),
        ("S16", "cancelled"),
        ("S17", "entered-in-error"),
        ("S26", "noshow"),
    ] {
        let a = appointment(&SIU.replace("SIU^S12^SIU_S12", &format!("SIU^{trigger}")));
        assert_eq!(a["status"], status, "{trigger}");
    }
}

#[test]
fn end_from_start_and_duration() {
    let text = SIU
        .replace("|^^^20240110100000+0100^20240110103000+0100", "|")
        .replace(
            "RGS|1",
            "RGS|1\rAIS|1||COLONOSCOPY^Colonoscopy^L|20241231233000+0100|||45|min",
        );
    let a = appointment(&text);
    assert_eq!(a["start"], "2024-12-31T23:30:00+01:00");
    assert_eq!(a["end"], "2025-01-01T00:00:00+01:00");
    assert_eq!(a["serviceType"][0]["coding"][0]["code"], "COLONOSCOPY");
}

#[test]
fn rejects_what_it_cannot_map() {
    let r = reason(&SIU.replace("SCH|APT100^EDGE|APT200^SCHED|", "SCH|||"));
    assert!(
        r.starts_with("SCH-1 (placer appointment id) and SCH-2"),
        "{r}"
    );
    let r = reason(&SIU.replace("|^^^20240110100000+0100^20240110103000+0100", "|"));
    assert!(r.starts_with("no appointment start and end"), "{r}");
    let r = reason(&SIU.replace("20240110100000+0100^", "20241310100000+0100^"));
    assert!(
        r.starts_with("SCH-11.4 is not a valid HL7 date/time"),
        "{r}"
    );
    let r = reason(&SIU.replace("SIU^S12^SIU_S12", "SIU^S18"));
    assert!(
        r.starts_with("MSH-9 SIU^S18 is not mapped by siu-to-fhir"),
        "{r}"
    );
    // A cancellation without times is still a cancellation.
    let a = appointment(
        &SIU.replace("SIU^S12^SIU_S12", "SIU^S15")
            .replace("|^^^20240110100000+0100^20240110103000+0100", "|"),
    );
    assert_eq!(a["status"], "cancelled");
    assert!(a.get("start").is_none());
}
