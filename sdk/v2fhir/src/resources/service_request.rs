//! ORC + OBR (+ TQ1, NTE) to ServiceRequest: the order.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::{Bundle, reference};
use crate::codes;
use crate::context::Context;
use crate::datatypes::{code_key, codeable, entity_identifier, put, put_list, system_value};
use crate::groups::OrderGroup;
use crate::resources::encounter::EncounterRef;
use crate::resources::patient::PatientRef;
use crate::resources::practitioner;

/// The order in the Bundle.
#[derive(Debug, Clone)]
pub struct OrderRef {
    /// The ServiceRequest's fullUrl.
    pub url: String,
    /// The order's identity, for the identities of its results and
    /// specimens.
    pub key: String,
}

impl OrderRef {
    /// A Reference to the ServiceRequest.
    pub fn reference(&self) -> Value {
        reference(&self.url)
    }
}

/// The order's placer and filler identifiers: ORC-2/ORC-3, else OBR-2/OBR-3.
pub fn identifiers(ctx: &Context<'_>, seg: &OrderGroup<'_>) -> Vec<Value> {
    let mut ids = Vec::new();
    for (n, type_code) in [(2, "PLAC"), (3, "FILL")] {
        let from_orc = seg.orc.and_then(|orc| {
            entity_identifier(&ctx.field(orc, n).repetition(1), ctx.facility(), type_code)
        });
        let id = from_orc.or_else(|| {
            seg.obr.and_then(|obr| {
                entity_identifier(&ctx.field(obr, n).repetition(1), ctx.facility(), type_code)
            })
        });
        ids.extend(id);
    }
    ids
}

/// Maps one order. `fallback_status` is used when neither ORC-5 nor ORC-1
/// says (e.g. the order behind a result without ORC); `ordinal` is the
/// order's position in the message (part of the identity of an order
/// without placer or filler number).
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    seg: &OrderGroup<'_>,
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
    fallback_status: &str,
    ordinal: usize,
) -> Result<OrderRef> {
    let Some(obr) = seg.obr else {
        return Err(Error::reject(
            "the order has no OBR segment: a ServiceRequest needs the service asked for (OBR-4)",
        ));
    };
    let code_field = ctx.name(obr, 4);
    let code = codeable(&ctx.field(obr, 4).repetition(1), "").ok_or_else(|| {
        Error::reject(format!(
            "{code_field} (universal service identifier) is empty: an order needs a code"
        ))
    })?;
    let status = match seg.orc {
        Some(orc) => {
            let by_status = codes::required(
                &ctx.name(orc, 5),
                "order status",
                "order_status",
                &ctx.text(orc, 5),
                codes::order_status,
            )?;
            match by_status {
                Some(s) => s,
                None => codes::required(
                    &ctx.name(orc, 1),
                    "order control",
                    "order_control",
                    &ctx.text(orc, 1),
                    codes::order_control_status,
                )?
                .unwrap_or_else(|| fallback_status.to_string()),
            }
        }
        None => fallback_status.to_string(),
    };
    let mut s = Map::new();
    s.insert("resourceType".into(), "ServiceRequest".into());
    let ids = identifiers(ctx, seg);
    let identity = ids.iter().find_map(system_value);
    put_list(&mut s, "identifier", ids);
    s.insert("status".into(), Value::String(status));
    s.insert("intent".into(), "order".into());
    let priority = seg
        .tq1
        .map(|t| ctx.text(t, 9))
        .filter(|p| !p.is_empty())
        .or_else(|| Some(ctx.text(obr, 5)).filter(|p| !p.is_empty()))
        .or_else(|| {
            seg.orc.map(|o| {
                ctx.field(o, 7)
                    .repetition(1)
                    .part(6)
                    .value()
                    .trim()
                    .to_string()
            })
        })
        .unwrap_or_default();
    let priority = codes::optional(
        &ctx.name(obr, 5),
        "priority",
        &priority,
        codes::request_priority,
    );
    put(&mut s, "priority", priority.map(Value::String));
    let key_code = code_key(&code);
    s.insert("code".into(), code);
    s.insert("subject".into(), patient.reference());
    put(&mut s, "encounter", encounter.map(EncounterRef::reference));
    let occurrence = match seg.tq1 {
        Some(tq1) => ctx.date_time(tq1, 7)?,
        None => None,
    };
    let occurrence = match occurrence {
        Some(o) => Some(o),
        None => ctx.date_time(obr, 6)?,
    };
    put(&mut s, "occurrenceDateTime", occurrence.map(Value::String));
    let authored = match seg.orc {
        Some(orc) => ctx.date_time(orc, 9)?,
        None => None,
    };
    put(&mut s, "authoredOn", authored.map(Value::String));
    let requester = seg
        .orc
        .and_then(|orc| practitioner::map(ctx, bundle, &ctx.field(orc, 12).repetition(1)))
        .or_else(|| practitioner::map(ctx, bundle, &ctx.field(obr, 16).repetition(1)));
    put(&mut s, "requester", requester);
    let reasons: Vec<Value> = ctx
        .field(obr, 31)
        .repetitions()
        .filter_map(|r| codeable(&r, ""))
        .collect();
    put_list(&mut s, "reasonCode", reasons);
    let notes = notes_after(ctx, obr);
    if !notes.is_empty() {
        s.insert(
            "note".into(),
            Value::Array(notes.into_iter().map(|t| json!({"text": t})).collect()),
        );
    }
    let (url, key) = match identity {
        Some((system, value)) => {
            let key = format!("order|{system}|{value}");
            (
                bundle.put("ServiceRequest", &system, &value, Value::Object(s)),
                key,
            )
        }
        None => {
            let key = patient.key(&format!(
                "order|{}|{}|{ordinal}|{key_code}",
                ctx.facility(),
                ctx.header.control_id
            ));
            (bundle.put_derived("ServiceRequest", &key, s), key)
        }
    };
    Ok(OrderRef { url, key })
}

/// The NTE segments right after `seg` (its notes), as text.
pub fn notes_after(ctx: &Context<'_>, seg: &Segment) -> Vec<String> {
    let segs = ctx.hl7.segments();
    let Some(i) = segs.iter().position(|s| std::ptr::eq(s, seg)) else {
        return Vec::new();
    };
    segs[i + 1..]
        .iter()
        .take_while(|s| s.id() == "NTE")
        .map(|nte| {
            ctx.field(nte, 3)
                .repetitions()
                .map(|r| r.value().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|t| !t.trim().is_empty())
        .collect()
}
