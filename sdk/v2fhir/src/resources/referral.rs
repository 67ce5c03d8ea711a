//! RF1 (referral information) with its PRD (provider data) to a
//! ServiceRequest: the referral, from the referring provider to the one
//! referred to.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{
    address, authority_system, codeable, comp, contact_point, entity_identifier, human_name,
    name_display, period, put, put_list, system_value,
};
use crate::resources::encounter::EncounterRef;
use crate::resources::patient::PatientRef;

/// SNOMED CT "Patient referral": the code of every referral.
const REFERRAL_CODE: &str = "3457005";

/// The NPI's system, for a PRD-7 identifier of type `NPI`.
const NPI: &str = "http://hl7.org/fhir/sid/us-npi";

/// Table 0283 (referral status) to ServiceRequest.status.
pub fn status(code: &str) -> Option<&'static str> {
    Some(match code {
        "A" => "active",
        "P" => "draft",
        "R" | "E" => "revoked",
        _ => return None,
    })
}

/// What a referral points at besides its patient.
#[derive(Debug, Clone, Default)]
pub struct Related<'a> {
    /// The visit (PV1).
    pub encounter: Option<&'a EncounterRef>,
    /// The diagnoses it is made for (DG1: Conditions' fullUrls).
    pub reasons: Vec<String>,
    /// What the receiving provider is sent with it (Observations,
    /// AllergyIntolerances, Procedures: fullUrls).
    pub supporting: Vec<String>,
    /// The patient's insurance (Coverages' fullUrls).
    pub insurance: Vec<String>,
}

/// One PRD as a Practitioner: PRD-2 name, PRD-3 address, PRD-5 phones,
/// PRD-7 identifiers (`id ^ type ^ state ^ expiry`: an NPI in the NPI
/// system, any other in the system of its type). With an identifier the
/// Practitioner is put in the Bundle (matched on the first); without, a
/// Reference with the name as display; `None` when the PRD names nobody.
pub fn provider(ctx: &Context<'_>, bundle: &mut Bundle, prd: &Segment) -> Option<Value> {
    let names: Vec<Value> = ctx
        .field(prd, 2)
        .repetitions()
        .filter_map(|n| human_name(&n))
        .collect();
    let display = names.first().map(name_display).filter(|d| !d.is_empty());
    let identifiers: Vec<Value> = ctx
        .field(prd, 7)
        .repetitions()
        .filter_map(|id| {
            let value = comp(&id, 1);
            if value.is_empty() {
                return None;
            }
            let kind = comp(&id, 2);
            let system = if kind.eq_ignore_ascii_case("NPI") {
                NPI.to_string()
            } else {
                authority_system(&kind, "", "", ctx.facility())?
            };
            Some(json!({"system": system, "value": value}))
        })
        .collect();
    let Some((system, value)) = identifiers.first().and_then(system_value) else {
        return display.map(|d| json!({ "display": d }));
    };
    let mut p = Map::new();
    p.insert("resourceType".into(), "Practitioner".into());
    p.insert("identifier".into(), Value::Array(identifiers));
    put_list(&mut p, "name", names);
    put_list(
        &mut p,
        "address",
        ctx.field(prd, 3)
            .repetitions()
            .filter_map(|a| address(&a))
            .collect(),
    );
    put_list(
        &mut p,
        "telecom",
        ctx.field(prd, 5)
            .repetitions()
            .filter_map(|t| contact_point(&t, "work"))
            .collect(),
    );
    let url = bundle.put("Practitioner", &system, &value, Value::Object(p));
    let mut r = Map::new();
    r.insert("reference".into(), Value::String(url));
    if let Some(d) = display {
        r.insert("display".into(), Value::String(d));
    }
    Some(Value::Object(r))
}

