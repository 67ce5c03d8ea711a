//! Deterministic identities: the same source identifiers always give the
//! same `urn:uuid:`, so a re-sent message updates instead of duplicating.

use sha2::{Digest, Sha256};

/// The identifier system of identifiers this crate derives for resources
/// whose HL7 v2 segment carries none of its own (NK1, AL1, DG1, OBX, …):
/// the value is a hash of the patient's identity and the segment's key
/// fields, so a re-sent message matches the same resource.
pub const DERIVED_SYSTEM: &str = "urn:weft:v2fhir:derived";

fn digest(kind: &str, name: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"weft:v2fhir:");
    h.update(kind.as_bytes());
    h.update(b"\0");
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// A name-based UUID (version 5 layout, SHA-256 truncated) in the Weft
/// namespace: `urn:uuid:…` for a Bundle entry's fullUrl.
pub fn urn_uuid(kind: &str, name: &str) -> String {
    urn_uuid_of(digest(kind, name))
}

/// A derived identifier's value and the fullUrl of its resource, from one
/// digest of `key` (see [`derived_value`]).
pub fn derived(kind: &str, key: &str) -> (String, String) {
    let d = digest(kind, key);
    (hex(&d), urn_uuid_of(d))
}

fn urn_uuid_of(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    let mut out = String::with_capacity(45);
    out.push_str("urn:uuid:");
    for (i, range) in [0..8, 8..12, 12..16, 16..20, 20..32]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push('-');
        }
        out.push_str(&h[range]);
    }
    out
}

/// The value of a derived identifier (see [`DERIVED_SYSTEM`]) for `key`.
pub fn derived_value(kind: &str, key: &str) -> String {
    hex(&digest(kind, key))
}

fn unreserved(b: u8) -> bool {
    matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'/')
}

/// Percent-encodes a value for a FHIR search URL (`Patient?identifier=…`).
pub fn query_encode(value: &str) -> String {
    if value.bytes().all(unreserved) {
        return value.to_string();
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len() + 8);
    for b in value.bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_well_formed() {
        let a = urn_uuid("Patient", "urn:x|123");
        assert_eq!(a, urn_uuid("Patient", "urn:x|123"));
        assert_ne!(a, urn_uuid("Patient", "urn:x|124"));
        assert_ne!(a, urn_uuid("Encounter", "urn:x|123"));
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a[23..24], "5");
        assert_eq!(derived_value("Condition", "k").len(), 32);
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(query_encode("http://a/b|12 3&x"), "http://a/b%7C12%203%26x");
    }
}
