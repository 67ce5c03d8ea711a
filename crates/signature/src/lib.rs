//! Plugin signatures: an ed25519 signature embedded in the component, as
//! its last custom section (`weft-signature`), over every byte before it.
//! One file to ship, replaced in one rename on hot reload; the code and
//! everything embedded with it (the manifest) are covered, so neither can
//! change without breaking the signature. Signing again replaces the
//! section.
//!
//! What is signed is `weft plugin signature v1\n` followed by the SHA-256
//! of the bytes before the section (domain-separated, so a signature made
//! for anything else never verifies here). The section says which public
//! key made it; whether that key is trusted is the trust list's question
//! ([`trust`]).
//!
//! Beside it: [`keyfile`], the signing key files; [`trust`], the site's
//! trust list and the policy that decides whether a plugin may load; and
//! [`manifest`], what the plugin declares about itself and the component's
//! imports.

pub mod keyfile;
pub mod manifest;
pub mod trust;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The custom section's name.
pub const SECTION: &str = "weft-signature";

/// The longest signature section read (its JSON is about 300 bytes).
const MAX_SECTION: usize = 4096;

/// What the signature covers, before the digest.
const DOMAIN: &[u8] = b"weft plugin signature v1\n";

/// A signature as embedded (JSON in the section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedded {
    /// The format, 1.
    pub version: u32,
    /// The signer's name as its key file says (informative: trust goes by
    /// the key, not the name).
    pub signer: String,
    /// The ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// The SHA-256 of the signed bytes, 64 hex digits.
    pub signed_sha256: String,
    /// The ed25519 signature, 128 hex digits.
    pub signature: String,
}

/// Why a file's signature cannot be read or does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not a WebAssembly binary, or its sections do not add up.
    #[error("not a well-formed WebAssembly file: {0}")]
    Malformed(String),
    /// A signature section that is not the last one: bytes were added after
    /// signing.
    #[error("the signature is not the file's last section: something was added after signing")]
    NotLast,
    /// More than one signature section.
    #[error("more than one signature section")]
    Several,
    /// The section does not parse.
    #[error("the signature section cannot be read: {0}")]
    Unreadable(String),
    /// The bytes changed since they were signed.
    #[error("the file was changed after it was signed (its content does not match the signature)")]
    Tampered,
}

/// A file's signature, checked against the file's own bytes (but not yet
/// against any trust list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The name the signer gave itself.
    pub claimed_signer: String,
    /// The key that made the signature.
    pub key: [u8; 32],
}

impl Verified {
    /// A short name for the key: the first 16 hex digits of its SHA-256.
    pub fn key_id(&self) -> String {
        key_id(&self.key)
    }
}

/// A short name for a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(key: &[u8; 32]) -> String {
    hex(&Sha256::digest(key))[..16].to_string()
}

/// One top-level section of a WebAssembly binary: its id, where it starts
/// (its id byte) and where its payload lies.
#[derive(Debug, Clone, Copy)]
struct Section {
    id: u8,
    start: usize,
    payload: (usize, usize),
}

/// Reads an unsigned LEB128 u32 at `*at`.
fn leb_u32(bytes: &[u8], at: &mut usize) -> Result<u32, SignatureError> {
    let mut value: u64 = 0;
    for shift in 0..5 {
        let Some(&b) = bytes.get(*at) else {
            return Err(SignatureError::Malformed("truncated length".into()));
        };
        *at += 1;
        value |= u64::from(b & 0x7f) << (7 * shift);
        if b & 0x80 == 0 {
            return u32::try_from(value)
                .map_err(|_| SignatureError::Malformed("length over 32 bits".into()));
        }
    }
    Err(SignatureError::Malformed(
        "length longer than 5 bytes".into(),
    ))
}

/// The top-level sections of a module or component.
fn sections(bytes: &[u8]) -> Result<Vec<Section>, SignatureError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(SignatureError::Malformed("no WebAssembly header".into()));
    }
    let mut out = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let start = at;
        let id = bytes[at];
        at += 1;
        let size = leb_u32(bytes, &mut at)? as usize;
        let end = at
            .checked_add(size)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| SignatureError::Malformed("a section runs past the end".into()))?;
        out.push(Section {
            id,
            start,
            payload: (at, end),
        });
        at = end;
    }
    Ok(out)
}

/// The name of a custom section (id 0) and where its data starts; `None`
/// for other sections.
fn custom_name<'b>(
    bytes: &'b [u8],
    s: &Section,
) -> Result<Option<(&'b str, usize)>, SignatureError> {
    if s.id != 0 {
        return Ok(None);
    }
    let bad = || SignatureError::Malformed("a custom section's name does not fit in it".into());
    let mut at = s.payload.0;
    let len = leb_u32(bytes, &mut at)? as usize;
    let end = at
        .checked_add(len)
        .filter(|e| *e <= s.payload.1)
        .ok_or_else(bad)?;
    let name = std::str::from_utf8(&bytes[at..end]).map_err(|_| bad())?;
    Ok(Some((name, end)))
}

/// Splits a file into the bytes its signature covers and its signature
/// section's data, if it has one.
pub fn split(bytes: &[u8]) -> Result<(&[u8], Option<&[u8]>), SignatureError> {
    let all = sections(bytes)?;
    let mut signatures = Vec::new();
    for (i, s) in all.iter().enumerate() {
        if let Some((SECTION, data)) = custom_name(bytes, s)? {
            signatures.push((i, data));
        }
    }
    match signatures.as_slice() {
        [] => Ok((bytes, None)),
        [(i, data)] if *i + 1 == all.len() => {
            let s = &all[*i];
            Ok((&bytes[..s.start], Some(&bytes[*data..s.payload.1])))
        }
        [_] => Err(SignatureError::NotLast),
        _ => Err(SignatureError::Several),
    }
}

