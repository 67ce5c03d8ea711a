//! Golden comparisons: what a plugin made against what it should have
//! made, as a person reads the two.
//!
//! - JSON (FHIR) is compared by structure: key order and whitespace do
//!   not matter; fields named in a volatile list (`meta.lastUpdated`) are
//!   ignored wherever they sit; each difference has its path
//!   (`entry[0].resource.name[0].family`) and both values.
//! - HL7 v2 is compared segment by segment (the n-th `OBX` with the n-th
//!   `OBX`) and field by field, each difference named `OBX[2]-5` (or
//!   `PID-5` for a segment's first occurrence), escapes left as written.
//! - Anything else is compared byte for byte.
//!
//! [`junit`] writes a run's results as JUnit XML for a site's CI.

mod hl7;
mod json;
mod junit;

pub use hl7::compare_hl7;
pub use json::compare_json;
pub use junit::{CaseResult, junit};

use std::fmt;

/// One place where the actual output is not the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where: a JSON path or an HL7 field (`PID-5`, `OBX[2]-5`), or a
    /// whole segment (`OBX[3]`).
    pub path: String,
    /// What was expected there; `None`: nothing was.
    pub expected: Option<String>,
    /// What is there; `None`: nothing is.
    pub actual: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
        write!(
            f,
            "{}: expected {}, got {}",
            self.path,
            show(&self.expected),
            show(&self.actual)
        )
    }
}

/// The form two outputs are compared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// JSON, by structure.
    Json,
    /// HL7 v2, by segment and field.
    Hl7,
    /// Bytes.
    Bytes,
}

impl Form {
    /// The form of an output, from its media type, else from its bytes.
    pub fn of(content_type: &str, bytes: &[u8]) -> Form {
        let ct = content_type.to_ascii_lowercase();
        if ct.contains("json") {
            Form::Json
        } else if ct.contains("hl7") || bytes.starts_with(b"MSH") {
            Form::Hl7
        } else if serde_json::from_slice::<serde_json::Value>(bytes).is_ok() {
            Form::Json
        } else {
            Form::Bytes
        }
    }
}

/// Compares `actual` with `expected` in `form`: every difference, none
/// when they match. JSON that does not parse, or HL7 that does not, is
/// compared as bytes (and a difference says so).
pub fn compare(form: Form, expected: &[u8], actual: &[u8], volatile: &[String]) -> Vec<Difference> {
    match form {
        Form::Json => {
            let parse = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b);
            match (parse(expected), parse(actual)) {
                (Ok(e), Ok(a)) => compare_json(&e, &a, volatile),
                _ => bytes(expected, actual, "(not JSON on both sides)"),
            }
        }
        Form::Hl7 => match (std::str::from_utf8(expected), std::str::from_utf8(actual)) {
            (Ok(e), Ok(a)) => compare_hl7(e, a, volatile),
            _ => bytes(expected, actual, "(not UTF-8 on both sides)"),
        },
        Form::Bytes => bytes(expected, actual, ""),
    }
}

/// The most characters of a value a difference shows.
pub const SHOWN: usize = 200;

/// `text` cut to [`SHOWN`] characters.
pub(crate) fn shown(text: &str) -> String {
    if text.chars().count() <= SHOWN {
        text.to_string()
    } else {
        let cut: String = text.chars().take(SHOWN).collect();
        format!("{cut}…")
    }
}

fn bytes(expected: &[u8], actual: &[u8], why: &str) -> Vec<Difference> {
    if expected == actual {
        return Vec::new();
    }
    let at = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let around = |b: &[u8]| shown(&String::from_utf8_lossy(&b[at.min(b.len())..]));
    vec![Difference {
        path: format!(
            "byte {at}{}",
            if why.is_empty() {
                String::new()
            } else {
                format!(" {why}")
            }
        ),
        expected: Some(around(expected)),
        actual: Some(around(actual)),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_follows_the_media_type_then_the_bytes() {
        assert_eq!(Form::of("application/fhir+json", b"{}"), Form::Json);
        assert_eq!(Form::of("application/hl7-v2", b"MSH|"), Form::Hl7);
        assert_eq!(Form::of("", b"MSH|^~\\&|"), Form::Hl7);
        assert_eq!(Form::of("text/plain", b"[1]"), Form::Json);
        assert_eq!(Form::of("text/plain", b"hello"), Form::Bytes);
    }

    #[test]
    fn bytes_say_where_they_part() {
        assert!(compare(Form::Bytes, b"abc", b"abc", &[]).is_empty());
        let d = compare(Form::Bytes, b"abcd", b"abXd", &[]);
        assert_eq!(d[0].path, "byte 2");
        assert_eq!(d[0].expected.as_deref(), Some("cd"));
        let d = compare(Form::Json, b"{", b"{}", &[]);
        assert!(d[0].path.contains("not JSON"), "{d:?}");
    }
}
