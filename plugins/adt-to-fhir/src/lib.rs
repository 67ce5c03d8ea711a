//! `adt-to-fhir`: HL7 v2 ADT messages to a FHIR R4 `transaction` Bundle.
//!
//! PID to Patient; PV1/PV2 to Encounter (status and class by trigger
//! event), with Location (PV1-3, PV1-6) and Practitioner (PV1-7/8/9/17)
//! resources; NK1 to RelatedPerson; IN1 to Coverage; AL1 to
//! AllergyIntolerance (and IAM, A60); DG1 to Condition; PR1 to Procedure; OBX to
//! Observation; A40 (merge) to Patient links; A29 (delete person
//! information) to the Patient marked inactive; A41 and A45 (account and
//! visit moves) as updates of the Patient and its Encounter. Every entry is a conditional request keyed on source
//! identifiers, with a deterministic `urn:uuid:` fullUrl, so a re-sent
//! message updates rather than duplicates. The crate's README lists every
//! field mapped and every one not.
//!
//! Settings: `default_utc_offset` (e.g. `+01:00`), used for HL7 times that
//! carry no offset; without it such times are reduced to their date.
//! Lookup tables (all optional): `assigning_authority`, `gender`,
//! `patient_class`, `coding_system`, `allergen_type`, `allergy_severity`,
//! `observation_status`, `abnormal_flag`.

use weft_sdk::{Error, Message, Output, Plugin, Result, serde_json};
use weft_v2fhir::resources::observation::{self, Around};
use weft_v2fhir::resources::{
    allergy, condition, coverage, encounter, patient, procedure, related_person,
};
use weft_v2fhir::{Bundle, Context};

pub use weft_v2fhir::bundle_resources as resources;

/// The ADT events this plugin maps.
pub const SUPPORTED: &[&str] = &[
    "ADT^A01", "ADT^A02", "ADT^A03", "ADT^A04", "ADT^A05", "ADT^A06", "ADT^A07", "ADT^A08",
    "ADT^A09", "ADT^A10", "ADT^A11", "ADT^A12", "ADT^A13", "ADT^A14", "ADT^A15", "ADT^A16",
    "ADT^A25", "ADT^A26", "ADT^A27", "ADT^A28", "ADT^A29", "ADT^A31", "ADT^A32", "ADT^A33",
    "ADT^A40", "ADT^A41", "ADT^A45", "ADT^A47", "ADT^A60",
];

/// The plugin.
pub struct AdtToFhir;

impl Plugin for AdtToFhir {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        let patient_of = |ctx: &Context<'_>, bundle: &mut Bundle| {
            if ctx.header.trigger_event != "A47" {
                return patient::required(ctx, bundle);
            }
            let (Some(pid), Some(mrg)) = (ctx.hl7.segment("PID"), ctx.hl7.segment("MRG")) else {
                return Err(Error::reject(
                    "ADT^A47 needs a PID (the new identifiers) and an MRG (MRG-1, the prior one)",
                ));
            };
            patient::change_identifier(ctx, bundle, pid, mrg)
        };
        weft_v2fhir::transaction_with(
            &msg,
            MANIFEST.name,
            SUPPORTED,
            patient_of,
            |ctx, bundle, patient| {
                let trigger = ctx.header.trigger_event.as_str();
                if trigger == "A47" {
                    // The identifiers changed; nothing else is the message's.
                    return Ok(());
                }
                if trigger == "A40" {
                    let mut merged = 0;
                    for mrg in ctx.hl7.segments_named("MRG") {
                        patient::merge(ctx, bundle, mrg, patient)?;
                        merged += 1;
                    }
                    if merged == 0 {
                        return Err(Error::reject(
                            "ADT^A40 has no MRG segment: the patient to merge is not named",
                        ));
                    }
                    return Ok(());
                }
                if trigger == "A29" {
                    // Person information deleted: the record is kept (other
                    // resources may point at it) and marked no longer in use;
                    // what else the message carries is not the patient's now.
                    bundle.set(&patient.url, "active", serde_json::Value::Bool(false));
                    return Ok(());
                }
                let encounter = match ctx.hl7.segment("PV1") {
                    Some(pv1) => encounter::map(ctx, bundle, pv1, Some(trigger), patient)?,
                    None => None,
                };
                let around = Around::message(ctx, patient, encounter.as_ref());
                for (i, obx) in ctx.hl7.segments_named("OBX").enumerate() {
                    observation::map(ctx, bundle, obx, i, &around)?;
                }
                related_person::map_all(ctx, bundle, patient)?;
                allergy::map_all(ctx, bundle, patient)?;
                let diagnoses = condition::map_all(ctx, bundle, patient, encounter.as_ref())?;
                if let Some(e) = &encounter {
                    for d in diagnoses {
                        let reference = serde_json::json!({"condition": {"reference": d}});
                        bundle.add_to(&e.url, "diagnosis", reference);
                    }
                }
                let segments = ctx.hl7.segments();
                procedure::map_all(ctx, bundle, segments, patient, encounter.as_ref())?;
                coverage::map_all(ctx, bundle, patient)?;
                Ok(())
            },
        )
    }
}

weft_sdk::export!(AdtToFhir);
weft_sdk::manifest! {
    maps: SUPPORTED,
    optional_tables: &["assigning_authority", "gender", "patient_class", "coding_system", "allergen_type", "allergy_severity", "observation_status", "abnormal_flag"],
    config: &["default_utc_offset"],
    memory_mib: 32,
    deadline_ms: 100,
}
