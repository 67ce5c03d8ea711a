//! Whose plugins a site runs: the trust list (`[trust] keys`, a TOML file of
//! public keys by name, some perhaps revoked), whether every plugin must be
//! signed (`[trust] require_signed`), and a plugin's pinned signer
//! (`[plugins.NAME] signer`). [`SignaturePolicy::check`] decides, from a
//! file's embedded signature ([`crate::verify`]), whether it may load.
//!
//! Trust goes by the key, never by the name a signature gives itself.
//! Whatever the policy, a signature that does not hold (the file changed
//! after signing) or a revoked key is refused: a plugin claiming a
//! signature it does not have is never run.
//!
//! Key files (`weft plugin keygen`):
//!
//! ```toml
//! # NAME.key, 0600: whoever has it signs plugins in this name
//! name = "site-team"
//! secret_key = "…64 hex digits…"
//! ```
//!
//! and the trust list a site keeps:
//!
//! ```toml
//! [keys.site-team]
//! public_key = "…64 hex digits…"
//!
//! [keys.old-vendor]
//! public_key = "…"
//! revoked = true
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{hex, key_id, keyfile, parse_hex, verify};

/// The largest trust list or key file read.
const MAX_FILE: u64 = 1 << 20;

/// A key the site knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The ed25519 public key.
    pub public_key: [u8; 32],
    /// Revoked: plugins it signed are refused.
    pub revoked: bool,
}

/// The keys a site trusts, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustList {
    /// Where it was read from (`None`: no trust list).
    pub file: Option<PathBuf>,
    /// The keys.
    pub keys: BTreeMap<String, TrustedKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(default)]
    keys: BTreeMap<String, TrustEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustEntry {
    public_key: String,
    #[serde(default)]
    revoked: bool,
}

/// Reads a small text file (a key, a trust list), refusing a large one
/// (reading no more than the cap, whatever the file claims to be).
fn read_small(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_FILE {
        return Err(format!(
            "{}: more than a key file or trust list can be ({MAX_FILE} bytes)",
            path.display()
        ));
    }
    Ok(text)
}

impl TrustList {
    /// Reads the trust list at `path`.
    pub fn load(path: &Path) -> Result<TrustList, String> {
        let text = read_small(path)?;
        let mut list = TrustList::parse(&text, &path.display().to_string())?;
        list.file = Some(path.to_path_buf());
        Ok(list)
    }

    /// Parses trust list text; `name` is the file, for errors.
    pub fn parse(text: &str, name: &str) -> Result<TrustList, String> {
        let file: TrustFile =
            toml::from_str(text).map_err(|e| format!("{name}: {}", e.to_string().trim()))?;
        let mut keys = BTreeMap::new();
        let mut seen: BTreeMap<[u8; 32], String> = BTreeMap::new();
        for (key_name, entry) in file.keys {
            let public_key = parse_hex::<32>(&entry.public_key, "public_key")
                .map_err(|e| format!("{name}: keys.{key_name}.{e}"))?;
            if let Some(other) = seen.insert(public_key, key_name.clone()) {
                return Err(format!(
                    "{name}: keys.{key_name}: the same public key as keys.{other}"
                ));
            }
            keys.insert(
                key_name,
                TrustedKey {
                    public_key,
                    revoked: entry.revoked,
                },
            );
        }
        Ok(TrustList { file: None, keys })
    }

    /// The name and entry of `public_key`, if the list has it.
    pub fn by_key(&self, public_key: &[u8; 32]) -> Option<(&str, &TrustedKey)> {
        self.keys
            .iter()
            .find(|(_, k)| &k.public_key == public_key)
            .map(|(n, k)| (n.as_str(), k))
    }

    /// A digest of the keys and their states: changes when the list does.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (name, k) in &self.keys {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(k.public_key);
            h.update([u8::from(k.revoked)]);
        }
        hex(&h.finalize())
    }

    fn file_name(&self) -> String {
        self.file
            .as_ref()
            .map_or_else(|| "the trust list".into(), |f| f.display().to_string())
    }
}

