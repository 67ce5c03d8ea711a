//! MedicationRequest to an RDE^O11 order group: ORC, RXE, NTE, TQ1, RXR;
//! the inverse of `weft_v2fhir::resources::medication_request` and
//! `dosage`.

use weft_sdk::hl7::Delimiters;
use weft_sdk::serde_json::Value;
use weft_sdk::{Error, Result};
use weft_v2fhir::codes::{UCUM, v2_table};

use crate::codes;
use crate::datatypes::{cwe, cwe_in, dtm_at, ei, identifier_type, xcn};
use crate::input::{Resources, kind, list, str_at};
use crate::write::{Composite, SegmentBuilder, Segments};

/// The identifier type text `weft_v2fhir` gives the prescription number
/// (RXE-15).
const PRESCRIPTION_NUMBER: &str = "Prescription number";

/// MedicationRequest.status to ORC-1 and ORC-5 (table 0119 / 0038).
pub fn order_control(status: &str) -> Option<(&'static str, &'static str)> {
    Some(match status {
        "active" => ("NW", ""),
        "on-hold" => ("HD", "HD"),
        "cancelled" => ("CA", "CA"),
        "stopped" => ("DC", "DC"),
        "completed" => ("SC", "CM"),
        "entered-in-error" => ("CA", "ER"),
        _ => return None,
    })
}

/// A Quantity's number as NM text, or `""`.
fn number(q: &Value, key: &str) -> String {
    match q.get(key) {
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A Quantity's units as CWE (code ^ unit ^ `UCUM`), the inverse of
/// `weft_v2fhir::datatypes::quantity`.
pub fn units(q: &Value) -> Composite {
    let (code, unit) = (str_at(q, "code"), str_at(q, "unit"));
    let mut c = Composite::new();
    if code.is_empty() {
        c.set(1, unit);
    } else {
        c.set(1, code).set(2, unit);
        if str_at(q, "system") == UCUM {
            c.set(3, "UCUM");
        }
    }
    c
}

/// Appends the order group of `request` to `out`. The drug (RXE-2) and
/// the route (RXR-1) are required by RDE^O11: an order without them is a
/// reject naming the element.
pub fn order_group<'a>(
    res: &Resources<'a>,
    request: &'a Value,
    d: &Delimiters,
    out: &mut Segments,
) -> Result<()> {
    let status = str_at(request, "status");
    let (control, order_status) = order_control(status).ok_or_else(|| {
        Error::reject(format!(
            "MedicationRequest.status {}: only active, on-hold, cancelled, stopped, completed and entered-in-error orders are sent",
            if status.is_empty() { "is empty" } else { "is not an order to send" }
        ))
    })?;
    let ids = list(request, "identifier");
    let typed = |t: &str| ids.iter().find(|i| identifier_type(i) == t).and_then(ei);
    let placer = typed("PLAC")
        .or_else(|| {
            ids.iter()
                .filter(|i| {
                    identifier_type(i) != "FILL"
                        && i.get("type").map(|t| str_at(t, "text")) != Some(PRESCRIPTION_NUMBER)
                })
                .find_map(ei)
        })
        .ok_or_else(|| {
            Error::reject(
                "MedicationRequest.identifier holds no placer order number (type PLAC): ORC-2 is required",
            )
        })?;
    let (drug, form) = medication(res, request)?;
    let dosage = list(request, "dosageInstruction").first();

    let mut orc = SegmentBuilder::new("ORC");
    orc.set_text(1, control)
        .set(2, placer)
        .set(3, typed("FILL").unwrap_or_default())
        .set_text(5, order_status)
        .set_text(
            9,
            dtm_at(request, "authoredOn", "MedicationRequest.authoredOn")?,
        );
    if let Some(r) = request.get("recorder").and_then(|r| xcn(res, request, r)) {
        orc.set(10, r);
    }
    if let Some(r) = request.get("requester").and_then(|r| xcn(res, request, r)) {
        orc.set(12, r);
    }
    out.push(orc);

    let mut rxe = SegmentBuilder::new("RXE");
    rxe.set(2, drug);
    if let Some(dr) = dosage.and_then(|d| list(d, "doseAndRate").first()) {
        if let Some(q) = dr.get("doseQuantity") {
            rxe.set_text(3, number(q, "value")).set(5, units(q));
        } else if let Some(r) = dr.get("doseRange") {
            let (low, high) = (&r["low"], &r["high"]);
            rxe.set_text(3, number(low, "value"))
                .set_text(4, number(high, "value"))
                .set(5, units(low));
        }
        if let Some(q) = dr.get("rateQuantity") {
            rxe.set_text(23, number(q, "value")).set(24, units(q));
        }
    }
    rxe.set(6, form.unwrap_or_default());
    if let Some(dose) = dosage {
        let coded: Vec<Composite> = list(dose, "additionalInstruction")
            .iter()
            .filter_map(cwe)
            .collect();
        if coded.is_empty() {
            rxe.set(7, Composite::new().with(2, str_at(dose, "text")));
        } else {
            rxe.push_all(7, coded);
        }
    }
    if let Some(Value::Bool(allowed)) = request
        .get("substitution")
        .and_then(|s| s.get("allowedBoolean"))
    {
        rxe.set_text(9, if *allowed { "G" } else { "N" });
    }
    if let Some(dispense) = request.get("dispenseRequest") {
        if let Some(q) = dispense.get("quantity") {
            rxe.set_text(10, number(q, "value")).set(11, units(q));
        }
        rxe.set_text(12, number(dispense, "numberOfRepeatsAllowed"));
        if let Some(q) = dispense.get("initialFill").and_then(|f| f.get("quantity")) {
            rxe.set_text(39, number(q, "value"));
        }
    }
    if let Some(rx) = ids
        .iter()
        .find(|i| i.get("type").map(|t| str_at(t, "text")) == Some(PRESCRIPTION_NUMBER))
    {
        rxe.set_text(15, str_at(rx, "value"));
    }
    rxe.push_all(27, list(request, "reasonCode").iter().filter_map(cwe));
    out.push(rxe);

    super::notes(request, d, out);

    out.push(tq1(request, dosage)?);

    let route = dosage
        .and_then(|d| d.get("route"))
        .and_then(|r| cwe_in(r, &v2_table("0162")))
        .ok_or_else(|| {
            Error::reject(
                "MedicationRequest.dosageInstruction.route is empty: RXR-1 (route) is required in RDE^O11",
            )
        })?;
    let mut rxr = SegmentBuilder::new("RXR");
    rxr.set(1, route);
    if let Some(site) = dosage
        .and_then(|d| d.get("site"))
        .and_then(|s| cwe_in(s, &v2_table("0163")))
    {
        rxr.set(2, site);
    }
    if let Some(method) = dosage
        .and_then(|d| d.get("method"))
        .and_then(|m| cwe_in(m, &v2_table("0165")))
    {
        rxr.set(4, method);
    }
    out.push(rxr);
    Ok(())
}

/// The drug (RXE-2) and its form (RXE-6): the Medication's code and form
/// when `medicationReference` resolves, else `medicationCodeableConcept`.
fn medication<'a>(
    res: &Resources<'a>,
    request: &'a Value,
) -> Result<(Composite, Option<Composite>)> {
    let missing = || {
        Error::reject(
            "MedicationRequest.medication[x] has no code or text: RXE-2 (give code) is required",
        )
    };
    if let Some(cc) = request.get("medicationCodeableConcept") {
        return Ok((cwe(cc).ok_or_else(missing)?, None));
    }
    let reference = request.get("medicationReference").ok_or_else(missing)?;
    match res
        .resolve(request, reference)
        .filter(|m| kind(m) == "Medication")
    {
        Some(m) => Ok((
            m.get("code").and_then(cwe).ok_or_else(missing)?,
            m.get("form").and_then(cwe),
        )),
        None => {
            let display = str_at(reference, "display");
            if display.is_empty() {
                return Err(missing());
            }
            Ok((Composite::new().with(2, display), None))
        }
    }
}

