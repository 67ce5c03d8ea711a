//! SPM (specimen) to Specimen.

use weft_sdk::Result;
use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{authority_system, codeable, put, put_list, sub, system_value};
use crate::resources::patient::PatientRef;

/// Maps one SPM; `request` is the ServiceRequest it was taken for and
/// `order_key` that order's identity (for a specimen without an id).
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    spm: &Segment,
    patient: &PatientRef,
    request: Option<&Value>,
    order_key: &str,
) -> Result<String> {
    let mut s = Map::new();
    s.insert("resourceType".into(), "Specimen".into());
    // SPM-2 is EIP: placer EI ^ filler EI, each EI in sub-components.
    let id_field = ctx.field(spm, 2).repetition(1);
    let mut ids = Vec::new();
    for (c, type_code) in [(2, "FGN"), (1, "PGN")] {
        let value = sub(&id_field, c, 1);
        if value.is_empty() {
            continue;
        }
        let system = authority_system(
            &sub(&id_field, c, 2),
            &sub(&id_field, c, 3),
            &sub(&id_field, c, 4),
            ctx.facility(),
        );
        let mut id = Map::new();
        id.insert(
            "type".into(),
            json!({"coding": [{"system": codes::v2_table("0203"), "code": type_code}]}),
        );
        put(&mut id, "system", system.map(Value::String));
        id.insert("value".into(), Value::String(value));
        ids.push(Value::Object(id));
    }
    let identity = ids.first().and_then(system_value);
    put_list(&mut s, "identifier", ids);
    put(
        &mut s,
        "type",
        codeable(&ctx.field(spm, 4).repetition(1), &codes::v2_table("0487")),
    );
    s.insert("subject".into(), patient.reference());
    put(
        &mut s,
        "receivedTime",
        ctx.date_time(spm, 18)?.map(Value::String),
    );
    put(&mut s, "request", request.map(|r| json!([r])));
    let mut collection = Map::new();
    let collected = ctx.field(spm, 17).repetition(1);
    let start = ctx.date_time_value(&ctx.name(spm, 17), collected.part(1).value().trim())?;
    let end = ctx.date_time_value(&ctx.name(spm, 17), collected.part(2).value().trim())?;
    match (start, end) {
        (Some(a), Some(b)) if a != b => {
            collection.insert("collectedPeriod".into(), json!({"start": a, "end": b}));
        }
        (Some(a), _) => {
            collection.insert("collectedDateTime".into(), Value::String(a));
        }
        _ => {}
    }
    put(
        &mut collection,
        "method",
        codeable(&ctx.field(spm, 7).repetition(1), &codes::v2_table("0488")),
    );
    put(
        &mut collection,
        "bodySite",
        codeable(&ctx.field(spm, 8).repetition(1), ""),
    );
    if !collection.is_empty() {
        s.insert("collection".into(), Value::Object(collection));
    }
    let conditions: Vec<Value> = ctx
        .field(spm, 24)
        .repetitions()
        .filter_map(|r| codeable(&r, &codes::v2_table("0493")))
        .collect();
    put_list(&mut s, "condition", conditions);
    Ok(match identity {
        Some((system, value)) => bundle.put("Specimen", &system, &value, Value::Object(s)),
        None => {
            let key = patient.key(&format!("{order_key}|SPM|{}", ctx.text(spm, 1)));
            bundle.put_derived("Specimen", &key, s)
        }
    })
}

/// Every SPM of an order group, taken for the order `request` (its
/// Reference) with identity `order_key`; their fullUrls.
pub fn map_all(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    spms: &[&Segment],
    patient: &PatientRef,
    request: &Value,
    order_key: &str,
) -> Result<Vec<String>> {
    spms.iter()
        .map(|spm| map(ctx, bundle, spm, patient, Some(request), order_key))
        .collect()
}

/// The specimen of an OBR without SPM (HL7 v2.3-2.4): OBR-15 (specimen
/// source: type ^ additives ^ … ^ body site) with OBR-7 as the collection
/// time; `None` when OBR-15 is empty.
pub fn from_obr(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    obr: &Segment,
    patient: &PatientRef,
    request: &Value,
    order_key: &str,
) -> Result<Option<String>> {
    let source = ctx.field(obr, 15).repetition(1);
    let Some(kind) = codeable(&source.part(1), &codes::v2_table("0070")) else {
        return Ok(None);
    };
    let mut s = Map::new();
    s.insert("resourceType".into(), "Specimen".into());
    s.insert("type".into(), kind);
    s.insert("subject".into(), patient.reference());
    s.insert("request".into(), json!([request]));
    let mut collection = Map::new();
    put(
        &mut collection,
        "collectedDateTime",
        ctx.date_time(obr, 7)?.map(Value::String),
    );
    put(&mut collection, "bodySite", codeable(&source.part(4), ""));
    if !collection.is_empty() {
        s.insert("collection".into(), Value::Object(collection));
    }
    let key = patient.key(&format!("{order_key}|OBR-15"));
    Ok(Some(bundle.put_derived("Specimen", &key, s)))
}
