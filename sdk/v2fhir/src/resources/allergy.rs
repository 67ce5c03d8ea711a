//! AL1 (allergy) to AllergyIntolerance.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{code_key, codeable, put};
use crate::resources::patient::PatientRef;

/// Maps one AL1. AL1-3 (the allergen) is required: without it there is
/// nothing to record, and the message is rejected naming the field.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    al1: &Segment,
    patient: &PatientRef,
) -> Result<String> {
    let field = ctx.name(al1, 3);
    let code = codeable(&ctx.field(al1, 3).repetition(1), "").ok_or_else(|| {
        Error::reject(format!(
            "{field} (allergen) is empty: an allergy needs its allergen"
        ))
    })?;
    let mut a = Map::new();
    a.insert("resourceType".into(), "AllergyIntolerance".into());
    a.insert(
        "clinicalStatus".into(),
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]}),
    );
    a.insert(
        "verificationStatus".into(),
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed"}]}),
    );
    let type_el = ctx.field(al1, 2).repetition(1);
    let type_code = type_el.part(1).value().trim().to_string();
    if let Some(category) = codes::optional(
        &ctx.name(al1, 2),
        "allergen_type",
        &type_code,
        codes::allergy_category,
    ) {
        a.insert("category".into(), json!([category]));
    }
    let severity = ctx
        .field(al1, 4)
        .repetition(1)
        .part(1)
        .value()
        .trim()
        .to_string();
    let criticality = codes::optional(
        &ctx.name(al1, 4),
        "allergy_severity",
        &severity,
        codes::allergy_criticality,
    );
    put(&mut a, "criticality", criticality.map(Value::String));
    let key_code = code_key(&code);
    a.insert("code".into(), code);
    a.insert("patient".into(), patient.reference());
    put(
        &mut a,
        "onsetDateTime",
        ctx.date_time(al1, 6)?.map(Value::String),
    );
    let reactions: Vec<Value> = ctx
        .field(al1, 5)
        .repetitions()
        .map(|r| r.value().trim().to_string())
        .filter(|t| !t.is_empty())
        .map(|t| json!({"text": t}))
        .collect();
    if !reactions.is_empty() {
        a.insert("reaction".into(), json!([{"manifestation": reactions}]));
    }
    let key = patient.key(&format!("AL1|{key_code}"));
    Ok(bundle.put_derived("AllergyIntolerance", &key, a))
}

/// Every AL1 of the message.
pub fn map_all(ctx: &Context<'_>, bundle: &mut Bundle, patient: &PatientRef) -> Result<()> {
    for al1 in ctx.hl7.segments_named("AL1") {
        map(ctx, bundle, al1, patient)?;
    }
    Ok(())
}
