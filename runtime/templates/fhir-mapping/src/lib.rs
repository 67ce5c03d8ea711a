//! `{{name}}`: HL7 v2 admissions, registrations and updates (ADT^A01,
//! A04, A08) to a FHIR R4 `transaction` Bundle: the Patient (PID) and the
//! Encounter (PV1), each a conditional PUT keyed on its source identifier
//! with a deterministic fullUrl, so a message sent twice updates instead of
//! duplicating. Built on `weft-v2fhir`: add a resource with its mapper
//! (`weft_v2fhir::resources::condition::map_all` for DG1, say).
//!
//! Settings: `default_utc_offset` (`+01:00`), for HL7 times without one.
//! Lookup tables (optional): `assigning_authority` (PID-3.4 to a URI),
//! `gender`, `patient_class`.

use weft_sdk::{Message, Output, Plugin, Result};
use weft_v2fhir::resources::encounter;

/// The messages this plugin maps; any other is rejected, naming MSH-9.
pub const MAPS: &[&str] = &["ADT^A01", "ADT^A04", "ADT^A08"];

/// The plugin.
pub struct {{Type}};

impl Plugin for {{Type}} {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        // Parses the message, checks MSH-9, maps PID to the Patient (or
        // rejects, naming the field), and returns the Bundle.
        weft_v2fhir::transaction(&msg, MANIFEST.name, MAPS, |ctx, bundle, patient| {
            // The event decides the Encounter's status (A01: in-progress).
            let trigger = ctx.header.trigger_event.as_str();
            if let Some(pv1) = ctx.hl7.segment("PV1") {
                encounter::map(ctx, bundle, pv1, Some(trigger), patient)?;
            }
            Ok(())
        })
    }
}

weft_sdk::export!({{Type}});
weft_sdk::manifest! {
    maps: MAPS,
    optional_tables: &["assigning_authority", "gender", "patient_class"],
    config: &["default_utc_offset"],
    memory_mib: 32,
    deadline_ms: 50,
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_v2fhir::testing::Mapping;

    const SAMPLE: &str = include_str!("../samples/adt-a01.hl7");

    #[test]
    fn maps_the_patient_and_the_encounter() {
        let bundle = Mapping::<{{Type}}>::new()
            .lookup("assigning_authority", "HOSP", "urn:oid:1.2.3.4")
            .bundle(SAMPLE);
        let patient = bundle.first("Patient");
        assert_eq!(patient["identifier"][0]["system"], "urn:oid:1.2.3.4");
        assert_eq!(patient["identifier"][0]["value"], "123456");
        assert_eq!(patient["birthDate"], "1980-02-29");
        let encounter = bundle.first("Encounter");
        assert_eq!(encounter["status"], "in-progress");
        assert_eq!(encounter["subject"]["reference"], bundle.url_of("Patient"));
    }

    #[test]
    fn the_same_message_makes_the_same_bundle() {
        let mapping = Mapping::<{{Type}}>::new();
        assert_eq!(mapping.bundle(SAMPLE), mapping.bundle(SAMPLE));
    }

    #[test]
    fn rejects_what_it_cannot_map_naming_the_field() {
        let mapping = Mapping::<{{Type}}>::new();
        let why = mapping.reject(&SAMPLE.replace("ADT^A01^ADT_A01", "ADT^A03"));
        assert!(why.starts_with("MSH-9 ADT^A03 is not mapped"), "{why}");
        let why = mapping.reject(&SAMPLE.replace("|19800229|", "|19801329|"));
        assert!(why.starts_with("PID-7"), "{why}");
        assert!(!why.contains("19801329"), "the value is patient data: {why}");
    }
}
