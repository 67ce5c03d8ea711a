//! The order groups of ORU, ORM, OML and VXU messages: each ORC or OBR
//! (or RXA) with the TQ1, OBX, SPM and RXR segments that follow it.

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
