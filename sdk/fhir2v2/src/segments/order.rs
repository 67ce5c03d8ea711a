//! ServiceRequest to an order group: ORC, TQ1, OBR, NTE, DG1 and SPM; the
//! inverse of `weft_v2fhir::resources::service_request` (and of the
//! condition and specimen mappers for DG1 and SPM).

use weft_sdk::serde_json::Value;
use weft_sdk::{Error, Result};

use crate::codes;
use crate::datatypes::{cwe, cwe_in, dtm, dtm_at, ei, identifier_type, xcn};
use crate::input::{Resources, kind, list, str_at};
use crate::settings::OrderMessage;
use crate::write::{Composite, SegmentBuilder, Segments};
use weft_sdk::hl7::Delimiters;
use weft_v2fhir::codes::v2_table;

/// The most orders one message may carry.
pub const MAX_ORDERS: usize = 500;

/// Appends the order group of `request` (the `n`th order of the message,
/// from 1) to `out`: ORC, TQ1, OBR, an NTE per note, a DG1 per reason
/// Condition, and (OML only) an SPM per specimen.
pub fn order_group<'a>(
    res: &Resources<'a>,
    request: &'a Value,
    n: usize,
    message: OrderMessage,
    d: &Delimiters,
    out: &mut Segments,
) -> Result<()> {
    let status = str_at(request, "status");
    let (control, order_status) = codes::order_control(status).ok_or_else(|| {
        Error::reject(format!(
            "ServiceRequest.status {}: only active, on-hold, revoked, completed and entered-in-error orders are sent",
            if status.is_empty() { "is empty" } else { "is not an order to send" }
        ))
    })?;
    let ids = list(request, "identifier");
    let placer = ids
        .iter()
        .find(|i| identifier_type(i) == "PLAC")
        .or_else(|| ids.iter().find(|i| !matches!(identifier_type(i), "FILL")))
        .and_then(ei)
        .ok_or_else(|| {
            Error::reject(
                "ServiceRequest.identifier holds no placer order number (type PLAC, or any not FILL): ORC-2 is required",
            )
        })?;
    let filler = ids
        .iter()
        .find(|i| identifier_type(i) == "FILL")
        .and_then(ei);
    let code = request.get("code").and_then(cwe).ok_or_else(|| {
        Error::reject(
            "ServiceRequest.code is empty: OBR-4 (universal service identifier) is required",
        )
    })?;
    let requester = request.get("requester").and_then(|r| xcn(res, request, r));
    let authored = dtm_at(request, "authoredOn", "ServiceRequest.authoredOn")?;

    let mut orc = SegmentBuilder::new("ORC");
    orc.set_text(1, control)
        .set(2, placer.clone())
        .set(3, filler.clone().unwrap_or_default())
        .set_text(5, order_status);
    if let Some(req) = request.get("requisition").and_then(ei) {
        orc.set(4, req);
    }
    orc.set_text(9, authored);
    if let Some(r) = &requester {
        orc.set(12, r.clone());
    }
    out.push(orc);

    let (start, end) = occurrence(request)?;
    let priority = codes::priority(str_at(request, "priority")).unwrap_or("");
    if !start.is_empty() || !end.is_empty() || !priority.is_empty() {
        let mut tq1 = SegmentBuilder::new("TQ1");
        tq1.set_text(1, "1")
            .set_text(7, start)
            .set_text(8, end)
            .set(9, Composite::text(priority));
        out.push(tq1);
    }

    let mut obr = SegmentBuilder::new("OBR");
    obr.set_text(1, n.to_string())
        .set(2, placer)
        .set(3, filler.unwrap_or_default())
        .set(4, code);
    if let Some(r) = requester {
        obr.set(16, r);
    }
    obr.push_all(31, list(request, "reasonCode").iter().filter_map(cwe));
    out.push(obr);

    super::notes(request, d, out);

    let mut dg1_n = 0;
    for reason in list(request, "reasonReference") {
        let Some(condition) = res
            .resolve(request, reason)
            .filter(|c| kind(c) == "Condition")
        else {
            continue;
        };
        let Some(code) = condition.get("code").and_then(cwe) else {
            continue;
        };
        dg1_n += 1;
        let mut dg1 = SegmentBuilder::new("DG1");
        dg1.set_text(1, dg1_n.to_string())
            .set(3, code)
            .set_text(
                5,
                dtm_at(condition, "onsetDateTime", "Condition.onsetDateTime")?,
            )
            .set_text(6, "W");
        if let Some(id) = list(condition, "identifier").iter().find_map(ei) {
            dg1.set(20, id);
        }
        out.push(dg1);
    }

    if message == OrderMessage::Oml {
        let mut spm_n = 0;
        for r in list(request, "specimen") {
            let Some(specimen) = res.resolve(request, r).filter(|s| kind(s) == "Specimen") else {
                continue;
            };
            spm_n += 1;
            out.push(spm(specimen, spm_n)?);
        }
    }
    Ok(())
}

