//! PV1 to Encounter.

use weft_sdk::hl7::{Message, Segment};
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result, lookup};

use crate::datatypes::{comp, date_time, identifier};

/// Encounter.status for a trigger event. `None`: the event carries no
/// encounter (A28/A31 are person updates).
pub fn status_for(trigger: &str, has_discharge: bool, has_admit: bool) -> Option<&'static str> {
    Some(match trigger {
        "A01" | "A02" | "A06" | "A07" | "A09" | "A10" | "A13" | "A15" | "A16" | "A25" | "A26" => {
            "in-progress"
        }
        "A03" => "finished",
        "A04" => "arrived",
        "A05" | "A14" => "planned",
        "A11" | "A27" | "A38" => "cancelled",
        "A28" | "A31" => return None,
        _ if has_discharge => "finished",
        _ if has_admit => "in-progress",
        _ => "unknown",
    })
}

/// HL7 table 0004 patient class to the v3 ActCode Encounter.class; the
/// site's `patient_class` lookup table may add or override codes.
fn class_for(code: &str) -> Option<(String, String)> {
    if let Some(mapped) = lookup("patient_class", code) {
        return Some((mapped.clone(), mapped));
    }
    let (c, d) = match code {
        "E" => ("EMER", "emergency"),
        "I" => ("IMP", "inpatient encounter"),
        "O" => ("AMB", "ambulatory"),
        "P" => ("PRENC", "pre-admission"),
        "R" => ("AMB", "ambulatory"),
        "B" => ("IMP", "inpatient encounter"),
        _ => return None,
    };
    Some((c.to_string(), d.to_string()))
}

/// The Encounter and the identifier (`system`, `value`) to match it with,
/// when PV1-19 holds one.
pub struct MappedEncounter {
    /// The resource.
    pub resource: Value,
    /// The visit number, for a conditional update.
    pub visit: Option<(String, String)>,
}

/// Maps PV1 for the given trigger; `patient_ref` is the Patient's fullUrl.
pub fn map(
    hl7: &Message,
    pv1: &Segment,
    trigger: &str,
    patient_ref: &str,
    facility: &str,
    offset: Option<i16>,
) -> Result<Option<MappedEncounter>> {
    let start = date_time("PV1-44", hl7.field(pv1, 44).value().trim(), offset)?;
    let end = date_time("PV1-45", hl7.field(pv1, 45).value().trim(), offset)?;
    let Some(status) = status_for(trigger, end.is_some(), start.is_some()) else {
        return Ok(None);
    };
    let class_code = hl7.field(pv1, 2).value().trim().to_string();
    if class_code.is_empty() {
        return Err(Error::reject(
            "PV1-2 (patient class) is empty: an Encounter needs a class",
        ));
    }
    let Some((code, display)) = class_for(&class_code) else {
        return Err(Error::reject(format!(
            "PV1-2 (patient class) {class_code:?} has no FHIR Encounter.class mapping (HL7 table 0004; add it to the patient_class lookup table)"
        )));
    };
    let mut e = Map::new();
    e.insert("resourceType".into(), "Encounter".into());
    e.insert("status".into(), status.into());
    e.insert(
        "class".into(),
        json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code, "display": display}),
    );
    e.insert("subject".into(), json!({"reference": patient_ref}));

    let visit_el = hl7.field(pv1, 19).repetition(1);
    let mut visit = None;
    if let Some(id) = identifier(&visit_el, facility) {
        if let (Some(s), Some(v)) = (
            id.get("system").and_then(Value::as_str),
            id.get("value").and_then(Value::as_str),
        ) {
            visit = Some((s.to_string(), v.to_string()));
        }
        e.insert("identifier".into(), Value::Array(vec![id]));
    }

    let mut period = Map::new();
    if let Some(s) = start {
        period.insert("start".into(), Value::String(s));
    }
    if let Some(s) = end {
        period.insert("end".into(), Value::String(s));
    }
    if !period.is_empty() {
        e.insert("period".into(), Value::Object(period));
    }

    let loc = hl7.field(pv1, 3).repetition(1);
    let parts: Vec<String> = [1, 2, 3, 4]
        .into_iter()
        .map(|c| comp(&loc, c))
        .filter(|s| !s.is_empty())
        .collect();
    if !parts.is_empty() {
        e.insert(
            "location".into(),
            json!([{"location": {"display": parts.join(" ")}, "status": if status == "finished" { "completed" } else { "active" }}]),
        );
    }

    let mut participants = Vec::new();
    for (field, code, display) in [
        (7, "ATND", "attender"),
        (8, "REF", "referrer"),
        (9, "CON", "consultant"),
        (17, "ADM", "admitter"),
    ] {
        for rep in hl7.field(pv1, field).repetitions() {
            // XCN: the name starts at component 2.
            let name = human_name_from_xcn(&rep);
            let id = comp(&rep, 1);
            if name.is_none() && id.is_empty() {
                continue;
            }
            let mut individual = Map::new();
            if let Some(n) = name {
                individual.insert("display".into(), Value::String(n));
            }
            if !id.is_empty() {
                individual.insert("identifier".into(), json!({"value": id}));
            }
            let mut participant = Map::new();
            participant.insert(
                "type".into(),
                json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": code, "display": display}]}]),
            );
            participant.insert("individual".into(), Value::Object(individual));
            participants.push(Value::Object(participant));
        }
    }
    if !participants.is_empty() {
        e.insert("participant".into(), Value::Array(participants));
    }
    Ok(Some(MappedEncounter {
        resource: Value::Object(e),
        visit,
    }))
}

/// The display name of an XCN (id ^ family ^ given ^ middle ^ suffix ^ prefix).
fn human_name_from_xcn(r: &weft_sdk::hl7::Element<'_>) -> Option<String> {
    let parts: Vec<String> = [6, 3, 4, 2, 5]
        .into_iter()
        .map(|c| comp(r, c))
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}
