//! Acknowledgments: the ACK a receiver returns for a message, with an ERR
//! segment when it did not accept it.

use crate::{Delimiters, Message, escape};

/// The outcome an acknowledgment reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Accepted: AA, or CA in enhanced mode.
    Accept,
    /// Error while processing (may succeed if sent again): AE / CE.
    Error,
    /// Rejected (will never succeed as it is): AR / CR.
    Reject,
}

impl AckCode {
    /// The MSA-1 code, original or enhanced mode.
    pub fn code(self, enhanced: bool) -> &'static str {
        match (self, enhanced) {
            (AckCode::Accept, false) => "AA",
            (AckCode::Error, false) => "AE",
            (AckCode::Reject, false) => "AR",
            (AckCode::Accept, true) => "CA",
            (AckCode::Error, true) => "CE",
            (AckCode::Reject, true) => "CR",
        }
    }
}

/// HL7 table 0357, message error condition codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0: message accepted.
    Accepted,
    /// 100: segment sequence error.
    SegmentSequence,
    /// 101: required field missing.
    RequiredFieldMissing,
    /// 102: data type error.
    DataType,
    /// 103: table value not found.
    TableValueNotFound,
    /// 104: value too long.
    ValueTooLong,
    /// 200: unsupported message type.
    UnsupportedMessageType,
    /// 201: unsupported event code.
    UnsupportedEventCode,
    /// 202: unsupported processing id.
    UnsupportedProcessingId,
    /// 203: unsupported version id.
    UnsupportedVersionId,
    /// 204: unknown key identifier.
    UnknownKey,
    /// 205: duplicate key identifier.
    DuplicateKey,
    /// 206: application record locked.
    RecordLocked,
    /// 207: application internal error.
    InternalError,
}

impl ErrorCode {
    /// The numeric code and its table text.
    pub fn code_and_text(self) -> (&'static str, &'static str) {
        match self {
            ErrorCode::Accepted => ("0", "Message accepted"),
            ErrorCode::SegmentSequence => ("100", "Segment sequence error"),
            ErrorCode::RequiredFieldMissing => ("101", "Required field missing"),
            ErrorCode::DataType => ("102", "Data type error"),
            ErrorCode::TableValueNotFound => ("103", "Table value not found"),
            ErrorCode::ValueTooLong => ("104", "Value too long"),
            ErrorCode::UnsupportedMessageType => ("200", "Unsupported message type"),
            ErrorCode::UnsupportedEventCode => ("201", "Unsupported event code"),
            ErrorCode::UnsupportedProcessingId => ("202", "Unsupported processing id"),
            ErrorCode::UnsupportedVersionId => ("203", "Unsupported version id"),
            ErrorCode::UnknownKey => ("204", "Unknown key identifier"),
            ErrorCode::DuplicateKey => ("205", "Duplicate key identifier"),
            ErrorCode::RecordLocked => ("206", "Application record locked"),
            ErrorCode::InternalError => ("207", "Application internal error"),
        }
    }
}

/// ERR-4, how severe the error is (HL7 table 0516).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `E`: error, the message was not processed as sent.
    Error,
    /// `W`: warning.
    Warning,
    /// `I`: information.
    Information,
    /// `F`: fatal error.
    Fatal,
}

impl Severity {
    fn code(self) -> &'static str {
        match self {
            Severity::Error => "E",
            Severity::Warning => "W",
            Severity::Information => "I",
            Severity::Fatal => "F",
        }
    }
}

/// ERR-2, where in the message the error is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorLocation {
    /// Segment id, e.g. `PID`.
    pub segment: String,
    /// Occurrence of the segment, from 1.
    pub sequence: Option<usize>,
    /// Field position.
    pub field: Option<usize>,
    /// Component position.
    pub component: Option<usize>,
}

/// What an ERR segment reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckError {
    /// ERR-2.
    pub location: Option<ErrorLocation>,
    /// ERR-3, from table 0357.
    pub code: ErrorCode,
    /// ERR-4.
    pub severity: Severity,
    /// ERR-8, the text for the sender's operator. Never patient data.
    pub text: String,
}

