//! PID to Patient.

use weft_sdk::hl7::{Message, Segment};
use weft_sdk::serde_json::{Map, Value};
use weft_sdk::{Error, Result};

use crate::datatypes::{
    address, codeable, coded, comp, contact_point, date, date_time, human_name, identifier,
};

/// A Patient resource and the identifier the Bundle uses to match it.
pub struct MappedPatient {
    /// The resource.
    pub resource: Value,
    /// `system|value` of the identifier used for the conditional update.
    pub match_system: String,
    /// The identifier value.
    pub match_value: String,
}

/// Maps the PID segment. PID-3 must hold at least one identifier with a
/// system, or the Patient could not be matched on the server; `facility`
/// (MSH-4.1) is the assigning authority of identifiers without PID-3.4.
pub fn map(
    hl7: &Message,
    pid: &Segment,
    facility: &str,
    offset: Option<i16>,
) -> Result<MappedPatient> {
    let mut p = Map::new();
    p.insert("resourceType".into(), "Patient".into());

    let mut identifiers = Vec::new();
    let mut matching: Option<(String, String, bool)> = None;
    for rep in hl7.field(pid, 3).repetitions() {
        let Some(id) = identifier(&rep, facility) else {
            continue;
        };
        let system = id.get("system").and_then(Value::as_str).map(str::to_string);
        let value = id
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let is_mrn = comp(&rep, 5) == "MR";
        if let Some(system) = system {
            // Prefer the first MR identifier, else the first with a system.
            let better = match &matching {
                None => true,
                Some((_, _, had_mrn)) => is_mrn && !had_mrn,
            };
            if better {
                matching = Some((system, value, is_mrn));
            }
        }
        identifiers.push(id);
    }
    if identifiers.is_empty() {
        return Err(Error::reject(
            "PID-3 (patient identifier list) holds no identifier: the Patient cannot be identified",
        ));
    }
    let Some((match_system, match_value, _)) = matching else {
        return Err(Error::reject(
            "PID-3 identifiers have no assigning authority (PID-3.4) and MSH-4 names no sending facility: the Patient cannot be matched",
        ));
    };
    p.insert("identifier".into(), Value::Array(identifiers));

    let names: Vec<Value> = hl7
        .field(pid, 5)
        .repetitions()
        .filter_map(|r| human_name(&r))
        .collect();
    if !names.is_empty() {
        p.insert("name".into(), Value::Array(names));
    }

    let mut telecom: Vec<Value> = hl7
        .field(pid, 13)
        .repetitions()
        .filter_map(|r| contact_point(&r, "home"))
        .collect();
    telecom.extend(
        hl7.field(pid, 14)
            .repetitions()
            .filter_map(|r| contact_point(&r, "work")),
    );
    if !telecom.is_empty() {
        p.insert("telecom".into(), Value::Array(telecom));
    }

    let sex = hl7.field(pid, 8).value();
    if let Some(gender) = coded("PID-8", "gender", sex.trim()) {
        p.insert("gender".into(), Value::String(gender));
    }

    if let Some(birth) = date("PID-7", hl7.field(pid, 7).value().trim())? {
        p.insert("birthDate".into(), Value::String(birth));
    }

    let death_time = hl7.field(pid, 29).value();
    let death_flag = hl7.field(pid, 30).value();
    if let Some(dt) = date_time("PID-29", death_time.trim(), offset)? {
        p.insert("deceasedDateTime".into(), Value::String(dt));
    } else if matches!(death_flag.trim(), "Y" | "N") {
        p.insert(
            "deceasedBoolean".into(),
            Value::Bool(death_flag.trim() == "Y"),
        );
    }

    let addresses: Vec<Value> = hl7
        .field(pid, 11)
        .repetitions()
        .filter_map(|r| address(&r))
        .collect();
    if !addresses.is_empty() {
        p.insert("address".into(), Value::Array(addresses));
    }

    if let Some(ms) = codeable(
        &hl7.field(pid, 16).repetition(1),
        "http://terminology.hl7.org/CodeSystem/v2-0002",
    ) {
        p.insert("maritalStatus".into(), ms);
    }

    let language = hl7.field(pid, 15).repetition(1);
    if let Some(lang) = codeable(&language, "urn:ietf:bcp:47") {
        let mut communication = Map::new();
        communication.insert("language".into(), lang);
        p.insert(
            "communication".into(),
            Value::Array(vec![Value::Object(communication)]),
        );
    }

    Ok(MappedPatient {
        resource: Value::Object(p),
        match_system,
        match_value,
    })
}
