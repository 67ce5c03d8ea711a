//! PID to Patient; MRG to the merge links of A40.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::{Bundle, Identity};
use crate::codes;
use crate::context::Context;
use crate::datatypes::{
    address, codeable, comp, contact_point, human_name, identifier, put, put_list, system_value,
};

/// The Patient in the Bundle: its fullUrl and the identifier it is matched
/// on (also the start of every derived key of the patient's resources).
#[derive(Debug, Clone)]
pub struct PatientRef {
    /// The entry's fullUrl.
    pub url: String,
    /// The identifier the conditional update matches on.
    pub identity: Identity,
}

impl PatientRef {
    /// A Reference to the Patient.
    pub fn reference(&self) -> Value {
        crate::bundle::reference(&self.url)
    }

    /// A key for a derived identifier of one of the patient's resources.
    pub fn key(&self, rest: &str) -> String {
        format!("{}|{}|{rest}", self.identity.system, self.identity.value)
    }
}

/// The identifiers of CX list fields (PID-3 first, then PID-2 and PID-4;
/// MRG-1) and the one to match on: the first `MR` identifier of the first
/// field that has a system, else its first with a system.
fn identifiers(
    ctx: &Context<'_>,
    seg: &Segment,
    fields: &[usize],
) -> Result<(Vec<Value>, Identity)> {
    let mut list = Vec::new();
    let mut best: Option<(Identity, bool)> = None;
    for (i, n) in fields.iter().enumerate() {
        for rep in ctx.field(seg, *n).repetitions() {
            let Some(id) = identifier(&rep, ctx.facility()) else {
                continue;
            };
            let is_mrn = comp(&rep, 5) == "MR";
            if i == 0
                && let Some((system, value)) = system_value(&id)
            {
                let better = match &best {
                    None => true,
                    Some((_, had_mrn)) => is_mrn && !had_mrn,
                };
                if better {
                    best = Some((Identity { system, value }, is_mrn));
                }
            }
            if !list.contains(&id) {
                list.push(id);
            }
        }
    }
    let field = ctx.name(seg, fields[0]);
    match best {
        Some((identity, _)) => Ok((list, identity)),
        None if list.is_empty() => Err(Error::reject(format!(
            "{field} (patient identifier list) holds no identifier: the Patient cannot be identified"
        ))),
        None => Err(Error::reject(format!(
            "{field} identifiers have no assigning authority (CX.4) and MSH-4 names no sending facility: the Patient cannot be matched"
        ))),
    }
}

/// Maps PID to a Patient and adds it to the Bundle.
pub fn map(ctx: &Context<'_>, bundle: &mut Bundle, pid: &Segment) -> Result<PatientRef> {
    let (resource, identity) = resource(ctx, pid)?;
    let url = bundle.put(
        "Patient",
        &identity.system,
        &identity.value,
        Value::Object(resource),
    );
    // PD1-4: the patient's primary care provider(s).
    if let Some(pd1) = ctx.hl7.segment("PD1") {
        for gp in crate::resources::practitioner::map_all(ctx, bundle, ctx.field(pd1, 4)) {
            bundle.add_to(&url, "generalPractitioner", gp);
        }
    }
    Ok(PatientRef { url, identity })
}

/// The message's PID, mapped: every message type this crate maps needs one.
pub fn required(ctx: &Context<'_>, bundle: &mut Bundle) -> Result<PatientRef> {
    let pid = ctx.hl7.segment("PID").ok_or_else(|| {
        Error::reject(format!(
            "no PID segment: a {} message needs a patient",
            ctx.header.message_type()
        ))
    })?;
    map(ctx, bundle, pid)
}

