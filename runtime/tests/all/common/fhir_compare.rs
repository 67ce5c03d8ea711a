//! Field-by-field comparison of two FHIR Bundles made from the same HL7 v2
//! message (ours and a reference converter's): the clinically meaningful
//! fields only, as sets of normalized values, never resource ids.

#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;

/// How one field compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same values.
    Agree,
    /// Both have values, not the same.
    Differ,
    /// Only our Bundle has a value.
    OnlyOurs,
    /// Only the reference has a value.
    OnlyTheirs,
    /// Every value of ours is the reference's, which has more.
    Fewer,
    /// Every value of the reference is ours, and we have more.
    More,
}

/// One compared field.
pub struct Row {
    /// `Resource.field`.
    pub field: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// Our values.
    pub ours: BTreeSet<String>,
    /// The reference's values.
    pub theirs: BTreeSet<String>,
}

type Extract = fn(&Value) -> Vec<String>;

fn s(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::to_string)
        .or_else(|| {
            v.as_number().map(|n| {
                // 4.0 and 4 are the same value.
                let f = n.as_f64().unwrap_or_default();
                if f.fract() == 0.0 {
                    format!("{}", f as i64)
                } else {
                    format!("{f}")
                }
            })
        })
        .or_else(|| v.as_bool().map(|b| b.to_string()))
}

/// A date, or a dateTime as the UTC instant when it has an offset (the
/// reference converter rewrites times into another zone), else as written.
fn local(v: &Value) -> Option<String> {
    let t = v.as_str()?;
    let Some(zone) = t
        .get(19..)
        .map(|z| z.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit()))
    else {
        return Some(t.to_string());
    };
    let minutes = match zone {
        "Z" => 0,
        z if z.len() == 6 => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let h: i64 = z[1..3].parse().ok()?;
            let m: i64 = z[4..6].parse().ok()?;
            sign * (h * 60 + m)
        }
        _ => return Some(t.get(..19).unwrap_or(t).to_string()),
    };
    let utc = weft_v2fhir::time::add_minutes(t, -minutes)?;
    Some(format!("{}Z", &utc[..19]))
}

fn code(cc: &Value) -> Option<String> {
    s(&cc["coding"][0]["code"]).or_else(|| s(&cc["text"]))
}

fn all<'a>(b: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(move |r| r["resourceType"] == kind)
}

fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn obs_key(o: &Value) -> String {
    code(&o["code"]).unwrap_or_default()
}

fn obs_value(o: &Value) -> Option<String> {
    if let Some(v) = s(&o["valueQuantity"]["value"]) {
        return Some(v);
    }
    if let Some(v) = s(&o["valueString"]) {
        return Some(v.trim().to_string());
    }
    if let Some(v) = code(&o["valueCodeableConcept"]) {
        return Some(v);
    }
    local(&o["valueDateTime"]).or_else(|| s(&o["valueTime"]))
}

/// The coded parts (OMB categories and detailed codes) of a US Core
/// extension (`us-core-race`, `us-core-ethnicity`) on the Patients.
fn us_core(b: &Value, name: &str) -> Vec<String> {
    all(b, "Patient")
        .flat_map(|p| list(&p["extension"]))
        .filter(|e| s(&e["url"]).is_some_and(|u| u.ends_with(name)))
        .flat_map(|e| list(&e["extension"]))
        .filter_map(|part| s(&part["valueCoding"]["code"]))
        .collect()
}

