//! SCH (+ TQ1, AIS, AIG, AIL, AIP) to Appointment.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{codeable, comp, entity_identifier, put, put_list, system_value};
use crate::resources::patient::PatientRef;
use crate::resources::{location, practitioner};
use crate::time::add_minutes;

/// AppointmentStatus for an SIU trigger event.
pub fn status_for(trigger: &str) -> Option<&'static str> {
    Some(match trigger {
        "S12" | "S13" | "S14" => "booked",
        "S15" | "S16" => "cancelled",
        "S17" => "entered-in-error",
        "S26" => "noshow",
        _ => return None,
    })
}

/// The longest duration taken from a message: a year. Anything longer is
/// not an appointment's length, and would overflow the end-time arithmetic.
const MAX_MINUTES: i64 = 366 * 24 * 60;

/// Minutes in `n` `units` (SCH-10 / AIS-12: s, min, h, d); `None` for
/// units that do not convert to whole minutes, and for durations that are
/// negative or longer than a year.
fn minutes(n: &str, units: &str) -> Option<i64> {
    let n: i64 = n.trim().parse().ok()?;
    let total = match units.trim().to_ascii_lowercase().as_str() {
        "" | "min" | "m" | "minutes" => n,
        "h" | "hr" | "hours" => n.checked_mul(60)?,
        "d" | "days" => n.checked_mul(1440)?,
        "s" | "sec" | "seconds" => (n % 60 == 0).then_some(n / 60)?,
        _ => return None,
    };
    (0..=MAX_MINUTES).contains(&total).then_some(total)
}

