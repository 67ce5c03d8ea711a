//! `oru-to-fhir`: HL7 v2 ORU^R01 results, and OUL^R22/R23/R24 results
//! from lab automation (specimen-, container- and order-oriented), to a
//! FHIR R4 `transaction` Bundle.
//!
//! Per order group (ORC/OBR): a ServiceRequest (the order), a
//! DiagnosticReport (OBR as the result header), one Observation per OBX
//! and one Specimen per SPM; PID to Patient, PV1 to Encounter. OBX before
//! any OBR become Observations of the patient with no order; in an OUL^R22
//! or R23 the OBX right after an SPM are observations of that specimen. See the
//! crate's README for every field mapped and not.
//!
//! Settings: `default_utc_offset`. Lookup tables (all optional):
//! `assigning_authority`, `gender`, `patient_class`, `coding_system`,
//! `observation_status`, `result_status`, `abnormal_flag`, `order_status`,
//! `order_control`, `priority`.

use weft_sdk::hl7::Segment;
use weft_sdk::{Error, Message, Output, Plugin, Result};
use weft_v2fhir::bundle::reference;
use weft_v2fhir::groups::{order_groups, oul_groups};
use weft_v2fhir::resources::diagnostic_report::{self, Links};
use weft_v2fhir::resources::observation::{self, Around};
use weft_v2fhir::resources::service_request;
use weft_v2fhir::resources::{encounter, specimen};

pub use weft_v2fhir::bundle_resources as resources;

/// The message types this plugin maps.
const TYPES: &[&str] = &["ORU^R01", "OUL^R22", "OUL^R23", "OUL^R24"];

/// The plugin.
pub struct OruToFhir;

impl Plugin for OruToFhir {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        weft_v2fhir::transaction(&msg, MANIFEST.name, TYPES, |ctx, bundle, patient| {
            let encounter = encounter::optional(ctx, bundle, patient)?;
            // An OUL opens each order with its OBR; a specimen-oriented one
            // (R22, R23) names each specimen before the orders done on it.
            let (loose, groups) = match ctx.header.message_code.as_str() {
                "OUL" => oul_groups(ctx, ctx.header.trigger_event != "R24"),
                _ => {
                    let (loose, groups) = order_groups(ctx);
                    (loose.into_iter().map(|o| (o, None)).collect(), groups)
                }
            };
            if !groups.iter().any(|g| g.obr.is_some()) {
                return Err(Error::reject(format!(
                    "{} has no OBR segment: there is no result to map",
                    ctx.header.message_type()
                )));
            }
            // Observations of the patient or the visit (no order, no
            // specimen) first.
            let patient_obs = Around::message(ctx, patient, encounter.as_ref());
            for (i, (obx, _)) in loose.iter().enumerate().filter(|(_, (_, s))| s.is_none()) {
                observation::map(ctx, bundle, obx, i, &patient_obs)?;
            }
            // Each SPM segment mapped, with its Specimen's fullUrl.
            let mut specimen_urls: Vec<(&Segment, String)> = Vec::new();
            for (i, g) in groups.iter().enumerate() {
                let Some(obr) = g.obr else { continue };
                let order = service_request::map(
                    ctx,
                    bundle,
                    g,
                    patient,
                    encounter.as_ref(),
                    "completed",
                    i,
                )?;
                let mut specimens = specimen::map_all(
                    ctx,
                    bundle,
                    &g.spm,
                    patient,
                    &order.reference(),
                    &order.key,
                )?;
                specimen_urls.extend(g.spm.iter().copied().zip(specimens.iter().cloned()));
                if specimens.is_empty() {
                    let request = order.reference();
                    specimens.extend(specimen::from_obr(
                        ctx, bundle, obr, patient, &request, &order.key,
                    )?);
                }
                let specimens: Vec<_> = specimens.iter().map(|url| reference(url)).collect();
                let around = Around {
                    patient,
                    encounter: encounter.as_ref(),
                    effective: ctx.date_time(obr, 7)?,
                    based_on: Some(order.reference()),
                    specimens: specimens.clone(),
                    order_key: order.key.clone(),
                };
                let mut results = Vec::new();
                for (j, obx) in g.obx.iter().enumerate() {
                    results.push(observation::map(ctx, bundle, obx, j, &around)?);
                }
                let links = Links {
                    patient,
                    encounter: encounter.as_ref(),
                    order: &order,
                    results,
                    specimens,
                    obx: &g.obx,
                };
                diagnostic_report::map(ctx, bundle, obr, links)?;
            }
            // Then the observations of a specimen (after an SPM, outside
            // any order).
            for (i, (obx, spm)) in loose.iter().enumerate() {
                let Some(spm) = spm else { continue };
                let mut around = Around::message(ctx, patient, encounter.as_ref());
                if let Some((_, url)) = specimen_urls.iter().find(|(s, _)| std::ptr::eq(*s, *spm)) {
                    around.specimens = vec![reference(url)];
                }
                observation::map(ctx, bundle, obx, i, &around)?;
            }
            Ok(())
        })
    }
}

weft_sdk::export!(OruToFhir);
weft_sdk::manifest! {
    maps: &["ORU^R01", "OUL^R22", "OUL^R23", "OUL^R24"],
    optional_tables: &["assigning_authority", "gender", "patient_class", "coding_system", "observation_status", "result_status", "abnormal_flag", "order_status", "order_control", "priority"],
    config: &["default_utc_offset"],
    memory_mib: 32,
    deadline_ms: 100,
}
