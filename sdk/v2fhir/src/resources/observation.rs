//! OBX (observation/result) to Observation: the value by its value type
//! (OBX-2), units, reference range, interpretation and status.

use weft_sdk::hl7::{Element, Segment};
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result, log};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{code_key, codeable, comp, decimal, put, put_list, quantity};
use crate::resources::encounter::EncounterRef;
use crate::resources::patient::PatientRef;
use crate::resources::practitioner;

/// What an Observation takes from around its OBX: the patient, the visit,
/// the order it answers and the key of that order (for its identity).
pub struct Around<'a> {
    /// The Patient.
    pub patient: &'a PatientRef,
    /// The Encounter, when the message has a visit.
    pub encounter: Option<&'a EncounterRef>,
    /// OBR-7 (observation date/time), used when OBX-14 is empty.
    pub effective: Option<String>,
    /// A Reference to the ServiceRequest this result answers.
    pub based_on: Option<Value>,
    /// References to the specimens of the order.
    pub specimens: Vec<Value>,
    /// The order's identity (filler or placer number), or the message's.
    pub order_key: String,
}

impl<'a> Around<'a> {
    /// Observations of the message itself (no order): the patient's, or
    /// the visit's.
    pub fn message(
        ctx: &Context<'_>,
        patient: &'a PatientRef,
        encounter: Option<&'a EncounterRef>,
    ) -> Around<'a> {
        Around {
            patient,
            encounter,
            effective: None,
            based_on: None,
            specimens: Vec::new(),
            order_key: format!("message|{}|{}", ctx.facility(), ctx.header.control_id),
        }
    }
}

/// Maps one OBX; `ordinal` is its position among the order's OBX
/// segments (part of its identity, so two results with the same code stay
/// two Observations).
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    obx: &Segment,
    ordinal: usize,
    around: &Around<'_>,
) -> Result<String> {
    let code_field = ctx.name(obx, 3);
    let code = codeable(&ctx.field(obx, 3).repetition(1), "").ok_or_else(|| {
        Error::reject(format!(
            "{code_field} (observation identifier) is empty: a result needs a code"
        ))
    })?;
    let status_field = ctx.name(obx, 11);
    let status = match codes::required(
        &status_field,
        "observation result status",
        "observation_status",
        &ctx.text(obx, 11),
        codes::observation_status,
    )? {
        Some(s) => s,
        None => {
            log::warn!(
                "{status_field} (observation result status) is empty: Observation.status is unknown"
            );
            "unknown".to_string()
        }
    };
    let mut o = Map::new();
    o.insert("resourceType".into(), "Observation".into());
    put(
        &mut o,
        "basedOn",
        around.based_on.clone().map(|r| json!([r])),
    );
    o.insert("status".into(), Value::String(status));
    let key_code = code_key(&code);
    o.insert("code".into(), code);
    o.insert("subject".into(), around.patient.reference());
    put(
        &mut o,
        "encounter",
        around.encounter.map(EncounterRef::reference),
    );
    let effective = ctx.date_time(obx, 14)?.or_else(|| around.effective.clone());
    put(&mut o, "effectiveDateTime", effective.map(Value::String));
    let performers = practitioner::map_all(ctx, bundle, ctx.field(obx, 16));
    put_list(&mut o, "performer", performers);

    value(ctx, obx, &mut o)?;

    let interpretations: Vec<Value> = ctx
        .field(obx, 8)
        .repetitions()
        .filter_map(|r| interpretation(ctx, obx, &r))
        .collect();
    put_list(&mut o, "interpretation", interpretations);
    put(
        &mut o,
        "method",
        codeable(&ctx.field(obx, 17).repetition(1), ""),
    );
    if let Some(range) = reference_range(&ctx.text(obx, 7), &ctx.field(obx, 6).repetition(1)) {
        o.insert("referenceRange".into(), json!([range]));
    }
    if let Some(s) = around.specimens.first() {
        o.insert("specimen".into(), s.clone());
    }
    // The NTE segments right after the OBX are its comments.
    let comments = crate::resources::service_request::notes_after(ctx, obx);
    if !comments.is_empty() {
        let notes = o.entry("note").or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = notes {
            list.extend(comments.into_iter().map(|t| json!({"text": t})));
        }
    }
    let key = around.patient.key(&format!(
        "{}|OBX|{ordinal}|{key_code}|{}",
        around.order_key,
        ctx.text(obx, 4)
    ));
    Ok(bundle.put_derived("Observation", &key, o))
}

