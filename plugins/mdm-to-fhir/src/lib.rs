//! `mdm-to-fhir`: HL7 v2 MDM^T01-T11 (medical document management) to a
//! FHIR R4 `transaction` Bundle: the document (TXA) as a DocumentReference
//! whose content is the text of the TX/FT/ST OBX lines or the data of each
//! ED OBX, with the Patient (PID), the Encounter (PV1) and the orders the
//! document answers (ORC/OBR, as ServiceRequests). See the crate's
//! README for every field mapped and not.
//!
//! Settings: `default_utc_offset`. Lookup tables (all optional):
//! `assigning_authority`, `gender`, `patient_class`, `coding_system`,
//! `document_status`.

use weft_sdk::{Error, Message, Output, Plugin, Result};
use weft_v2fhir::groups::order_groups;
use weft_v2fhir::resources::{document_reference, encounter, service_request};

pub use weft_v2fhir::bundle_resources as resources;

/// The message types this plugin maps.
const TYPES: &[&str] = &[
    "MDM^T01", "MDM^T02", "MDM^T03", "MDM^T04", "MDM^T05", "MDM^T06", "MDM^T07", "MDM^T08",
    "MDM^T09", "MDM^T10", "MDM^T11",
];

/// The plugin.
pub struct MdmToFhir;

impl Plugin for MdmToFhir {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        weft_v2fhir::transaction(&msg, MANIFEST.name, TYPES, |ctx, bundle, patient| {
            let trigger = ctx.header.trigger_event.clone();
            let encounter = encounter::optional(ctx, bundle, patient)?;
            let txa = ctx.hl7.segment("TXA").ok_or_else(|| {
                Error::reject(
                    "MDM has no TXA segment: there is no document header (TXA-2, TXA-12) to map",
                )
            })?;
            // The orders the document answers (ORC/OBR, v2.6 and later),
            // each with a service named in OBR-4.
            let (_, groups) = order_groups(ctx);
            let mut orders = Vec::new();
            for (i, g) in groups.iter().enumerate() {
                let Some(obr) = g.obr else { continue };
                if ctx.field(obr, 4).is_empty() {
                    continue;
                }
                let order = service_request::map(
                    ctx,
                    bundle,
                    g,
                    patient,
                    encounter.as_ref(),
                    "active",
                    i + 1,
                )?;
                orders.push(order.reference());
            }
            let obx: Vec<_> = ctx.hl7.segments_named("OBX").collect();
            document_reference::map(
                ctx,
                bundle,
                txa,
                &obx,
                patient,
                encounter.as_ref(),
                orders,
                &trigger,
            )?;
            Ok(())
        })
    }
}

weft_sdk::export!(MdmToFhir);
weft_sdk::manifest! {
    maps: &[
        "MDM^T01", "MDM^T02", "MDM^T03", "MDM^T04", "MDM^T05", "MDM^T06", "MDM^T07",
        "MDM^T08", "MDM^T09", "MDM^T10", "MDM^T11",
    ],
    optional_tables: &[
        "assigning_authority", "gender", "patient_class", "coding_system", "document_status",
    ],
    config: &["default_utc_offset"],
    memory_mib: 64,
    deadline_ms: 200,
}
