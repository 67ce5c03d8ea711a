//! PL (person location: point of care ^ room ^ bed ^ facility ^ status ^
//! type ^ building ^ floor ^ description) to Location.

use weft_sdk::hl7::Element;
use weft_sdk::serde_json::{Map, Value, json};

use crate::bundle::Bundle;
use crate::context::Context;
use crate::datatypes::{authority_system, comp, put_str, sub};

/// Maps one PL to a Location (the most specific level given: bed, room or
/// point of care), matched on an identifier made of the levels under the
/// facility's system; returns a Reference, or `None` when the PL is empty.
pub fn map(ctx: &Context<'_>, bundle: &mut Bundle, pl: &Element<'_>) -> Option<Value> {
    let levels: Vec<String> = [1, 2, 3, 7, 8].into_iter().map(|c| comp(pl, c)).collect();
    let (poc, room, bed) = (&levels[0], &levels[1], &levels[2]);
    let description = comp(pl, 9);
    let parts: Vec<&str> = [poc, room, bed]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(String::as_str)
        .collect();
    if parts.is_empty() && description.is_empty() {
        return None;
    }
    let name = if description.is_empty() {
        parts.join(" ")
    } else {
        description.clone()
    };
    let facility = sub(pl, 4, 1);
    let system = authority_system(&facility, &sub(pl, 4, 2), &sub(pl, 4, 3), ctx.facility())?;
    let value = if parts.is_empty() {
        description
    } else {
        parts.join("^")
    };
    let (code, display) = if !bed.is_empty() {
        ("bd", "Bed")
    } else if !room.is_empty() {
        ("ro", "Room")
    } else {
        ("wa", "Ward")
    };
    let mut l = Map::new();
    l.insert("resourceType".into(), "Location".into());
    l.insert(
        "identifier".into(),
        json!([{"system": system, "value": value}]),
    );
    l.insert("status".into(), "active".into());
    l.insert("name".into(), Value::String(name.clone()));
    l.insert("mode".into(), "instance".into());
    l.insert(
        "physicalType".into(),
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": code, "display": display}]}),
    );
    let mut desc = Vec::new();
    if !levels[3].is_empty() {
        desc.push(format!("building {}", levels[3]));
    }
    if !levels[4].is_empty() {
        desc.push(format!("floor {}", levels[4]));
    }
    put_str(&mut l, "description", desc.join(", "));
    let url = bundle.put("Location", &system, &value, Value::Object(l));
    Some(json!({"reference": url, "display": name}))
}
