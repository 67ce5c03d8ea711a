//! MSH: the header of each message made, and its time and control id.

use weft_sdk::hl7::Delimiters;
use weft_v2fhir::time::civil_from_days;

use crate::settings::Settings;
use crate::write::{Composite, Segments};

/// The message type, trigger event and structure (MSH-9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageType {
    /// `OML`, `ORM`, `ADT` …
    pub code: &'static str,
    /// `O21`, `A28` …
    pub trigger: &'static str,
    /// `OML_O21`, `ADT_A05` …
    pub structure: &'static str,
}

impl MessageType {
    /// `CODE^TRIGGER`.
    pub fn name(&self) -> String {
        format!("{}^{}", self.code, self.trigger)
    }
}

/// The version every message made here declares (MSH-12).
pub const VERSION: &str = "2.5.1";

/// The longest control id HL7 v2.5.1 allows (MSH-10, ST 20).
pub const MAX_CONTROL_ID: usize = 20;

/// The time a message is made, as DTM in UTC: the time Weft received the
/// FHIR input when its message id is a UUIDv7 (so the same input always
/// gives the same message), else the clock.
pub fn message_time(message_id: &str) -> String {
    let hex: String = message_id.chars().filter(|c| *c != '-').collect();
    let millis = (hex.len() == 32 && hex.is_ascii() && hex.as_bytes().get(12) == Some(&b'7'))
        .then(|| u64::from_str_radix(&hex[..12], 16).ok())
        .flatten()
        .or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| u64::try_from(d.as_millis()).ok())
        })
        .unwrap_or(0);
    let secs = i64::try_from(millis / 1000).unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}.{:03}+0000",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        millis % 1000
    )
}

/// MSH-10 from the message id: its last 20 letters and digits (a UUID's
/// random part), or the time's digits when there is no id. The `n`th
/// message made from one input (from 0) gets `n` in its last place(s), so
/// each is unique.
pub fn control_id(message_id: &str, time: &str, n: usize) -> String {
    let mut chars: Vec<char> = message_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if chars.is_empty() {
        chars = time.chars().filter(char::is_ascii_digit).collect();
    }
    let suffix = if n == 0 { String::new() } else { n.to_string() };
    let keep = MAX_CONTROL_ID.saturating_sub(suffix.len());
    let start = chars.len().saturating_sub(keep);
    let mut id: String = chars[start..].iter().collect();
    id.push_str(&suffix);
    id
}

/// The whole message: an MSH for `kind` with this control id and time,
/// then `segments`. MSH-18 says `UNICODE UTF-8` when the text is not
/// plain ASCII.
pub fn message(
    settings: &Settings,
    kind: MessageType,
    control_id: &str,
    time: &str,
    segments: &Segments,
    d: &Delimiters,
) -> String {
    let body = segments.text("", d);
    let mut fields: Vec<String> = vec![
        settings.sending_application.encode(d),
        settings.sending_facility.encode(d),
        settings.receiving_application.encode(d),
        settings.receiving_facility.encode(d),
        Composite::text(time).encode(d),
        String::new(),
        Composite::new()
            .with(1, kind.code)
            .with(2, kind.trigger)
            .with(3, kind.structure)
            .encode(d),
        Composite::text(control_id).encode(d),
        Composite::text(settings.processing_id.as_str()).encode(d),
        VERSION.to_string(),
    ];
    if !body.is_ascii() {
        fields.extend(["", "", "", "", ""].map(String::from));
        fields.push("UNICODE UTF-8".into());
    }
    let mut out = format!("MSH{}{}", d.field, d.encoding_characters());
    for f in fields {
        out.push(d.field);
        out.push_str(&f);
    }
    // `body` starts with the empty MSH placeholder's terminator.
    out.push_str(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_and_control_id_come_from_a_uuid_v7() {
        // 0x0192_0000_0000 ms since 1970 is 2024-09-17T12:40:52.992Z.
        let id = "01920000-0000-7abc-8def-0123456789ab";
        let t = message_time(id);
        assert_eq!(t, "20240917124052.992+0000");
        assert_eq!(control_id(id, &t, 0), "7abc8def0123456789ab");
        assert_eq!(control_id(id, &t, 1), "abc8def0123456789ab1");
        assert_eq!(control_id("", "20240101000000.000+0000", 0).len(), 20);
        // Not a UUIDv7 (32 characters, some not ASCII): the clock, no panic.
        let odd = "ééééééééééééééééééééé7abcdefghij";
        assert_eq!(message_time(odd).len(), t.len());
    }
}