/// What a plugin's signature must show before it loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// The site's trust list.
    pub trust: Arc<TrustList>,
    /// Every plugin must be signed by a trusted key (`[trust]
    /// require_signed`).
    pub require_signed: bool,
    /// This plugin must be signed by this key of the trust list
    /// (`[plugins.NAME] signer`).
    pub signer: Option<String>,
}

/// Who signed a plugin, as the site sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// No signature (allowed: `require_signed` is off and no signer is
    /// pinned).
    Unsigned,
    /// Signed by a key of the trust list.
    Signed {
        /// The key's name in the trust list.
        signer: String,
        /// The key's short id.
        key_id: String,
    },
    /// Signed, by a key the trust list does not have (allowed only while
    /// nothing requires a trusted signer).
    UnknownKey {
        /// The name the signature gives itself.
        claimed: String,
        /// The key's short id.
        key_id: String,
    },
}

impl Provenance {
    /// The trusted signer's name, if any.
    pub fn signer(&self) -> Option<&str> {
        match self {
            Provenance::Signed { signer, .. } => Some(signer),
            _ => None,
        }
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provenance::Unsigned => f.write_str("unsigned"),
            Provenance::Signed { signer, key_id } => write!(f, "signed by {signer} (key {key_id})"),
            Provenance::UnknownKey { claimed, key_id } => write!(
                f,
                "signed by a key not in the trust list (key {key_id}, calls itself {claimed})"
            ),
        }
    }
}

impl SignaturePolicy {
    /// Whether a plugin file may load under this policy: who signed it, or
    /// why it is refused.
    pub fn check(&self, bytes: &[u8]) -> Result<Provenance, String> {
        let verified = verify(bytes).map_err(|e| format!("bad signature: {e}"))?;
        let Some(v) = verified else {
            return match &self.signer {
                Some(pinned) => Err(format!("unsigned, but its signer must be {pinned}")),
                None if self.require_signed => {
                    Err("unsigned, and [trust] require_signed is on".into())
                }
                None => Ok(Provenance::Unsigned),
            };
        };
        let key_id = key_id(&v.key);
        match self.trust.by_key(&v.key) {
            Some((name, k)) if k.revoked => Err(format!(
                "signed by {name} (key {key_id}), a key revoked in {}",
                self.trust.file_name()
            )),
            Some((name, _)) => match &self.signer {
                Some(pinned) if pinned != name => Err(format!(
                    "signed by {name} (key {key_id}), but its signer must be {pinned}"
                )),
                _ => Ok(Provenance::Signed {
                    signer: name.to_string(),
                    key_id,
                }),
            },
            None if self.require_signed || self.signer.is_some() => Err(format!(
                "signed by a key {} does not have (key {key_id}, calls itself {})",
                self.trust.file_name(),
                v.claimed_signer
            )),
            None => Ok(Provenance::UnknownKey {
                claimed: v.claimed_signer,
                key_id,
            }),
        }
    }

    /// What the policy is, for a plugin's fingerprint: changes when a
    /// decision could.
    pub fn digest(&self) -> String {
        format!(
            "{}:{}:{}",
            self.trust.digest(),
            self.require_signed,
            self.signer.as_deref().unwrap_or("")
        )
    }
}

