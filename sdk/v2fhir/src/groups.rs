//! The order groups of ORU, ORM, OML, OUL and VXU messages (each ORC or OBR, or
//! RXA, with the TQ1, OBX, SPM and RXR segments that follow it), and the
//! pharmacy orders of RDE, RDS and RAS messages (each ORC with its RXO,
//! RXE, RXD and RXA parts).

use weft_sdk::hl7::Segment;

use crate::context::Context;

/// One order group, in message order.
#[derive(Default)]
pub struct OrderGroup<'m> {
    /// The common order segment, when sent.
    pub orc: Option<&'m Segment>,
    /// The observation request.
    pub obr: Option<&'m Segment>,
    /// The first timing segment of the order.
    pub tq1: Option<&'m Segment>,
    /// The vaccine administration (VXU).
    pub rxa: Option<&'m Segment>,
    /// Its route.
    pub rxr: Option<&'m Segment>,
    /// The observations of the group.
    pub obx: Vec<&'m Segment>,
    /// The specimens of the group.
    pub spm: Vec<&'m Segment>,
}

/// Splits the message into order groups. A new group starts at each ORC,
/// and at each OBR or RXA unless the current group (opened by its ORC) has
/// none yet. OBX segments before any group (patient or visit observations)
/// are returned apart.
pub fn order_groups<'m>(ctx: &Context<'m>) -> (Vec<&'m Segment>, Vec<OrderGroup<'m>>) {
    let mut loose = Vec::new();
    let mut groups: Vec<OrderGroup<'m>> = Vec::new();
    for s in ctx.hl7.segments() {
        match s.id() {
            "ORC" => groups.push(OrderGroup {
                orc: Some(s),
                ..OrderGroup::default()
            }),
            "OBR" => match groups.last_mut() {
                Some(g) if g.obr.is_none() && g.rxa.is_none() && g.obx.is_empty() => {
                    g.obr = Some(s)
                }
                _ => groups.push(OrderGroup {
                    obr: Some(s),
                    ..OrderGroup::default()
                }),
            },
            "RXA" => match groups.last_mut() {
                Some(g) if g.rxa.is_none() && g.obr.is_none() => g.rxa = Some(s),
                _ => groups.push(OrderGroup {
                    rxa: Some(s),
                    ..OrderGroup::default()
                }),
            },
            "TQ1" => {
                if let Some(g) = groups.last_mut()
                    && g.tq1.is_none()
                {
                    g.tq1 = Some(s);
                }
            }
            "RXR" => {
                if let Some(g) = groups.last_mut()
                    && g.rxr.is_none()
                {
                    g.rxr = Some(s);
                }
            }
            "OBX" => match groups.last_mut() {
                Some(g) => g.obx.push(s),
                None => loose.push(s),
            },
            "SPM" => {
                if let Some(g) = groups.last_mut() {
                    g.spm.push(s);
                }
            }
            _ => {}
        }
    }
    (loose, groups)
}

/// The groups of an OUL (lab automation results), where each order
/// opens with its OBR and its ORC follows. In a specimen-oriented OUL
/// (`specimen_first`: R22, and R23 whose containers are read through) each
/// SPM comes first, followed by its own OBX (observations of the specimen)
/// and then the orders done on it; in an order-oriented one (R24) the SPM
/// follow their OBR. Returns the OBX outside any order, each with the SPM
/// it follows (none for the patient's own), and the order groups, each
/// holding its SPM.
pub fn oul_groups<'m>(
    ctx: &Context<'m>,
    specimen_first: bool,
) -> (Vec<(&'m Segment, Option<&'m Segment>)>, Vec<OrderGroup<'m>>) {
    let mut loose = Vec::new();
    let mut groups: Vec<OrderGroup<'m>> = Vec::new();
    let mut spm: Option<&'m Segment> = None;
    // Whether an order was opened since the last leading SPM.
    let mut in_order = false;
    for s in ctx.hl7.segments() {
        let current = groups.last_mut().filter(|_| in_order);
        match s.id() {
            "SPM" if specimen_first => {
                spm = Some(s);
                in_order = false;
            }
            "SPM" => {
                if let Some(g) = current {
                    g.spm.push(s);
                }
            }
            "OBR" => {
                groups.push(OrderGroup {
                    obr: Some(s),
                    spm: spm.filter(|_| specimen_first).into_iter().collect(),
                    ..OrderGroup::default()
                });
                in_order = true;
            }
            "ORC" => {
                if let Some(g) = current
                    && g.orc.is_none()
                {
                    g.orc = Some(s);
                }
            }
            "TQ1" => {
                if let Some(g) = current
                    && g.tq1.is_none()
                {
                    g.tq1 = Some(s);
                }
            }
            "OBX" => match current {
                Some(g) => g.obx.push(s),
                None => loose.push((s, spm)),
            },
            _ => {}
        }
    }
    (loose, groups)
}

