//! ORC + RXO / RXE (+ TQ1, RXR, RXC, NTE) to MedicationRequest: the
//! pharmacy order, as the prescriber gave it (RXO) and as the pharmacy
//! encoded it (RXE, which wins where both say).

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::{Bundle, reference};
use crate::codes;
use crate::context::Context;
use crate::datatypes::{
    authority_system, codeable, decimal, entity_identifier, put, put_list, quantity, system_value,
};
use crate::groups::{Part, PharmacyOrder};
use crate::resources::dosage::{self, Dose};
use crate::resources::encounter::EncounterRef;
use crate::resources::medication::{self, Drug};
use crate::resources::patient::PatientRef;
use crate::resources::practitioner;
use crate::resources::service_request::notes_after;

/// A pharmacy order in the Bundle.
#[derive(Debug, Clone)]
pub struct MedicationOrderRef {
    /// The MedicationRequest's fullUrl.
    pub url: String,
    /// The order's identity (placer or filler number, else derived), for
    /// the identities of its dispenses and administrations.
    pub key: String,
}

impl MedicationOrderRef {
    /// A Reference to the MedicationRequest.
    pub fn reference(&self) -> Value {
        reference(&self.url)
    }
}

/// The order's identity from ORC-2 (placer) or ORC-3 (filler), with its
/// identifiers; `None` for the identity when the ORC has neither.
pub fn order_identifiers(
    ctx: &Context<'_>,
    order: &PharmacyOrder<'_>,
) -> (Vec<Value>, Option<(String, String)>) {
    let mut ids = Vec::new();
    if let Some(orc) = order.orc_segment() {
        for (n, type_code) in [(2, "PLAC"), (3, "FILL")] {
            ids.extend(entity_identifier(
                &ctx.field(orc, n).repetition(1),
                ctx.facility(),
                type_code,
            ));
        }
    }
    let identity = ids.iter().find_map(system_value);
    (ids, identity)
}

/// The order's status: ORC-5 (table 0038), else ORC-1 (table 0119), each
/// through the `order_status` / `order_control` lookup tables; `active`
/// when neither is sent. A code neither knows is a reject naming the field.
fn status(ctx: &Context<'_>, orc: Option<&Segment>) -> Result<String> {
    let Some(orc) = orc else {
        return Ok("active".into());
    };
    let by_status = codes::required(
        &ctx.name(orc, 5),
        "order status",
        "order_status",
        &ctx.text(orc, 5),
        codes::medication_order_status,
    )?;
    if let Some(s) = by_status {
        return Ok(s);
    }
    Ok(codes::required(
        &ctx.name(orc, 1),
        "order control",
        "order_control",
        &ctx.text(orc, 1),
        codes::medication_order_control_status,
    )?
    .unwrap_or_else(|| "active".into()))
}

/// Which fields of RXE and of RXO carry the same thing.
struct Fields {
    code: usize,
    code_name: &'static str,
    form: usize,
    dose: (usize, usize, usize),
    rate: (usize, usize),
    instructions: usize,
    substitution: usize,
    dispense: (usize, usize),
    refills: usize,
    indication: usize,
}

const RXE: Fields = Fields {
    code: 2,
    code_name: "give code",
    form: 6,
    dose: (3, 4, 5),
    rate: (23, 24),
    instructions: 7,
    substitution: 9,
    dispense: (10, 11),
    refills: 12,
    indication: 27,
};

const RXO: Fields = Fields {
    code: 1,
    code_name: "requested give code",
    form: 5,
    dose: (2, 3, 4),
    rate: (21, 22),
    instructions: 7,
    substitution: 9,
    dispense: (11, 12),
    refills: 13,
    indication: 20,
};

