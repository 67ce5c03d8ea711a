//! `{{name}}`: rewrites HL7 v2 for a downstream system. Sets the receiving
//! application (MSH-5) from the `receiving_application` setting, removes
//! every Z-segment (site extensions the receiver does not know), and
//! rejects a message with no patient identifier (PID-3).

use weft_sdk::{Message, Output, Plugin, Result, config, log, reject};

/// The plugin.
pub struct {{Type}};

impl Plugin for {{Type}} {
    /// A missing setting refuses the version at load, not every message.
    fn init() -> Result<()> {
        match config("receiving_application") {
            Some(v) if !v.trim().is_empty() => Ok(()),
            _ => Err(weft_sdk::Error::failed(
                "config receiving_application: not set (the application MSH-5 names)",
            )),
        }
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        let mut hl7 = msg.hl7()?;
        // Name the field in a reason, never its value: reasons reach logs
        // and ACKs, and values are patient data.
        if hl7.get("PID-3.1")?.unwrap_or_default().is_empty() {
            reject!("PID-3 (patient identifier list) is empty: the receiver needs one");
        }
        if let Some(app) = config("receiving_application") {
            hl7.set("MSH-5", &app)?;
        }
        let dropped = hl7.remove_segments(|s| s.id().starts_with('Z'));
        log::debug!("dropped {dropped} Z-segments");
        Ok(vec![Output::hl7(&hl7)])
    }
}

weft_sdk::export!({{Type}});
weft_sdk::manifest! {
    maps: &["HL7 v2 (any message with a PID)"],
    config: &["receiving_application"],
    memory_mib: 16,
    deadline_ms: 50,
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::testing::TestHost;

    const SAMPLE: &str = include_str!("../samples/adt-a01.hl7");

    fn host() -> TestHost {
        TestHost::new().config("receiving_application", "LAB")
    }

    #[test]
    fn sets_the_receiver_and_drops_z_segments() {
        let out = host().run::<{{Type}}>(Message::from_hl7(SAMPLE)).unwrap();
        let m = out[0].message().hl7().unwrap();
        assert_eq!(m.get("MSH-5").unwrap().as_deref(), Some("LAB"));
        assert!(m.segments().iter().all(|s| !s.id().starts_with('Z')));
        assert!(m.segment("PID").is_some());
    }

    #[test]
    fn rejects_a_message_without_a_patient_identifier() {
        let text = SAMPLE.replace("123456^^^HOSP^MR", "");
        let why = host().reject_reason::<{{Type}}>(Message::from_hl7(&text));
        assert!(why.starts_with("PID-3"), "{why}");
    }

    #[test]
    fn refuses_to_load_without_its_setting() {
        let why = TestHost::new().init::<{{Type}}>().unwrap_err();
        assert!(why.reason().contains("receiving_application"), "{why}");
    }
}