/// One part of a pharmacy order: the segment that opens it (ORC, RXO, RXE,
/// RXD or RXA) with the TQ1, RXR, RXC and OBX segments that follow it
/// before the next part. (Its notes, the NTE right after the segment, are
/// read with `service_request::notes_after`.)
pub struct Part<'m> {
    /// The segment that opens the part.
    pub head: &'m Segment,
    /// Its timing segments (TQ1).
    pub tq1: Vec<&'m Segment>,
    /// Its routes (RXR).
    pub rxr: Vec<&'m Segment>,
    /// Its components (RXC).
    pub rxc: Vec<&'m Segment>,
    /// Its observations (OBX).
    pub obx: Vec<&'m Segment>,
}

impl<'m> Part<'m> {
    fn new(head: &'m Segment) -> Part<'m> {
        Part {
            head,
            tq1: Vec::new(),
            rxr: Vec::new(),
            rxc: Vec::new(),
            obx: Vec::new(),
        }
    }
}

/// One pharmacy order of an RDE, RDS, RAS or OMP message: the ORC with its
/// timing, the order as the prescriber gave it (RXO), as the pharmacy
/// encoded it (RXE), and what was done under it: dispenses (RXD) and
/// administrations (RXA), each with its own route, components and
/// observations.
pub struct PharmacyOrder<'m> {
    /// The common order segment and the order's timing (TQ1 after ORC).
    pub orc: Option<Part<'m>>,
    /// The order as given.
    pub rxo: Option<Part<'m>>,
    /// The order as encoded by the pharmacy.
    pub rxe: Option<Part<'m>>,
    /// Dispenses and administrations, in message order.
    pub events: Vec<Part<'m>>,
    /// The order's place among the message's orders, from 1.
    pub ordinal: usize,
}

impl<'m> PharmacyOrder<'m> {
    fn new(ordinal: usize) -> PharmacyOrder<'m> {
        PharmacyOrder {
            orc: None,
            rxo: None,
            rxe: None,
            events: Vec::new(),
            ordinal,
        }
    }

    /// The ORC segment, when sent.
    pub fn orc_segment(&self) -> Option<&'m Segment> {
        self.orc.as_ref().map(|p| p.head)
    }

    /// The part segments after it attach to: the last one opened.
    fn current(&mut self) -> Option<&mut Part<'m>> {
        if let Some(e) = self.events.last_mut() {
            return Some(e);
        }
        self.rxe
            .as_mut()
            .or(self.rxo.as_mut())
            .or(self.orc.as_mut())
    }
}

/// Splits a pharmacy message into its orders. Each ORC opens an order; an
/// RXO or RXE opens one too when the current order already has one (or
/// there is no order yet: a message without ORC); every RXD or RXA is an
/// event of the current order. The segments before the first order (the
/// patient's and the visit's) are not part of any.
pub fn pharmacy_orders<'m>(ctx: &Context<'m>) -> Vec<PharmacyOrder<'m>> {
    let mut orders: Vec<PharmacyOrder<'m>> = Vec::new();
    for s in ctx.hl7.segments() {
        let id = s.id();
        let needs_new = match (id, orders.last()) {
            ("ORC", _) => true,
            ("RXO", Some(o)) => o.rxo.is_some() || o.rxe.is_some() || !o.events.is_empty(),
            ("RXE", Some(o)) => o.rxe.is_some() || !o.events.is_empty(),
            ("RXO" | "RXE" | "RXD" | "RXA", None) => true,
            _ => false,
        };
        if needs_new {
            orders.push(PharmacyOrder::new(orders.len() + 1));
        }
        let Some(order) = orders.last_mut() else {
            continue;
        };
        match id {
            "ORC" => order.orc = Some(Part::new(s)),
            "RXO" => order.rxo = Some(Part::new(s)),
            "RXE" => order.rxe = Some(Part::new(s)),
            "RXD" | "RXA" => order.events.push(Part::new(s)),
            "TQ1" | "RXR" | "RXC" | "OBX" => {
                if let Some(part) = order.current() {
                    match id {
                        "TQ1" => part.tq1.push(s),
                        "RXR" => part.rxr.push(s),
                        "RXC" => part.rxc.push(s),
                        _ => part.obx.push(s),
                    }
                }
            }
            _ => {}
        }
    }
    orders
}
