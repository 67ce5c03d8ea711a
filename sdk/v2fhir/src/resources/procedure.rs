//! PR1 (procedures) to Procedure.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{code_key, codeable, entity_identifier, put, put_list, system_value};
use crate::resources::encounter::EncounterRef;
use crate::resources::patient::PatientRef;
use crate::resources::practitioner;

/// A Procedure in the Bundle: its fullUrl and its code's key (what a
/// charge for it is matched on).
#[derive(Debug, Clone)]
pub struct ProcedureRef {
    /// The entry's fullUrl.
    pub url: String,
    /// [`code_key`] of its code.
    pub code: String,
}

impl ProcedureRef {
    /// A Reference to the Procedure.
    pub fn reference(&self) -> Value {
        crate::bundle::reference(&self.url)
    }
}

/// The `function` of a performer from a PR1 role field: the anesthesiologist
/// (PR1-8), the surgeon (PR1-11), any other practitioner (PR1-12).
fn function(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": codes::V3_PARTICIPATION, "code": code, "display": display}]})
}

/// Maps one PR1 as a procedure done (`completed`: a PR1 reports one). PR1-3
/// (procedure code, or PR1-4 its description in older versions) is
/// required. Its identity: PR1-19 (procedure identifier, v2.6 and later)
/// when sent, else the patient, the code and PR1-5 (when).
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    pr1: &Segment,
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
) -> Result<ProcedureRef> {
    let description = ctx.text(pr1, 4);
    let code = codeable(&ctx.field(pr1, 3).repetition(1), "")
        .or_else(|| (!description.is_empty()).then(|| json!({"text": description})))
        .ok_or_else(|| {
            Error::reject(format!(
                "{} (procedure code) and PR1-4 are empty: a procedure needs a code",
                ctx.name(pr1, 3)
            ))
        })?;
    let key_code = code_key(&code);
    let mut p = Map::new();
    p.insert("resourceType".into(), "Procedure".into());
    p.insert("status".into(), "completed".into());
    put(
        &mut p,
        "category",
        codeable(&ctx.field(pr1, 6).repetition(1), &codes::v2_table("0230")),
    );
    p.insert("code".into(), code);
    p.insert("subject".into(), patient.reference());
    put(&mut p, "encounter", encounter.map(EncounterRef::reference));
    let when = ctx.date_time(pr1, 5)?;
    put(&mut p, "performedDateTime", when.clone().map(Value::String));
    let mut performers = Vec::new();
    for (n, code, display) in [
        (8, "SPRF", "secondary performer"),
        (11, "PPRF", "primary performer"),
        (12, "PRF", "performer"),
    ] {
        for actor in practitioner::map_all(ctx, bundle, ctx.field(pr1, n)) {
            performers.push(json!({"function": function(code, display), "actor": actor}));
        }
    }
    put_list(&mut p, "performer", performers);
    let reasons: Vec<Value> = ctx
        .field(pr1, 15)
        .repetitions()
        .filter_map(|r| codeable(&r, ""))
        .collect();
    put_list(&mut p, "reasonCode", reasons);
    let id = entity_identifier(&ctx.field(pr1, 19).repetition(1), ctx.facility(), "");
    let url = match id.as_ref().and_then(system_value) {
        Some((system, value)) => {
            p.insert("identifier".into(), json!([id]));
            bundle.put("Procedure", &system, &value, Value::Object(p))
        }
        None => {
            let key = patient.key(&format!(
                "PR1|{key_code}|{}",
                when.as_deref().unwrap_or_default()
            ));
            bundle.put_derived("Procedure", &key, p)
        }
    };
    Ok(ProcedureRef {
        url,
        code: key_code,
    })
}

/// Every PR1 of `segments` (a message's, or one group's), mapped.
pub fn map_all<'m>(
    ctx: &Context<'m>,
    bundle: &mut Bundle,
    segments: impl IntoIterator<Item = &'m Segment>,
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
) -> Result<Vec<ProcedureRef>> {
    segments
        .into_iter()
        .filter(|s| s.id() == "PR1")
        .map(|pr1| map(ctx, bundle, pr1, patient, encounter))
        .collect()
}
