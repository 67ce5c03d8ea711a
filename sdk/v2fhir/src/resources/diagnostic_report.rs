//! OBR (as a result) to DiagnosticReport, referencing its Observations.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result, log};

use crate::bundle::{Bundle, reference};
use crate::codes;
use crate::context::Context;
use crate::datatypes::{
    codeable, concept, entity_identifier, put, put_list, put_str, system_value,
};
use crate::resources::document_reference::text_lines;
use crate::resources::encounter::EncounterRef;
use crate::resources::patient::PatientRef;
use crate::resources::service_request::OrderRef;

/// What the report links to.
pub struct Links<'a> {
    /// The Patient.
    pub patient: &'a PatientRef,
    /// The Encounter, if any.
    pub encounter: Option<&'a EncounterRef>,
    /// The order the report answers.
    pub order: &'a OrderRef,
    /// The fullUrls of its Observations.
    pub results: Vec<String>,
    /// References to its specimens.
    pub specimens: Vec<Value>,
    /// Its OBX segments: when every one is text (TX or FT: a narrative
    /// report, as radiology sends), the report's text is its
    /// `presentedForm` and its impression its `conclusion`.
    pub obx: &'a [&'a Segment],
}

/// Maps one OBR with its results. OBR-4 is required; an empty OBR-25
/// (result status) maps to `unknown` with a warning.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    obr: &Segment,
    links: Links<'_>,
) -> Result<String> {
    let code = codeable(&ctx.field(obr, 4).repetition(1), "").ok_or_else(|| {
        Error::reject(format!(
            "{} (universal service identifier) is empty: a report needs a code",
            ctx.name(obr, 4)
        ))
    })?;
    let status_field = ctx.name(obr, 25);
    let status = match codes::required(
        &status_field,
        "result status",
        "result_status",
        &ctx.text(obr, 25),
        codes::report_status,
    )? {
        Some(s) => s,
        None => {
            log::warn!(
                "{status_field} (result status) is empty: DiagnosticReport.status is unknown"
            );
            "unknown".to_string()
        }
    };
    let mut r = Map::new();
    r.insert("resourceType".into(), "DiagnosticReport".into());
    let filler = entity_identifier(&ctx.field(obr, 3).repetition(1), ctx.facility(), "FILL");
    let identity = filler.as_ref().and_then(system_value);
    put(&mut r, "identifier", filler.map(|f| json!([f])));
    r.insert("basedOn".into(), json!([links.order.reference()]));
    r.insert("status".into(), Value::String(status));
    put(
        &mut r,
        "category",
        concept(&ctx.text(obr, 24), &codes::v2_table("0074")).map(|c| json!([c])),
    );
    r.insert("code".into(), code);
    r.insert("subject".into(), links.patient.reference());
    put(
        &mut r,
        "encounter",
        links.encounter.map(EncounterRef::reference),
    );
    let start = ctx.date_time(obr, 7)?;
    let end = ctx.date_time(obr, 8)?;
    match (start, end) {
        (Some(a), Some(b)) if a != b => {
            r.insert("effectivePeriod".into(), json!({"start": a, "end": b}));
        }
        (Some(a), _) => {
            r.insert("effectiveDateTime".into(), Value::String(a));
        }
        _ => {}
    }
    let issued = ctx.field(obr, 22).repetition(1).part(1).value();
    put(
        &mut r,
        "issued",
        ctx.instant_value(&ctx.name(obr, 22), issued.trim())?
            .map(Value::String),
    );
    put_list(&mut r, "specimen", links.specimens);
    if let Some((text, conclusion)) = narrative(ctx, links.obx) {
        put_str(&mut r, "conclusion", conclusion);
        r.insert(
            "presentedForm".into(),
            json!([{
                "contentType": "text/plain; charset=utf-8",
                "data": STANDARD.encode(text.as_bytes()),
            }]),
        );
    }
    put_list(
        &mut r,
        "result",
        links.results.iter().map(|u| reference(u)).collect(),
    );
    // The filler's number identifies the report; else the order does.
    Ok(match identity {
        Some((system, value)) => bundle.put("DiagnosticReport", &system, &value, Value::Object(r)),
        None => {
            let key = format!("{}|report", links.order.key);
            bundle.put_derived("DiagnosticReport", &key, r)
        }
    })
}

/// The text of a narrative report (every OBX of value type TX or FT) and
/// its conclusion: the lines of the OBX that are the impression (LOINC
/// 19005-8, or an OBX-3 whose code or text ends in `IMP` or says
/// impression), else the whole text. `None` when some OBX is not text.
fn narrative(ctx: &Context<'_>, obx: &[&Segment]) -> Option<(String, String)> {
    if obx.is_empty()
        || !obx
            .iter()
            .all(|o| matches!(ctx.text(o, 2).as_str(), "TX" | "FT"))
    {
        return None;
    }
    let mut all = Vec::new();
    let mut impression = Vec::new();
    for o in obx {
        let lines = text_lines(ctx, o);
        let id = ctx.field(o, 3).repetition(1);
        let code = id.part(1).value().trim().to_ascii_uppercase();
        let name = id.part(2).value().trim().to_ascii_uppercase();
        if code == "19005-8" || code.ends_with("IMP") || name.contains("IMPRESSION") {
            impression.extend(lines.iter().cloned());
        }
        all.extend(lines);
    }
    let text = all.join("\n").trim_end().to_string();
    if text.trim().is_empty() {
        return None;
    }
    let conclusion = if impression.is_empty() {
        text.clone()
    } else {
        impression.join("\n").trim_end().to_string()
    };
    Some((text, conclusion))
}
