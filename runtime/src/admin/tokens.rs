//! Admin API tokens: who may call the API, and with which role. The token
//! file (`[admin] tokens`, mode 0600) keeps each token's name, role and
//! SHA-256; the token itself is printed once, when it is made, and is
//! never stored.
//!
//! ```toml
//! [ops]
//! role = "operate"
//! sha256 = "9f2c…"
//! created = "2026-11-30 07:50:12"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do; each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Status, message lists and details without bodies or reasons, plugin
    /// versions.
    Read,
    /// Also message bodies and reasons (patient data).
    Phi,
    /// Also resend, reprocess, purge and reload.
    Operate,
}

impl Role {
    /// Its name in the token file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Phi => "phi",
            Role::Operate => "operate",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "read" => Ok(Role::Read),
            "phi" => Ok(Role::Phi),
            "operate" => Ok(Role::Operate),
            other => Err(format!(
                "{other:?} is not a role (expected read, phi or operate)"
            )),
        }
    }
}

/// One token, as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// When it was made (UTC).
    pub created: String,
}

/// What went wrong with the token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// It could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a token file.
    #[error("{}: not a token file: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        reason: String,
    },
    /// Other users may read or write it.
    #[error("{0}")]
    Open(String),
    /// An operation that cannot be done (a name taken, or unknown).
    #[error("{0}")]
    Refused(String),
}

/// The tokens of a token file, by name.
#[derive(Debug, Clone, Default)]
pub struct TokenFile {
    tokens: BTreeMap<String, Token>,
    by_hash: BTreeMap<[u8; 32], String>,
}

/// The prefix of every token, so a leaked one is easy to recognise (and to
/// search for in logs and repositories).
pub const PREFIX: &str = "weft_";

/// The most tokens a file may hold.
const MAX_TOKENS: usize = 1000;

/// The largest token file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

