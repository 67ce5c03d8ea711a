//! XCN (a person in a role: attending doctor, orderer, performer, …) to
//! Practitioner.

use weft_sdk::hl7::Element;
use weft_sdk::serde_json::{Map, Value, json};

use crate::bundle::Bundle;
use crate::context::Context;
use crate::datatypes::{authority_system, comp, name_display, sub, xcn_name};

/// Maps one XCN: with an id (XCN.1) the Practitioner is added to the Bundle
/// (`PUT Practitioner?identifier=…`, the system from XCN.9 or the sending
/// facility) and a Reference to it is returned; with a name only, a
/// Reference carrying the name as display; with neither, `None`.
pub fn map(ctx: &Context<'_>, bundle: &mut Bundle, xcn: &Element<'_>) -> Option<Value> {
    let id = comp(xcn, 1);
    let name = xcn_name(xcn);
    let display = name.as_ref().map(name_display).filter(|d| !d.is_empty());
    if id.is_empty() {
        return display.map(|d| json!({"display": d}));
    }
    let system = authority_system(
        &sub(xcn, 9, 1),
        &sub(xcn, 9, 2),
        &sub(xcn, 9, 3),
        ctx.facility(),
    )?;
    let mut p = Map::new();
    p.insert("resourceType".into(), "Practitioner".into());
    let mut identifier = Map::new();
    let type_code = comp(xcn, 13);
    if !type_code.is_empty() {
        identifier.insert(
            "type".into(),
            json!({"coding": [{"system": crate::codes::v2_table("0203"), "code": type_code}]}),
        );
    }
    identifier.insert("system".into(), Value::String(system.clone()));
    identifier.insert("value".into(), Value::String(id.clone()));
    p.insert("identifier".into(), json!([identifier]));
    if let Some(n) = name {
        p.insert("name".into(), json!([n]));
    }
    let url = bundle.put("Practitioner", &system, &id, Value::Object(p));
    let mut r = Map::new();
    r.insert("reference".into(), Value::String(url));
    if let Some(d) = display {
        r.insert("display".into(), Value::String(d));
    }
    Some(Value::Object(r))
}

/// Every repetition of an XCN field, mapped.
pub fn map_all(ctx: &Context<'_>, bundle: &mut Bundle, field: Element<'_>) -> Vec<Value> {
    field
        .repetitions()
        .filter_map(|r| map(ctx, bundle, &r))
        .collect()
}

/// Every repetition of an XCN field, mapped, each as `{"actor": …}` (the
/// performer of a dispense or an administration).
pub fn actors(ctx: &Context<'_>, bundle: &mut Bundle, field: Element<'_>) -> Vec<Value> {
    map_all(ctx, bundle, field)
        .into_iter()
        .map(|actor| json!({ "actor": actor }))
        .collect()
}
