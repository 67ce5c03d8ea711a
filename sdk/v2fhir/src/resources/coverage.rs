//! IN1 (insurance) to Coverage, with the insurer as an Organization.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Result, log};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{address, codeable, comp, identifier, period, put, put_list, system_value};
use crate::resources::patient::PatientRef;

fn subscriber_relationship(code: &str) -> Option<&'static str> {
    Some(match code {
        "SEL" => "self",
        "SPO" => "spouse",
        "CHD" | "FCH" | "SCH" => "child",
        "PAR" | "MTH" | "FTH" => "parent",
        "DOM" => "common",
        "" => return None,
        _ => "other",
    })
}

/// Maps one IN1. A Coverage needs a payor: without IN1-3 (company id) and
/// IN1-4 (company name) the IN1 is left out with a warning (the rest of the
/// message still maps) and `None` is returned.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    in1: &Segment,
    patient: &PatientRef,
) -> Result<Option<String>> {
    let company_name = ctx.text(in1, 4);
    let company_id = identifier(&ctx.field(in1, 3).repetition(1), ctx.facility());
    let payor = match company_id.as_ref().and_then(system_value) {
        Some((system, value)) => {
            let mut org = Map::new();
            org.insert("resourceType".into(), "Organization".into());
            org.insert("identifier".into(), json!([company_id]));
            if !company_name.is_empty() {
                org.insert("name".into(), Value::String(company_name.clone()));
            }
            let addresses: Vec<Value> = ctx
                .field(in1, 5)
                .repetitions()
                .filter_map(|a| address(&a))
                .collect();
            put_list(&mut org, "address", addresses);
            let url = bundle.put("Organization", &system, &value, Value::Object(org));
            json!({"reference": url})
        }
        None if !company_name.is_empty() => json!({"display": company_name}),
        None => {
            log::warn!(
                "{} (insurance company id) and IN1-4 (company name) are empty: no Coverage without a payor; IN1 left out",
                ctx.name(in1, 3)
            );
            return Ok(None);
        }
    };
    let mut c = Map::new();
    c.insert("resourceType".into(), "Coverage".into());
    let policy = ctx.text(in1, 36);
    if !policy.is_empty() {
        c.insert("identifier".into(), json!([{"value": policy}]));
    }
    c.insert("status".into(), "active".into());
    put(
        &mut c,
        "type",
        codeable(&ctx.field(in1, 15).repetition(1), &codes::v2_table("0086")),
    );
    let insured_id = ctx.field(in1, 49).repetition(1);
    let subscriber_id = comp(&insured_id, 1);
    if !subscriber_id.is_empty() {
        c.insert("subscriberId".into(), Value::String(subscriber_id));
    } else if !policy.is_empty() {
        c.insert("subscriberId".into(), Value::String(policy.clone()));
    }
    c.insert("beneficiary".into(), patient.reference());
    let rel = ctx
        .field(in1, 17)
        .repetition(1)
        .part(1)
        .value()
        .trim()
        .to_string();
    if let Some(r) = subscriber_relationship(&rel) {
        c.insert(
            "relationship".into(),
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": r}]}),
        );
    }
    let start = ctx.date(in1, 12)?;
    let end = ctx.date(in1, 13)?;
    put(&mut c, "period", period(start, end));
    c.insert("payor".into(), json!([payor]));
    let mut classes = Vec::new();
    let plan = ctx.field(in1, 2).repetition(1);
    let group_no = ctx.text(in1, 8);
    for (kind, value, name) in [
        ("plan", comp(&plan, 1), comp(&plan, 2)),
        ("group", group_no.clone(), ctx.text(in1, 9)),
    ] {
        if value.is_empty() {
            continue;
        }
        let mut class = Map::new();
        class.insert(
            "type".into(),
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": kind}]}),
        );
        class.insert("value".into(), Value::String(value));
        if !name.is_empty() {
            class.insert("name".into(), Value::String(name));
        }
        classes.push(Value::Object(class));
    }
    put_list(&mut c, "class", classes);
    let key = patient.key(&format!(
        "IN1|{}|{}|{policy}|{group_no}",
        ctx.field(in1, 3).repetition(1).raw(),
        plan.raw()
    ));
    Ok(Some(bundle.put_derived("Coverage", &key, c)))
}

/// Every IN1 of the message.
pub fn map_all(ctx: &Context<'_>, bundle: &mut Bundle, patient: &PatientRef) -> Result<()> {
    for in1 in ctx.hl7.segments_named("IN1") {
        map(ctx, bundle, in1, patient)?;
    }
    Ok(())
}
