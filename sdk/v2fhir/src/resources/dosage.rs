//! How a drug is to be (or was) given: TQ1 (timing), RXR (route, site,
//! method), the dose and rate fields of RXO, RXE and RXA, and the
//! administration instructions, to a FHIR Dosage.

use weft_sdk::hl7::{Element, Segment};
use weft_sdk::serde_json::{Map, Number, Value, json};
use weft_sdk::{Result, log};

use crate::codes;
use crate::context::Context;
use crate::datatypes::{codeable, decimal, put, put_list, quantity};

/// The dose fields of one segment: the amount (or the low end of a
/// range), the high end, the units, and the rate's amount and units.
pub struct Dose<'m> {
    /// RXO, RXE or RXA.
    pub seg: &'m Segment,
    /// Give amount minimum (RXO-2, RXE-3) or administered amount (RXA-6).
    pub min: usize,
    /// Give amount maximum (RXO-3, RXE-4).
    pub max: Option<usize>,
    /// Give units (RXO-4, RXE-5, RXA-7).
    pub units: usize,
    /// Give rate amount and units (RXO-21/22, RXE-23/24).
    pub rate: Option<(usize, usize)>,
}

/// What one Dosage is made of; every part is optional.
#[derive(Default)]
pub struct Sources<'m> {
    /// The dose.
    pub dose: Option<Dose<'m>>,
    /// The timing.
    pub tq1: Option<&'m Segment>,
    /// The route.
    pub rxr: Option<&'m Segment>,
    /// A repeating CWE of administration instructions (RXE-7, RXO-7):
    /// their texts become the Dosage's text, the coded ones
    /// `additionalInstruction` as well.
    pub instructions: Option<(&'m Segment, usize)>,
}

/// The Dosage, or `None` when none of its parts says anything.
pub fn map(ctx: &Context<'_>, parts: &Sources<'_>) -> Result<Option<Value>> {
    let mut d = Map::new();
    let mut texts = Vec::new();
    if let Some((seg, n)) = parts.instructions {
        texts.extend(instruction_texts(ctx, seg, n));
        let coded: Vec<Value> = ctx
            .field(seg, n)
            .repetitions()
            .filter(|r| {
                !r.part(1).value().trim().is_empty() && !r.part(3).value().trim().is_empty()
            })
            .filter_map(|r| codeable(&r, ""))
            .collect();
        put_list(&mut d, "additionalInstruction", coded);
    }
    if let Some(tq1) = parts.tq1 {
        let t = ctx.text(tq1, 11);
        if !t.is_empty() {
            texts.push(t);
        }
        put(&mut d, "timing", timing(ctx, tq1)?);
        let condition = ctx.text(tq1, 10);
        if !condition.is_empty() {
            d.insert(
                "asNeededCodeableConcept".into(),
                json!({ "text": condition }),
            );
        } else if ctx.text(tq1, 9).eq_ignore_ascii_case("PRN") {
            d.insert("asNeededBoolean".into(), Value::Bool(true));
        }
    }
    if !texts.is_empty() {
        d.insert("text".into(), Value::String(texts.join("; ")));
    }
    if let Some(rxr) = parts.rxr {
        put(
            &mut d,
            "site",
            codeable(&ctx.field(rxr, 2).repetition(1), &codes::v2_table("0163")),
        );
        put(
            &mut d,
            "route",
            codeable(&ctx.field(rxr, 1).repetition(1), &codes::v2_table("0162")),
        );
        put(
            &mut d,
            "method",
            codeable(&ctx.field(rxr, 4).repetition(1), &codes::v2_table("0165")),
        );
    }
    if let Some(dose) = &parts.dose {
        put(&mut d, "doseAndRate", dose_and_rate(ctx, dose)?);
    }
    Ok((!d.is_empty()).then_some(Value::Object(d)))
}

/// The texts of a repeating CWE of instructions: each repetition's
/// original text, else its text, else its code.
pub fn instruction_texts(ctx: &Context<'_>, seg: &Segment, n: usize) -> Vec<String> {
    ctx.field(seg, n)
        .repetitions()
        .filter_map(|r| {
            [9, 2, 1]
                .into_iter()
                .map(|c| r.part(c).value().trim().to_string())
                .find(|t| !t.is_empty())
        })
        .collect()
}

/// The request priority of a TQ1 (TQ1-9, table 0485), through the
/// `priority` lookup table; an unknown code is left out with a warning.
pub fn priority(ctx: &Context<'_>, tq1: &Segment) -> Option<String> {
    codes::optional(
        &ctx.name(tq1, 9),
        "priority",
        &ctx.text(tq1, 9),
        codes::request_priority,
    )
}

