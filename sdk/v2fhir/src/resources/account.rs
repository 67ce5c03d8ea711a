//! PID-18 (patient account number) to Account, with the coverages of its
//! IN1s and the guarantors of its GT1s.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{codeable, comp, identifier, period, put, put_list, system_value};
use crate::resources::patient::PatientRef;
use crate::resources::related_person::{PersonFields, person};

/// The Account in the Bundle.
#[derive(Debug, Clone)]
pub struct AccountRef {
    /// Its fullUrl.
    pub url: String,
}

impl AccountRef {
    /// A Reference to it.
    pub fn reference(&self) -> Value {
        crate::bundle::reference(&self.url)
    }
}

/// One coverage of the account: the Coverage's fullUrl and its priority
/// (1 first).
#[derive(Debug, Clone)]
pub struct AccountCoverage {
    /// The Coverage's fullUrl.
    pub url: String,
    /// Its place in the order the insurers are billed (IN1-22, else the
    /// IN1's place in the message).
    pub priority: u32,
}

/// The Account's status for a billing event: P06 (end account) and P02
/// (purge account: the record is kept, other resources point at it) make
/// it `inactive`; every other event leaves it `active`.
pub fn status_for(trigger: &str) -> &'static str {
    match trigger {
        "P02" | "P06" => "inactive",
        _ => "active",
    }
}

/// Whether a BAR event states the whole account (add, update, end,
/// purge) rather than only refer to it (P12: diagnoses and procedures).
pub fn defined_by(trigger: &str) -> bool {
    matches!(trigger, "P01" | "P02" | "P05" | "P06")
}

/// What an Account holds besides its number and its patient.
#[derive(Debug, Clone, Default)]
pub struct Terms {
    /// Its status ([`status_for`] the event).
    pub status: &'static str,
    /// Its coverages, in the order the insurers are billed.
    pub coverages: Vec<AccountCoverage>,
    /// Its guarantors (each from [`guarantor`]).
    pub guarantors: Vec<Value>,
    /// Whether a message without PID-18 is a reject (an account event) or
    /// maps without an Account (a charge).
    pub required: bool,
    /// Whether the message states the whole account (BAR^P01/P02/P05/P06:
    /// `PUT`, replacing what the server has), or only refers to it (a
    /// charge, a diagnosis update, any other message: created when the
    /// server has none, left as it is when it has one, so its coverages
    /// and guarantors are never wiped by a message that does not carry
    /// them).
    pub defines: bool,
}

/// Maps the account PID-18 names (the system from CX.4 or the sending
/// facility; `PUT Account?identifier=…` or a conditional create, as
/// `terms.defines` says) with the patient as its subject and `terms`. `None` when PID-18 is empty; with `terms.required`, that is a
/// reject naming PID-18.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    pid: &Segment,
    patient: &PatientRef,
    terms: Terms,
) -> Result<Option<AccountRef>> {
    let Terms {
        status,
        coverages,
        guarantors,
        required,
        defines,
    } = terms;
    let id = identifier(&ctx.field(pid, 18).repetition(1), ctx.facility());
    let Some((id, (system, value))) = id.and_then(|id| system_value(&id).map(|sv| (id, sv))) else {
        if required {
            return Err(Error::reject(format!(
                "{} (patient account number) is empty: a billing account needs its number",
                ctx.name(pid, 18)
            )));
        }
        return Ok(None);
    };
    let mut a = Map::new();
    a.insert("resourceType".into(), "Account".into());
    a.insert("identifier".into(), json!([id]));
    a.insert("status".into(), status.into());
    a.insert(
        "type".into(),
        json!({"coding": [{"system": codes::V3_ACT_CODE, "code": "PBILLACCT", "display": "patient billing account"}]}),
    );
    a.insert("subject".into(), json!([patient.reference()]));
    let coverage: Vec<Value> = coverages
        .iter()
        .map(|c| json!({"coverage": crate::bundle::reference(&c.url), "priority": c.priority}))
        .collect();
    put_list(&mut a, "coverage", coverage);
    put_list(&mut a, "guarantor", guarantors);
    let url = if defines {
        bundle.put("Account", &system, &value, Value::Object(a))
    } else {
        bundle.ensure("Account", &system, &value, Value::Object(a))
    };
    Ok(Some(AccountRef { url }))
}

/// The priority of the `n`th IN1 (1 first): IN1-22 (coordination of
/// benefits priority) when it is a number from 1, else `n`.
pub fn coverage_priority(ctx: &Context<'_>, in1: &Segment, n: usize) -> u32 {
    ctx.text(in1, 22)
        .parse::<u32>()
        .ok()
        .filter(|p| *p >= 1)
        .unwrap_or_else(|| u32::try_from(n).unwrap_or(u32::MAX))
}

/// One GT1 as an Account guarantor: the patient when GT1-11 says `SEL`
/// (self), else a RelatedPerson (GT1-3 name, GT1-5 address, GT1-6/7
/// phones, GT1-8 birth date, GT1-9 sex, GT1-11 relationship), else the
/// organization GT1-21 names; its period from GT1-13/14. `None` when the
/// GT1 names nobody.
pub fn guarantor(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    gt1: &Segment,
    patient: &PatientRef,
) -> Result<Option<Value>> {
    let relationship = ctx.field(gt1, 11).repetition(1);
    let party = if comp(&relationship, 1) == "SEL" {
        Some(patient.reference())
    } else if let Some(url) = related_person(ctx, bundle, gt1, patient)? {
        Some(crate::bundle::reference(&url))
    } else {
        let org = ctx.text(gt1, 21);
        (!org.is_empty()).then(|| json!({ "display": org }))
    };
    let Some(party) = party else {
        return Ok(None);
    };
    let mut g = Map::new();
    g.insert("party".into(), party);
    let start = ctx.date(gt1, 13)?;
    let end = ctx.date(gt1, 14)?;
    put(&mut g, "period", period(start, end));
    Ok(Some(Value::Object(g)))
}

/// GT1's fields for the guarantor as a person.
const GT1: PersonFields = PersonFields {
    name: 3,
    address: 5,
    home: 6,
    work: 7,
    gender: 9,
    birth_date: 8,
};

/// The guarantor of a GT1 as a RelatedPerson: `None` without a name.
fn related_person(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    gt1: &Segment,
    patient: &PatientRef,
) -> Result<Option<String>> {
    let relationship = ctx
        .field(gt1, 11)
        .repetitions()
        .filter_map(|rep| codeable(&rep, &codes::v2_table("0063")))
        .collect();
    let Some((r, first)) = person(ctx, gt1, &GT1, patient, relationship)? else {
        return Ok(None);
    };
    if !r.contains_key("name") {
        return Ok(None);
    }
    // Keyed on the patient, the guarantor number (GT1-2) and the name as
    // sent: a resend updates the same person.
    let number = ctx.field(gt1, 2).repetition(1).raw().to_string();
    let key = patient.key(&format!("GT1|{number}|{first}"));
    Ok(Some(bundle.put_derived("RelatedPerson", &key, r)))
}
