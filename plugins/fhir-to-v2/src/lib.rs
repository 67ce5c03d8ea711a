//! `fhir-to-v2`: FHIR R4 JSON to HL7 v2.5.1, for the systems that speak v2.
//!
//! An input holding ServiceRequests (a ServiceRequest, or a transaction
//! Bundle with its Patient, Encounter, Specimens, Conditions and
//! Practitioners) becomes one `OML^O21` per patient (`ORM^O01` with
//! `order_message = "ORM^O01"`); MedicationRequests (with their
//! Medications) become one `RDE^O11` per patient; an input holding
//! Patients and no order becomes an `ADT^A28` (create) or `ADT^A31` (update) per Patient. Any
//! other input is a reject naming what it holds. See the crate's README
//! for every element mapped and not.
//!
//! Settings: `order_message`, `sending_application`, `sending_facility`,
//! `receiving_application`, `receiving_facility`, `processing_id`, and
//! `orders_to` / `pharmacy_to` / `patients_to` (the destination each kind of message goes
//! to; unset, the route's destinations). Lookup tables (optional):
//! `authority` (identifier system to assigning authority namespace),
//! `coding_system_name` (system URI to v2 coding-system name).

use weft_fhir2v2::{Resources, Settings};
use weft_sdk::{Error, Message, Output, Plugin, Result, config};

/// The plugin.
pub struct FhirToV2;

/// The FHIR resource types this plugin takes.
pub const SUPPORTED: &[&str] = &["ServiceRequest", "MedicationRequest", "Patient", "Bundle"];

impl Plugin for FhirToV2 {
    /// A bad setting refuses the version at load.
    fn init() -> Result<()> {
        Settings::read().map(|_| ())
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        let settings = Settings::read()?;
        // Parsed once; each mapping reads the same resources.
        let root = weft_fhir2v2::input::parse(&msg)?;
        let res = Resources::new(&root)?;
        let kinds = res.kinds();
        let has = |k: &str| kinds.contains(&k);
        let mut made = Vec::new();
        if has("ServiceRequest") {
            made.push((
                weft_fhir2v2::orders(&res, msg.id(), &settings)?,
                config("orders_to"),
            ));
        }
        if has("MedicationRequest") {
            made.push((
                weft_fhir2v2::medication_orders(&res, msg.id(), &settings)?,
                config("pharmacy_to"),
            ));
        }
        if made.is_empty() && has("Patient") {
            made.push((
                weft_fhir2v2::patients(&res, msg.id(), &settings)?,
                config("patients_to"),
            ));
        }
        if made.is_empty() {
            let mut held = kinds.join(", ");
            if held.is_empty() {
                held = "nothing".into();
            }
            return Err(Error::reject(format!(
                "the input holds {held}: fhir-to-v2 sends ServiceRequests and MedicationRequests (as orders) and Patients (as registrations)"
            )));
        }
        Ok(made
            .into_iter()
            .flat_map(|(messages, to)| {
                messages.into_iter().map(move |m| {
                    let out = m.output();
                    match to.as_deref().filter(|t| !t.is_empty()) {
                        Some(t) => out.to(t),
                        None => out,
                    }
                })
            })
            .collect())
    }
}

weft_sdk::export!(FhirToV2);
weft_sdk::manifest! {
    maps: SUPPORTED,
    optional_tables: &["authority", "coding_system_name"],
    config: &["order_message", "sending_application", "sending_facility", "receiving_application", "receiving_facility", "processing_id", "orders_to", "pharmacy_to", "patients_to"],
    memory_mib: 32,
    deadline_ms: 100,
}
