//! PV1 (and PV2) to Encounter, with Location and Practitioner resources.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{codeable, concept, identifier, period, put, put_list, system_value};
use crate::resources::patient::PatientRef;
use crate::resources::{location, practitioner};

/// Encounter.status for an ADT trigger event (the V2-to-FHIR IG's table
/// 0003 map where it has one); `None` for events that carry no encounter
/// (A28/A31: person updates; A29: person information deleted). Other events take it from the visit's
/// dates: finished when PV1-45 (discharge) is set, else in-progress when
/// PV1-44 (admit) is, else unknown.
pub fn status_for(trigger: &str, has_discharge: bool, has_admit: bool) -> Option<&'static str> {
    Some(match trigger {
        "A01" | "A02" | "A06" | "A07" | "A09" | "A10" | "A12" | "A13" | "A15" | "A16" | "A25"
        | "A26" | "A32" | "A33" => "in-progress",
        "A03" => "finished",
        "A04" | "A05" | "A14" => "planned",
        "A11" | "A27" | "A38" => "cancelled",
        "A28" | "A29" | "A31" => return None,
        _ if has_discharge => "finished",
        _ if has_admit => "in-progress",
        _ => "unknown",
    })
}

/// The Encounter in the Bundle.
#[derive(Debug, Clone)]
pub struct EncounterRef {
    /// Its fullUrl.
    pub url: String,
}

impl EncounterRef {
    /// A Reference to it.
    pub fn reference(&self) -> Value {
        crate::bundle::reference(&self.url)
    }
}

/// Maps PV1 for the message's `trigger` (ADT events decide the status; any
/// other message passes `None` and the status comes from the visit dates).
/// Returns `None` when the event carries no encounter.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    pv1: &Segment,
    trigger: Option<&str>,
    patient: &PatientRef,
) -> Result<Option<EncounterRef>> {
    let start = ctx.date_time(pv1, 44)?;
    let end = ctx.date_time(pv1, 45)?;
    let status = match trigger {
        Some(t) => status_for(t, end.is_some(), start.is_some()),
        // Outside ADT, a pre-admit visit (PV1-2 P) is planned (the IG's
        // table 0004 map); other visits by their dates.
        None if ctx.text(pv1, 2) == "P" && end.is_none() => Some("planned"),
        None => status_for("", end.is_some(), start.is_some()),
    };
    let Some(status) = status else {
        return Ok(None);
    };
    let class_field = ctx.name(pv1, 2);
    let class = codes::required(
        &class_field,
        "patient class",
        "patient_class",
        &ctx.text(pv1, 2),
        codes::patient_class,
    )?
    .ok_or_else(|| {
        Error::reject(format!(
            "{class_field} (patient class) is empty: an Encounter needs a class"
        ))
    })?;
    let mut e = Map::new();
    e.insert("resourceType".into(), "Encounter".into());
    let mut ids = Vec::new();
    let mut identity = None;
    if let Some(id) = identifier(&ctx.field(pv1, 19).repetition(1), ctx.facility()) {
        identity = system_value(&id);
        ids.push(id);
    }
    put_list(&mut e, "identifier", ids);
    e.insert("status".into(), status.into());
    let mut class_coding = Map::new();
    class_coding.insert("system".into(), codes::V3_ACT_CODE.into());
    if let Some(d) = codes::act_code_display(&class) {
        class_coding.insert("display".into(), d.into());
    }
    class_coding.insert("code".into(), Value::String(class));
    e.insert("class".into(), Value::Object(class_coding));
    put(
        &mut e,
        "type",
        concept(&ctx.text(pv1, 4), &codes::v2_table("0007")).map(|c| json!([c])),
    );
    put(
        &mut e,
        "serviceType",
        concept(&ctx.text(pv1, 10), &codes::v2_table("0069")),
    );
    e.insert("subject".into(), patient.reference());

    let mut participants = Vec::new();
    for (field, code, display) in [
        (7, "ATND", "attender"),
        (8, "REF", "referrer"),
        (9, "CON", "consultant"),
        (17, "ADM", "admitter"),
    ] {
        for individual in practitioner::map_all(ctx, bundle, ctx.field(pv1, field)) {
            participants.push(json!({
                "type": [{"coding": [{"system": codes::V3_PARTICIPATION, "code": code, "display": display}]}],
                "individual": individual,
            }));
        }
    }
    put_list(&mut e, "participant", participants);

    // A planned visit's period is the expected one (PV2-8 admit, PV2-9
    // discharge) when PV1-44/45 are empty.
    let pv2 = ctx.hl7.segment("PV2");
    let (mut start, mut end) = (start, end);
    if status == "planned"
        && let Some(pv2) = pv2
    {
        if start.is_none() {
            start = ctx.date_time(pv2, 8)?;
        }
        if end.is_none() {
            end = ctx.date_time(pv2, 9)?;
        }
    }
    put(&mut e, "period", period(start.clone(), end));

    if let Some(pv2) = pv2 {
        let reasons: Vec<Value> = ctx
            .field(pv2, 3)
            .repetitions()
            .filter_map(|r| codeable(&r, ""))
            .collect();
        put_list(&mut e, "reasonCode", reasons);
    }

    let mut hospitalization = Map::new();
    put(
        &mut hospitalization,
        "admitSource",
        concept(&ctx.text(pv1, 14), &codes::v2_table("0023")),
    );
    put(
        &mut hospitalization,
        "reAdmission",
        concept(&ctx.text(pv1, 13), &codes::v2_table("0092")),
    );
    put(
        &mut hospitalization,
        "dischargeDisposition",
        concept(&ctx.text(pv1, 36), &codes::v2_table("0112")),
    );
    if !hospitalization.is_empty() {
        e.insert("hospitalization".into(), Value::Object(hospitalization));
    }

    let mut locations = Vec::new();
    let here = if status == "finished" {
        "completed"
    } else {
        "active"
    };
    if let Some(r) = location::map(ctx, bundle, &ctx.field(pv1, 3).repetition(1)) {
        locations.push(json!({"location": r, "status": here}));
    }
    if let Some(r) = location::map(ctx, bundle, &ctx.field(pv1, 6).repetition(1)) {
        locations.push(json!({"location": r, "status": "completed"}));
    }
    put_list(&mut e, "location", locations);

    let url = match identity {
        Some((system, value)) => bundle.put("Encounter", &system, &value, Value::Object(e)),
        None => {
            // No visit number: the admit time identifies the visit, else
            // this message (so a resend updates, not duplicates).
            let key = match &start {
                Some(s) => patient.key(&format!("admit|{s}")),
                None => patient.key(&format!(
                    "message|{}|{}|{}",
                    ctx.header.sending_application,
                    ctx.facility(),
                    ctx.header.control_id
                )),
            };
            bundle.put_derived("Encounter", &key, e)
        }
    };
    Ok(Some(EncounterRef { url }))
}

/// The message's first PV1, mapped, when it has one (non-ADT messages: the
/// status comes from the visit's dates).
pub fn optional(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    patient: &PatientRef,
) -> Result<Option<EncounterRef>> {
    match ctx.hl7.segment("PV1") {
        Some(pv1) if !ctx.text(pv1, 2).is_empty() => map(ctx, bundle, pv1, None, patient),
        _ => Ok(None),
    }
}
