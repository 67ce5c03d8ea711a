//! RXA (+ RXR, ORC, OBX) to Immunization.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{
    code_key, codeable, comp, decimal, entity_identifier, put, put_list, quantity, system_value,
};
use crate::resources::encounter::EncounterRef;
use crate::resources::patient::PatientRef;
use crate::resources::practitioner;

/// The segments of one administration.
pub struct Administration<'m> {
    /// The order, if sent.
    pub orc: Option<&'m Segment>,
    /// The administration.
    pub rxa: &'m Segment,
    /// Route and site.
    pub rxr: Option<&'m Segment>,
    /// The observations about it (funding, eligibility, VIS).
    pub obx: Vec<&'m Segment>,
}

/// Maps one administration. RXA-3 (date) and RXA-5 (vaccine) are required.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    adm: &Administration<'_>,
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
) -> Result<String> {
    let rxa = adm.rxa;
    let vaccine = codeable(&ctx.field(rxa, 5).repetition(1), codes::CVX).ok_or_else(|| {
        Error::reject(format!(
            "{} (administered code) is empty: an immunization needs its vaccine",
            ctx.name(rxa, 5)
        ))
    })?;
    let when = ctx.date_time(rxa, 3)?.ok_or_else(|| {
        Error::reject(format!(
            "{} (date/time start of administration) is empty: an immunization needs its date",
            ctx.name(rxa, 3)
        ))
    })?;
    let status = codes::rxa_status(ctx, rxa, codes::immunization_status)?;
    let mut im = Map::new();
    im.insert("resourceType".into(), "Immunization".into());
    let mut ids = Vec::new();
    if let Some(orc) = adm.orc {
        for (n, t) in [(3, "FILL"), (2, "PLAC")] {
            ids.extend(entity_identifier(
                &ctx.field(orc, n).repetition(1),
                ctx.facility(),
                t,
            ));
        }
    }
    let identity = ids.iter().find_map(system_value);
    put_list(&mut im, "identifier", ids);
    im.insert("status".into(), Value::String(status.clone()));
    if status == "not-done" {
        put(
            &mut im,
            "statusReason",
            codeable(&ctx.field(rxa, 18).repetition(1), &codes::v2_table("0322")),
        );
    }
    let key_code = code_key(&vaccine);
    im.insert("vaccineCode".into(), vaccine);
    im.insert("patient".into(), patient.reference());
    put(&mut im, "encounter", encounter.map(EncounterRef::reference));
    im.insert("occurrenceDateTime".into(), Value::String(when.clone()));
    put(
        &mut im,
        "recorded",
        ctx.date_time(rxa, 22)?.map(Value::String),
    );
    let source = ctx.field(rxa, 9).repetition(1);
    match comp(&source, 1).as_str() {
        "" => {}
        "00" => {
            im.insert("primarySource".into(), Value::Bool(true));
        }
        _ => {
            im.insert("primarySource".into(), Value::Bool(false));
            put(
                &mut im,
                "reportOrigin",
                codeable(&source, "urn:oid:2.16.840.1.114222.4.5.274"),
            );
        }
    }
    let manufacturer = ctx.field(rxa, 17).repetition(1);
    let mvx = comp(&manufacturer, 1);
    if !mvx.is_empty() {
        let mut m = Map::new();
        m.insert(
            "identifier".into(),
            json!({"system": codes::MVX, "value": mvx}),
        );
        let name = comp(&manufacturer, 2);
        if !name.is_empty() {
            m.insert("display".into(), Value::String(name));
        }
        im.insert("manufacturer".into(), Value::Object(m));
    }
    let lot = ctx.text(rxa, 15);
    if !lot.is_empty() {
        im.insert("lotNumber".into(), Value::String(lot));
    }
    put(
        &mut im,
        "expirationDate",
        ctx.date(rxa, 16)?.map(Value::String),
    );
    if let Some(rxr) = adm.rxr {
        put(
            &mut im,
            "route",
            codeable(&ctx.field(rxr, 1).repetition(1), &codes::v2_table("0162")),
        );
        put(
            &mut im,
            "site",
            codeable(&ctx.field(rxr, 2).repetition(1), &codes::v2_table("0163")),
        );
    }
    let amount = ctx.text(rxa, 6);
    if amount != "999"
        && let Some(n) = decimal(&ctx.name(rxa, 6), &amount)?
    {
        im.insert(
            "doseQuantity".into(),
            quantity(n, &ctx.field(rxa, 7).repetition(1)),
        );
    }
    let mut performers = Vec::new();
    for actor in practitioner::map_all(ctx, bundle, ctx.field(rxa, 10)) {
        performers.push(json!({
            "function": {"coding": [{"system": codes::v2_table("0443"), "code": "AP", "display": "Administering Provider"}]},
            "actor": actor,
        }));
    }
    if let Some(orc) = adm.orc {
        for actor in practitioner::map_all(ctx, bundle, ctx.field(orc, 12)) {
            performers.push(json!({
                "function": {"coding": [{"system": codes::v2_table("0443"), "code": "OP", "display": "Ordering Provider"}]},
                "actor": actor,
            }));
        }
    }
    put_list(&mut im, "performer", performers);
    for obx in &adm.obx {
        let code = ctx
            .field(obx, 3)
            .repetition(1)
            .part(1)
            .value()
            .trim()
            .to_string();
        let value = codeable(&ctx.field(obx, 5).repetition(1), "");
        match (code.as_str(), value) {
            ("64994-7", Some(v)) => {
                im.insert("programEligibility".into(), json!([v]));
            }
            ("30963-3", Some(v)) => {
                im.insert("fundingSource".into(), v);
            }
            _ => {}
        }
    }
    Ok(match identity {
        Some((system, value)) => bundle.put("Immunization", &system, &value, Value::Object(im)),
        None => {
            let key = patient.key(&format!("RXA|{key_code}|{when}"));
            bundle.put_derived("Immunization", &key, im)
        }
    })
}