/// Maps one pharmacy order to a MedicationRequest (and its Medication).
/// The order needs an RXE or an RXO with a drug in it.
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    order: &PharmacyOrder<'_>,
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
) -> Result<MedicationOrderRef> {
    let (part, f) = match (&order.rxe, &order.rxo) {
        (Some(rxe), _) => (rxe, &RXE),
        (None, Some(rxo)) => (rxo, &RXO),
        (None, None) => {
            return Err(Error::reject(
                "the pharmacy order has no RXE or RXO segment: a medication order needs its drug (RXE-2)",
            ));
        }
    };
    let seg = part.head;
    // The requested order (RXO) fills in what the encoded one leaves out.
    let either = |n_rxe: usize, n_rxo: usize| -> (&Segment, usize) {
        match &order.rxo {
            Some(rxo) if order.rxe.is_some() && ctx.field(seg, n_rxe).is_empty() => {
                (rxo.head, n_rxo)
            }
            _ => (seg, n_rxe),
        }
    };
    let rxc: &[&Segment] = if part.rxc.is_empty() {
        order.rxo.as_ref().map_or(&[][..], |p| &p.rxc[..])
    } else {
        &part.rxc[..]
    };
    let drug = medication::map(
        ctx,
        bundle,
        &Drug {
            seg,
            code: f.code,
            code_name: f.code_name,
            form: Some(f.form),
            rxc,
        },
    )?;
    let orc = order.orc_segment();
    let mut r = Map::new();
    r.insert("resourceType".into(), "MedicationRequest".into());
    let (mut ids, identity) = order_identifiers(ctx, order);
    if let Some(rxe) = &order.rxe {
        let number = ctx.text(rxe.head, 15);
        if !number.is_empty() {
            let mut id = Map::new();
            id.insert("type".into(), json!({"text": "Prescription number"}));
            put(
                &mut id,
                "system",
                authority_system("", "", "", ctx.facility()).map(Value::String),
            );
            id.insert("value".into(), Value::String(number));
            ids.push(Value::Object(id));
        }
    }
    put_list(&mut r, "identifier", ids);
    r.insert("status".into(), Value::String(status(ctx, orc)?));
    r.insert("intent".into(), "order".into());
    let tq1 = timing_of(order, part);
    put(
        &mut r,
        "priority",
        tq1.and_then(|t| dosage::priority(ctx, t))
            .map(Value::String),
    );
    drug.put_into(&mut r);
    r.insert("subject".into(), patient.reference());
    put(&mut r, "encounter", encounter.map(EncounterRef::reference));
    let authored = match orc {
        Some(orc) => ctx.date_time(orc, 9)?,
        None => None,
    };
    let authored = match (authored, &order.rxe) {
        (Some(a), _) => Some(a),
        (None, Some(rxe)) => ctx.date_time(rxe.head, 32)?,
        (None, None) => None,
    };
    put(&mut r, "authoredOn", authored.map(Value::String));
    if let Some(orc) = orc {
        put(
            &mut r,
            "requester",
            practitioner::map(ctx, bundle, &ctx.field(orc, 12).repetition(1)),
        );
        put(
            &mut r,
            "recorder",
            practitioner::map(ctx, bundle, &ctx.field(orc, 10).repetition(1)),
        );
    }
    let (s, n) = either(f.indication, RXO.indication);
    let reasons: Vec<Value> = ctx
        .field(s, n)
        .repetitions()
        .filter_map(|r| codeable(&r, ""))
        .collect();
    put_list(&mut r, "reasonCode", reasons);
    put_list(&mut r, "note", notes(ctx, order));
    let (s, n) = either(f.instructions, RXO.instructions);
    let rxr = part
        .rxr
        .first()
        .or_else(|| order.rxo.as_ref().and_then(|p| p.rxr.first()));
    let dosage = dosage::map(
        ctx,
        &dosage::Sources {
            dose: Some(Dose {
                seg,
                min: f.dose.0,
                max: Some(f.dose.1),
                units: f.dose.2,
                rate: Some(f.rate),
            }),
            tq1,
            rxr: rxr.copied(),
            instructions: Some((s, n)),
        },
    )?;
    if let Some(d) = dosage {
        r.insert("dosageInstruction".into(), Value::Array(vec![d]));
    }
    put(
        &mut r,
        "dispenseRequest",
        dispense_request(ctx, order, seg, f)?,
    );
    let (s, n) = either(f.substitution, RXO.substitution);
    if let Some(allowed) = substitution_allowed(&ctx.text(s, n)) {
        r.insert("substitution".into(), json!({ "allowedBoolean": allowed }));
    }
    let (url, key) = match identity {
        Some((system, value)) => {
            let key = format!("medication-order|{system}|{value}");
            (
                bundle.put("MedicationRequest", &system, &value, Value::Object(r)),
                key,
            )
        }
        None => {
            let key = patient.key(&format!(
                "medication-order|{}|{}|{}|{}",
                ctx.facility(),
                ctx.header.control_id,
                order.ordinal,
                drug.code_key
            ));
            (bundle.put_derived("MedicationRequest", &key, r), key)
        }
    };
    Ok(MedicationOrderRef { url, key })
}

