//! `adt-to-fhir`: HL7 v2 ADT messages to a FHIR R4 `transaction` Bundle.
//!
//! Maps PID to a Patient and, where the event has one, PV1 to an Encounter.
//! Entries are conditional updates keyed on the source identifiers
//! (`PUT Patient?identifier=system|value`), with deterministic `urn:uuid:`
//! full URLs, so a re-sent message updates rather than duplicates. See the
//! crate's README for the field-by-field mapping and what is not mapped.
//!
//! Settings: `default_utc_offset` (e.g. `+01:00`), used for HL7 times that
//! carry no offset; without it such times are reduced to their date, as
//! FHIR requires a time zone on every time.
//! Lookup tables: `assigning_authority` (PID-3.4 to identifier system URI),
//! `gender` (PID-8 to administrative-gender), `patient_class` (PV1-2 to a
//! v3 ActCode, extending the built-in table 0004 mapping).

mod datatypes;
mod encounter;
mod ids;
mod patient;

use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Message, Output, Plugin, Result, config};

/// The ADT trigger events this plugin maps.
pub const SUPPORTED_TRIGGERS: &[&str] = &[
    "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10", "A11", "A13", "A14",
    "A15", "A16", "A25", "A26", "A27", "A28", "A31",
];

/// The plugin.
pub struct AdtToFhir;

impl Plugin for AdtToFhir {
    fn transform(msg: Message) -> Result<Vec<Output>> {
        let hl7 = msg.hl7()?;
        let header = hl7.header().map_err(|e| Error::reject(e.to_string()))?;
        if header.message_code != "ADT" {
            return Err(Error::reject(format!(
                "MSH-9 {} is not an ADT message; adt-to-fhir maps ADT only",
                header.message_type()
            )));
        }
        let trigger = header.trigger_event.as_str();
        if !SUPPORTED_TRIGGERS.contains(&trigger) {
            return Err(Error::reject(format!(
                "MSH-9 ADT^{trigger} is not supported by adt-to-fhir (supported: {})",
                SUPPORTED_TRIGGERS.join(", ")
            )));
        }
        let offset = utc_offset()?;
        let pid = hl7
            .segment("PID")
            .ok_or_else(|| Error::reject("no PID segment: an ADT message needs a patient"))?;
        let patient = patient::map(&hl7, pid, &header.sending_facility, offset)?;
        let patient_url = ids::urn_uuid(
            "Patient",
            &format!("{}|{}", patient.match_system, patient.match_value),
        );
        let patient_request = json!({
            "method": "PUT",
            "url": format!(
                "Patient?identifier={}|{}",
                ids::query_encode(&patient.match_system),
                ids::query_encode(&patient.match_value)
            ),
        });
        let mut entries = vec![entry(
            patient_url.clone(),
            patient.resource,
            patient_request,
        )];
        if let Some(pv1) = hl7.segment("PV1")
            && let Some(enc) = encounter::map(
                &hl7,
                pv1,
                trigger,
                &patient_url,
                &header.sending_facility,
                offset,
            )?
        {
            let (full_url, request) = match &enc.visit {
                Some((system, value)) => (
                    ids::urn_uuid("Encounter", &format!("{system}|{value}")),
                    json!({
                        "method": "PUT",
                        "url": format!("Encounter?identifier={}|{}", ids::query_encode(system), ids::query_encode(value)),
                    }),
                ),
                None => (
                    ids::urn_uuid(
                        "Encounter",
                        &format!(
                            "{}|{}|{}",
                            header.sending_facility, header.sending_application, header.control_id
                        ),
                    ),
                    json!({"method": "POST", "url": "Encounter"}),
                ),
            };
            entries.push(entry(full_url, enc.resource, request));
        }
        let mut bundle = Map::new();
        bundle.insert("resourceType".into(), "Bundle".into());
        bundle.insert("type".into(), "transaction".into());
        bundle.insert("entry".into(), Value::Array(entries));
        Ok(vec![Output::fhir(&Value::Object(bundle))])
    }
}

weft_sdk::export!(AdtToFhir);

/// A Bundle entry. Built by moving the resource in: `json!` would copy it.
fn entry(full_url: String, resource: Value, request: Value) -> Value {
    let mut e = Map::new();
    e.insert("fullUrl".into(), Value::String(full_url));
    e.insert("resource".into(), resource);
    e.insert("request".into(), request);
    Value::Object(e)
}

/// The `default_utc_offset` setting, in minutes east of UTC.
fn utc_offset() -> Result<Option<i16>> {
    let Some(text) = config("default_utc_offset") else {
        return Ok(None);
    };
    let bad = || {
        Error::failed(format!(
            "config default_utc_offset {text:?} is not +HH:MM or -HH:MM"
        ))
    };
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let h: i16 = h.parse().map_err(|_| bad())?;
    let m: i16 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(Some(sign * (h * 60 + m)))
}

/// Helps tests read the Bundle.
#[doc(hidden)]
pub fn resources<'a>(bundle: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(move |r| r["resourceType"] == kind)
}
