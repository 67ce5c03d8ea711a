//! DG1 (diagnosis) to Condition.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::context::Context;
use crate::datatypes::{code_key, codeable, entity_identifier, put, system_value};
use crate::resources::encounter::EncounterRef;
use crate::resources::patient::PatientRef;
use crate::resources::practitioner;

/// Maps one DG1 as an encounter diagnosis. DG1-3 (the diagnosis code, or
/// DG1-4 its description in older versions) is required.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    dg1: &Segment,
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
) -> Result<String> {
    let description = ctx.text(dg1, 4);
    let code = codeable(&ctx.field(dg1, 3).repetition(1), "")
        .or_else(|| (!description.is_empty()).then(|| json!({"text": description})))
        .ok_or_else(|| {
            Error::reject(format!(
                "{} (diagnosis code) and DG1-4 are empty: a diagnosis needs a code",
                ctx.name(dg1, 3)
            ))
        })?;
    let mut c = Map::new();
    c.insert("resourceType".into(), "Condition".into());
    let id = entity_identifier(&ctx.field(dg1, 20).repetition(1), ctx.facility(), "");
    c.insert(
        "category".into(),
        json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}]),
    );
    let key_code = code_key(&code);
    c.insert("code".into(), code);
    c.insert("subject".into(), patient.reference());
    put(&mut c, "encounter", encounter.map(EncounterRef::reference));
    put(
        &mut c,
        "onsetDateTime",
        ctx.date_time(dg1, 5)?.map(Value::String),
    );
    put(
        &mut c,
        "recordedDate",
        ctx.date_time(dg1, 19)?.map(Value::String),
    );
    put(
        &mut c,
        "asserter",
        practitioner::map(ctx, bundle, &ctx.field(dg1, 16).repetition(1)),
    );
    if let Some(id) = id
        && let Some((system, value)) = system_value(&id)
    {
        c.insert("identifier".into(), json!([id]));
        return Ok(bundle.put("Condition", &system, &value, Value::Object(c)));
    }
    let key = patient.key(&format!("DG1|{key_code}"));
    Ok(bundle.put_derived("Condition", &key, c))
}

/// Every DG1 of the message; their fullUrls.
pub fn map_all(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
) -> Result<Vec<String>> {
    ctx.hl7
        .segments_named("DG1")
        .map(|dg1| map(ctx, bundle, dg1, patient, encounter))
        .collect()
}