/// Maps the SCH of an SIU message for `trigger`.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    sch: &Segment,
    trigger: &str,
    patient: &PatientRef,
) -> Result<String> {
    let filler_status = ctx
        .field(sch, 25)
        .repetition(1)
        .part(1)
        .value()
        .trim()
        .to_string();
    // Cancel, delete and no-show events say what happened; for bookings
    // and changes the filler status (SCH-25), when sent, is more precise.
    let by_trigger = status_for(trigger)
        .ok_or_else(|| Error::reject(format!("MSH-9 SIU^{trigger} has no appointment status")))?;
    let status = if by_trigger == "booked" {
        codes::optional(
            &ctx.name(sch, 25),
            "appointment_status",
            &filler_status,
            codes::appointment_status,
        )
        .unwrap_or_else(|| by_trigger.to_string())
    } else {
        by_trigger.to_string()
    };
    let mut a = Map::new();
    a.insert("resourceType".into(), "Appointment".into());
    let mut ids = Vec::new();
    for (n, t) in [(2, "FILL"), (1, "PLAC")] {
        ids.extend(entity_identifier(
            &ctx.field(sch, n).repetition(1),
            ctx.facility(),
            t,
        ));
    }
    let Some((system, value)) = ids.iter().find_map(system_value) else {
        return Err(Error::reject(
            "SCH-1 (placer appointment id) and SCH-2 (filler appointment id) are empty: the appointment cannot be identified",
        ));
    };
    a.insert("identifier".into(), Value::Array(ids));
    a.insert("status".into(), Value::String(status.clone()));
    put(
        &mut a,
        "appointmentType",
        codeable(&ctx.field(sch, 8).repetition(1), &codes::v2_table("0277")),
    );
    put(
        &mut a,
        "reasonCode",
        codeable(&ctx.field(sch, 7).repetition(1), &codes::v2_table("0276")).map(|c| json!([c])),
    );

    let ais = ctx.hl7.segment("AIS");
    if let Some(ais) = ais {
        put(
            &mut a,
            "serviceType",
            codeable(&ctx.field(ais, 3).repetition(1), "").map(|c| json!([c])),
        );
    }

    // Start and end: TQ1-7/8, else SCH-11.4/11.5, else AIS-4 + duration.
    let (mut start, mut end) = (None, None);
    if let Some(tq1) = ctx.hl7.segment("TQ1") {
        start = ctx.instant_value(
            &ctx.name(tq1, 7),
            ctx.field(tq1, 7).repetition(1).part(1).value().trim(),
        )?;
        end = ctx.instant_value(
            &ctx.name(tq1, 8),
            ctx.field(tq1, 8).repetition(1).part(1).value().trim(),
        )?;
    }
    if start.is_none() {
        let timing = ctx.field(sch, 11).repetition(1);
        start = ctx.instant_value(&"SCH-11.4", timing.part(4).part(1).value().trim())?;
        end = end.or(ctx.instant_value(&"SCH-11.5", timing.part(5).part(1).value().trim())?);
    }
    let mut duration = minutes(
        &ctx.text(sch, 9),
        &ctx.field(sch, 10).repetition(1).part(1).value(),
    );
    if let Some(ais) = ais {
        if start.is_none() {
            start = ctx.instant_value(
                &ctx.name(ais, 4),
                ctx.field(ais, 4).repetition(1).part(1).value().trim(),
            )?;
        }
        if duration.is_none() {
            duration = minutes(
                &ctx.text(ais, 7),
                &ctx.field(ais, 8).repetition(1).part(1).value(),
            );
        }
    }
    if end.is_none()
        && let (Some(s), Some(d)) = (&start, duration)
    {
        end = add_minutes(s, d);
    }
    if start.is_none() || end.is_none() {
        if matches!(
            status.as_str(),
            "booked" | "arrived" | "fulfilled" | "noshow" | "checked-in"
        ) {
            return Err(Error::reject(
                "no appointment start and end (TQ1-7/TQ1-8, SCH-11.4/SCH-11.5, or AIS-4 with a duration): FHIR requires them on a booked appointment",
            ));
        }
        start = None;
        end = None;
    }
    put(&mut a, "start", start.map(Value::String));
    put(&mut a, "end", end.map(Value::String));
    if let Some(d) = duration.filter(|d| *d > 0) {
        a.insert("minutesDuration".into(), Value::from(d));
    }
    let notes = crate::resources::service_request::notes_after(ctx, sch);
    if !notes.is_empty() {
        a.insert("comment".into(), Value::String(notes.join("\n")));
    }

    let part_status = match status.as_str() {
        "proposed" | "pending" => "needs-action",
        "cancelled" => "declined",
        _ => "accepted",
    };
    let mut participants =
        vec![json!({"actor": patient.reference(), "required": "required", "status": part_status})];
    for aip in ctx.hl7.segments_named("AIP") {
        for actor in practitioner::map_all(ctx, bundle, ctx.field(aip, 3)) {
            let mut p = Map::new();
            put(
                &mut p,
                "type",
                codeable(&ctx.field(aip, 4).repetition(1), "").map(|c| json!([c])),
            );
            p.insert("actor".into(), actor);
            p.insert("status".into(), part_status.into());
            participants.push(Value::Object(p));
        }
    }
    for ail in ctx.hl7.segments_named("AIL") {
        if let Some(actor) = location::map(ctx, bundle, &ctx.field(ail, 3).repetition(1)) {
            participants.push(json!({"actor": actor, "status": part_status}));
        }
    }
    for aig in ctx.hl7.segments_named("AIG") {
        let resource = ctx.field(aig, 3).repetition(1);
        let name = [comp(&resource, 2), comp(&resource, 1)]
            .into_iter()
            .find(|s| !s.is_empty());
        if let Some(name) = name {
            let mut p = Map::new();
            put(
                &mut p,
                "type",
                codeable(&ctx.field(aig, 4).repetition(1), "").map(|c| json!([c])),
            );
            p.insert("actor".into(), json!({"display": name}));
            p.insert("status".into(), part_status.into());
            participants.push(Value::Object(p));
        }
    }
    put_list(&mut a, "participant", participants);
    Ok(bundle.put("Appointment", &system, &value, Value::Object(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(minutes("30", "min"), Some(30));
        assert_eq!(minutes("2", "h"), Some(120));
        assert_eq!(minutes("90", "s"), None);
        assert_eq!(minutes("120", "s"), Some(2));
        assert_eq!(minutes("-5", ""), None);
        assert_eq!(minutes("9223372036854775807", "d"), None);
        assert_eq!(minutes("400", "d"), None);
        assert_eq!(minutes("1", "fortnights"), None);
    }
}