/// The Patient resource of a PID, and the identity to match it on.
pub fn resource(ctx: &Context<'_>, pid: &Segment) -> Result<(Map<String, Value>, Identity)> {
    let mut p = Map::new();
    p.insert("resourceType".into(), "Patient".into());
    put_list(
        &mut p,
        "extension",
        crate::resources::us_core::extensions(ctx, pid),
    );
    let (mut ids, identity) = identifiers(ctx, pid, &[3, 2, 4])?;
    let ssn = ctx.text(pid, 19);
    if !ssn.is_empty() {
        ids.push(json!({
            "type": {"coding": [{"system": codes::v2_table("0203"), "code": "SS"}]},
            "system": "http://hl7.org/fhir/sid/us-ssn",
            "value": ssn,
        }));
    }
    let licence = ctx.field(pid, 20).repetition(1);
    let number = comp(&licence, 1);
    if !number.is_empty() {
        let mut id = json!({
            "type": {"coding": [{"system": codes::v2_table("0203"), "code": "DL"}]},
            "value": number,
        });
        let state = comp(&licence, 2);
        if !state.is_empty() {
            id["system"] = Value::String(format!(
                "urn:weft:drivers-license:{}",
                crate::ids::query_encode(&state)
            ));
        }
        ids.push(id);
    }
    p.insert("identifier".into(), Value::Array(ids));

    // PID-5 names, then PID-9 aliases.
    let mut names: Vec<Value> = ctx
        .field(pid, 5)
        .repetitions()
        .filter_map(|r| human_name(&r))
        .collect();
    names.extend(
        ctx.field(pid, 9)
            .repetitions()
            .filter_map(|r| human_name(&r)),
    );
    put_list(&mut p, "name", names);

    let mut telecom: Vec<Value> = ctx
        .field(pid, 13)
        .repetitions()
        .filter_map(|r| contact_point(&r, "home"))
        .collect();
    telecom.extend(
        ctx.field(pid, 14)
            .repetitions()
            .filter_map(|r| contact_point(&r, "work")),
    );
    // PID-40 (v2.7+) replaces PID-13/14.
    telecom.extend(
        ctx.field(pid, 40)
            .repetitions()
            .filter_map(|r| contact_point(&r, "home")),
    );
    let mut seen = Vec::new();
    telecom.retain(|t| {
        let new = !seen.contains(t);
        if new {
            seen.push(t.clone());
        }
        new
    });
    put_list(&mut p, "telecom", telecom);

    let gender = codes::optional(
        &ctx.name(pid, 8),
        "gender",
        &ctx.text(pid, 8),
        codes::gender,
    );
    put(&mut p, "gender", gender.map(Value::String));

    put(&mut p, "birthDate", ctx.date(pid, 7)?.map(Value::String));

    if let Some(dt) = ctx.date_time(pid, 29)? {
        p.insert("deceasedDateTime".into(), Value::String(dt));
    } else if matches!(ctx.text(pid, 30).as_str(), "Y" | "N") {
        p.insert(
            "deceasedBoolean".into(),
            Value::Bool(ctx.text(pid, 30) == "Y"),
        );
    }

    let addresses = ctx
        .field(pid, 11)
        .repetitions()
        .filter_map(|r| address(&r))
        .collect();
    put_list(&mut p, "address", addresses);

    put(
        &mut p,
        "maritalStatus",
        codeable(&ctx.field(pid, 16).repetition(1), &codes::v2_table("0002")),
    );

    if let Some(lang) = codeable(&ctx.field(pid, 15).repetition(1), "urn:ietf:bcp:47") {
        p.insert("communication".into(), json!([{"language": lang}]));
    }

    match ctx.text(pid, 24).as_str() {
        "Y" => {
            let order = ctx.text(pid, 25);
            match order.parse::<u32>() {
                Ok(n) if n > 0 => p.insert("multipleBirthInteger".into(), Value::from(n)),
                _ => p.insert("multipleBirthBoolean".into(), Value::Bool(true)),
            };
        }
        "N" => {
            p.insert("multipleBirthBoolean".into(), Value::Bool(false));
        }
        _ => {}
    }
    Ok((p, identity))
}

/// A47 (change patient identifier list): the Patient holding MRG-1's
/// prior identifier gets the identifiers of PID-3, as a conditional update
/// on the prior identifier (`PUT Patient?identifier=<MRG-1>`); the prior
/// identifier stays on the record with `use: old`, so a resent A47 updates
/// the same Patient instead of making a new one. The returned reference's
/// identity is the new one (PID-3).
pub fn change_identifier(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    pid: &Segment,
    mrg: &Segment,
) -> Result<PatientRef> {
    let (mut resource, identity) = resource(ctx, pid)?;
    let (prior_ids, prior) = identifiers(ctx, mrg, &[1])?;
    if prior.system == identity.system && prior.value == identity.value {
        return Err(Error::reject(
            "MRG-1 (prior patient identifier list) names the identifier PID-3 already holds: nothing to change",
        ));
    }
    let mut old = prior_ids
        .into_iter()
        .find(|i| system_value(i).is_some_and(|(s, v)| s == prior.system && v == prior.value))
        .unwrap_or_else(|| json!({"system": prior.system, "value": prior.value}));
    old["use"] = Value::String("old".into());
    if let Some(Value::Array(ids)) = resource.get_mut("identifier") {
        ids.retain(|i| system_value(i) != Some((prior.system.clone(), prior.value.clone())));
        ids.push(old);
    }
    let url = bundle.put(
        "Patient",
        &prior.system,
        &prior.value,
        Value::Object(resource),
    );
    Ok(PatientRef { url, identity })
}

/// A40 (merge patient): the surviving Patient (PID, already in the Bundle
/// as `survivor`) gets `link: replaces` the prior one (MRG-1); the prior
/// Patient is patched (not replaced: its record stays) with
/// `link: replaced-by` the survivor.
pub fn merge(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    mrg: &Segment,
    survivor: &PatientRef,
) -> Result<()> {
    let (_, prior) = identifiers(ctx, mrg, &[1])?;
    if prior.system == survivor.identity.system && prior.value == survivor.identity.value {
        return Err(Error::reject(
            "MRG-1 names the same patient as PID-3: nothing to merge",
        ));
    }
    let patch = json!({
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "Patient"},
                    {"name": "name", "valueString": "link"},
                    {"name": "value", "part": [
                        {"name": "other", "valueReference": {"reference": survivor.url}},
                        {"name": "type", "valueCode": "replaced-by"}
                    ]}
                ]
            }
        ]
    });
    bundle.patch("Patient", &prior.system, &prior.value, patch);
    bundle.add_to(
        &survivor.url,
        "link",
        json!({
            "other": {"identifier": {"system": prior.system, "value": prior.value}},
            "type": "replaces"
        }),
    );
    Ok(())
}
