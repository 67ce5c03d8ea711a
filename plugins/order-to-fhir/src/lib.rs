//! `order-to-fhir`: HL7 v2 ORM^O01 and OML^O21 orders, and REF^I12-I14
//! referrals, to a FHIR R4 `transaction` Bundle.
//!
//! Per order group (ORC + OBR): a ServiceRequest; per SPM (OML): a
//! Specimen the ServiceRequest points at; OBX sent with the order become
//! Observations in ServiceRequest.supportingInfo; DG1 to Conditions in
//! ServiceRequest.reasonReference; AL1 to AllergyIntolerance. PID to
//! Patient, PV1 to Encounter. A referral (RF1 with its PRD providers) is a
//! ServiceRequest from the referring provider to the one referred to. See
//! the crate's README for every field mapped and not.
//!
//! Settings: `default_utc_offset`. Lookup tables (all optional):
//! `assigning_authority`, `gender`, `patient_class`, `coding_system`,
//! `order_status`, `order_control`, `priority`, `observation_status`,
//! `abnormal_flag`, `referral_status`, `allergen_type`, `allergy_severity`.

use weft_sdk::{Error, Message, Output, Plugin, Result};
use weft_v2fhir::bundle::reference;
use weft_v2fhir::groups::order_groups;
use weft_v2fhir::resources::observation::{self, Around};
use weft_v2fhir::resources::patient::PatientRef;
use weft_v2fhir::resources::referral::{self, Related};
use weft_v2fhir::resources::service_request;
use weft_v2fhir::resources::{
    allergy, condition, coverage, encounter, procedure, related_person, specimen,
};
use weft_v2fhir::{Bundle, Context};

pub use weft_v2fhir::bundle_resources as resources;

/// The plugin.
pub struct OrderToFhir;

/// The message types this plugin maps.
pub const SUPPORTED: &[&str] = &["ORM^O01", "OML^O21", "REF^I12", "REF^I13", "REF^I14"];

impl Plugin for OrderToFhir {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        weft_v2fhir::transaction(&msg, MANIFEST.name, SUPPORTED, |ctx, bundle, patient| {
            if ctx.header.message_code == "REF" {
                return referral(ctx, bundle, patient);
            }
            let encounter = encounter::optional(ctx, bundle, patient)?;
            allergy::map_all(ctx, bundle, patient)?;
            let reasons = condition::map_all(ctx, bundle, patient, encounter.as_ref())?;
            let (_, groups) = order_groups(ctx);
            if groups.is_empty() {
                return Err(Error::reject(format!(
                    "{} has no ORC or OBR segment: there is no order to map",
                    ctx.header.message_type()
                )));
            }
            for (i, g) in groups.iter().enumerate() {
                let order =
                    service_request::map(ctx, bundle, g, patient, encounter.as_ref(), "active", i)?;
                for r in &reasons {
                    bundle.add_to(&order.url, "reasonReference", reference(r));
                }
                for url in
                    specimen::map_all(ctx, bundle, &g.spm, patient, &order.reference(), &order.key)?
                {
                    bundle.add_to(&order.url, "specimen", reference(&url));
                }
                let mut around = Around::message(ctx, patient, encounter.as_ref());
                around.order_key = order.key.clone();
                for (j, obx) in g.obx.iter().enumerate() {
                    let url = observation::map(ctx, bundle, obx, j, &around)?;
                    bundle.add_to(&order.url, "supportingInfo", reference(&url));
                }
            }
            Ok(())
        })
    }
}

/// A REF^I12/I13/I14: the referral (RF1 with its PRD providers) as a
/// ServiceRequest, made for the diagnoses (DG1), sent with the patient's
/// allergies (AL1), procedures (PR1) and observations (OBX), and insurance
/// (IN1). A REF without RF1 is a reject.
fn referral(ctx: &Context<'_>, bundle: &mut Bundle, patient: &PatientRef) -> Result<()> {
    let rf1 = ctx.hl7.segment("RF1").ok_or_else(|| {
        Error::reject(format!(
            "{} has no RF1 segment: there is no referral to map",
            ctx.header.message_type()
        ))
    })?;
    let encounter = encounter::optional(ctx, bundle, patient)?;
    let reasons = condition::map_all(ctx, bundle, patient, encounter.as_ref())?;
    let mut supporting = Vec::new();
    for al1 in ctx.hl7.segments_named("AL1") {
        supporting.push(allergy::map(ctx, bundle, al1, patient)?);
    }
    let segments = ctx.hl7.segments();
    for p in procedure::map_all(ctx, bundle, segments, patient, encounter.as_ref())? {
        supporting.push(p.url);
    }
    let around = Around::message(ctx, patient, encounter.as_ref());
    for (i, obx) in ctx.hl7.segments_named("OBX").enumerate() {
        supporting.push(observation::map(ctx, bundle, obx, i, &around)?);
    }
    let mut insurance = Vec::new();
    for in1 in ctx.hl7.segments_named("IN1") {
        insurance.extend(coverage::map(ctx, bundle, in1, patient)?);
    }
    related_person::map_all(ctx, bundle, patient)?;
    let related = Related {
        encounter: encounter.as_ref(),
        reasons,
        supporting,
        insurance,
    };
    referral::map(ctx, bundle, rf1, patient, &related)?;
    Ok(())
}

weft_sdk::export!(OrderToFhir);
weft_sdk::manifest! {
    maps: SUPPORTED,
    optional_tables: &[
        "assigning_authority", "gender", "patient_class", "coding_system", "order_status",
        "order_control", "priority", "observation_status", "abnormal_flag", "referral_status",
        "allergen_type", "allergy_severity",
    ],
    config: &["default_utc_offset"],
    memory_mib: 32,
    deadline_ms: 100,
}
