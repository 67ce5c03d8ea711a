//! FHIR R4 to HL7 v2.5.1, in pieces a plugin puts together: the way back
//! from a FHIR-speaking EHR to the lab, radiology and registration systems
//! that speak v2.
//!
//! - [`input`]: the FHIR input (a resource or a Bundle) with its
//!   references resolved;
//! - [`datatypes`]: Identifier, HumanName, Address, ContactPoint,
//!   CodeableConcept, dateTime and Practitioner to CX, EI, XPN, XAD, XTN,
//!   CWE, DTM and XCN;
//! - [`codes`]: FHIR codes back to the v2 tables;
//! - [`write`]: escaped composites, segments and messages;
//! - [`segments`]: MSH, PID, PV1, the order group (ORC, TQ1, OBR, NTE,
//!   DG1, SPM) and the pharmacy order group (ORC, RXE, NTE, TQ1, RXR);
//! - [`orders`], [`medication_orders`] and [`patients`]: whole messages,
//!   `OML^O21` / `ORM^O01`, `RDE^O11` and `ADT^A28` / `ADT^A31`.
//!
//! Each mapping is the inverse of its counterpart in `weft-v2fhir`, so a
//! message mapped to FHIR and back keeps every field both directions map.
//! Rules: output is escaped (a `|` or `^` in a name cannot break a
//! segment), segments follow the standard's order, MSH-9/10/11/12 are
//! always set; an input that cannot make a valid message (no placer
//! number, no order code, no patient identifier) is rejected with a reason
//! naming the FHIR element, never its value.

pub mod codes;
pub mod datatypes;
pub mod input;
pub mod segments;
pub mod settings;
pub mod write;

use std::collections::HashMap;

use weft_sdk::hl7::Delimiters;
use weft_sdk::serde_json::Value;
use weft_sdk::{CONTENT_TYPE_HL7V2, Error, Output, Result};

pub use input::Resources;
pub use settings::{OrderMessage, Settings};

use input::{kind, str_at};
use segments::msh::{self, MessageType};
use segments::{order, pharmacy, pid, pv1};
use write::Segments;

/// `OML^O21^OML_O21`.
pub const OML_O21: MessageType = MessageType {
    code: "OML",
    trigger: "O21",
    structure: "OML_O21",
};
/// `ORM^O01^ORM_O01`.
pub const ORM_O01: MessageType = MessageType {
    code: "ORM",
    trigger: "O01",
    structure: "ORM_O01",
};
/// `RDE^O11^RDE_O11` (pharmacy/treatment encoded order).
pub const RDE_O11: MessageType = MessageType {
    code: "RDE",
    trigger: "O11",
    structure: "RDE_O11",
};
/// `ADT^A28^ADT_A05` (add person information).
pub const ADT_A28: MessageType = MessageType {
    code: "ADT",
    trigger: "A28",
    structure: "ADT_A05",
};
/// `ADT^A31^ADT_A05` (update person information).
pub const ADT_A31: MessageType = MessageType {
    code: "ADT",
    trigger: "A31",
    structure: "ADT_A05",
};

/// One v2 message made from the input.
#[derive(Debug, Clone)]
pub struct Made {
    /// Its type.
    pub kind: MessageType,
    /// Its text (segments ended by `\r`).
    pub text: String,
}

impl Made {
    /// As a plugin output (`application/hl7-v2`).
    pub fn output(&self) -> Output {
        Output::bytes(CONTENT_TYPE_HL7V2, self.text.clone().into_bytes())
    }
}

/// The order messages of the input (`message_id` its Weft message id): its ServiceRequests (a resource, or a
/// Bundle holding them with their Patient, Encounter, Specimens,
/// Conditions and Practitioners), one message per patient, each order a
/// group (ORC, TQ1, OBR, NTE, DG1, SPM) in input order. The message type
/// is the setting's (`OML^O21` by default).
pub fn orders(res: &Resources<'_>, message_id: &str, settings: &Settings) -> Result<Vec<Made>> {
    let message_type = match settings.order_message {
        OrderMessage::Oml => OML_O21,
        OrderMessage::Orm => ORM_O01,
    };
    per_patient(
        res,
        message_id,
        settings,
        "ServiceRequest",
        message_type,
        |res, r, n, d, segs| order::order_group(res, r, n, settings.order_message, d, segs),
    )
}

/// The pharmacy order messages of the input: its MedicationRequests (with
/// their Medications, Patient, Encounter and Practitioners), one
/// `RDE^O11` per patient, each order a group (ORC, RXE, NTE, TQ1, RXR).
pub fn medication_orders(
    res: &Resources<'_>,
    message_id: &str,
    settings: &Settings,
) -> Result<Vec<Made>> {
    per_patient(
        res,
        message_id,
        settings,
        "MedicationRequest",
        RDE_O11,
        |res, r, _, d, segs| pharmacy::order_group(res, r, d, segs),
    )
}

