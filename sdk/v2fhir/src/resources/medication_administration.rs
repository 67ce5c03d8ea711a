//! RXA (+ RXR, RXC, NTE) of a pharmacy order to MedicationAdministration:
//! a dose given (or refused, or not given) under an order.

use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{codeable, put, put_list};
use crate::groups::Part;
use crate::resources::dosage::{self, Dose, instruction_texts};
use crate::resources::encounter::EncounterRef;
use crate::resources::medication::{self, Drug};
use crate::resources::medication_dispense::Under;
use crate::resources::practitioner;
use crate::resources::service_request::notes_after;

/// Maps one RXA. RXA-3 (when) and RXA-5 (the drug) are required; RXA-1
/// and RXA-2 (the give and administration counters) are part of its
/// identity.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    part: &Part<'_>,
    under: &Under<'_>,
) -> Result<String> {
    let rxa = part.head;
    let drug = medication::map(
        ctx,
        bundle,
        &Drug {
            seg: rxa,
            code: 5,
            code_name: "administered code",
            form: Some(8),
            rxc: &part.rxc,
        },
    )?;
    let start = ctx.date_time(rxa, 3)?.ok_or_else(|| {
        Error::reject(format!(
            "{} (date/time start of administration) is empty: an administration needs its time",
            ctx.name(rxa, 3)
        ))
    })?;
    let status = codes::rxa_status(ctx, rxa, codes::administration_status)?;
    let mut a = Map::new();
    a.insert("resourceType".into(), "MedicationAdministration".into());
    a.insert("status".into(), Value::String(status.clone()));
    if status == "not-done" {
        let reasons: Vec<Value> = ctx
            .field(rxa, 18)
            .repetitions()
            .filter_map(|r| codeable(&r, &codes::v2_table("0322")))
            .collect();
        put_list(&mut a, "statusReason", reasons);
    }
    drug.put_into(&mut a);
    a.insert("subject".into(), under.patient.reference());
    put(
        &mut a,
        "context",
        under.encounter.map(EncounterRef::reference),
    );
    match ctx.date_time(rxa, 4)? {
        Some(end) if end != start => {
            a.insert(
                "effectivePeriod".into(),
                json!({ "start": start, "end": end }),
            );
        }
        _ => {
            a.insert("effectiveDateTime".into(), Value::String(start.clone()));
        }
    }
    let performers = practitioner::actors(ctx, bundle, ctx.field(rxa, 10));
    put_list(&mut a, "performer", performers);
    let reasons: Vec<Value> = ctx
        .field(rxa, 19)
        .repetitions()
        .filter_map(|r| codeable(&r, ""))
        .collect();
    put_list(&mut a, "reasonCode", reasons);
    put(&mut a, "request", under.order.map(|o| o.reference()));
    let mut notes = instruction_texts(ctx, rxa, 9);
    notes.extend(notes_after(ctx, rxa));
    put_list(
        &mut a,
        "note",
        notes.into_iter().map(|t| json!({ "text": t })).collect(),
    );
    let given = dosage::map(
        ctx,
        &dosage::Sources {
            dose: Some(Dose {
                seg: rxa,
                min: 6,
                max: None,
                units: 7,
                rate: None,
            }),
            rxr: part.rxr.first().copied(),
            ..dosage::Sources::default()
        },
    )?;
    if let Some(mut given) = given {
        // An administration's dosage holds one dose and one rate, not a
        // list of them.
        if let Some(dr) = given
            .as_object_mut()
            .and_then(|g| g.remove("doseAndRate"))
            .and_then(|v| v.as_array().and_then(|l| l.first().cloned()))
            && let Some(dose) = dr.get("doseQuantity")
        {
            given["dose"] = dose.clone();
        }
        a.insert("dosage".into(), given);
    }
    let key = format!(
        "administration|{}|{}|{}|{}|{start}",
        under.order_key,
        ctx.text(rxa, 1),
        ctx.text(rxa, 2),
        drug.code_key
    );
    Ok(bundle.put_derived("MedicationAdministration", &under.patient.key(&key), a))
}