/// Reads a signing key file (`weft plugin keygen`'s NAME.key): its name
/// and secret.
pub fn read_secret_key(path: &Path) -> Result<(String, [u8; 32]), String> {
    let text = read_small(path)?;
    keyfile::parse_secret(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{public_key, sign};

    fn component() -> Vec<u8> {
        b"\0asm\x0d\x00\x01\x00\x00\x05\x04name".to_vec()
    }

    fn list(entries: &[(&str, [u8; 32], bool)]) -> Arc<TrustList> {
        let text: String = entries
            .iter()
            .map(|(n, secret, revoked)| {
                let mut e = keyfile::trust_entry(n, &public_key(secret));
                if *revoked {
                    e.push_str("revoked = true\n");
                }
                e
            })
            .collect();
        Arc::new(TrustList::parse(&text, "trust.toml").unwrap())
    }

    #[test]
    fn each_case_of_the_policy() {
        let (team, vendor, stranger) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let trust = list(&[("team", team, false), ("vendor", vendor, true)]);
        let open = SignaturePolicy {
            trust: trust.clone(),
            ..Default::default()
        };
        let strict = SignaturePolicy {
            require_signed: true,
            ..open.clone()
        };
        let pinned = SignaturePolicy {
            signer: Some("team".into()),
            ..open.clone()
        };
        let unsigned = component();
        let by = |secret: &[u8; 32], name: &str| sign(&unsigned, name, secret).unwrap();

        assert_eq!(open.check(&unsigned), Ok(Provenance::Unsigned));
        assert!(
            strict
                .check(&unsigned)
                .unwrap_err()
                .contains("require_signed")
        );
        assert!(
            pinned
                .check(&unsigned)
                .unwrap_err()
                .contains("must be team")
        );

        let signed = by(&team, "team");
        for p in [&open, &strict, &pinned] {
            assert_eq!(p.check(&signed).unwrap().signer(), Some("team"));
        }
        // A stranger calling itself team: trust goes by the key.
        let impostor = by(&stranger, "team");
        assert!(matches!(
            open.check(&impostor),
            Ok(Provenance::UnknownKey { .. })
        ));
        assert!(
            strict
                .check(&impostor)
                .unwrap_err()
                .contains("does not have")
        );
        assert!(
            pinned
                .check(&impostor)
                .unwrap_err()
                .contains("does not have")
        );
        // A revoked key is refused under every policy.
        let revoked = by(&vendor, "vendor");
        for p in [&open, &strict, &pinned] {
            assert!(p.check(&revoked).unwrap_err().contains("revoked in"));
        }
        // The wrong trusted signer for a pinned plugin.
        let other = list(&[("team", team, false), ("lab", stranger, false)]);
        let pinned_other = SignaturePolicy {
            trust: other,
            signer: Some("lab".into()),
            ..Default::default()
        };
        assert!(
            pinned_other
                .check(&signed)
                .unwrap_err()
                .contains("must be lab")
        );
        // A tampered file, under the most open policy.
        let mut tampered = signed.clone();
        tampered[9] ^= 1;
        assert!(
            open.check(&tampered)
                .unwrap_err()
                .starts_with("bad signature")
        );
    }

    #[test]
    fn trust_lists_and_key_files_are_checked() {
        let e = TrustList::parse("[keys.a]\npublic_key = \"12\"\n", "trust.toml").unwrap_err();
        assert!(
            e.contains("trust.toml") && e.contains("keys.a.public_key"),
            "{e}"
        );
        let e = TrustList::parse("[keys.a]\npublic = \"12\"\n", "trust.toml").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let k = keyfile::trust_entry("a", &[5; 32]);
        let twice = format!("{k}{}", k.replace("\"a\"", "\"b\""));
        assert!(
            TrustList::parse(&twice, "t")
                .unwrap_err()
                .contains("same public key")
        );

        let dir = tempfile::tempdir().unwrap();
        // A file past the cap is refused before it is read.
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; (MAX_FILE + 1) as usize]).unwrap();
        assert!(TrustList::load(&big).unwrap_err().contains("more than"));
        let path = dir.path().join("team.key");
        std::fs::write(&path, keyfile::secret_text("site \"team\"", &[8; 32])).unwrap();
        assert_eq!(
            read_secret_key(&path).unwrap(),
            ("site \"team\"".to_string(), [8; 32])
        );
    }
}
