//! `vxu-to-fhir`: HL7 v2 VXU^V04 (vaccination record update) to a FHIR R4
//! `transaction` Bundle: one Immunization per RXA (with its ORC, RXR and
//! OBX), the Patient (PID), RelatedPersons (NK1) and the Encounter (PV1).
//! See the crate's README for every field mapped and not.
//!
//! Settings: `default_utc_offset`. Lookup tables (all optional):
//! `assigning_authority`, `gender`, `patient_class`, `coding_system`,
//! `completion_status`.

use weft_sdk::{Error, Message, Output, Plugin, Result};
use weft_v2fhir::groups::order_groups;
use weft_v2fhir::resources::immunization::{self, Administration};
use weft_v2fhir::resources::observation::{self, Around};
use weft_v2fhir::resources::{encounter, patient, related_person};
use weft_v2fhir::{Bundle, Context};

pub use weft_v2fhir::bundle_resources as resources;

/// The plugin.
pub struct VxuToFhir;

impl Plugin for VxuToFhir {
    fn transform(msg: Message) -> Result<Vec<Output>> {
        let hl7 = msg.hl7()?;
        let ctx = Context::new(&hl7)?;
        ctx.require_type("vxu-to-fhir", &["VXU^V04"])?;
        let mut bundle = Bundle::new();
        let patient = patient::required(&ctx, &mut bundle)?;
        related_person::map_all(&ctx, &mut bundle, &patient)?;
        let encounter = encounter::optional(&ctx, &mut bundle, &patient)?;
        let (_, groups) = order_groups(&ctx);
        let mut mapped = 0;
        for g in &groups {
            let Some(rxa) = g.rxa else { continue };
            let adm = Administration {
                orc: g.orc,
                rxa,
                rxr: g.rxr,
                obx: g.obx.clone(),
            };
            let url = immunization::map(&ctx, &mut bundle, &adm, &patient, encounter.as_ref())?;
            // The OBX about the dose (funding, eligibility, VIS) also stand
            // as Observations, part of the Immunization.
            let around = Around {
                patient: &patient,
                encounter: encounter.as_ref(),
                effective: None,
                based_on: None,
                specimens: Vec::new(),
                order_key: format!("immunization|{url}"),
            };
            for (j, obx) in g.obx.iter().enumerate() {
                let o = observation::map(&ctx, &mut bundle, obx, j, &around)?;
                bundle.add_to(&o, "partOf", weft_v2fhir::bundle::reference(&url));
            }
            mapped += 1;
        }
        if mapped == 0 {
            return Err(Error::reject(
                "VXU^V04 has no RXA segment: there is no administration to map",
            ));
        }
        Ok(vec![bundle.into_output()])
    }
}

weft_sdk::export!(VxuToFhir);
