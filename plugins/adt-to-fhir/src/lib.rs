//! `adt-to-fhir`: HL7 v2 ADT messages to a FHIR R4 `transaction` Bundle.
//!
//! PID to Patient; PV1/PV2 to Encounter (status and class by trigger
//! event), with Location (PV1-3, PV1-6) and Practitioner (PV1-7/8/9/17)
//! resources; NK1 to RelatedPerson; IN1 to Coverage; AL1 to
//! AllergyIntolerance; DG1 to Condition; OBX to Observation; A40 (merge)
//! to Patient links.
//! Every entry is a conditional request keyed on source identifiers, with
//! a deterministic `urn:uuid:` fullUrl, so a re-sent message updates
//! rather than duplicates. The crate's README lists every field mapped and
//! every one not.
//!
//! Settings: `default_utc_offset` (e.g. `+01:00`), used for HL7 times that
//! carry no offset; without it such times are reduced to their date.
//! Lookup tables (all optional): `assigning_authority`, `gender`,
//! `patient_class`, `coding_system`, `allergen_type`, `allergy_severity`.

use weft_sdk::{Error, Message, Output, Plugin, Result, serde_json};
use weft_v2fhir::resources::observation::{self, Around};
use weft_v2fhir::resources::{allergy, condition, coverage, encounter, patient, related_person};
use weft_v2fhir::{Bundle, Context};

pub use weft_v2fhir::bundle_resources as resources;

/// The ADT trigger events this plugin maps.
pub const SUPPORTED_TRIGGERS: &[&str] = &[
    "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10", "A11", "A12", "A13",
    "A14", "A15", "A16", "A25", "A26", "A27", "A28", "A31", "A32", "A33", "A40",
];

/// The plugin.
pub struct AdtToFhir;

impl Plugin for AdtToFhir {
    fn transform(msg: Message) -> Result<Vec<Output>> {
        let hl7 = msg.hl7()?;
        let ctx = Context::new(&hl7)?;
        if ctx.header.message_code != "ADT" {
            return Err(Error::reject(format!(
                "MSH-9 {} is not an ADT message; adt-to-fhir maps ADT only",
                ctx.header.message_type()
            )));
        }
        let trigger = ctx.header.trigger_event.clone();
        if !SUPPORTED_TRIGGERS.contains(&trigger.as_str()) {
            return Err(Error::reject(format!(
                "MSH-9 ADT^{trigger} is not supported by adt-to-fhir (supported: {})",
                SUPPORTED_TRIGGERS.join(", ")
            )));
        }
        let mut bundle = Bundle::new();
        let patient = patient::required(&ctx, &mut bundle)?;
        if trigger == "A40" {
            let mut merged = 0;
            for mrg in hl7.segments_named("MRG") {
                patient::merge(&ctx, &mut bundle, mrg, &patient)?;
                merged += 1;
            }
            if merged == 0 {
                return Err(Error::reject(
                    "ADT^A40 has no MRG segment: the patient to merge is not named",
                ));
            }
            return Ok(vec![bundle.into_output()]);
        }
        let encounter = match hl7.segment("PV1") {
            Some(pv1) => encounter::map(&ctx, &mut bundle, pv1, Some(&trigger), &patient)?,
            None => None,
        };
        let around = Around {
            patient: &patient,
            encounter: encounter.as_ref(),
            effective: None,
            based_on: None,
            specimens: Vec::new(),
            order_key: format!("message|{}|{}", ctx.facility(), ctx.header.control_id),
        };
        for (i, obx) in hl7.segments_named("OBX").enumerate() {
            observation::map(&ctx, &mut bundle, obx, i, &around)?;
        }
        related_person::map_all(&ctx, &mut bundle, &patient)?;
        allergy::map_all(&ctx, &mut bundle, &patient)?;
        let diagnoses = condition::map_all(&ctx, &mut bundle, &patient, encounter.as_ref())?;
        if let Some(e) = &encounter {
            for d in diagnoses {
                bundle.add_to(
                    &e.url,
                    "diagnosis",
                    serde_json::json!({"condition": {"reference": d}}),
                );
            }
        }
        coverage::map_all(&ctx, &mut bundle, &patient)?;
        Ok(vec![bundle.into_output()])
    }
}

weft_sdk::export!(AdtToFhir);