/// Maps the referral of `rf1`: status from the event (`I14`, cancel:
/// revoked) or RF1-1 (table 0283, lookup `referral_status`; an unknown
/// code is a reject naming RF1-1), priority RF1-2, category RF1-3 (type,
/// table 0281) and RF1-5 (category, table 0284), reason RF1-10 (table
/// 0336), authoredOn RF1-7 and occurrence RF1-7 to RF1-8 (effective to
/// expiration), requester the PRD of role `RP` (referring provider),
/// performers those of role `RT` (referred to) and `CP` (consulting).
/// Its identity: RF1-6 (originating referral id), else RF1-11 (external
/// referral id), else derived from the patient and MSH-10.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    rf1: &Segment,
    patient: &PatientRef,
    related: &Related<'_>,
) -> Result<String> {
    let mut r = Map::new();
    r.insert("resourceType".into(), "ServiceRequest".into());
    let mut ids = Vec::new();
    ids.extend(entity_identifier(
        &ctx.field(rf1, 6).repetition(1),
        ctx.facility(),
        "PLAC",
    ));
    ids.extend(entity_identifier(
        &ctx.field(rf1, 11).repetition(1),
        ctx.facility(),
        "",
    ));
    let status = if ctx.header.trigger_event == "I14" {
        "revoked".to_string()
    } else {
        let code = ctx.text(rf1, 1);
        if code.is_empty() {
            "active".to_string()
        } else {
            codes::lookup_or("referral_status", &code, status).ok_or_else(|| {
                Error::reject(format!(
                    "{} (referral status) holds a code with no FHIR mapping (add it to the referral_status lookup table)",
                    ctx.name(rf1, 1)
                ))
            })?
        }
    };
    r.insert("status".into(), Value::String(status));
    r.insert("intent".into(), "order".into());
    let categories: Vec<Value> = [(3, "0281"), (5, "0284")]
        .into_iter()
        .filter_map(|(n, table)| {
            codeable(&ctx.field(rf1, n).repetition(1), &codes::v2_table(table))
        })
        .collect();
    put_list(&mut r, "category", categories);
    let priority = codes::optional(
        &ctx.name(rf1, 2),
        "priority",
        &ctx.text(rf1, 2),
        codes::request_priority,
    );
    put(&mut r, "priority", priority.map(Value::String));
    r.insert(
        "code".into(),
        json!({"coding": [{"system": "http://snomed.info/sct", "code": REFERRAL_CODE, "display": "Patient referral"}]}),
    );
    r.insert("subject".into(), patient.reference());
    put(
        &mut r,
        "encounter",
        related.encounter.map(EncounterRef::reference),
    );
    let effective = ctx.date_time(rf1, 7)?;
    let expires = ctx.date_time(rf1, 8)?;
    put(
        &mut r,
        "occurrencePeriod",
        period(effective.clone(), expires),
    );
    put(&mut r, "authoredOn", effective.map(Value::String));
    let mut performers = Vec::new();
    for prd in ctx.hl7.segments_named("PRD") {
        let role = comp(&ctx.field(prd, 1).repetition(1), 1);
        let Some(who) = provider(ctx, bundle, prd) else {
            continue;
        };
        match role.as_str() {
            "RP" if !r.contains_key("requester") => {
                r.insert("requester".into(), who);
            }
            "RT" | "CP" => performers.push(who),
            _ => {}
        }
    }
    put_list(&mut r, "performer", performers);
    put_list(
        &mut r,
        "reasonCode",
        codeable(&ctx.field(rf1, 10).repetition(1), &codes::v2_table("0336"))
            .into_iter()
            .collect(),
    );
    let refs = |urls: &[String]| -> Vec<Value> {
        urls.iter().map(|u| crate::bundle::reference(u)).collect()
    };
    put_list(&mut r, "reasonReference", refs(&related.reasons));
    put_list(&mut r, "insurance", refs(&related.insurance));
    put_list(&mut r, "supportingInfo", refs(&related.supporting));
    let matched = ids.first().and_then(system_value);
    Ok(match matched {
        Some((system, value)) => {
            r.insert("identifier".into(), Value::Array(ids));
            bundle.put("ServiceRequest", &system, &value, Value::Object(r))
        }
        None => {
            let key = patient.key(&format!("RF1|{}", ctx.header.control_id));
            bundle.put_derived("ServiceRequest", &key, r)
        }
    })
}
