//! The MSH fields a receiver needs to route and acknowledge a message.

use crate::Message;

/// The routing and acknowledgment fields of MSH, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// MSH-3.1, the sending application.
    pub sending_application: String,
    /// MSH-4.1, the sending facility.
    pub sending_facility: String,
    /// MSH-5.1, the receiving application.
    pub receiving_application: String,
    /// MSH-6.1, the receiving facility.
    pub receiving_facility: String,
    /// MSH-7, the message's date/time as written.
    pub timestamp: String,
    /// MSH-9.1, the message code, e.g. `ADT`. Never empty.
    pub message_code: String,
    /// MSH-9.2, the trigger event, e.g. `A01`. May be empty (e.g. `ACK`).
    pub trigger_event: String,
    /// MSH-9.3, the message structure, e.g. `ADT_A01`.
    pub message_structure: String,
    /// MSH-10, the control id the sender chose. Never empty.
    pub control_id: String,
    /// MSH-11.1, the processing id (`P`, `T`, `D`).
    pub processing_id: String,
    /// MSH-12.1, the version, e.g. `2.5.1`.
    pub version: String,
    /// MSH-15, the accept acknowledgment type (enhanced mode when set).
    pub accept_ack_type: String,
    /// MSH-16, the application acknowledgment type (enhanced mode when set).
    pub application_ack_type: String,
}

/// A header field an acknowledgment needs is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} ({name}) is required but empty")]
pub struct HeaderError {
    /// The field, e.g. `MSH-10`.
    pub field: &'static str,
    /// What the field is.
    pub name: &'static str,
}

impl Header {
    /// `ADT^A01`-style type: code, and trigger when there is one.
    pub fn message_type(&self) -> String {
        if self.trigger_event.is_empty() {
            self.message_code.clone()
        } else {
            format!("{}^{}", self.message_code, self.trigger_event)
        }
    }

    /// True when MSH-15 or MSH-16 asks for enhanced acknowledgment mode.
    pub fn enhanced_mode(&self) -> bool {
        !self.accept_ack_type.is_empty() || !self.application_ack_type.is_empty()
    }
}

impl Message {
    /// Reads and checks the MSH fields needed to acknowledge the message:
    /// MSH-9 (message code) and MSH-10 (control id) must be present.
    pub fn header(&self) -> Result<Header, HeaderError> {
        let get = |path: &str| self.get(path).ok().flatten().unwrap_or_default();
        let h = Header {
            sending_application: get("MSH-3"),
            sending_facility: get("MSH-4"),
            receiving_application: get("MSH-5"),
            receiving_facility: get("MSH-6"),
            timestamp: get("MSH-7"),
            message_code: get("MSH-9.1"),
            trigger_event: get("MSH-9.2"),
            message_structure: get("MSH-9.3"),
            control_id: get("MSH-10"),
            processing_id: get("MSH-11"),
            version: get("MSH-12"),
            accept_ack_type: get("MSH-15"),
            application_ack_type: get("MSH-16"),
        };
        if h.message_code.is_empty() {
            return Err(HeaderError {
                field: "MSH-9",
                name: "message type",
            });
        }
        if h.control_id.is_empty() {
            return Err(HeaderError {
                field: "MSH-10",
                name: "message control id",
            });
        }
        Ok(h)
    }
}
