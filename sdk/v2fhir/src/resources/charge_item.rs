//! FT1 (financial transaction) to ChargeItem.

use weft_sdk::hl7::{Element, Segment};
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result, log};

use crate::bundle::Bundle;
use crate::context::Context;
use crate::datatypes::{codeable, comp, decimal, identifier, put, put_list, sub, system_value};
use crate::resources::account::AccountRef;
use crate::resources::encounter::EncounterRef;
use crate::resources::medication::NDC;
use crate::resources::patient::PatientRef;
use crate::resources::practitioner;
use crate::resources::procedure::ProcedureRef;

/// What a charge is posted against besides its patient.
#[derive(Debug, Clone, Default)]
pub struct Posting<'a> {
    /// The visit (PV1).
    pub encounter: Option<&'a EncounterRef>,
    /// The account (PID-18).
    pub account: Option<&'a AccountRef>,
    /// The procedures of the FT1's group (its PR1s): the charge's service
    /// is the one whose code is FT1-25's, else every one of them.
    pub procedures: &'a [ProcedureRef],
}

/// Whether FT1-6 (transaction type, table 0017) posts a charge: `CG`
/// (charge) or nothing said. Credits, payments, adjustments and co-payments
/// are not ChargeItems.
fn is_charge(kind: &str) -> bool {
    matches!(kind, "" | "CG")
}

/// A CP (composite price: MO amount `quantity&denomination` ^ price type
/// ^ …) to Money; `field` names it in the reject when the amount is not
/// a number.
fn money(field: &dyn std::fmt::Display, cp: &Element<'_>) -> Result<Option<Value>> {
    let Some(value) = decimal(field, &sub(cp, 1, 1))? else {
        return Ok(None);
    };
    let mut m = Map::new();
    m.insert("value".into(), Value::Number(value));
    let currency = sub(cp, 1, 2);
    // ISO 4217: three capital letters.
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        m.insert("currency".into(), Value::String(currency));
    }
    Ok(Some(Value::Object(m)))
}

/// Maps one FT1 posting a charge: `billable`, its code from FT1-7
/// (transaction code, else FT1-25 the procedure code; neither is a reject
/// naming FT1-7), when from FT1-4 (a period when it has an end), posted
/// FT1-5, quantity FT1-10, price FT1-11 (extended amount), reasons FT1-19,
/// performers FT1-20, enterer FT1-24, product FT1-29 (NDC). Its identity:
/// FT1-2 (transaction id) when sent, else the message (MSH-10) and the
/// FT1's set id (FT1-1). `None` (with a warning naming FT1-6) for a
/// transaction that is not a charge.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    ft1: &Segment,
    patient: &PatientRef,
    with: &Posting<'_>,
) -> Result<Option<String>> {
    let kind = ctx.text(ft1, 6);
    if !is_charge(&kind) {
        log::warn!(
            "{} is not a charge (table 0017: CD credit, PY payment, AJ adjustment, CO co-payment): no ChargeItem for this FT1",
            ctx.name(ft1, 6)
        );
        return Ok(None);
    }
    let procedure_code = codeable(&ctx.field(ft1, 25).repetition(1), "");
    let code = codeable(&ctx.field(ft1, 7).repetition(1), "")
        .or_else(|| procedure_code.clone())
        .ok_or_else(|| {
            Error::reject(format!(
                "{} (transaction code) and FT1-25 (procedure code) are empty: a charge needs a code",
                ctx.name(ft1, 7)
            ))
        })?;
    let mut c = Map::new();
    c.insert("resourceType".into(), "ChargeItem".into());
    c.insert("status".into(), "billable".into());
    c.insert("code".into(), code);
    c.insert("subject".into(), patient.reference());
    put(
        &mut c,
        "context",
        with.encounter.map(EncounterRef::reference),
    );
    let when = ctx.field(ft1, 4).repetition(1);
    let name = ctx.name(ft1, 4);
    let start = ctx.date_time_value(&name, comp(&when, 1).trim())?;
    let end = ctx.date_time_value(&name, comp(&when, 2).trim())?;
    match (start, end) {
        (start, Some(end)) => {
            let mut p = Map::new();
            put(&mut p, "start", start.map(Value::String));
            p.insert("end".into(), Value::String(end));
            c.insert("occurrencePeriod".into(), Value::Object(p));
        }
        (Some(start), None) => {
            c.insert("occurrenceDateTime".into(), Value::String(start));
        }
        (None, None) => {}
    }
    let performers = practitioner::actors(ctx, bundle, ctx.field(ft1, 20));
    put_list(&mut c, "performer", performers);
    put(
        &mut c,
        "enterer",
        practitioner::map(ctx, bundle, &ctx.field(ft1, 24).repetition(1)),
    );
    if let Some(q) = decimal(&ctx.name(ft1, 10), &ctx.text(ft1, 10))? {
        c.insert("quantity".into(), json!({ "value": q }));
    }
    put(
        &mut c,
        "priceOverride",
        money(&ctx.name(ft1, 11), &ctx.field(ft1, 11).repetition(1))?,
    );
    put(
        &mut c,
        "enteredDate",
        ctx.date_time(ft1, 5)?.map(Value::String),
    );
    let reasons: Vec<Value> = ctx
        .field(ft1, 19)
        .repetitions()
        .filter_map(|r| codeable(&r, ""))
        .collect();
    put_list(&mut c, "reason", reasons);
    let wanted = procedure_code
        .as_ref()
        .map(crate::datatypes::code_key)
        .unwrap_or_default();
    let matching: Vec<&ProcedureRef> = with
        .procedures
        .iter()
        .filter(|p| !wanted.is_empty() && p.code == wanted)
        .collect();
    let services: Vec<Value> = if matching.is_empty() {
        with.procedures
            .iter()
            .map(ProcedureRef::reference)
            .collect()
    } else {
        matching.into_iter().map(ProcedureRef::reference).collect()
    };
    put_list(&mut c, "service", services);
    put(
        &mut c,
        "productCodeableConcept",
        codeable(&ctx.field(ft1, 29).repetition(1), NDC),
    );
    put_list(
        &mut c,
        "account",
        with.account
            .map(AccountRef::reference)
            .into_iter()
            .collect(),
    );
    let id = identifier(&ctx.field(ft1, 2).repetition(1), ctx.facility());
    Ok(Some(match id.as_ref().and_then(system_value) {
        Some((system, value)) => {
            c.insert("identifier".into(), json!([id]));
            bundle.put("ChargeItem", &system, &value, Value::Object(c))
        }
        None => {
            let key = patient.key(&format!(
                "FT1|{}|{}",
                ctx.header.control_id,
                ctx.text(ft1, 1)
            ));
            bundle.put_derived("ChargeItem", &key, c)
        }
    }))
}