const HEADER: &str = "# Weft admin API tokens, managed with `weft admin token add|list|revoke`.\n\
# Only each token's SHA-256 is kept here; the token itself was shown once.\n\n";

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Whether `name` can name a token: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl TokenFile {
    /// Reads `path`, refusing a file other users may read or write.
    pub fn load(path: &Path) -> Result<TokenFile, TokenError> {
        crate::private::check(path).map_err(TokenError::Open)?;
        let io = |source| TokenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FILE_BYTES {
            return Err(TokenError::Invalid {
                path: path.to_path_buf(),
                reason: format!("{len} bytes, more than {MAX_FILE_BYTES}"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        TokenFile::parse(&text).map_err(|reason| TokenError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the text of a token file.
    pub fn parse(text: &str) -> Result<TokenFile, String> {
        let tokens: BTreeMap<String, Token> =
            toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        if tokens.len() > MAX_TOKENS {
            return Err(format!("{} tokens, more than {MAX_TOKENS}", tokens.len()));
        }
        let mut file = TokenFile::default();
        for (name, token) in tokens {
            if !valid_name(&name) {
                return Err(format!(
                    "[{name}]: a token name is 1 to 64 letters, digits, '.', '_' or '-'"
                ));
            }
            let hash = unhex(&token.sha256)
                .ok_or_else(|| format!("[{name}] sha256: expected 64 hex digits"))?;
            file.by_hash.insert(hash, name.clone());
            file.tokens.insert(name, token);
        }
        Ok(file)
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let body = toml::to_string(&self.tokens).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Writes it to `path` (0600, atomically; missing directories 0700).
    pub fn save(&self, path: &Path) -> Result<(), TokenError> {
        crate::private::write(path, self.to_text().as_bytes()).map_err(|source| TokenError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Makes a token named `name` with `role`: the token, to show once.
    pub fn add(&mut self, name: &str, role: Role) -> Result<String, TokenError> {
        if !valid_name(name) {
            return Err(TokenError::Refused(format!(
                "{name:?}: a token name is 1 to 64 letters, digits, '.', '_' or '-'"
            )));
        }
        if self.tokens.contains_key(name) {
            return Err(TokenError::Refused(format!(
                "a token named {name} exists (revoke it first)"
            )));
        }
        if self.tokens.len() >= MAX_TOKENS {
            return Err(TokenError::Refused(format!(
                "the file holds {MAX_TOKENS} tokens already"
            )));
        }
        let token = new_token()?;
        let hash = digest(&token);
        self.tokens.insert(
            name.to_string(),
            Token {
                role,
                sha256: crate::plugins::engine::hex(&hash),
                created: crate::journal::time::iso(crate::journal::now_ms()),
            },
        );
        self.by_hash.insert(hash, name.to_string());
        Ok(token)
    }

    /// Removes the token named `name`.
    pub fn revoke(&mut self, name: &str) -> Result<Token, TokenError> {
        let token = self
            .tokens
            .remove(name)
            .ok_or_else(|| TokenError::Refused(format!("no token named {name}")))?;
        self.by_hash.retain(|_, n| n != name);
        Ok(token)
    }

    /// The tokens, by name.
    pub fn tokens(&self) -> &BTreeMap<String, Token> {
        &self.tokens
    }

    /// The name and role of the token `presented`, if it is one.
    pub fn find(&self, presented: &str) -> Option<(&str, Role)> {
        // Looked up by its SHA-256: comparing digests reveals nothing
        // about the token itself, whatever the comparison's timing.
        let name = self.by_hash.get(&digest(presented))?;
        self.tokens.get(name).map(|t| (name.as_str(), t.role))
    }
}

/// A new random token: [`PREFIX`] and 64 hex digits (256 bits).
fn new_token() -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| TokenError::Refused("the system's random source failed".into()))?;
    Ok(format!("{PREFIX}{}", crate::plugins::engine::hex(&bytes)))
}

/// Where the first run puts the token it made: `data_dir/admin.token`.
pub fn local_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.token")
}

/// On a first run (no token file at `tokens`), makes one holding a single
/// `operate` token named `local`, and writes that token to
/// `data_dir/admin.token` (0600) for the command line: the path it wrote,
/// or `None` when the token file exists.
pub fn first_run(tokens: &Path, data_dir: &Path) -> Result<Option<PathBuf>, TokenError> {
    if tokens.exists() {
        return Ok(None);
    }
    let mut file = TokenFile::default();
    let token = file.add("local", Role::Operate)?;
    let local = local_token_path(data_dir);
    crate::private::write(&local, format!("{token}\n").as_bytes()).map_err(|source| {
        TokenError::Io {
            path: local.clone(),
            source,
        }
    })?;
    file.save(tokens)?;
    Ok(Some(local))
}

/// The token file as the admin API sees it: read again whenever the file
/// changes on disk, so `weft admin token add|revoke` takes effect at once.
pub struct TokenStore {
    path: PathBuf,
    cached: Mutex<(Option<Stamp>, Arc<TokenFile>)>,
}

/// What tells one version of the file from another.
type Stamp = (u64, u64, i64, i64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
    }
    #[cfg(not(unix))]
    Some((0, m.len(), 0, 0))
}

impl TokenStore {
    /// Loads `path` (which must exist and be private).
    pub fn open(path: &Path) -> Result<TokenStore, TokenError> {
        let file = TokenFile::load(path)?;
        Ok(TokenStore {
            path: path.to_path_buf(),
            cached: Mutex::new((stamp(path), Arc::new(file))),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tokens as the file holds them now. A file changed into one that
    /// cannot be used (unreadable, invalid, opened to others) holds no
    /// tokens until it is mended: every request is refused, and the reason
    /// is logged.
    pub fn current(&self) -> Arc<TokenFile> {
        let now = stamp(&self.path);
        let Ok(mut cached) = self.cached.lock() else {
            return Arc::new(TokenFile::default());
        };
        if cached.0 != now {
            let file = match TokenFile::load(&self.path) {
                Ok(f) => {
                    tracing::info!(file = %self.path.display(), tokens = f.tokens.len(), "admin tokens read again");
                    f
                }
                Err(e) => {
                    tracing::error!(error = %e, "admin token file unusable: every admin request is refused until it is mended");
                    TokenFile::default()
                }
            };
            *cached = (now, Arc::new(file));
        }
        cached.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_itself_only() {
        let mut f = TokenFile::default();
        let t = f.add("ops", Role::Operate).unwrap();
        assert!(t.starts_with(PREFIX) && t.len() == PREFIX.len() + 64);
        assert_eq!(f.find(&t), Some(("ops", Role::Operate)));
        assert_eq!(f.find(&t[..t.len() - 1]), None);
        assert_eq!(f.find(""), None);
        let text = f.to_text();
        assert!(!text.contains(&t), "the token itself is never stored");
        let back = TokenFile::parse(&text).unwrap();
        assert_eq!(back.find(&t), Some(("ops", Role::Operate)));
    }

    #[test]
    fn names_are_unique_and_revoked_tokens_stop_working() {
        let mut f = TokenFile::default();
        let t = f.add("a", Role::Read).unwrap();
        assert!(f.add("a", Role::Phi).is_err());
        assert!(f.add("bad name", Role::Phi).is_err());
        assert!(f.add("", Role::Phi).is_err());
        f.revoke("a").unwrap();
        assert_eq!(f.find(&t), None);
        assert!(f.revoke("a").is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Read < Role::Phi && Role::Phi < Role::Operate);
        assert_eq!("phi".parse::<Role>(), Ok(Role::Phi));
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn a_broken_file_is_refused_with_its_reason() {
        for (text, want) in [
            (
                "[a]\nrole = \"root\"\nsha256 = \"00\"\ncreated = \"\"\n",
                "role",
            ),
            (
                "[a]\nrole = \"read\"\nsha256 = \"zz\"\ncreated = \"\"\n",
                "sha256",
            ),
            (
                "[a]\nrole = \"read\"\nsha256 = \"\"\ncreated = \"\"\nextra = 1\n",
                "extra",
            ),
            (
                "[\"a b\"]\nrole = \"read\"\nsha256 = \"\"\ncreated = \"\"\n",
                "name",
            ),
        ] {
            let e = TokenFile::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
