//! HL7 v2 for Weft: parse, read and edit by path, serialize, acknowledge.
//!
//! Used natively by the runtime (ACKs, routing on MSH-9) and inside plugins
//! compiled to `wasm32-wasip2`. It has no dependency on a platform.
//!
//! - [`Message::parse`] reads the delimiters a message declares in MSH-1 and
//!   MSH-2, accepts `\r`, `\n` and `\r\n` segment terminators, and keeps
//!   fields in their raw form, so an unchanged message serializes back byte
//!   for byte ([`Message::to_bytes`]). It copies the message once and keeps
//!   offsets into that copy, four bytes a field; a segment's fields become
//!   strings of their own only when the segment is edited.
//! - Terse paths ([`Path`]): `PID-5.1`, `PID-3(2).1`, `OBX[3]-5`, for
//!   [`Message::get`] and [`Message::set`]; escape sequences are decoded on
//!   read and encoded on write ([`escape`]).
//! - [`build_ack`] makes the acknowledgment of a message, with an ERR
//!   segment coded from HL7 table 0357.
//! - [`datetime::DateTime`] checks HL7 dates and converts them to FHIR.
//!
//! ```
//! use weft_hl7::Message;
//! let mut m = Message::parse(b"MSH|^~\\&|APP|FAC|||20240101||ADT^A01|1|P|2.5\rPID|1||42^^^H^MR||Doe^Jane").unwrap();
//! assert_eq!(m.get("PID-5.2").unwrap().as_deref(), Some("Jane"));
//! m.set("PID-3.1", "H-42").unwrap();
//! assert!(m.to_text().contains("|H-42^^^H^MR|"));
//! ```

pub mod ack;
pub mod datetime;
pub mod delimiters;
pub mod element;
pub mod escape;
pub mod header;
pub mod message;
pub mod path;

pub use ack::{AckCode, AckError, AckOptions, ErrorCode, ErrorLocation, Severity, build_ack};
pub use delimiters::Delimiters;
pub use element::{Element, Level};
pub use header::{Header, HeaderError};
pub use message::{EditError, Message, ParseError, ParseErrorKind, Segment, TextEncoding};
pub use path::{Path, PathError};

/// Reads a message and checks the header fields an acknowledgment needs.
///
/// This is what a receiver calls on every message: an error here means the
/// message must be refused with a NAK.
pub fn parse_and_check(bytes: &[u8]) -> Result<(Message, Header), InvalidMessage> {
    let m = Message::parse(bytes)?;
    let h = m.header()?;
    Ok((m, h))
}

/// A message that cannot be accepted: not parseable, or its header lacks
/// what an acknowledgment needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// The bytes are not an HL7 v2 message.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// MSH-9 or MSH-10 is missing.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

impl InvalidMessage {
    /// The ERR segment content that reports this problem.
    pub fn ack_error(&self) -> AckError {
        match self {
            InvalidMessage::Parse(p) => AckError {
                location: p.segment_id.as_ref().map(|s| ErrorLocation {
                    segment: s.clone(),
                    sequence: Some(1),
                    field: p.field,
                    component: None,
                }),
                code: ErrorCode::SegmentSequence,
                severity: Severity::Error,
                text: p.to_string(),
            },
            InvalidMessage::Header(h) => AckError {
                location: Some(ErrorLocation {
                    segment: "MSH".into(),
                    sequence: Some(1),
                    field: h.field.trim_start_matches("MSH-").parse().ok(),
                    component: None,
                }),
                code: ErrorCode::RequiredFieldMissing,
                severity: Severity::Error,
                text: h.to_string(),
            },
        }
    }
}