fn dose_and_rate(ctx: &Context<'_>, dose: &Dose<'_>) -> Result<Option<Value>> {
    let seg = dose.seg;
    let units = ctx.field(seg, dose.units).repetition(1);
    let amount = |n: usize| -> Result<Option<Number>> {
        let text = ctx.text(seg, n);
        // 999: "amount unknown" in immunization and administration
        // messages.
        if text == "999" && dose.max.is_none() {
            return Ok(None);
        }
        decimal(&ctx.name(seg, n), &text)
    };
    let low = amount(dose.min)?;
    let high = match dose.max {
        Some(n) => amount(n)?,
        None => None,
    };
    let mut dr = Map::new();
    match (low, high) {
        (Some(l), Some(h)) if l != h => {
            dr.insert(
                "doseRange".into(),
                json!({"low": quantity(l, &units), "high": quantity(h, &units)}),
            );
        }
        (Some(n), _) | (None, Some(n)) => {
            dr.insert("doseQuantity".into(), quantity(n, &units));
        }
        (None, None) => {}
    }
    if let Some((amount, units)) = dose.rate
        && let Some(n) = decimal(&ctx.name(seg, amount), &ctx.text(seg, amount))?
    {
        dr.insert(
            "rateQuantity".into(),
            quantity(n, &ctx.field(seg, units).repetition(1)),
        );
    }
    Ok((!dr.is_empty()).then(|| Value::Array(vec![Value::Object(dr)])))
}

/// TQ1 to Timing: the repeat pattern (TQ1-3) as the Timing's code and,
/// when it is one of the usual patterns, as frequency and period; the
/// explicit times (TQ1-4); the bounds (TQ1-7/8 as a period, else the
/// service duration TQ1-6); the total occurrences (TQ1-14).
fn timing(ctx: &Context<'_>, tq1: &Segment) -> Result<Option<Value>> {
    let mut t = Map::new();
    let mut repeat = Map::new();
    let rpt = ctx.field(tq1, 3).repetition(1);
    let pattern = rpt.part(1);
    if let Some(code) = codeable(&pattern, &codes::v2_table("0335")) {
        let text = pattern.part(1).value().trim().to_ascii_uppercase();
        if let Some(r) = repeat_of(&text) {
            repeat.extend(r);
        }
        t.insert("code".into(), code);
    }
    if !repeat.contains_key("period") {
        let amount = rpt.part(5).value().trim().to_string();
        let unit = rpt.part(6).part(1).value().trim().to_string();
        if let (Ok(Some(n)), Some(u)) = (decimal(&ctx.name(tq1, 3), &amount), ucum_time_unit(&unit))
        {
            repeat.insert("period".into(), Value::Number(n));
            repeat.insert("periodUnit".into(), u.into());
        }
    }
    let event = rpt.part(8).value().trim().to_ascii_uppercase();
    if EVENT_TIMING.contains(&event.as_str()) {
        repeat.insert("when".into(), json!([event]));
    }
    let times: Vec<Value> = ctx
        .field(tq1, 4)
        .repetitions()
        .filter_map(|r| time_of_day(r.part(1).value().trim()))
        .map(Value::String)
        .collect();
    put_list(&mut repeat, "timeOfDay", times);
    let start = ctx.date_time(tq1, 7)?;
    let end = ctx.date_time(tq1, 8)?;
    if start.is_some() || end.is_some() {
        let mut p = Map::new();
        put(&mut p, "start", start.map(Value::String));
        put(&mut p, "end", end.map(Value::String));
        repeat.insert("boundsPeriod".into(), Value::Object(p));
    } else if let Some(d) = duration(ctx, tq1, &ctx.field(tq1, 6).repetition(1))? {
        repeat.insert("boundsDuration".into(), d);
    }
    if let Some(n) = decimal(&ctx.name(tq1, 14), &ctx.text(tq1, 14))?
        && let Some(count) = n.as_u64().filter(|c| *c >= 1)
    {
        repeat.insert("count".into(), count.into());
    }
    if !repeat.is_empty() {
        t.insert("repeat".into(), Value::Object(repeat));
    }
    Ok((!t.is_empty()).then_some(Value::Object(t)))
}

/// A CQ (quantity ^ units) that is a time span to a Duration; a unit that
/// is not a time is left out with a warning.
fn duration(ctx: &Context<'_>, tq1: &Segment, cq: &Element<'_>) -> Result<Option<Value>> {
    let Some(n) = decimal(&ctx.name(tq1, 6), &cq.part(1).value())? else {
        return Ok(None);
    };
    let unit = cq.part(2).part(1).value().trim().to_string();
    match ucum_time_unit(&unit) {
        Some(u) => Ok(Some(json!({
            "value": n, "unit": u, "system": codes::UCUM, "code": u
        }))),
        None => {
            log::warn!("{}: the units are not a time; left out", ctx.name(tq1, 6));
            Ok(None)
        }
    }
}

