//! PID-10 (race) and PID-22 (ethnic group) to the US Core race and
//! ethnicity extensions on Patient: OMB categories and detailed codes of
//! the CDC Race & Ethnicity code system, with the text as sent.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Value, json};
use weft_sdk::{log, lookup};

use crate::context::Context;
use crate::datatypes::Parts;

/// The CDC Race & Ethnicity code system (PHIN VADS `CDCREC`).
pub const CDCREC: &str = "urn:oid:2.16.840.1.113883.6.238";
/// HL7 v3 NullFlavor (UNK, ASKU in the OMB categories).
pub const NULL_FLAVOR: &str = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor";
/// The US Core race extension.
pub const RACE_URL: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race";
/// The US Core ethnicity extension.
pub const ETHNICITY_URL: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity";

/// The OMB race categories (code, display).
pub const OMB_RACE: &[(&str, &str)] = &[
    ("1002-5", "American Indian or Alaska Native"),
    ("2028-9", "Asian"),
    ("2054-5", "Black or African American"),
    ("2076-8", "Native Hawaiian or Other Pacific Islander"),
    ("2106-3", "White"),
];

/// The OMB ethnicity categories (code, display).
pub const OMB_ETHNICITY: &[(&str, &str)] = &[
    ("2135-2", "Hispanic or Latino"),
    ("2186-5", "Not Hispanic or Latino"),
];

/// What kind of code a CWE repetition holds.
enum Code {
    /// One of the OMB categories, or UNK/ASKU.
    Omb(Value),
    /// Another CDC race or ethnicity code.
    Detailed(Value),
}

/// Codes sites commonly send instead of CDC ones: table 0005's letters
/// (race) and table 0189's (ethnic group); a site's `race` /
/// `ethnic_group` lookup table maps its own to CDC codes first.
fn legacy(table: &str, code: &str) -> Option<&'static str> {
    Some(match (table, code) {
        ("race", "W") => "2106-3",
        ("race", "B") => "2054-5",
        ("race", "A") => "2028-9",
        ("race", "I") => "1002-5",
        ("race", "P") => "2076-8",
        ("ethnic_group", "H") => "2135-2",
        ("ethnic_group", "N") => "2186-5",
        (_, "U") => "UNK",
        _ => return None,
    })
}

/// A CDC code is `nnnn-n`.
fn is_cdc(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 6
        && b[4] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || c.is_ascii_digit())
}

fn classify(table: &str, omb: &[(&str, &str)], code: &str, display: &str) -> Option<Code> {
    let code = lookup(table, code)
        .or_else(|| legacy(table, code).map(str::to_string))
        .unwrap_or_else(|| code.to_string());
    if let Some((c, d)) = omb.iter().find(|(c, _)| *c == code) {
        return Some(Code::Omb(
            json!({"system": CDCREC, "code": c, "display": d}),
        ));
    }
    if code == "UNK" || code == "ASKU" {
        let d = if code == "UNK" {
            "unknown"
        } else {
            "asked but unknown"
        };
        return Some(Code::Omb(
            json!({"system": NULL_FLAVOR, "code": code, "display": d}),
        ));
    }
    if is_cdc(&code) {
        let mut c = json!({"system": CDCREC, "code": code});
        if !display.is_empty() {
            c["display"] = Value::String(display.to_string());
        }
        return Some(Code::Detailed(c));
    }
    None
}

/// The extension for field `n` of `pid` (`url`, codes through the lookup
/// table `table`), or `None` when the field is empty. Codes neither CDC
/// nor mapped are kept only in the text (with a warning naming the
/// field); the text is the sent texts, else the codes' displays.
fn extension(
    ctx: &Context<'_>,
    pid: &Segment,
    n: usize,
    url: &str,
    table: &str,
    omb: &[(&str, &str)],
    max_omb: usize,
) -> Option<Value> {
    let mut parts = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut displays: Vec<String> = Vec::new();
    let mut omb_count = 0;
    for rep in ctx.field(pid, n).repetitions() {
        let p = Parts::of(&rep);
        let (code, display) = (p.text(1), p.text(2));
        let text = [p.text(9), display.clone()]
            .into_iter()
            .find(|t| !t.is_empty())
            .unwrap_or_default();
        if !text.is_empty() && !texts.contains(&text) {
            texts.push(text);
        }
        if code.is_empty() {
            continue;
        }
        let coding = classify(table, omb, &code, &display);
        // A code sent twice is one category.
        let seen = |c: &Value| {
            parts.iter().any(|p: &Value| {
                p["valueCoding"]["code"] == c["code"] && p["valueCoding"]["system"] == c["system"]
            })
        };
        match coding {
            Some(Code::Omb(c) | Code::Detailed(c)) if seen(&c) => {}
            Some(Code::Omb(c)) if omb_count < max_omb => {
                omb_count += 1;
                displays.extend(c["display"].as_str().map(str::to_string));
                parts.push(json!({"url": "ombCategory", "valueCoding": c}));
            }
            Some(Code::Omb(_)) => {
                log::warn!(
                    "{}: more OMB categories than US Core allows; the rest are left out",
                    ctx.name(pid, n)
                );
            }
            Some(Code::Detailed(c)) => {
                displays.extend(c["display"].as_str().map(str::to_string));
                parts.push(json!({"url": "detailed", "valueCoding": c}));
            }
            None => log::warn!(
                "{}: a code that is not a CDC race and ethnicity code (add it to the {table} lookup table); kept as text only",
                ctx.name(pid, n)
            ),
        }
    }
    let text = if texts.is_empty() { displays } else { texts }.join(", ");
    if parts.is_empty() && text.is_empty() {
        return None;
    }
    // US Core requires the text.
    parts.push(json!({"url": "text", "valueString": if text.is_empty() { "unknown".to_string() } else { text }}));
    Some(json!({"url": url, "extension": parts}))
}

/// The US Core race (PID-10) and ethnicity (PID-22) extensions of `pid`.
pub fn extensions(ctx: &Context<'_>, pid: &Segment) -> Vec<Value> {
    [
        extension(ctx, pid, 10, RACE_URL, "race", OMB_RACE, 6),
        extension(
            ctx,
            pid,
            22,
            ETHNICITY_URL,
            "ethnic_group",
            OMB_ETHNICITY,
            1,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}