/// OBX-5 by the value type in OBX-2.
fn value(ctx: &Context<'_>, obx: &Segment, o: &mut Map<String, Value>) -> Result<()> {
    let value_type = ctx.text(obx, 2);
    let field = ctx.name(obx, 5);
    let reps: Vec<Element<'_>> = ctx
        .field(obx, 5)
        .repetitions()
        .filter(|r| !r.is_empty())
        .collect();
    let Some(first) = reps.first() else {
        return Ok(());
    };
    let units = ctx.field(obx, 6).repetition(1);
    match value_type.as_str() {
        "NM" => {
            if let Some(n) = decimal(&field, &first.value())? {
                o.insert("valueQuantity".into(), quantity(n, &units));
            }
            if reps.len() > 1 {
                // FHIR has one value: the further ones are kept as a note.
                let rest: Vec<String> = reps[1..]
                    .iter()
                    .map(|r| r.value().trim().to_string())
                    .collect();
                log::warn!(
                    "{field}: {} further values of a repeating NM kept in Observation.note",
                    rest.len()
                );
                o.insert(
                    "note".into(),
                    json!([{"text": format!("further values ({field} repetitions): {}", rest.join(", "))}]),
                );
            }
        }
        "ST" | "TX" | "FT" | "IS" | "ID" => {
            let text: Vec<String> = reps.iter().map(|r| r.value().to_string()).collect();
            o.insert("valueString".into(), Value::String(text.join("\n")));
        }
        "CE" | "CWE" | "CNE" | "CF" => {
            if let Some(cc) = codeable(first, "") {
                o.insert("valueCodeableConcept".into(), cc);
            }
        }
        "SN" => {
            if let Some(v) = structured_numeric(&field, first, &units)? {
                let (key, v) = v;
                o.insert(key.into(), v);
            }
        }
        "DT" | "DTM" | "TS" => {
            let v = ctx.date_time_value(&field, first.part(1).value().trim())?;
            put(o, "valueDateTime", v.map(Value::String));
        }
        "TM" => {
            let t = first.value().trim().to_string();
            match fhir_time(&t) {
                Some(t) => {
                    o.insert("valueTime".into(), Value::String(t));
                }
                None => {
                    return Err(Error::reject(format!(
                        "{field} is not a valid HL7 time (TM)"
                    )));
                }
            }
        }
        "RP" => {
            // A reference pointer: the pointer itself is the value.
            o.insert("valueString".into(), Value::String(comp(first, 1)));
        }
        "" => {
            return Err(Error::reject(format!(
                "{} (value type) is empty while OBX-5 holds a value: the value cannot be read",
                ctx.name(obx, 2)
            )));
        }
        other => {
            log::warn!(
                "{field}: value type {other} is not mapped; the Observation carries a data-absent reason"
            );
            o.insert(
                "dataAbsentReason".into(),
                json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unsupported", "display": "Unsupported"}]}),
            );
        }
    }
    Ok(())
}

