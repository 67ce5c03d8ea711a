//! `{{name}}`: lets through only the messages a downstream system wants.
//! A message passes, unchanged, when its type (MSH-9) is one of the
//! `types` setting (default `ADT^A01,ADT^A04,ADT^A08`) and it is not a test
//! or training message (MSH-11 `T` or `D`); any other is filtered out: no
//! outputs, nothing delivered, and the journal records it as filtered.

use weft_sdk::{Error, Message, Output, Plugin, Result, config, log};

/// The types passed when the `types` setting is not given.
pub const DEFAULT_TYPES: &str = "ADT^A01,ADT^A04,ADT^A08";

/// The plugin.
pub struct {{Type}};

/// The `types` setting: `CODE^TRIGGER`, comma-separated.
fn types() -> Result<Vec<String>> {
    let spec = config("types").unwrap_or_else(|| DEFAULT_TYPES.to_string());
    let types: Vec<String> = spec
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if types.is_empty() {
        return Err(Error::failed("config types: empty (name at least one CODE^TRIGGER)"));
    }
    if let Some(bad) = types.iter().find(|t| !t.contains('^')) {
        return Err(Error::failed(format!(
            "config types: {bad:?} is not CODE^TRIGGER"
        )));
    }
    Ok(types)
}

impl Plugin for {{Type}} {
    /// A bad `types` setting refuses the version at load.
    fn init() -> Result<()> {
        types().map(|_| ())
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        let header = msg
            .hl7()?
            .header()
            .map_err(|e| Error::reject(e.to_string()))?;
        let kind = header.message_type();
        if !types()?.contains(&kind) {
            log::debug!("{kind} is not passed: filtered");
            return Ok(vec![]);
        }
        if matches!(header.processing_id.as_str(), "T" | "D") {
            log::debug!("MSH-11 {}: a test or training message, filtered", header.processing_id);
            return Ok(vec![]);
        }
        Ok(vec![Output::bytes(msg.content_type(), msg.body())])
    }
}

weft_sdk::export!({{Type}});
weft_sdk::manifest! {
    maps: &["HL7 v2 (passes the types it is set to)"],
    config: &["types"],
    memory_mib: 16,
    deadline_ms: 20,
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::testing::TestHost;

    const SAMPLE: &str = include_str!("../samples/adt-a01.hl7");

    #[test]
    fn passes_a_wanted_message_unchanged() {
        let out = TestHost::new().run::<{{Type}}>(Message::from_hl7(SAMPLE)).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message().body(), Message::from_hl7(SAMPLE).body());
    }

    #[test]
    fn filters_other_types_and_test_messages() {
        let host = TestHost::new();
        let a03 = SAMPLE.replace("ADT^A01^ADT_A01", "ADT^A03");
        assert!(host.run::<{{Type}}>(Message::from_hl7(&a03)).unwrap().is_empty());
        let test = SAMPLE.replace("|MSG0001|P|", "|MSG0001|T|");
        assert!(host.run::<{{Type}}>(Message::from_hl7(&test)).unwrap().is_empty());
        let host = TestHost::new().config("types", "ADT^A03");
        assert_eq!(host.run::<{{Type}}>(Message::from_hl7(&a03)).unwrap().len(), 1);
    }

    #[test]
    fn refuses_a_bad_setting_at_load() {
        let why = TestHost::new().config("types", "ADT").init::<{{Type}}>().unwrap_err();
        assert!(why.reason().contains("config types"), "{why}");
    }
}
