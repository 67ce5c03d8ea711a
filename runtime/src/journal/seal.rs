//! Sealing patient data at rest: the journal's key file, the AEAD cipher
//! that seals bodies and reasons (ChaCha20-Poly1305 from `ring`, already
//! in the tree through rustls), the stored forms of sealed bytes and
//! text, and the keyed hash that keeps patient identifiers searchable.
//!
//! A sealed value is `MAGIC ‖ key id (8) ‖ nonce (12) ‖ ciphertext ‖ tag
//! (16)`: it names the key that sealed it, so a journal holds values of
//! several keys while a rotation is under way, and values written before
//! a key was set (plaintext) are told apart and read as they are. Text
//! columns (reasons) hold `weft-sealed:` and the same bytes in base64.
//! Each value is sealed with associated data naming the row it belongs to
//! (the message id), so a value copied to another row does not open.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes in a key.
pub const KEY_LEN: usize = 32;
/// The first bytes of every sealed value (a NUL first: no HL7, JSON or
/// text message starts so).
const MAGIC: &[u8; 4] = b"\0WS1";
/// Bytes of a key's id.
const ID_LEN: usize = 8;
/// Bytes before the ciphertext.
const HEADER: usize = MAGIC.len() + ID_LEN + NONCE_LEN;
/// Bytes of the authentication tag.
const TAG: usize = 16;
/// The start of a sealed reason (text column).
pub const TEXT_PREFIX: &str = "weft-sealed:";
/// The start of a hashed patient identifier or ordering key.
const HASH_PREFIX: &str = "k1:";

/// A key, or a sealed value, that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key file cannot be read or is not a key.
    #[error("encryption key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A value sealed by a key this process was not given.
    #[error("sealed by key {key_id}, which this weft was not given")]
    UnknownKey {
        /// The id of the key that sealed it.
        key_id: String,
    },
    /// A value that cannot be sealed (the write is refused).
    #[error("cannot seal: {0}")]
    Seal(&'static str),
    /// A value that does not open: damaged, or moved from another row.
    #[error("a sealed value does not open with its key (damaged, or moved from another row)")]
    Damaged,
}

/// One journal key: what seals, and its id.
pub struct JournalKey {
    id: [u8; ID_LEN],
    seal: [u8; 32],
    aead: LessSafeKey,
    path: PathBuf,
}

impl Clone for JournalKey {
    fn clone(&self) -> JournalKey {
        JournalKey::from_seal(self.id, self.seal, &self.path)
    }
}

impl Drop for JournalKey {
    fn drop(&mut self) {
        self.seal.fill(0);
    }
}

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalKey")
            .field("id", &self.id())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A subkey of `master` for one use (HMAC-SHA256 of the use's name).
fn derive(master: &[u8; KEY_LEN], purpose: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, master), purpose);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

impl JournalKey {
    /// Reads the key file at `path`: 64 hex digits (and a line end), a
    /// file no other user may read (or a systemd credential, whose access
    /// is systemd's). Errors name the file.
    pub fn load(path: &Path) -> Result<JournalKey, SealError> {
        let err = |reason: String| SealError::Key {
            path: path.display().to_string(),
            reason,
        };
        let credential = weft_config::systemd_credential(path);
        if !credential {
            crate::private::check(path).map_err(|e| {
                err(e
                    .strip_prefix(&format!("{} ", path.display()))
                    .unwrap_or(&e)
                    .to_string())
            })?;
        }
        let meta = std::fs::metadata(path).map_err(|e| {
            err(if credential {
                format!(
                    "{e}: a systemd credential, there only for the service that loads it \
                     (LoadCredentialEncrypted= in its unit)"
                )
            } else {
                e.to_string()
            })
        })?;
        if meta.len() > 1024 {
            return Err(err(format!("{} bytes: not a key file", meta.len())));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let bytes = weft_signature::parse_hex::<KEY_LEN>(&text, "the key")
            .map_err(|e| err(format!("{e} (`weft key generate` writes one)")))?;
        Ok(JournalKey::from_bytes(&bytes, path))
    }

    /// The key of these bytes, read from `path`.
    pub fn from_bytes(master: &[u8; KEY_LEN], path: &Path) -> JournalKey {
        let seal = derive(master, b"weft journal seal v1");
        let id_tag = derive(master, b"weft journal key id v1");
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&id_tag[..ID_LEN]);
        JournalKey::from_seal(id, seal, path)
    }

    fn from_seal(id: [u8; ID_LEN], seal: [u8; 32], path: &Path) -> JournalKey {
        // A 32-byte key is what CHACHA20_POLY1305 takes: cannot fail.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &seal)
            .unwrap_or_else(|_| unreachable!("a 32-byte ChaCha20-Poly1305 key"));
        JournalKey {
            id,
            seal,
            aead: LessSafeKey::new(unbound),
            path: path.to_path_buf(),
        }
    }