/// SN: comparator ^ number ^ separator/suffix ^ number.
fn structured_numeric(
    field: &dyn std::fmt::Display,
    sn: &Element<'_>,
    units: &Element<'_>,
) -> Result<Option<(&'static str, Value)>> {
    let comparator = comp(sn, 1);
    let n1 = decimal(field, &comp(sn, 2))?;
    let sep = comp(sn, 3);
    let n2 = decimal(field, &comp(sn, 4))?;
    Ok(match (sep.as_str(), n1, n2) {
        (":" | "/", Some(a), Some(b)) => Some((
            "valueRatio",
            json!({"numerator": {"value": a}, "denominator": {"value": b}}),
        )),
        ("-", Some(a), Some(b)) => Some((
            "valueRange",
            json!({"low": quantity(a, units), "high": quantity(b, units)}),
        )),
        ("" | "+", Some(a), None) => {
            let mut q = quantity(a, units);
            match comparator.as_str() {
                "" | "=" => {}
                "<" | ">" | "<=" | ">=" => {
                    q["comparator"] = Value::String(comparator);
                }
                _ => {
                    return Err(Error::reject(format!(
                        "{field} (SN) has a comparator FHIR cannot express (allowed: <, >, <=, >=, =)"
                    )));
                }
            }
            Some(("valueQuantity", q))
        }
        (_, None, None) => None,
        _ => {
            return Err(Error::reject(format!(
                "{field} (SN) is not comparator^number or number^separator^number"
            )));
        }
    })
}

/// HL7 TM (HHMM[SS[.S]]) to FHIR time (HH:MM:SS).
fn fhir_time(t: &str) -> Option<String> {
    let t = t.split(['+', '-']).next().unwrap_or_default();
    let digits: &str = t.split('.').next().unwrap_or_default();
    if !(digits.len() == 2 || digits.len() == 4 || digits.len() == 6)
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let part = |i: usize| {
        digits
            .get(i..i + 2)
            .and_then(|s| s.parse::<u8>().ok())
            .unwrap_or(0)
    };
    let (h, m, s) = (part(0), part(2), part(4));
    (h < 24 && m < 60 && s < 60).then(|| format!("{h:02}:{m:02}:{s:02}"))
}

/// OBX-8, one abnormal flag: a v3 ObservationInterpretation code when the
/// IG maps it one to one; else kept in v2-0078 with a warning.
fn interpretation(ctx: &Context<'_>, obx: &Segment, r: &Element<'_>) -> Option<Value> {
    let code = comp(r, 1);
    if code.is_empty() {
        return None;
    }
    let display = comp(r, 2);
    let mut coding = Map::new();
    match codes::lookup_or("abnormal_flag", &code, codes::interpretation) {
        Some(v3) => {
            coding.insert("system".into(), codes::V3_INTERPRETATION.into());
            coding.insert("code".into(), Value::String(v3));
        }
        None => {
            log::warn!(
                "{}: abnormal flag not in table 0078; kept with its v2 code",
                ctx.name(obx, 8)
            );
            coding.insert("system".into(), Value::String(codes::v2_table("0078")));
            coding.insert("code".into(), Value::String(code));
        }
    }
    if !display.is_empty() {
        coding.insert("display".into(), Value::String(display));
    }
    Some(json!({"coding": [coding]}))
}

/// OBX-7 to a reference range: `low-high` as numbers (with OBX-6's units);
/// always with the original text.
fn reference_range(text: &str, units: &Element<'_>) -> Option<Value> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut r = Map::new();
    // A leading '-' belongs to the low value.
    let split = text
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '-')
        .map(|(i, _)| i);
    if let Some(i) = split {
        let (low, high) = (&text[..i], &text[i + 1..]);
        if let (Ok(Some(l)), Ok(Some(h))) = (decimal(&"", low), decimal(&"", high)) {
            r.insert("low".into(), quantity(l, units));
            r.insert("high".into(), quantity(h, units));
        }
    }
    r.insert("text".into(), Value::String(text.to_string()));
    Some(Value::Object(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(fhir_time("1130").as_deref(), Some("11:30:00"));
        assert_eq!(fhir_time("113005").as_deref(), Some("11:30:05"));
        assert_eq!(fhir_time("2560"), None);
        assert_eq!(fhir_time("11:30"), None);
    }
}
