//! Deterministic identities: the same source identifiers always give the
//! same `urn:uuid:`, so a re-sent message updates instead of duplicating.

use sha2::{Digest, Sha256};

/// A name-based UUID (version 5 layout, SHA-256 truncated) in the Weft
/// namespace: `urn:uuid:…` for a Bundle entry's fullUrl.
pub fn urn_uuid(kind: &str, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"weft:adt-to-fhir:");
    h.update(kind.as_bytes());
    h.update(b"\0");
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Percent-encodes a value for a FHIR search URL (`Patient?identifier=…`).
pub fn query_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
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
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a[23..24], "5");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(query_encode("http://a/b|12 3&x"), "http://a/b%7C12%203%26x");
    }
}