    /// Its id (16 hex digits): stored with every value it seals, and in
    /// the journal, which refuses another key. Not secret.
    pub fn id(&self) -> String {
        weft_signature::hex(&self.id)
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes a new random key to `path` (which must not exist), 0600: its id.
pub fn generate(path: &Path) -> Result<String, SealError> {
    use std::io::Write;
    let err = |reason: String| SealError::Key {
        path: path.display().to_string(),
        reason,
    };
    let mut master = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut master)
        .map_err(|_| err("the system's random source failed".into()))?;
    let mut file = crate::private::create_file(path).map_err(|e| err(e.to_string()))?;
    let text = format!("{}\n", weft_signature::hex(&master));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| err(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::private::sync_dir(dir).map_err(|e| err(e.to_string()))?;
    }
    let id = JournalKey::from_bytes(&master, path).id();
    master.fill(0);
    Ok(id)
}

/// The keys a journal is sealed with: the active one seals, it and the
/// previous ones (a rotation under way) open.
#[derive(Debug)]
pub struct Keyring {
    active: JournalKey,
    previous: Vec<JournalKey>,
    rng: SystemRandom,
}

impl Keyring {
    /// A keyring sealing with `active`, opening with it and `previous`.
    pub fn new(active: JournalKey, previous: Vec<JournalKey>) -> Keyring {
        Keyring {
            active,
            previous,
            rng: SystemRandom::new(),
        }
    }

    /// The key that seals.
    pub fn active(&self) -> &JournalKey {
        &self.active
    }

    /// The keys that only open (being rotated away from).
    pub fn previous(&self) -> &[JournalKey] {
        &self.previous
    }

    fn key(&self, id: &[u8]) -> Option<&JournalKey> {
        std::iter::once(&self.active)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }

