//! NK1 (next of kin / associated party) to RelatedPerson.

use weft_sdk::Result;
use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{address, codeable, contact_point, human_name, period, put, put_list};
use crate::resources::patient::PatientRef;

/// Where a segment carries a person related to the patient (NK1's
/// fields, GT1's for a guarantor).
pub struct PersonFields {
    /// XPN names.
    pub name: usize,
    /// XAD addresses.
    pub address: usize,
    /// XTN phones at home.
    pub home: usize,
    /// XTN phones at work.
    pub work: usize,
    /// Administrative sex (table 0001).
    pub gender: usize,
    /// Date of birth.
    pub birth_date: usize,
}

const NK1: PersonFields = PersonFields {
    name: 2,
    address: 4,
    home: 5,
    work: 6,
    gender: 15,
    birth_date: 16,
};

/// A RelatedPerson of `patient` from the fields `f` of `seg`, with
/// `relationship`: its JSON and its first name as sent (for its key), or
/// `None` when it names nobody (no name, address or phone).
pub fn person(
    ctx: &Context<'_>,
    seg: &Segment,
    f: &PersonFields,
    patient: &PatientRef,
    relationship: Vec<Value>,
) -> Result<Option<(Map<String, Value>, String)>> {
    let names: Vec<Value> = ctx
        .field(seg, f.name)
        .repetitions()
        .filter_map(|n| human_name(&n))
        .collect();
    let mut telecom: Vec<Value> = ctx
        .field(seg, f.home)
        .repetitions()
        .filter_map(|t| contact_point(&t, "home"))
        .collect();
    telecom.extend(
        ctx.field(seg, f.work)
            .repetitions()
            .filter_map(|t| contact_point(&t, "work")),
    );
    let addresses: Vec<Value> = ctx
        .field(seg, f.address)
        .repetitions()
        .filter_map(|a| address(&a))
        .collect();
    if names.is_empty() && telecom.is_empty() && addresses.is_empty() {
        return Ok(None);
    }
    let mut r = Map::new();
    r.insert("resourceType".into(), "RelatedPerson".into());
    r.insert("active".into(), Value::Bool(true));
    r.insert("patient".into(), patient.reference());
    put_list(&mut r, "relationship", relationship);
    let name_key = names.first().map(Value::to_string).unwrap_or_default();
    put_list(&mut r, "name", names);
    put_list(&mut r, "telecom", telecom);
    put_list(&mut r, "address", addresses);
    let gender = codes::optional(
        &ctx.name(seg, f.gender),
        "gender",
        &ctx.text(seg, f.gender),
        codes::gender,
    );
    put(&mut r, "gender", gender.map(Value::String));
    put(
        &mut r,
        "birthDate",
        ctx.date(seg, f.birth_date)?.map(Value::String),
    );
    Ok(Some((r, name_key)))
}

/// Maps one NK1; `None` when it names nobody (no name, address or phone).
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    nk1: &Segment,
    patient: &PatientRef,
) -> Result<Option<String>> {
    let mut relationship: Vec<Value> = ctx
        .field(nk1, 3)
        .repetitions()
        .filter_map(|rep| codeable(&rep, &codes::v2_table("0063")))
        .collect();
    relationship.extend(
        ctx.field(nk1, 7)
            .repetitions()
            .filter_map(|rep| codeable(&rep, &codes::v2_table("0131"))),
    );
    let Some((mut r, name_key)) = person(ctx, nk1, &NK1, patient, relationship)? else {
        return Ok(None);
    };
    let start = ctx.date(nk1, 8)?;
    let end = ctx.date(nk1, 9)?;
    put(&mut r, "period", period(start, end));
    // Keyed on the patient and the person's first name as sent: a resend
    // updates, a second contact is a second RelatedPerson.
    let key = patient.key(&format!("NK1|{name_key}|{}", json!(ctx.text(nk1, 3))));
    Ok(Some(bundle.put_derived("RelatedPerson", &key, r)))
}

/// Every NK1 of the message.
pub fn map_all(ctx: &Context<'_>, bundle: &mut Bundle, patient: &PatientRef) -> Result<()> {
    for nk1 in ctx.hl7.segments_named("NK1") {
        map(ctx, bundle, nk1, patient)?;
    }
    Ok(())
}
