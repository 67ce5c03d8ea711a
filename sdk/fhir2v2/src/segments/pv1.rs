//! Encounter to PV1: the inverse of `weft_v2fhir::resources::encounter`.

use weft_sdk::Result;
use weft_sdk::serde_json::Value;

use crate::codes;
use crate::datatypes::{authority, cx, dtm_at, xcn};
use crate::input::{Resources, list, str_at};
use crate::write::{Composite, SegmentBuilder};

/// A PV1 for no visit (`PV1|1|N`), as ADT^A28/A31 carry.
pub fn none() -> SegmentBuilder {
    let mut s = SegmentBuilder::new("PV1");
    s.set_text(1, "1").set_text(2, "N");
    s
}

/// The PV1 of `encounter`: patient class (PV1-2, from Encounter.class),
/// location (PV1-3, the first location: [`pl`]), attending, referring, consulting and admitting doctors (PV1-7,
/// 8, 9, 17 by participant type), visit number (PV1-19), admit and
/// discharge times (PV1-44/45).
pub fn pv1<'a>(res: &Resources<'a>, encounter: &'a Value) -> Result<SegmentBuilder> {
    let mut s = SegmentBuilder::new("PV1");
    s.set_text(1, "1");
    let class = encounter
        .get("class")
        .map(|c| str_at(c, "code"))
        .unwrap_or("");
    s.set_text(2, codes::patient_class(class).unwrap_or("U"));
    if let Some(loc) = list(encounter, "location")
        .first()
        .and_then(|l| l.get("location"))
    {
        let place = match res.resolve(encounter, loc) {
            Some(l) => pl(l),
            None => Composite::new().with(9, str_at(loc, "display")),
        };
        s.set(3, place);
    }
    for p in list(encounter, "participant") {
        let code = list(p, "type")
            .iter()
            .flat_map(|t| list(t, "coding"))
            .map(|c| str_at(c, "code"))
            .find(|c| !c.is_empty())
            .unwrap_or("ATND");
        let field = match code {
            "ATND" => 7,
            "REF" => 8,
            "CON" => 9,
            "ADM" => 17,
            _ => continue,
        };
        if let Some(who) = p.get("individual").and_then(|i| xcn(res, encounter, i)) {
            s.push(field, who);
        }
    }
    if let Some(id) = list(encounter, "identifier").iter().find_map(cx) {
        s.set(19, id);
    }
    if let Some(period) = encounter.get("period") {
        s.set_text(44, dtm_at(period, "start", "Encounter.period.start")?);
        s.set_text(45, dtm_at(period, "end", "Encounter.period.end")?);
    }
    Ok(s)
}

/// Location to PL (point of care ^ room ^ bed ^ facility ^^^^^
/// description): the levels from the identifier `weft_v2fhir` gives a
/// Location (`poc^room^bed` under the facility's system), else the name
/// as the description.
pub fn pl(location: &Value) -> Composite {
    let id = list(location, "identifier")
        .iter()
        .find(|i| !str_at(i, "value").is_empty());
    match id {
        Some(id) => {
            let mut c = Composite::new();
            for (i, level) in str_at(id, "value").splitn(3, '^').enumerate() {
                c.set(i + 1, level);
            }
            c.with_inner(4, &authority(str_at(id, "system")))
        }
        None => Composite::new().with(9, str_at(location, "name")),
    }
}
