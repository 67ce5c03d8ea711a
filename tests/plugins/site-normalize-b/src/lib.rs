//! A second version of `site-normalize` for the tests: the shipped
//! plugin's own code (its `normalize.rs`, compiled in here), and one
//! `ZWV|B` segment at the end of every output, so a test can tell which
//! version made an output. Loaded under the name `site-normalize`.

#[path = "../../../../plugins/site-normalize/src/normalize.rs"]
mod normalize;

use weft_sdk::{Message, Output, Plugin, Result};

/// The plugin.
pub struct SiteNormalizeB;

impl Plugin for SiteNormalizeB {
    fn init() -> Result<()> {
        normalize::init()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        let mut hl7 = normalize::normalize(&msg)?;
        hl7.push_segment_fields("ZWV", &["B"]);
        Ok(vec![Output::hl7(&hl7)])
    }
}

weft_sdk::export!(SiteNormalizeB);
weft_sdk::manifest! {
    maps: &["HL7 v2 (any message)"],
    optional_tables: &["*"],
    config: &["mrn_prefix", "mrn_type", "translate", "drop_segments"],
    memory_mib: 16,
    deadline_ms: 50,
}