/// The TQ1 of the encoded order (RDE^O11 requires one): repeat pattern
/// (TQ1-3 from Timing.code, or the period), times of day (TQ1-4), bounds
/// (TQ1-7/8, or the duration TQ1-6), priority or PRN (TQ1-9), as-needed
/// condition (TQ1-10), count (TQ1-14).
fn tq1(request: &Value, dosage: Option<&Value>) -> Result<SegmentBuilder> {
    let mut s = SegmentBuilder::new("TQ1");
    s.set_text(1, "1");
    let timing = dosage.and_then(|d| d.get("timing"));
    let repeat = timing.and_then(|t| t.get("repeat"));
    let mut rpt = Composite::new();
    if let Some(code) = timing
        .and_then(|t| t.get("code"))
        .and_then(|c| cwe_in(c, &v2_table("0335")))
    {
        rpt = rpt.with_inner(1, &code);
    } else if let Some(r) = repeat {
        rpt.set(5, number(r, "period"));
        rpt.set(6, str_at(r, "periodUnit"));
    }
    if let Some(r) = repeat {
        if let Some(when) = list(r, "when").first().and_then(Value::as_str) {
            rpt.set(8, when);
        }
        for t in list(r, "timeOfDay").iter().filter_map(Value::as_str) {
            let digits: String = t.chars().filter(char::is_ascii_digit).collect();
            let hhmm = if digits.ends_with("00") && digits.len() == 6 {
                &digits[..4]
            } else {
                &digits[..]
            };
            s.push(4, Composite::text(hhmm));
        }
        if let Some(p) = r.get("boundsPeriod") {
            s.set_text(
                7,
                dtm_at(
                    p,
                    "start",
                    "MedicationRequest.dosageInstruction.timing.repeat.boundsPeriod.start",
                )?,
            );
            s.set_text(
                8,
                dtm_at(
                    p,
                    "end",
                    "MedicationRequest.dosageInstruction.timing.repeat.boundsPeriod.end",
                )?,
            );
        } else if let Some(d) = r.get("boundsDuration") {
            let unit = match str_at(d, "code") {
                "" => str_at(d, "unit"),
                code => code,
            };
            s.set(6, Composite::text(number(d, "value")).with(2, unit));
        }
        s.set_text(14, number(r, "count"));
    }
    s.set(3, rpt);
    let priority = codes::priority(str_at(request, "priority")).unwrap_or("");
    let as_needed = dosage.map(|d| (d.get("asNeededBoolean"), d.get("asNeededCodeableConcept")));
    match as_needed {
        Some((_, Some(cc))) => {
            s.set_text(9, priority).set_text(10, str_at(cc, "text"));
        }
        Some((Some(Value::Bool(true)), None)) if priority.is_empty() => {
            s.set_text(9, "PRN");
        }
        _ => {
            s.set_text(9, priority);
        }
    }
    Ok(s)
}
