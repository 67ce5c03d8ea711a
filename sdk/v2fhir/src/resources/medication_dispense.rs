//! RXD (+ RXR, RXC, NTE) to MedicationDispense: what the pharmacy handed
//! out under an order.

use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{codeable, decimal, put, put_list, quantity};
use crate::groups::Part;
use crate::resources::dosage;
use crate::resources::dosage::instruction_texts;
use crate::resources::encounter::EncounterRef;
use crate::resources::medication::{self, Drug};
use crate::resources::medication_request::MedicationOrderRef;
use crate::resources::patient::PatientRef;
use crate::resources::practitioner;
use crate::resources::service_request::notes_after;

/// What a dispense takes from around its RXD: the patient, the visit, the
/// order it was dispensed under, and the identity of that order.
pub struct Under<'a> {
    /// The Patient.
    pub patient: &'a PatientRef,
    /// The Encounter, when the message has a visit.
    pub encounter: Option<&'a EncounterRef>,
    /// The MedicationRequest, when the order has an RXE or RXO.
    pub order: Option<&'a MedicationOrderRef>,
    /// The order's identity, or the message's and the order's place in it.
    pub order_key: String,
}

/// Maps one RXD. RXD-2 (the drug) is required; RXD-1 (the dispense's
/// counter under its order) is part of its identity.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    part: &Part<'_>,
    under: &Under<'_>,
) -> Result<String> {
    let rxd = part.head;
    let drug = medication::map(
        ctx,
        bundle,
        &Drug {
            seg: rxd,
            code: 2,
            code_name: "dispense/give code",
            form: Some(6),
            rxc: &part.rxc,
        },
    )?;
    let mut d = Map::new();
    d.insert("resourceType".into(), "MedicationDispense".into());
    d.insert("status".into(), "completed".into());
    drug.put_into(&mut d);
    d.insert("subject".into(), under.patient.reference());
    put(
        &mut d,
        "context",
        under.encounter.map(EncounterRef::reference),
    );
    let performers = practitioner::actors(ctx, bundle, ctx.field(rxd, 10));
    put_list(&mut d, "performer", performers);
    if let Some(order) = under.order {
        d.insert(
            "authorizingPrescription".into(),
            Value::Array(vec![order.reference()]),
        );
    }
    put(
        &mut d,
        "type",
        codeable(&ctx.field(rxd, 33).repetition(1), &codes::v2_table("0484")),
    );
    if let Some(n) = decimal(&ctx.name(rxd, 4), &ctx.text(rxd, 4))? {
        d.insert(
            "quantity".into(),
            quantity(n, &ctx.field(rxd, 5).repetition(1)),
        );
    }
    let handed_over = ctx.date_time(rxd, 3)?.ok_or_else(|| {
        Error::reject(format!(
            "{} (date/time dispensed) is empty: a dispense needs its time",
            ctx.name(rxd, 3)
        ))
    })?;
    d.insert("whenHandedOver".into(), Value::String(handed_over.clone()));
    let mut notes = instruction_texts(ctx, rxd, 9);
    notes.extend(instruction_texts(ctx, rxd, 15));
    notes.extend(notes_after(ctx, rxd));
    put_list(
        &mut d,
        "note",
        notes.into_iter().map(|t| json!({ "text": t })).collect(),
    );
    let route = dosage::map(
        ctx,
        &dosage::Sources {
            rxr: part.rxr.first().copied(),
            ..dosage::Sources::default()
        },
    )?;
    if let Some(route) = route {
        d.insert("dosageInstruction".into(), Value::Array(vec![route]));
    }
    if let Some(substituted) = was_substituted(&ctx.text(rxd, 11)) {
        d.insert(
            "substitution".into(),
            json!({ "wasSubstituted": substituted }),
        );
    }
    let counter = ctx.text(rxd, 1);
    let key = format!(
        "dispense|{}|{counter}|{}|{handed_over}",
        under.order_key, drug.code_key
    );
    Ok(bundle.put_derived("MedicationDispense", &under.patient.key(&key), d))
}

/// Whether a substitution status (table 0167) on a dispense says the
/// product was substituted.
fn was_substituted(code: &str) -> Option<bool> {
    match code {
        "G" | "T" | "2" | "3" | "4" | "5" | "8" => Some(true),
        "N" | "0" | "1" | "7" => Some(false),
        _ => None,
    }
}