/// The parts of the ACK that the receiver chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckOptions {
    /// MSH-10 of the ACK: a new, unique control id.
    pub control_id: String,
    /// MSH-7 of the ACK, as an HL7 DTM (see [`crate::datetime::now`]).
    pub timestamp: String,
}

/// The longest value of the original an ACK echoes (MSH-3 to MSH-6,
/// MSH-10 in MSA-2, MSH-11, MSH-12): past it, the field is left empty.
pub const MAX_ECHO: usize = 256;

/// Builds the acknowledgment for `original`.
///
/// The ACK swaps sender and receiver (MSH-3/4 ⇄ MSH-5/6), says
/// `ACK^<trigger>^ACK` in MSH-9, carries a new MSH-10, echoes MSH-11 and
/// MSH-12, sets MSA-1 (AA/AE/AR, or CA/CE/CR when MSH-15/16 ask for enhanced
/// mode) and MSA-2 to the original MSH-10, and adds an ERR segment when
/// `error` is given. It uses the original's delimiters.
///
/// `original` is `None` when the message could not be parsed at all: the ACK
/// then has the standard delimiters, an empty MSA-2 (a control id is never
/// made up) and MSA-1 is AR. Echoed values longer than [`MAX_ECHO`] (and a
/// trigger event that is not a short code) are left out.
pub fn build_ack(
    original: Option<&Message>,
    code: AckCode,
    error: Option<&AckError>,
    options: &AckOptions,
) -> Message {
    let d = original.map_or_else(Delimiters::default, |m| *m.delimiters());
    let mut ack = Message::new(d);
    // What an ACK echoes of the original is bounded: a hostile sender's
    // 100 KB field must not come back (or reach a log) through the ACK.
    // A value past its cap is left out, never cut (a cut control id would
    // name another message).
    let raw = |path: &str| -> String {
        original
            .and_then(|m| m.element(path).ok().flatten())
            .map(|e| e.raw().to_string())
            .filter(|v| v.len() <= MAX_ECHO)
            .unwrap_or_default()
    };
    let value = |path: &str| -> String {
        original
            .and_then(|m| m.get(path).ok().flatten())
            .unwrap_or_default()
    };
    let enhanced = !value("MSH-15").is_empty() || !value("MSH-16").is_empty();
    let code = if original.is_none() {
        AckCode::Reject
    } else {
        code
    };
    let enc = |s: &str| escape::encode(s, &d).into_owned();
    let trigger = Some(value("MSH-9.2"))
        .filter(|t| t.len() <= 8 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_default();
    let msh_type = if trigger.is_empty() {
        "ACK".to_string()
    } else {
        format!("ACK{c}{}{c}ACK", enc(&trigger), c = d.component)
    };
    let msh_fields = [
        d.field.to_string(),
        d.encoding_characters(),
        raw("MSH-5"),
        raw("MSH-6"),
        raw("MSH-3"),
        raw("MSH-4"),
        enc(&options.timestamp),
        String::new(),
        msh_type,
        enc(&options.control_id),
        raw("MSH-11"),
        raw("MSH-12"),
    ];
    let msh_refs: Vec<&str> = msh_fields.iter().map(String::as_str).collect();
    // Message::new gave an MSH; replace it with the full one.
    ack.clear_segments();
    ack.push_segment_fields("MSH", &msh_refs);
    let control_id = raw("MSH-10");
    let mut msa = vec![code.code(enhanced).to_string(), control_id];
    if let Some(e) = error {
        // MSA-3, the text message, for receivers of versions before 2.5.
        msa.push(enc(&e.text));
    }
    let msa_refs: Vec<&str> = msa.iter().map(String::as_str).collect();
    ack.push_segment_fields("MSA", &msa_refs);
    if let Some(e) = error {
        let c = d.component;
        let location = e.location.as_ref().map_or_else(String::new, |l| {
            let n = |v: Option<usize>| v.map_or_else(String::new, |v| v.to_string());
            let mut s = format!(
                "{}{c}{}{c}{}",
                enc(&l.segment),
                n(l.sequence.or(Some(1))),
                n(l.field)
            );
            if let Some(comp) = l.component {
                s.push_str(&format!("{c}1{c}{comp}"));
            }
            s
        });
        let (num, text) = e.code.code_and_text();
        let err_fields = [
            String::new(),
            location,
            format!("{num}{c}{}{c}HL70357", enc(text)),
            e.severity.code().to_string(),
            String::new(),
            String::new(),
            String::new(),
            enc(&e.text),
        ];
        let err_refs: Vec<&str> = err_fields.iter().map(String::as_str).collect();
        ack.push_segment_fields("ERR", &err_refs);
    }
    ack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_field_is_not_echoed() {
        let text = format!(
            "MSH|^~\\&|APP|FAC|WEFT|EDGE|20240101||ADT^{}|{}|P|2.5.1\r",
            "A".repeat(100_000),
            "C".repeat(300)
        );
        let m = Message::parse(text.as_bytes()).unwrap();
        let ack = build_ack(Some(&m), AckCode::Reject, None, &opts()).to_text();
        assert!(ack.len() < 500, "{} bytes", ack.len());
        assert!(
            ack.contains("MSA|AR|\r") || ack.contains("MSA|AR\r"),
            "{ack}"
        );
        assert!(ack.contains("|ACK|"), "{ack}");
    }

    fn opts() -> AckOptions {
        AckOptions {
            control_id: "ACK-1".into(),
            timestamp: "20240102030405+0000".into(),
        }
    }

    #[test]
    fn accept_in_original_mode() {
        let m = Message::parse(
            b"MSH|^~\\&|SEND|SFAC^1.2^ISO|RECV|RFAC|20240101||ADT^A01^ADT_A01|C42|P|2.5.1\rPID|1\r",
        )
        .unwrap();
        let ack = build_ack(Some(&m), AckCode::Accept, None, &opts());
        assert_eq!(
            ack.to_text(),
            "MSH|^~\\&|RECV|RFAC|SEND|SFAC^1.2^ISO|20240102030405+0000||ACK^A01^ACK|ACK-1|P|2.5.1\rMSA|AA|C42\r"
        );
    }

    #[test]
    fn enhanced_mode_and_error() {
        let m =
            Message::parse(b"MSH#^~\\&#S#F#R#G#2024##ORU^R01#C7#P#2.5###AL#NE\rPID#1\r").unwrap();
        let err = AckError {
            location: Some(ErrorLocation {
                segment: "PID".into(),
                sequence: None,
                field: Some(7),
                component: None,
            }),
            code: ErrorCode::DataType,
            severity: Severity::Error,
            text: "PID-7 is not a date #1".into(),
        };
        let ack = build_ack(Some(&m), AckCode::Reject, Some(&err), &opts());
        assert_eq!(ack.get("MSA-1").unwrap().as_deref(), Some("CR"));
        assert_eq!(ack.get("MSA-2").unwrap().as_deref(), Some("C7"));
        assert_eq!(ack.get("ERR-2.1").unwrap().as_deref(), Some("PID"));
        assert_eq!(ack.get("ERR-2.3").unwrap().as_deref(), Some("7"));
        assert_eq!(ack.get("ERR-3.1").unwrap().as_deref(), Some("102"));
        assert_eq!(ack.get("ERR-3.3").unwrap().as_deref(), Some("HL70357"));
        assert_eq!(ack.get("ERR-4").unwrap().as_deref(), Some("E"));
        assert_eq!(
            ack.get("ERR-8").unwrap().as_deref(),
            Some("PID-7 is not a date #1")
        );
        assert!(ack.to_text().contains("not a date \\F\\1"));
    }

    #[test]
    fn unparseable_message_gets_reject_without_control_id() {
        let err = AckError {
            location: None,
            code: ErrorCode::SegmentSequence,
            severity: Severity::Error,
            text: "message does not start with an MSH segment".into(),
        };
        let ack = build_ack(None, AckCode::Accept, Some(&err), &opts());
        assert_eq!(ack.get("MSA-1").unwrap().as_deref(), Some("AR"));
        assert_eq!(ack.get("MSA-2").unwrap(), None);
        assert_eq!(ack.get("MSH-9").unwrap().as_deref(), Some("ACK"));
        assert_eq!(ack.get("ERR-3.1").unwrap().as_deref(), Some("100"));
    }
}