/// TQ1-7/8 from occurrenceDateTime or occurrencePeriod.
fn occurrence(request: &Value) -> Result<(String, String)> {
    if let Some(t) = request.get("occurrenceDateTime").and_then(Value::as_str) {
        return Ok((dtm("ServiceRequest.occurrenceDateTime", t)?, String::new()));
    }
    match request.get("occurrencePeriod") {
        Some(p) => Ok((
            dtm_at(p, "start", "ServiceRequest.occurrencePeriod.start")?,
            dtm_at(p, "end", "ServiceRequest.occurrencePeriod.end")?,
        )),
        None => Ok((String::new(), String::new())),
    }
}

/// Specimen to SPM: identifiers (SPM-2: placer ^ filler EI, by type PGN /
/// FGN), type (SPM-4), collection method (SPM-7), body site (SPM-8),
/// collection time or period (SPM-17), received time (SPM-18).
pub fn spm(specimen: &Value, n: usize) -> Result<SegmentBuilder> {
    let ids = list(specimen, "identifier");
    let by_type = |t: &str| ids.iter().find(|i| identifier_type(i) == t).and_then(ei);
    let placer = by_type("PGN").or_else(|| {
        ids.iter()
            .find(|i| identifier_type(i) != "FGN")
            .and_then(ei)
    });
    let filler = by_type("FGN").or_else(|| specimen.get("accessionIdentifier").and_then(ei));
    let mut eip = Composite::new();
    if let Some(p) = placer {
        eip = eip.with_inner(1, &p);
    }
    if let Some(f) = filler {
        eip = eip.with_inner(2, &f);
    }
    let mut s = SegmentBuilder::new("SPM");
    s.set_text(1, n.to_string()).set(2, eip);
    if let Some(t) = specimen
        .get("type")
        .and_then(|t| cwe_in(t, &v2_table("0487")))
    {
        s.set(4, t);
    }
    if let Some(c) = specimen.get("collection") {
        if let Some(m) = c.get("method").and_then(|m| cwe_in(m, &v2_table("0488"))) {
            s.set(7, m);
        }
        if let Some(site) = c.get("bodySite").and_then(cwe) {
            s.set(8, site);
        }
        let mut when = Composite::new();
        if let Some(t) = c.get("collectedDateTime").and_then(Value::as_str) {
            when.set(1, dtm("Specimen.collection.collectedDateTime", t)?);
        } else if let Some(p) = c.get("collectedPeriod") {
            when.set(
                1,
                dtm_at(p, "start", "Specimen.collection.collectedPeriod.start")?,
            );
            when.set(
                2,
                dtm_at(p, "end", "Specimen.collection.collectedPeriod.end")?,
            );
        }
        s.set(17, when);
    }
    s.set_text(
        18,
        dtm_at(specimen, "receivedTime", "Specimen.receivedTime")?,
    );
    Ok(s)
}
