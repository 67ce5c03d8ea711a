//! `siu-to-fhir`: HL7 v2 SIU scheduling messages (S12 new, S13
//! rescheduled, S14 modified, S15 cancelled, S16 discontinued, S17
//! deleted, S26 no-show) to a FHIR R4 `transaction` Bundle: an
//! Appointment (SCH, TQ1, AIS, AIG, AIL, AIP) with the Patient (PID), its
//! Practitioners and Locations, the visit (PV1) as an Encounter and the
//! diagnoses (DG1) as Conditions in Appointment.reasonReference. See the crate's README for every field
//! mapped and not.
//!
//! Settings: `default_utc_offset`. Lookup tables (all optional):
//! `assigning_authority`, `gender`, `coding_system`, `appointment_status`.

use weft_sdk::{Error, Message, Output, Plugin, Result};
use weft_v2fhir::resources::{appointment, condition, encounter};

pub use weft_v2fhir::bundle_resources as resources;

/// The SIU types this plugin maps.
pub const SUPPORTED: &[&str] = &[
    "SIU^S12", "SIU^S13", "SIU^S14", "SIU^S15", "SIU^S16", "SIU^S17", "SIU^S26",
];

/// The plugin.
pub struct SiuToFhir;

impl Plugin for SiuToFhir {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        weft_v2fhir::transaction(&msg, MANIFEST.name, SUPPORTED, |ctx, bundle, patient| {
            let sch = ctx.hl7.segment("SCH").ok_or_else(|| {
                Error::reject("no SCH segment: an SIU message needs its schedule")
            })?;
            let visit = encounter::optional(ctx, bundle, patient)?;
            let reasons = condition::map_all(ctx, bundle, patient, visit.as_ref())?;
            let trigger = ctx.header.trigger_event.as_str();
            let url = appointment::map(ctx, bundle, sch, trigger, patient)?;
            for r in &reasons {
                bundle.add_to(&url, "reasonReference", weft_v2fhir::bundle::reference(r));
            }
            Ok(())
        })
    }
}

weft_sdk::export!(SiuToFhir);
weft_sdk::manifest! {
    maps: SUPPORTED,
    optional_tables: &["assigning_authority", "gender", "coding_system", "appointment_status"],
    config: &["default_utc_offset"],
    memory_mib: 32,
    deadline_ms: 100,
}
