//! `oru-to-fhir`: HL7 v2 ORU^R01 results to a FHIR R4 `transaction` Bundle.
//!
//! Per order group (ORC/OBR): a ServiceRequest (the order), a
//! DiagnosticReport (OBR as the result header), one Observation per OBX
//! and one Specimen per SPM; PID to Patient, PV1 to Encounter. OBX before
//! any OBR become Observations of the patient with no order. See the
//! crate's README for every field mapped and not.
//!
//! Settings: `default_utc_offset`. Lookup tables (all optional):
//! `assigning_authority`, `gender`, `patient_class`, `coding_system`,
//! `observation_status`, `result_status`, `abnormal_flag`, `order_status`,
//! `order_control`, `priority`.

use weft_sdk::{Error, Message, Output, Plugin, Result};
use weft_v2fhir::bundle::reference;
use weft_v2fhir::groups::order_groups;
use weft_v2fhir::resources::diagnostic_report::{self, Links};
use weft_v2fhir::resources::observation::{self, Around};
use weft_v2fhir::resources::service_request;
use weft_v2fhir::resources::{encounter, specimen};

pub use weft_v2fhir::bundle_resources as resources;

/// The plugin.
pub struct OruToFhir;

impl Plugin for OruToFhir {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        weft_v2fhir::transaction(&msg, MANIFEST.name, &["ORU^R01"], |ctx, bundle, patient| {
            let encounter = encounter::optional(ctx, bundle, patient)?;
            let (loose, groups) = order_groups(ctx);
            if !groups.iter().any(|g| g.obr.is_some()) {
                return Err(Error::reject(
                    "ORU^R01 has no OBR segment: there is no result to map",
                ));
            }
            let patient_obs = Around::message(ctx, patient, encounter.as_ref());
            for (i, obx) in loose.iter().enumerate() {
                observation::map(ctx, bundle, obx, i, &patient_obs)?;
            }
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
            Ok(())
        })
    }
}

weft_sdk::export!(OruToFhir);
weft_sdk::manifest! {
    maps: &["ORU^R01"],
    optional_tables: &["assigning_authority", "gender", "patient_class", "coding_system", "observation_status", "result_status", "abnormal_flag", "order_status", "order_control", "priority"],
    config: &["default_utc_offset"],
    memory_mib: 32,
    deadline_ms: 100,
}