/// The fields compared: `Resource.field` and how to read it from a Bundle.
pub const FIELDS: &[(&str, Extract)] = &[
    ("Patient.identifier", |b| {
        all(b, "Patient")
            .flat_map(|p| list(&p["identifier"]).filter_map(|i| s(&i["value"])))
            .collect()
    }),
    ("Patient.name", |b| {
        all(b, "Patient")
            .flat_map(|p| list(&p["name"]))
            .map(|n| {
                let given: Vec<String> = list(&n["given"]).filter_map(s).collect();
                format!(
                    "{}|{}",
                    s(&n["family"]).unwrap_or_default(),
                    given.join(" ")
                )
                .to_lowercase()
            })
            .collect()
    }),
    ("Patient.race (US Core)", |b| us_core(b, "us-core-race")),
    ("Patient.ethnicity (US Core)", |b| {
        us_core(b, "us-core-ethnicity")
    }),
    ("Patient.birthDate", |b| {
        all(b, "Patient")
            .filter_map(|p| s(&p["birthDate"]))
            .collect()
    }),
    ("Patient.gender", |b| {
        all(b, "Patient").filter_map(|p| s(&p["gender"])).collect()
    }),
    ("Patient.address", |b| {
        all(b, "Patient")
            .flat_map(|p| list(&p["address"]))
            .map(|a| {
                let lines: Vec<String> = list(&a["line"]).filter_map(s).collect();
                format!(
                    "{}|{}|{}|{}",
                    lines.join(" "),
                    s(&a["city"]).unwrap_or_default(),
                    s(&a["state"]).unwrap_or_default(),
                    s(&a["postalCode"]).unwrap_or_default()
                )
                .to_lowercase()
            })
            .collect()
    }),
    ("Patient.telecom", |b| {
        all(b, "Patient")
            .flat_map(|p| list(&p["telecom"]))
            .filter_map(|t| s(&t["value"]))
            .map(|v| {
                v.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '@' || *c == '.')
                    .collect()
            })
            .collect()
    }),
    ("Encounter.class", |b| {
        all(b, "Encounter")
            .filter_map(|e| s(&e["class"]["code"]))
            .collect()
    }),
    ("Encounter.status", |b| {
        all(b, "Encounter")
            .filter_map(|e| s(&e["status"]))
            .collect()
    }),
    ("Encounter.period.start", |b| {
        all(b, "Encounter")
            .filter_map(|e| local(&e["period"]["start"]))
            .collect()
    }),
    ("Encounter.period.end", |b| {
        all(b, "Encounter")
            .filter_map(|e| local(&e["period"]["end"]))
            .collect()
    }),
    ("Observation.code", |b| {
        all(b, "Observation").map(obs_key).collect()
    }),
    ("Observation.value", |b| {
        all(b, "Observation")
            .filter_map(|o| obs_value(o).map(|v| format!("{}={v}", obs_key(o))))
            .collect()
    }),
    ("Observation.unit", |b| {
        all(b, "Observation")
            .filter_map(|o| {
                s(&o["valueQuantity"]["code"])
                    .or_else(|| s(&o["valueQuantity"]["unit"]))
                    .map(|u| format!("{}={u}", obs_key(o)))
            })
            .collect()
    }),
    ("Observation.status", |b| {
        all(b, "Observation")
            .filter_map(|o| s(&o["status"]).map(|v| format!("{}={v}", obs_key(o))))
            .collect()
    }),
    ("DiagnosticReport.code", |b| {
        all(b, "DiagnosticReport")
            .filter_map(|r| code(&r["code"]))
            .collect()
    }),
    ("DiagnosticReport.status", |b| {
        all(b, "DiagnosticReport")
            .filter_map(|r| s(&r["status"]))
            .collect()
    }),
    ("ServiceRequest.code", |b| {
        all(b, "ServiceRequest")
            .filter_map(|r| code(&r["code"]))
            .collect()
    }),
    ("Specimen.type", |b| {
        all(b, "Specimen")
            .filter_map(|r| code(&r["type"]))
            .collect()
    }),
    ("AllergyIntolerance.code", |b| {
        all(b, "AllergyIntolerance")
            .filter_map(|r| code(&r["code"]))
            .collect()
    }),
    ("Condition.code", |b| {
        all(b, "Condition")
            .filter_map(|r| code(&r["code"]))
            .collect()
    }),
    ("Procedure.code", |b| {
        all(b, "Procedure")
            .filter_map(|r| code(&r["code"]))
            .collect()
    }),
    ("ChargeItem.code", |b| {
        all(b, "ChargeItem")
            .filter_map(|r| code(&r["code"]))
            .collect()
    }),
    ("ChargeItem.quantity", |b| {
        all(b, "ChargeItem")
            .filter_map(|r| {
                let q = s(&r["quantity"]["value"])?;
                Some(format!("{}={q}", code(&r["code"]).unwrap_or_default()))
            })
            .collect()
    }),
    ("ChargeItem.priceOverride", |b| {
        all(b, "ChargeItem")
            .filter_map(|r| {
                let p = &r["priceOverride"];
                let v = s(&p["value"])?;
                Some(format!(
                    "{}={v} {}",
                    code(&r["code"]).unwrap_or_default(),
                    s(&p["currency"]).unwrap_or_default()
                ))
            })
            .collect()
    }),
    ("Account.identifier", |b| {
        all(b, "Account")
            .flat_map(|a| list(&a["identifier"]).filter_map(|i| s(&i["value"])))
            .collect()
    }),
    ("Coverage.class", |b| {
        all(b, "Coverage")
            .flat_map(|c| list(&c["class"]).filter_map(|k| s(&k["value"])))
            .collect()
    }),
    ("Appointment.status", |b| {
        all(b, "Appointment")
            .filter_map(|r| s(&r["status"]))
            .collect()
    }),
    ("Appointment.start", |b| {
        all(b, "Appointment")
            .filter_map(|r| local(&r["start"]))
            .collect()
    }),
    ("Immunization.vaccineCode", |b| {
        all(b, "Immunization")
            .filter_map(|r| code(&r["vaccineCode"]))
            .collect()
    }),
    ("Immunization.status", |b| {
        all(b, "Immunization")
            .filter_map(|r| s(&r["status"]))
            .collect()
    }),
    ("Immunization.occurrence", |b| {
        all(b, "Immunization")
            .filter_map(|r| local(&r["occurrenceDateTime"]))
            .collect()
    }),
    ("MedicationRequest.medication", |b| {
        all(b, "MedicationRequest")
            .filter_map(|r| drug(b, r))
            .collect()
    }),
    ("MedicationRequest.status", |b| {
        all(b, "MedicationRequest")
            .filter_map(|r| s(&r["status"]))
            .collect()
    }),
    ("MedicationDispense.medication", |b| {
        all(b, "MedicationDispense")
            .filter_map(|r| drug(b, r))
            .collect()
    }),
    ("MedicationDispense.status", |b| {
        all(b, "MedicationDispense")
            .filter_map(|r| s(&r["status"]))
            .collect()
    }),
    ("MedicationAdministration.medication", |b| {
        all(b, "MedicationAdministration")
            .filter_map(|r| drug(b, r))
            .collect()
    }),
];

