//! The errors a plugin returns, one kind per way the runtime must react.

use std::fmt;

/// What the runtime does with a message the plugin did not transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: never retried; AR upstream; the error queue.
    Reject,
    /// Transient: retried later with backoff.
    Retry,
    /// A bug in the plugin: AE upstream; the error queue.
    Failed,
}

/// A plugin error: its kind and a reason for the operator.
///
/// The reason is shown in logs and ACKs: name the segment and field, never
/// put patient data in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    reason: String,
}

/// The result of a plugin call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The input is bad and will never map.
    pub fn reject(reason: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Reject,
            reason: reason.into(),
        }
    }

    /// A transient condition: the same input may succeed later.
    pub fn retry(reason: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Retry,
            reason: reason.into(),
        }
    }

    /// The plugin itself is at fault.
    pub fn failed(reason: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Failed,
            reason: reason.into(),
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The reason given.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Error {}

/// Input that is not HL7 v2 is bad input.
impl From<weft_hl7::InvalidMessage> for Error {
    fn from(e: weft_hl7::InvalidMessage) -> Self {
        Error::reject(e.to_string())
    }
}

/// Input that is not HL7 v2 is bad input.
impl From<weft_hl7::ParseError> for Error {
    fn from(e: weft_hl7::ParseError) -> Self {
        Error::reject(e.to_string())
    }
}

/// A malformed path is written in the plugin: a bug.
impl From<weft_hl7::PathError> for Error {
    fn from(e: weft_hl7::PathError) -> Self {
        Error::failed(e.to_string())
    }
}

/// An edit the message cannot take is a bug in the plugin.
impl From<weft_hl7::EditError> for Error {
    fn from(e: weft_hl7::EditError) -> Self {
        Error::failed(e.to_string())
    }
}

/// A date that is not a date is bad input.
impl From<weft_hl7::datetime::DateTimeError> for Error {
    fn from(e: weft_hl7::datetime::DateTimeError) -> Self {
        Error::reject(e.to_string())
    }
}
