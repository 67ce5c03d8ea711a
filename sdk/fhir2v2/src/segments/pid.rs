//! Patient to PID: the inverse of `weft_v2fhir::resources::patient`.

use weft_sdk::serde_json::Value;
use weft_sdk::{Error, Result};

use crate::codes;
use crate::datatypes::{cwe_in, cx, dtm, dtm_at, xad, xpn, xtn};
use crate::input::{list, str_at};
use crate::write::{Composite, SegmentBuilder};
use weft_v2fhir::codes::v2_table;
use weft_v2fhir::resources::us_core::{ETHNICITY_URL, RACE_URL};

/// The PID of `patient`: identifiers (PID-3, every one, a US SSN too: not
/// also PID-19, which v2.5.1 keeps only for backward compatibility),
/// names (PID-5), birth date (PID-7), sex (PID-8), addresses (PID-11),
/// home and work telecom (PID-13, PID-14), language (PID-15), marital
/// status (PID-16), race and ethnic group (PID-10, PID-22, from the US Core
/// extensions), multiple birth (PID-24/25), death (PID-29/30). A
/// Patient without an identifier is a reject: PID-3 is required.
pub fn pid(patient: &Value) -> Result<SegmentBuilder> {
    let mut s = SegmentBuilder::new("PID");
    s.set_text(1, "1");
    let ids: Vec<Composite> = list(patient, "identifier").iter().filter_map(cx).collect();
    if ids.is_empty() {
        return Err(Error::reject(
            "Patient.identifier holds no identifier with a value: PID-3 (patient identifier list) is required",
        ));
    }
    s.push_all(3, ids);
    s.push_all(5, list(patient, "name").iter().filter_map(xpn));
    s.set_text(7, dtm_at(patient, "birthDate", "Patient.birthDate")?);
    s.push_all(10, us_core(patient, RACE_URL));
    s.push_all(22, us_core(patient, ETHNICITY_URL));
    s.set_text(8, codes::sex(str_at(patient, "gender")).unwrap_or(""));
    s.push_all(11, list(patient, "address").iter().filter_map(xad));
    for cp in list(patient, "telecom").iter().filter_map(xtn) {
        let (value, work) = cp;
        s.push(if work { 14 } else { 13 }, value);
    }
    if let Some(lang) = list(patient, "communication")
        .first()
        .and_then(|c| c.get("language"))
        .and_then(|l| cwe_in(l, "urn:ietf:bcp:47"))
    {
        s.set(15, lang);
    }
    if let Some(status) = patient
        .get("maritalStatus")
        .and_then(|m| cwe_in(m, &v2_table("0002")))
    {
        s.set(16, status);
    }
    match (
        patient.get("multipleBirthBoolean"),
        patient.get("multipleBirthInteger"),
    ) {
        (_, Some(Value::Number(n))) => {
            s.set_text(24, "Y").set_text(25, n.to_string());
        }
        (Some(Value::Bool(b)), _) => {
            s.set_text(24, if *b { "Y" } else { "N" });
        }
        _ => {}
    }
    match (
        patient.get("deceasedDateTime"),
        patient.get("deceasedBoolean"),
    ) {
        (Some(Value::String(t)), _) => {
            s.set_text(29, dtm("Patient.deceasedDateTime", t)?);
            s.set_text(30, "Y");
        }
        (_, Some(Value::Bool(b))) => {
            s.set_text(30, if *b { "Y" } else { "N" });
        }
        _ => {}
    }
    Ok(s)
}

/// The codes of a US Core race or ethnicity extension (`url`) as CWE
/// repetitions (code ^ display ^ `CDCREC`), OMB categories first; its
/// text alone (`^text`) when it holds no code.
fn us_core(patient: &Value, url: &str) -> Vec<Composite> {
    let Some(ext) = list(patient, "extension")
        .iter()
        .find(|e| str_at(e, "url") == url)
    else {
        return Vec::new();
    };
    let parts = list(ext, "extension");
    let mut reps: Vec<Composite> = ["ombCategory", "detailed"]
        .iter()
        .flat_map(|kind| parts.iter().filter(move |p| str_at(p, "url") == *kind))
        .filter_map(|p| p.get("valueCoding"))
        .filter(|c| !str_at(c, "code").is_empty())
        .map(|c| {
            Composite::text(str_at(c, "code"))
                .with(2, str_at(c, "display"))
                .with(3, codes::coding_system_name(str_at(c, "system")))
        })
        .collect();
    if reps.is_empty()
        && let Some(text) = parts.iter().find(|p| str_at(p, "url") == "text")
    {
        reps.push(Composite::new().with(2, str_at(text, "valueString")));
    }
    reps
}

/// A PID for a patient known only by a Reference's identifier (the input
/// does not hold the Patient).
pub fn pid_of_identifier(identifier: &Value) -> Option<SegmentBuilder> {
    let id = cx(identifier)?;
    let mut s = SegmentBuilder::new("PID");
    s.set_text(1, "1").push(3, id);
    Some(s)
}
