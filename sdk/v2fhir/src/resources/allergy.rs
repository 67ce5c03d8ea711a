//! AL1 (allergy) and IAM (patient adverse reaction, ADT^A60) to
//! AllergyIntolerance.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{code_key, codeable, entity_identifier, put};
use crate::resources::patient::PatientRef;

/// Maps one AL1 or IAM (fields 2-5 are the same in both: type, allergen,
/// severity, reactions). AL1-3/IAM-3 (the allergen) is required: without
/// it there is nothing to record, and the message is rejected naming the
/// field. An IAM adds its action (IAM-6: `D` delete makes the record
/// entered-in-error), unique identifier (IAM-7), kind (IAM-9), onset
/// (IAM-11), recorded date (IAM-13) and clinical status (IAM-17). Both
/// are identified by the patient and the allergen, so an IAM updates the
/// record an AL1 made.
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
    let iam = al1.id() == "IAM";
    let (clinical, verification) = if iam {
        iam_status(ctx, al1)
    } else {
        (Some("active"), "confirmed")
    };
    let mut a = Map::new();
    a.insert("resourceType".into(), "AllergyIntolerance".into());
    if iam {
        let id = entity_identifier(&ctx.field(al1, 7).repetition(1), ctx.facility(), "");
        put(&mut a, "identifier", id.map(|i| json!([i])));
    }
    if let Some(c) = clinical {
        a.insert(
            "clinicalStatus".into(),
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": c}]}),
        );
    }
    a.insert(
        "verificationStatus".into(),
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": verification}]}),
    );
    if iam {
        let kind = match ctx.text(al1, 9).as_str() {
            "AL" => Some("allergy"),
            "IN" | "SE" | "AD" => Some("intolerance"),
            _ => None,
        };
        put(&mut a, "type", kind.map(|k| Value::String(k.into())));
    }
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
        ctx.date_time(al1, if iam { 11 } else { 6 })?
            .map(Value::String),
    );
    if iam {
        put(
            &mut a,
            "recordedDate",
            ctx.date_time(al1, 13)?.map(Value::String),
        );
    }
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

/// Every AL1 and IAM of the message.
pub fn map_all(ctx: &Context<'_>, bundle: &mut Bundle, patient: &PatientRef) -> Result<()> {
    for seg in ctx.hl7.segments() {
        if matches!(seg.id(), "AL1" | "IAM") {
            map(ctx, bundle, seg, patient)?;
        }
    }
    Ok(())
}

/// An IAM's clinical and verification status: IAM-6 `D` (delete) or
/// IAM-17 `E` (erroneous) make the record entered-in-error (and FHIR then
/// forbids a clinical status); IAM-17 (table 0438) `C` confirmed, `I`
/// confirmed but inactive, `U`/`P`/`S`/`D` unconfirmed; empty: confirmed
/// and active, as an AL1.
fn iam_status(ctx: &Context<'_>, iam: &Segment) -> (Option<&'static str>, &'static str) {
    if ctx.text(iam, 6) == "D" {
        return (None, "entered-in-error");
    }
    match ctx.text(iam, 17).as_str() {
        "E" => (None, "entered-in-error"),
        "I" => (Some("inactive"), "confirmed"),
        "U" | "P" | "S" | "D" => (Some("active"), "unconfirmed"),
        _ => (Some("active"), "confirmed"),
    }
}