/// The usual repeat patterns of table 0335 as a Timing's repeat.
fn repeat_of(code: &str) -> Option<Map<String, Value>> {
    let fp = |frequency: u64, period: u64, unit: &str| {
        let mut m = Map::new();
        m.insert("frequency".into(), frequency.into());
        m.insert("period".into(), period.into());
        m.insert("periodUnit".into(), unit.into());
        m
    };
    let when = |frequency: u64, at: &str| {
        let mut m = fp(frequency, 1, "d");
        m.insert("when".into(), json!([at]));
        m
    };
    Some(match code {
        "QD" | "DAILY" => fp(1, 1, "d"),
        "BID" => fp(2, 1, "d"),
        "TID" => fp(3, 1, "d"),
        "QID" => fp(4, 1, "d"),
        "QOD" => fp(1, 2, "d"),
        "QAM" => when(1, "MORN"),
        "QPM" => when(1, "EVE"),
        "QHS" => when(1, "HS"),
        "ONCE" => {
            let mut m = Map::new();
            m.insert("count".into(), 1.into());
            m
        }
        _ => {
            // xID: x times a day; Q<n>S/M/H/D/W/L: every n units.
            if let Some(x) = code.strip_suffix("ID")
                && let Ok(x) = x.parse::<u64>()
                && (1..=48).contains(&x)
            {
                return Some(fp(x, 1, "d"));
            }
            let rest = code.strip_prefix('Q')?;
            let split = rest.find(|c: char| !c.is_ascii_digit())?;
            let (n, unit) = rest.split_at(split);
            let n: u64 = n.parse().ok().filter(|n| *n >= 1)?;
            let unit = match unit {
                "S" => "s",
                "M" => "min",
                "H" => "h",
                "D" => "d",
                "W" => "wk",
                "L" => "mo",
                _ => return None,
            };
            fp(1, n, unit)
        }
    })
}

/// The event timing codes FHIR's Timing.repeat.when takes.
const EVENT_TIMING: &[&str] = &[
    "MORN", "NOON", "AFT", "EVE", "NIGHT", "PHS", "HS", "WAKE", "C", "CM", "CD", "CV", "AC", "ACM",
    "ACD", "ACV", "PC", "PCM", "PCD", "PCV",
];

/// An HL7 TM (HHMM[SS[.S]]) to a FHIR `time` (hh:mm:ss); `None` when it is
/// not a time.
fn time_of_day(tm: &str) -> Option<String> {
    let digits: String = tm.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.len() != 4 && digits.len() != 6 {
        return None;
    }
    let (h, m) = (&digits[0..2], &digits[2..4]);
    let s = digits.get(4..6).unwrap_or("00");
    let ok = h < "24" && m < "60" && s < "60";
    ok.then(|| format!("{h}:{m}:{s}"))
}

/// A v2 time unit (CQ units, RPT period units: `S`, `M`, `H`, `D`, `W`,
/// `L`, `Y`, or UCUM already) in UCUM, for a Duration or a period unit;
/// `None` for a unit that is not a time.
pub fn ucum_time_unit(unit: &str) -> Option<&'static str> {
    Some(match unit.trim() {
        "s" | "S" | "SEC" | "sec" => "s",
        "min" | "MIN" | "M" => "min",
        "h" | "H" | "HR" | "Hr" | "hr" => "h",
        "d" | "D" | "DAY" | "day" | "Day" => "d",
        "wk" | "W" | "WK" | "WEEK" | "week" => "wk",
        "mo" | "L" | "MO" | "MONTH" | "month" => "mo",
        "a" | "Y" | "YR" | "YEAR" | "year" => "a",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_patterns_become_frequency_and_period() {
        let r = repeat_of("TID").unwrap();
        assert_eq!(
            (r["frequency"].as_u64(), r["period"].as_u64()),
            (Some(3), Some(1))
        );
        let r = repeat_of("Q6H").unwrap();
        assert_eq!(
            (
                r["frequency"].as_u64(),
                r["period"].as_u64(),
                r["periodUnit"].as_str()
            ),
            (Some(1), Some(6), Some("h"))
        );
        assert_eq!(repeat_of("5ID").unwrap()["frequency"], 5);
        assert_eq!(repeat_of("QHS").unwrap()["when"][0], "HS");
        for odd in [
            "Q0H",
            "QXH",
            "Q",
            "PRN",
            "C",
            "99999999999999999999ID",
            "Q6",
        ] {
            assert!(repeat_of(odd).is_none(), "{odd}");
        }
    }

    #[test]
    fn times_of_day_are_checked() {
        assert_eq!(time_of_day("113005").as_deref(), Some("11:30:05"));
        assert_eq!(time_of_day("0800").as_deref(), Some("08:00:00"));
        for bad in ["2500", "1260", "8", "", "12345"] {
            assert_eq!(time_of_day(bad), None, "{bad}");
        }
    }
}
