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
use weft_v2fhir::resources::{encounter, related_person};

pub use weft_v2fhir::bundle_resources as resources;

/// The plugin.
pub struct VxuToFhir;

impl Plugin for VxuToFhir {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        weft_v2fhir::transaction(&msg, MANIFEST.name, &["VXU^V04"], |ctx, bundle, patient| {
            related_person::map_all(ctx, bundle, patient)?;
            let encounter = encounter::optional(ctx, bundle, patient)?;
            let (_, groups) = order_groups(ctx);
            let mut mapped = 0;
            for g in &groups {
                let Some(rxa) = g.rxa else { continue };
                let adm = Administration {
                    orc: g.orc,
                    rxa,
                    rxr: g.rxr,
                    obx: g.obx.clone(),
                };
                let url = immunization::map(ctx, bundle, &adm, patient, encounter.as_ref())?;
                // The OBX about the dose (funding, eligibility, VIS) also
                // stand as Observations, part of the Immunization.
                let mut around = Around::message(ctx, patient, encounter.as_ref());
                around.order_key = format!("immunization|{url}");
                for (j, obx) in g.obx.iter().enumerate() {
                    let o = observation::map(ctx, bundle, obx, j, &around)?;
                    bundle.add_to(&o, "partOf", weft_v2fhir::bundle::reference(&url));
                }
                mapped += 1;
            }
            if mapped == 0 {
                return Err(Error::reject(
                    "VXU^V04 has no RXA segment: there is no administration to map",
                ));
            }
            Ok(())
        })
    }
}

weft_sdk::export!(VxuToFhir);
weft_sdk::manifest! {
    maps: &["VXU^V04"],
    optional_tables: &["assigning_authority", "gender", "patient_class", "coding_system", "completion_status"],
    config: &["default_utc_offset"],
    memory_mib: 32,
    deadline_ms: 100,
}
