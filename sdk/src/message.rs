//! Messages a plugin receives and the outputs it returns.

use crate::{Error, Result};

/// Media type of HL7 v2 (ER7) messages.
pub const CONTENT_TYPE_HL7V2: &str = "application/hl7-v2";
/// Media type of FHIR resources in JSON.
pub const CONTENT_TYPE_FHIR_JSON: &str = "application/fhir+json";
/// Media type of plain JSON.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// One message: its runtime id, content type, bytes and source headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    id: String,
    content_type: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Message {
    /// A message with the given content type and body, for tests.
    pub fn new(content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Message {
        Message {
            id: String::new(),
            content_type: content_type.into(),
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// An HL7 v2 message from text, for tests. Line feeds are turned into
    /// the carriage returns HL7 ends segments with, so messages can be
    /// written one segment per line.
    pub fn from_hl7(text: &str) -> Message {
        let text = text.trim().replace("\r\n", "\r").replace('\n', "\r");
        Message::new(CONTENT_TYPE_HL7V2, text.into_bytes())
    }

    /// Sets the id (the runtime assigns it; tests may too).
    pub fn with_id(mut self, id: impl Into<String>) -> Message {
        self.id = id.into();
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Message {
        self.headers.push((name.into(), value.into()));
        self
    }

    #[doc(hidden)]
    pub fn from_parts(
        id: String,
        content_type: String,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Message {
        Message {
            id,
            content_type,
            body,
            headers,
        }
    }

    #[doc(hidden)]
    pub fn into_parts(self) -> (String, String, Vec<u8>, Vec<(String, String)>) {
        (self.id, self.content_type, self.body, self.headers)
    }

    /// The id the runtime assigned.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The media type, e.g. `application/hl7-v2`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The raw bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The first header with this name (names are lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body parsed as HL7 v2, ready to read and edit. A body that is
    /// not HL7 v2, or whose MSH lacks a type or control id, is a *reject*
    /// whose reason says where the problem is.
    pub fn hl7(&self) -> Result<weft_hl7::Message> {
        let m = weft_hl7::Message::parse(&self.body)?;
        m.header().map_err(|e| Error::reject(e.to_string()))?;
        Ok(m)
    }

    /// The body parsed as JSON. Invalid JSON is a *reject*.
    pub fn json(&self) -> Result<serde_json::Value> {
        self.json_as()
    }

    /// The body deserialized into `T`. A mismatch is a *reject*.
    pub fn json_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        // serde_json's own message quotes the input ("invalid type: string
        // \"Smith\""): a reason says where and what, never the value.
        serde_json::from_slice(&self.body).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Eof => "ends before its JSON does",
                serde_json::error::Category::Data => {
                    "does not hold the expected JSON fields or types"
                }
                serde_json::error::Category::Io => "cannot be read",
            };
            Error::reject(format!(
                "body {what} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }

    /// The body as UTF-8 text. Other bytes are a *reject*.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::reject(format!("body is not UTF-8 text: {e}")))
    }
}

/// One output of a plugin: a message and, optionally, the destination it
/// goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    destination: Option<String>,
    message: Message,
}

impl Output {
    /// An HL7 v2 output (`application/hl7-v2`).
    pub fn hl7(msg: &weft_hl7::Message) -> Output {
        Output::bytes(CONTENT_TYPE_HL7V2, msg.to_bytes())
    }

    /// A FHIR resource or Bundle (`application/fhir+json`).
    pub fn fhir(resource: &serde_json::Value) -> Output {
        Output::bytes(CONTENT_TYPE_FHIR_JSON, json_bytes(resource))
    }

    /// A JSON document (`application/json`).
    pub fn json(value: &serde_json::Value) -> Output {
        Output::bytes(CONTENT_TYPE_JSON, json_bytes(value))
    }

    /// Any bytes with the given media type.
    pub fn bytes(content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Output {
        Output {
            destination: None,
            message: Message::new(content_type, body),
        }
    }

    /// Sends this output to the named destination only.
    pub fn to(mut self, destination: impl Into<String>) -> Output {
        self.destination = Some(destination.into());
        self
    }

    /// Adds a header to the output message.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Output {
        self.message.headers.push((name.into(), value.into()));
        self
    }

    /// The destination, when one is named.
    pub fn destination(&self) -> Option<&str> {
        self.destination.as_deref()
    }

    /// The output message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    #[doc(hidden)]
    pub fn into_parts(self) -> (Option<String>, Message) {
        (self.destination, self.message)
    }
}

/// Compact JSON, written straight into bytes (`to_string` goes through
/// `fmt::Display`, several times slower on a large Bundle).
fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail: its keys are strings.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reasons_say_where_and_never_quote_the_body() {
        #[derive(serde::Deserialize, Debug)]
        struct Patient {
            #[allow(dead_code)]
            age: u32,
        }
        let m = Message::new("application/json", r#"{"age": "Smith-Jones"}"#);
        let e = m.json_as::<Patient>().unwrap_err();
        assert!(!e.reason().contains("Smith"), "{e}");
        assert!(e.reason().contains("line 1"), "{e}");
        let e = Message::new("application/json", r#"{"name": "Smith"#)
            .json()
            .unwrap_err();
        assert!(!e.reason().contains("Smith"), "{e}");
    }

    #[test]
    fn a_bad_date_reason_holds_no_date() {
        let e: crate::Error = weft_hl7::datetime::DateTime::parse("19800231")
            .unwrap_err()
            .into();
        assert!(!e.reason().contains("1980"), "{e}");
    }
}