/// The timing of the order: the first TQ1 of the encoded order, else of
/// the ORC.
fn timing_of<'m>(order: &PharmacyOrder<'m>, part: &Part<'m>) -> Option<&'m Segment> {
    part.tq1
        .first()
        .or_else(|| order.orc.as_ref().and_then(|o| o.tq1.first()))
        .copied()
}

/// Dispense amount and units, refills, and the first fill's amount
/// (RXE-39) of the order.
fn dispense_request(
    ctx: &Context<'_>,
    order: &PharmacyOrder<'_>,
    seg: &Segment,
    f: &Fields,
) -> Result<Option<Value>> {
    let mut d = Map::new();
    let units = ctx.field(seg, f.dispense.1).repetition(1);
    if let Some(n) = decimal(&ctx.name(seg, f.dispense.0), &ctx.text(seg, f.dispense.0))? {
        d.insert("quantity".into(), quantity(n, &units));
    }
    let refills = ctx.text(seg, f.refills);
    if let Some(n) = decimal(&ctx.name(seg, f.refills), &refills)? {
        let n = n.as_u64().ok_or_else(|| {
            Error::reject(format!(
                "{} (number of refills) is not a whole number",
                ctx.name(seg, f.refills)
            ))
        })?;
        d.insert("numberOfRepeatsAllowed".into(), n.into());
    }
    if let Some(rxe) = &order.rxe
        && let Some(n) = decimal(&ctx.name(rxe.head, 39), &ctx.text(rxe.head, 39))?
    {
        d.insert(
            "initialFill".into(),
            json!({ "quantity": quantity(n, &units) }),
        );
    }
    Ok((!d.is_empty()).then_some(Value::Object(d)))
}

/// Whether a substitution status (table 0167) allows substitution: `N`,
/// `1` and `7` do not; `G`, `T`, `2`-`5` and `8` do; `0` (no product
/// selection indicated) and anything else says nothing.
pub fn substitution_allowed(code: &str) -> Option<bool> {
    match code {
        "N" | "1" | "7" => Some(false),
        "G" | "T" | "2" | "3" | "4" | "5" | "8" => Some(true),
        _ => None,
    }
}

/// The order's notes: the NTE after its ORC, RXO and RXE, and the
/// pharmacy's special dispensing instructions (RXE-21) and the
/// prescriber's pharmacy instructions (RXO-6).
fn notes(ctx: &Context<'_>, order: &PharmacyOrder<'_>) -> Vec<Value> {
    let mut texts = Vec::new();
    for part in [&order.orc, &order.rxo, &order.rxe].into_iter().flatten() {
        texts.extend(notes_after(ctx, part.head));
    }
    for (part, n) in [(&order.rxo, 6), (&order.rxe, 21)] {
        if let Some(p) = part {
            texts.extend(dosage::instruction_texts(ctx, p.head, n));
        }
    }
    texts.into_iter().map(|t| json!({ "text": t })).collect()
}