fn message(signed: &[u8]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(&Sha256::digest(signed));
    m
}

fn unhex<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return Err(format!("{what}: expected {} hex digits", N * 2));
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out[i] = (h * 16 + l) as u8,
            _ => return Err(format!("{what}: not hex")),
        }
    }
    Ok(out)
}

/// Parses `text` as hex of exactly `N` bytes; `what` names it in errors.
pub fn parse_hex<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    unhex(text.trim(), what)
}

/// Checks a file's embedded signature against its bytes: `None` when it
/// has none.
pub fn verify(bytes: &[u8]) -> Result<Option<Verified>, SignatureError> {
    let (signed, Some(data)) = split(bytes)? else {
        return Ok(None);
    };
    if data.len() > MAX_SECTION {
        return Err(SignatureError::Unreadable(format!(
            "{} bytes, more than {MAX_SECTION}",
            data.len()
        )));
    }
    let e: Embedded =
        serde_json::from_slice(data).map_err(|e| SignatureError::Unreadable(e.to_string()))?;
    if e.version != 1 {
        return Err(SignatureError::Unreadable(format!(
            "format version {} (this runtime reads 1)",
            e.version
        )));
    }
    let key: [u8; 32] = unhex(&e.public_key, "public_key").map_err(SignatureError::Unreadable)?;
    let sig: [u8; 64] = unhex(&e.signature, "signature").map_err(SignatureError::Unreadable)?;
    let verifying = VerifyingKey::from_bytes(&key)
        .map_err(|_| SignatureError::Unreadable("public_key is not an ed25519 key".into()))?;
    verifying
        .verify_strict(&message(signed), &Signature::from_bytes(&sig))
        .map_err(|_| SignatureError::Tampered)?;
    Ok(Some(Verified {
        claimed_signer: e.signer,
        key,
    }))
}

/// Signs `bytes` (a component, signed or not) as `signer` with `secret`:
/// the file with its old signature, if any, replaced by the new one.
pub fn sign(bytes: &[u8], signer: &str, secret: &[u8; 32]) -> Result<Vec<u8>, SignatureError> {
    let (signed, _) = split(bytes)?;
    let key = SigningKey::from_bytes(secret);
    let signature = key.sign(&message(signed));
    let embedded = Embedded {
        version: 1,
        signer: signer.to_string(),
        public_key: hex(key.verifying_key().as_bytes()),
        signed_sha256: hex(&Sha256::digest(signed)),
        signature: hex(&signature.to_bytes()),
    };
    let data = serde_json::to_vec(&embedded)
        .map_err(|e| SignatureError::Unreadable(format!("cannot write the section: {e}")))?;
    let mut payload = Vec::new();
    leb_push(&mut payload, SECTION.len());
    payload.extend_from_slice(SECTION.as_bytes());
    payload.extend_from_slice(&data);
    let mut out = signed.to_vec();
    out.push(0);
    leb_push(&mut out, payload.len());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The public key of a secret key.
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

pub(crate) fn leb_push(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal component: the header and one custom section.
    fn component() -> Vec<u8> {
        let mut c = b"\0asm\x0d\x00\x01\x00".to_vec();
        c.extend_from_slice(&[0, 5, 4, b'n', b'a', b'm', b'e']);
        c
    }

    const SECRET: [u8; 32] = [7; 32];

    #[test]
    fn a_signed_file_verifies_and_names_its_key() {
        let signed = sign(&component(), "site-team", &SECRET).unwrap();
        let v = verify(&signed).unwrap().unwrap();
        assert_eq!(v.claimed_signer, "site-team");
        assert_eq!(v.key, public_key(&SECRET));
        assert_eq!(verify(&component()).unwrap(), None, "unsigned");
        // Signing again replaces the signature, it does not stack.
        let again = sign(&signed, "other", &[9; 32]).unwrap();
        assert_eq!(verify(&again).unwrap().unwrap().claimed_signer, "other");
        assert_eq!(split(&again).unwrap().0, component().as_slice());
    }

    #[test]
    fn any_change_breaks_it() {
        let signed = sign(&component(), "site-team", &SECRET).unwrap();
        // Every byte of the signed part, flipped in turn.
        for i in 0..component().len() {
            let mut t = signed.clone();
            t[i] ^= 0x01;
            assert!(verify(&t).is_err(), "byte {i} flipped still verifies");
        }
        // Bytes added after the signature.
        let mut appended = signed.clone();
        appended.extend_from_slice(&[0, 3, 2, b'x', b'y']);
        assert_eq!(verify(&appended), Err(SignatureError::NotLast));
        // A signature section edited to name another key.
        let text = String::from_utf8_lossy(&signed).replace("site-team", "site-teak");
        assert!(verify(text.as_bytes()).is_err());
    }

    #[test]
    fn hostile_files_are_refused_not_panicked_on() {
        for junk in [
            &b""[..],
            b"\0asm",
            b"\0asm\x0d\x00\x01\x00\x00\xff\xff\xff\xff\xff",
            b"\0asm\x0d\x00\x01\x00\x00\x80\x80\x80\x80\x10",
            b"\0asm\x0d\x00\x01\x00\x00\x05\x09weft",
            b"not wasm at all",
        ] {
            assert!(verify(junk).is_err(), "{junk:?}");
        }
        let mut big = component();
        big.push(0);
        leb_push(&mut big, SECTION.len() + 1 + MAX_SECTION + 1);
        leb_push(&mut big, SECTION.len());
        big.extend_from_slice(SECTION.as_bytes());
        big.extend(std::iter::repeat_n(b' ', MAX_SECTION + 1));
        assert!(matches!(verify(&big), Err(SignatureError::Unreadable(_))));
    }
}