    /// `plain` sealed with the active key, bound to `aad` (the row). Fails
    /// only if the system's random source does (a nonce reused would be
    /// worse than a write refused) or past ChaCha20's 256 GiB per value.
    pub fn seal(&self, aad: &str, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| SealError::Seal("the system's random source failed"))?;
        // Header, then the plaintext sealed in place after it: one copy.
        let mut out = Vec::with_capacity(HEADER + plain.len() + TAG);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.active.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .active
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut out[HEADER..],
            )
            .map_err(|_| SealError::Seal("a value too large to seal"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// The plaintext of `stored`: opened if sealed (with the key it
    /// names, bound to `aad`), as it is if it was written before a key was
    /// set.
    pub fn open<'a>(&self, aad: &str, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, SealError> {
        let Some(id) = sealed_by(stored) else {
            return Ok(Cow::Borrowed(stored));
        };
        if stored.len() < HEADER + TAG {
            return Err(SealError::Damaged);
        }
        let key = self.key(id).ok_or_else(|| SealError::UnknownKey {
            key_id: weft_signature::hex(id),
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&stored[MAGIC.len() + ID_LEN..HEADER]);
        let mut body = stored[HEADER..].to_vec();
        let plain = key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut body,
            )
            .map_err(|_| SealError::Damaged)?;
        let n = plain.len();
        body.truncate(n);
        Ok(Cow::Owned(body))
    }

    /// `plain` sealed into the text form (for a text column).
    pub fn seal_text(&self, aad: &str, plain: &str) -> Result<String, SealError> {
        let sealed = self.seal(aad, plain.as_bytes())?;
        Ok(format!(
            "{TEXT_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        ))
    }

    /// The plaintext of a text column's value (see [`Keyring::open`]).
    pub fn open_text(&self, aad: &str, stored: &str) -> Result<String, SealError> {
        let Some(b64) = stored.strip_prefix(TEXT_PREFIX) else {
            return Ok(stored.to_string());
        };
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SealError::Damaged)?;
        if sealed_by(&sealed).is_none() {
            return Err(SealError::Damaged);
        }
        let plain = self.open(aad, &sealed)?;
        String::from_utf8(plain.into_owned()).map_err(|_| SealError::Damaged)
    }

    /// How every value the active key sealed starts: in a bytes column
    /// and in a text column (what a rotation looks for the absence of).
    pub fn active_prefixes(&self) -> (Vec<u8>, String) {
        let mut bin = MAGIC.to_vec();
        bin.extend_from_slice(&self.active.id);
        // 12 bytes: exactly 16 base64 digits, no padding, so every text
        // value of this key starts with the same 28 characters.
        let text = format!(
            "{TEXT_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(&bin)
        );
        (bin, text)
    }
}

/// The id of the key that sealed `stored` (`None`: not sealed).
fn sealed_by(stored: &[u8]) -> Option<&[u8]> {
    stored
        .strip_prefix(MAGIC.as_slice())
        .and_then(|rest| rest.get(..ID_LEN))
}

/// Whether `stored` is a sealed value (bytes column).
pub fn is_sealed(stored: &[u8]) -> bool {
    sealed_by(stored).is_some()
}

/// Whether `stored` is a sealed value (text column).
pub fn is_sealed_text(stored: &str) -> bool {
    stored.starts_with(TEXT_PREFIX)
}

/// The keyed hash of patient identifiers and ordering keys: equal values
/// hash equal (search and per-patient order work), and without the key a
/// short identifier such as an MRN cannot be found by trying them all.
/// Its key is random, made once per journal, and kept in the journal
/// sealed with the journal key (a rotation seals it again, unchanged, so
/// the hashes already stored stay valid).
pub struct Index {
    key: hmac::Key,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Index")
    }
}

impl Index {
    /// A new random index key: it and its bytes (to be kept sealed).
    pub fn generate() -> Result<(Index, [u8; KEY_LEN]), SealError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealError::Key {
                path: "the index key".into(),
                reason: "the system's random source failed".into(),
            })?;
        Ok((Index::from_bytes(&bytes), bytes))
    }

    /// The index of these key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Index {
        Index {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// The stored form of `value`: `k1:` and 32 hex digits (128 bits of
    /// HMAC-SHA256).
    pub fn hash(&self, value: &str) -> String {
        let tag = hmac::sign(&self.key, value.as_bytes());
        format!("{HASH_PREFIX}{}", weft_signature::hex(&tag.as_ref()[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> JournalKey {
        JournalKey::from_bytes(&[byte; KEY_LEN], Path::new("k"))
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_row() {
        let ring = Keyring::new(key(1), vec![]);
        let sealed = ring.seal("m:1", b"PID|1||12345^^^H^MR||Doe^Jane").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(3).any(|w| w == b"Doe"));
        assert_eq!(
            ring.open("m:1", &sealed).unwrap().as_ref(),
            b"PID|1||12345^^^H^MR||Doe^Jane"
        );
        assert_eq!(ring.open("m:2", &sealed), Err(SealError::Damaged));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(ring.open("m:1", &flipped), Err(SealError::Damaged));
        assert_eq!(
            ring.open("m:1", &sealed[..HEADER + 3]),
            Err(SealError::Damaged)
        );
        let other = Keyring::new(key(2), vec![]);
        assert!(matches!(
            other.open("m:1", &sealed),
            Err(SealError::UnknownKey { .. })
        ));
        // Two seals of one value differ (fresh nonce each).
        assert_ne!(
            ring.seal("m:1", b"x").unwrap(),
            ring.seal("m:1", b"x").unwrap()
        );
    }

    #[test]
    fn plaintext_from_before_the_key_reads_as_it_is() {
        let ring = Keyring::new(key(1), vec![]);
        assert_eq!(
            ring.open("m:1", b"MSH|^~\\&|").unwrap().as_ref(),
            b"MSH|^~\\&|"
        );
        assert_eq!(
            ring.open_text("e:1", "PID-3 missing").unwrap(),
            "PID-3 missing"
        );
    }

    #[test]
    fn text_seals_and_a_rotation_opens_both_keys() {
        let old = Keyring::new(key(1), vec![]);
        let sealed = old.seal_text("e:1", "rejected: PID-7 not a date").unwrap();
        assert!(is_sealed_text(&sealed));
        assert!(sealed.starts_with(&old.active_prefixes().1));
        let rotating = Keyring::new(key(2), vec![key(1)]);
        assert_eq!(
            rotating.open_text("e:1", &sealed).unwrap(),
            "rejected: PID-7 not a date"
        );
        assert!(!sealed.starts_with(&rotating.active_prefixes().1));
        let resealed = rotating.seal_text("e:1", "x").unwrap();
        assert!(resealed.starts_with(&rotating.active_prefixes().1));
        assert!(old.open_text("e:1", &format!("{TEXT_PREFIX}!!")).is_err());
    }

    #[test]
    fn key_files_are_made_private_and_checked() {
        let dir = std::env::temp_dir().join(format!("weft-seal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.key");
        let id = generate(&path).unwrap();
        assert_eq!(JournalKey::load(&path).unwrap().id(), id);
        assert!(generate(&path).is_err(), "never over an existing key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = JournalKey::load(&path).unwrap_err().to_string();
        assert!(e.contains("journal.key") && e.contains("chmod 600"), "{e}");
        let bad = dir.join("bad.key");
        std::fs::write(&bad, "not hex\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = JournalKey::load(&bad).unwrap_err().to_string();
        assert!(
            e.contains("bad.key") && e.contains("weft key generate"),
            "{e}"
        );
        // Past the size cap: not read at all.
        let big = dir.join("big.key");
        std::fs::write(&big, "a".repeat(2048)).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = JournalKey::load(&big).unwrap_err().to_string();
        assert!(e.contains("big.key") && e.contains("not a key file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_index_hashes_equal_values_equal() {
        let (index, bytes) = Index::generate().unwrap();
        let again = Index::from_bytes(&bytes);
        assert_eq!(index.hash("12345"), again.hash("12345"));
        assert_ne!(index.hash("12345"), index.hash("12346"));
        assert!(!index.hash("12345").contains("12345"));
    }
}