/// The drug of a medication resource: its `medicationCodeableConcept`'s
/// code, or the code of the Medication its `medicationReference` points
/// at (a `urn:uuid:` fullUrl or `Medication/<id>`).
fn drug(b: &Value, r: &Value) -> Option<String> {
    if let Some(c) = code(&r["medicationCodeableConcept"]) {
        return Some(c);
    }
    let target = r["medicationReference"]["reference"].as_str()?;
    let id = target.strip_prefix("Medication/");
    b["entry"]
        .as_array()?
        .iter()
        .find(|e| {
            e["fullUrl"].as_str() == Some(target)
                || (id.is_some() && e["resource"]["id"].as_str() == id)
        })
        .and_then(|e| code(&e["resource"]["code"]))
}

/// Compares every field that either Bundle has.
pub fn compare(ours: &Value, theirs: &Value) -> Vec<Row> {
    FIELDS
        .iter()
        .filter_map(|(field, extract)| {
            // Values as written, without padding; an all-empty value is none.
            let clean = |v: Vec<String>| -> BTreeSet<String> {
                v.into_iter()
                    .map(|x| x.split('|').map(str::trim).collect::<Vec<_>>().join("|"))
                    .filter(|x| x.chars().any(|c| c != '|'))
                    .collect()
            };
            let o = clean(extract(ours));
            let t = clean(extract(theirs));
            let verdict = match (o.is_empty(), t.is_empty()) {
                (true, true) => return None,
                (false, true) => Verdict::OnlyOurs,
                (true, false) => Verdict::OnlyTheirs,
                _ if o == t => Verdict::Agree,
                _ if o.is_subset(&t) => Verdict::Fewer,
                _ if o.is_superset(&t) => Verdict::More,
                _ => Verdict::Differ,
            };
            Some(Row {
                field,
                verdict,
                ours: o,
                theirs: t,
            })
        })
        .collect()
}