/// The requests of type `kind` in `msg`, one `message_type` message per
/// patient (PID, PV1 of the first request's Encounter), each request's
/// segments by `group` (which gets its number from 1).
fn per_patient(
    res: &Resources<'_>,
    message_id: &str,
    settings: &Settings,
    kind_name: &str,
    message_type: MessageType,
    group: impl for<'a> Fn(&Resources<'a>, &'a Value, usize, &Delimiters, &mut Segments) -> Result<()>,
) -> Result<Vec<Made>> {
    let requests: Vec<&Value> = res.of_kind(kind_name).map(|e| e.resource).collect();
    if requests.is_empty() {
        return Err(Error::reject(format!(
            "the {} holds no {kind_name}: there is no order to send",
            res.root_kind()
        )));
    }
    if requests.len() > order::MAX_ORDERS {
        return Err(Error::reject(format!(
            "the Bundle holds {} {kind_name}s, more than {} for one message",
            requests.len(),
            order::MAX_ORDERS
        )));
    }
    // Group the orders by patient, in order of first appearance.
    let mut groups: Vec<(Option<&Value>, &Value, Vec<&Value>)> = Vec::new();
    let mut index: HashMap<*const Value, usize> = HashMap::new();
    for r in requests {
        let subject = r.get("subject").ok_or_else(|| {
            Error::reject(format!(
                "{kind_name}.subject is empty: an order needs its patient (PID)"
            ))
        })?;
        let patient = res.resolve(r, subject).filter(|p| kind(p) == "Patient");
        let key: *const Value = patient.map_or(std::ptr::from_ref(subject), std::ptr::from_ref);
        match index.get(&key) {
            Some(&i) => groups[i].2.push(r),
            None => {
                index.insert(key, groups.len());
                groups.push((patient, subject, vec![r]));
            }
        }
    }
    let d = Delimiters::default();
    let time = msh::message_time(message_id);
    let mut made = Vec::with_capacity(groups.len());
    for (i, (patient, subject, requests)) in groups.into_iter().enumerate() {
        let mut segs = Segments::new();
        let pid = match patient {
            Some(p) => pid::pid(p)?,
            None => subject
                .get("identifier")
                .and_then(pid::pid_of_identifier)
                .ok_or_else(|| {
                    Error::reject(format!(
                        "{kind_name}.subject points at no Patient in the input and carries no identifier: PID-3 is required"
                    ))
                })?,
        };
        segs.push(pid);
        if let Some(enc) = requests[0]
            .get("encounter")
            .and_then(|e| res.resolve(requests[0], e))
            .filter(|e| kind(e) == "Encounter")
        {
            segs.push(pv1::pv1(res, enc)?);
        }
        for (n, r) in requests.iter().enumerate() {
            group(res, r, n + 1, &d, &mut segs)?;
        }
        let control = msh::control_id(message_id, &time, i);
        made.push(Made {
            kind: message_type,
            text: msh::message(settings, message_type, &control, &time, &segs, &d),
        });
    }
    Ok(made)
}

/// The registration messages of the input: each Patient in it as `ADT^A28`
/// (a create: a transaction entry with `request.method` POST, or a bare
/// Patient without `id`) or `ADT^A31` (an update: PUT or PATCH, or a bare
/// Patient with an `id`), with EVN, PID and `PV1|1|N`.
pub fn patients(res: &Resources<'_>, message_id: &str, settings: &Settings) -> Result<Vec<Made>> {
    let d = Delimiters::default();
    let time = msh::message_time(message_id);
    let mut made = Vec::new();
    for (i, e) in res.of_kind("Patient").enumerate() {
        let create = match e.method {
            Some(m) => m.eq_ignore_ascii_case("POST"),
            None => str_at(e.resource, "id").is_empty(),
        };
        let message_type = if create { ADT_A28 } else { ADT_A31 };
        let mut segs = Segments::new();
        let mut evn = write::SegmentBuilder::new("EVN");
        evn.set_text(1, message_type.trigger)
            .set_text(2, time.clone());
        segs.push(evn);
        segs.push(pid::pid(e.resource)?);
        segs.push(pv1::none());
        let control = msh::control_id(message_id, &time, i);
        made.push(Made {
            kind: message_type,
            text: msh::message(settings, message_type, &control, &time, &segs, &d),
        });
    }
    if made.is_empty() {
        return Err(Error::reject(format!(
            "the {} holds no Patient: there is no registration to send",
            res.root_kind()
        )));
    }
    Ok(made)
}
