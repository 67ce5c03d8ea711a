//! One builder per v2 segment (or segment group), each from the FHIR
//! resource it is the inverse mapping of.

pub mod msh;
pub mod order;
pub mod pharmacy;
pub mod pid;
pub mod pv1;

use weft_sdk::hl7::Delimiters;
use weft_sdk::serde_json::Value;

use crate::input::{list, str_at};
use crate::write::{SegmentBuilder, Segments, formatted_text};

/// An NTE (source `P`, placer) per note of `resource` (`note[].text`),
/// line breaks kept as `\.br\`.
pub fn notes(resource: &Value, d: &Delimiters, out: &mut Segments) {
    for (i, note) in list(resource, "note").iter().enumerate() {
        let text = str_at(note, "text");
        if text.trim().is_empty() {
            continue;
        }
        let mut nte = SegmentBuilder::new("NTE");
        nte.set_text(1, (i + 1).to_string())
            .set_text(2, "P")
            .set_raw(3, formatted_text(text, d));
        out.push(nte);
    }
}
