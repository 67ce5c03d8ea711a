//! `pharmacy-to-fhir`: HL7 v2 pharmacy messages to a FHIR R4 `transaction`
//! Bundle. Each order (ORC with RXO and/or RXE, their TQ1, RXR and RXC)
//! becomes a MedicationRequest, its drug a Medication when coded in NDC or
//! RxNorm or compounded; each dispense (RXD, in RDS^O13) a
//! MedicationDispense and each administration (RXA, in RAS^O17) a
//! MedicationAdministration, both pointing at their order; the OBX of a
//! part become Observations tied to it; the Patient (PID) and the
//! Encounter (PV1). See the crate's README for every field mapped and not.
//!
//! Settings: `default_utc_offset`. Lookup tables (all optional):
//! `assigning_authority`, `gender`, `patient_class`, `coding_system`,
//! `order_status`, `order_control`, `completion_status`, `priority`.

use weft_sdk::{Error, Message, Output, Plugin, Result};
use weft_v2fhir::bundle::reference;
use weft_v2fhir::groups::{Part, pharmacy_orders};
use weft_v2fhir::resources::medication_dispense::Under;
use weft_v2fhir::resources::observation::{self, Around};
use weft_v2fhir::resources::{
    encounter, medication_administration, medication_dispense, medication_request,
};

pub use weft_v2fhir::bundle_resources as resources;

/// The message types this plugin maps.
const TYPES: &[&str] = &["RDE^O11", "RDE^O25", "RDS^O13", "RAS^O17"];

/// The plugin.
pub struct PharmacyToFhir;

impl Plugin for PharmacyToFhir {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        weft_v2fhir::transaction(&msg, MANIFEST.name, TYPES, |ctx, bundle, patient| {
            let code = ctx.header.message_code.clone();
            let encounter = encounter::optional(ctx, bundle, patient)?;
            let orders = pharmacy_orders(ctx);
            if orders.is_empty() {
                return Err(Error::reject(format!(
                    "{code} has no ORC, RXO, RXE, RXD or RXA segment: there is no order to map"
                )));
            }
            let mut events = 0;
            for order in &orders {
                let request = if order.rxe.is_some() || order.rxo.is_some() {
                    Some(medication_request::map(
                        ctx,
                        bundle,
                        order,
                        patient,
                        encounter.as_ref(),
                    )?)
                } else if code == "RDE" {
                    return Err(Error::reject(
                        "the pharmacy order has no RXE segment: an encoded order needs its drug (RXE-2)",
                    ));
                } else {
                    None
                };
                let order_key = match &request {
                    Some(r) => r.key.clone(),
                    None => format!(
                        "order|{}|{}|{}",
                        ctx.facility(),
                        ctx.header.control_id,
                        order.ordinal
                    ),
                };
                let under = Under {
                    patient,
                    encounter: encounter.as_ref(),
                    order: request.as_ref(),
                    order_key,
                };
                // The order's own observations (those after ORC, RXO, RXE).
                let mut around = Around::message(ctx, patient, encounter.as_ref());
                around.order_key = format!("medication-order|{}", under.order_key);
                around.based_on = request.as_ref().map(|r| r.reference());
                let own = [&order.orc, &order.rxo, &order.rxe];
                for (j, obx) in own
                    .iter()
                    .flat_map(|p| p.iter())
                    .flat_map(|p| &p.obx)
                    .enumerate()
                {
                    observation::map(ctx, bundle, obx, j, &around)?;
                }
                for (i, event) in order.events.iter().enumerate() {
                    let url = match (code.as_str(), event.head.id()) {
                        ("RDS", "RXD") => medication_dispense::map(ctx, bundle, event, &under)?,
                        ("RAS", "RXA") => {
                            medication_administration::map(ctx, bundle, event, &under)?
                        }
                        // An RXD in a RAS or an RXA in an RDS/RDE is not the
                        // message's subject: it is left out.
                        _ => continue,
                    };
                    events += 1;
                    part_observations(ctx, bundle, event, &around, &url, i)?;
                }
            }
            match code.as_str() {
                "RDS" if events == 0 => Err(Error::reject(
                    "RDS^O13 has no RXD segment: there is no dispense to map",
                )),
                "RAS" if events == 0 => Err(Error::reject(
                    "RAS^O17 has no RXA segment: there is no administration to map",
                )),
                _ => Ok(()),
            }
        })
    }
}

/// The OBX after a dispense or an administration, as Observations that
/// are part of it.
fn part_observations(
    ctx: &weft_v2fhir::Context<'_>,
    bundle: &mut weft_v2fhir::Bundle,
    event: &Part<'_>,
    order: &Around<'_>,
    url: &str,
    index: usize,
) -> Result<()> {
    let around = Around {
        patient: order.patient,
        encounter: order.encounter,
        effective: None,
        based_on: order.based_on.clone(),
        specimens: Vec::new(),
        order_key: format!("{}|event|{index}", order.order_key),
    };
    for (j, obx) in event.obx.iter().enumerate() {
        let o = observation::map(ctx, bundle, obx, j, &around)?;
        bundle.add_to(&o, "partOf", reference(url));
    }
    Ok(())
}

weft_sdk::export!(PharmacyToFhir);
weft_sdk::manifest! {
    maps: &["RDE^O11", "RDE^O25", "RDS^O13", "RAS^O17"],
    optional_tables: &[
        "assigning_authority", "gender", "patient_class", "coding_system",
        "order_status", "order_control", "completion_status", "priority",
    ],
    config: &["default_utc_offset"],
    memory_mib: 32,
    deadline_ms: 100,
}
