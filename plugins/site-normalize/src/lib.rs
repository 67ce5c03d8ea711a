//! `site-normalize`: what one hospital site needs done to its HL7 before the
//! shared mappings see it.
//!
//! Settings (`[plugins.site-normalize.config]` in `weft.toml`):
//! - `mrn_prefix`: text put before PID-3.1 of every identifier whose type
//!   (PID-3.5) is `mrn_type` (default `MR`), e.g. `NORTH-`; identifiers that
//!   already carry the prefix are left alone.
//! - `translate`: comma-separated `PATH:table` pairs, e.g.
//!   `PID-8:sex, PV1-2:patient_class`; each value at PATH is replaced by its
//!   entry in the lookup table. A value with no entry is kept and logged as a
//!   warning (the code, never patient data).
//! - `drop_segments`: comma-separated segment ids to remove, e.g. `ZPI,ZBE`.
//!   Only Z-segments may be listed: a mapping must not silently drop
//!   standard data.

mod normalize;

use weft_sdk::{Message, Output, Plugin, Result};

/// The plugin.
pub struct SiteNormalize;

impl Plugin for SiteNormalize {
    /// `translate` and `drop_segments` are checked once, at load: a bad
    /// pair or a standard segment refuses the version.
    fn init() -> Result<()> {
        normalize::init()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        Ok(vec![Output::hl7(&normalize::normalize(&msg)?)])
    }
}

weft_sdk::export!(SiteNormalize);
weft_sdk::manifest! {
    maps: &["HL7 v2 (any message)"],
    // Its tables are the ones `translate` names: a site chooses them.
    optional_tables: &["*"],
    config: &["mrn_prefix", "mrn_type", "translate", "drop_segments"],
    memory_mib: 16,
    deadline_ms: 50,
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::testing::TestHost;

    const ADT: &str = "MSH|^~\\&|EPIC|NORTH|WEFT|EDGE|20240101120000||ADT^A01|C1|P|2.5.1
PID|1||12345^^^NORTH^MR~999-99-9999^^^SSA^SS||Doe^Jane||19800101|F
PV1|1|I|W1^101^A
ZPI|internal|stuff
ZBE|1";

    fn host() -> TestHost {
        TestHost::new()
            .config("mrn_prefix", "N-")
            .config("translate", "PID-8:sex, PV1-2:class")
            .config("drop_segments", "ZPI, ZBE")
            .lookup_csv("sex", "F,female\nM,male\n")
            .lookup("class", "I", "IMP")
    }

    #[test]
    fn normalizes_a_message() {
        let out = host().run::<SiteNormalize>(Message::from_hl7(ADT)).unwrap();
        assert_eq!(out.len(), 1);
        let m = out[0].message().hl7().unwrap();
        assert_eq!(m.get("PID-3(1).1").unwrap().as_deref(), Some("N-12345"));
        assert_eq!(m.get("PID-3(2).1").unwrap().as_deref(), Some("999-99-9999"));
        assert_eq!(m.get("PID-8").unwrap().as_deref(), Some("female"));
        assert_eq!(m.get("PV1-2").unwrap().as_deref(), Some("IMP"));
        assert!(m.segment("ZPI").is_none() && m.segment("ZBE").is_none());
        assert_eq!(m.segments().len(), 3);
        assert_eq!(out[0].message().content_type(), "application/hl7-v2");
    }

    #[test]
    fn is_idempotent_on_the_prefix() {
        let once = host().run::<SiteNormalize>(Message::from_hl7(ADT)).unwrap();
        let twice = host()
            .run::<SiteNormalize>(once[0].message().clone())
            .unwrap();
        let m = twice[0].message().hl7().unwrap();
        assert_eq!(m.get("PID-3.1").unwrap().as_deref(), Some("N-12345"));
    }

    #[test]
    fn unknown_code_is_kept_and_warned() {
        let host = TestHost::new().config("translate", "PID-8:sex");
        let out = host.run::<SiteNormalize>(Message::from_hl7(ADT)).unwrap();
        let m = out[0].message().hl7().unwrap();
        assert_eq!(m.get("PID-8").unwrap().as_deref(), Some("F"));
        let logs = host.logs();
        assert_eq!(logs[0].0, weft_sdk::log::Level::Warn);
        assert!(logs[0].1.contains("no entry in lookup table sex"));
    }

    #[test]
    fn refuses_to_drop_standard_segments() {
        let host = TestHost::new().config("drop_segments", "ZPI,PV1");
        // Refused once, at load, naming the setting.
        let why = host.init::<SiteNormalize>().unwrap_err().to_string();
        assert!(
            why.contains("drop_segments: PV1 is not a Z-segment"),
            "{why}"
        );
        let e = host
            .run::<SiteNormalize>(Message::from_hl7(ADT))
            .unwrap_err();
        assert_eq!(e.kind(), weft_sdk::ErrorKind::Failed);
    }

    #[test]
    fn rejects_what_is_not_hl7() {
        let e = TestHost::new()
            .run::<SiteNormalize>(Message::new("application/hl7-v2", "hello"))
            .unwrap_err();
        assert_eq!(e.kind(), weft_sdk::ErrorKind::Reject);
        assert!(e.reason().contains("MSH"));
    }
}
