//! The two small TOML files of a signing key, as `weft plugin keygen`
//! writes them and the build's signing step reads them:
//!
//! ```toml
//! # NAME.key, 0600: whoever has it signs plugins in this name
//! name = "site-team"
//! secret_key = "…64 hex digits…"
//! ```
//!
//! and `NAME.pub`, the key's trust list entry (itself a trust list of one
//! key):
//!
//! ```toml
//! [keys.site-team]
//! public_key = "…64 hex digits…"
//! ```

use serde::Deserialize;

use crate::{hex, parse_hex};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    name: String,
    secret_key: String,
}

/// Parses a signing key file's text: the signer's name and the secret key.
/// Errors name the key, never the secret.
pub fn parse_secret(text: &str) -> Result<(String, [u8; 32]), String> {
    let file: SecretFile = toml::from_str(text).map_err(|e| {
        // toml's message quotes the offending line: keep only its first
        // line (where and what), not a secret it might show.
        e.message().to_string()
    })?;
    let secret = parse_hex::<32>(&file.secret_key, "secret_key")?;
    Ok((file.name, secret))
}

/// A new secret key from the operating system's random source.
pub fn generate_secret() -> Result<[u8; 32], String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("the system's random source failed: {e}"))?;
    Ok(secret)
}

/// A signing key file's text.
pub fn secret_text(name: &str, secret: &[u8; 32]) -> String {
    format!(
        "# A Weft plugin signing key. Keep it secret: whoever has it signs plugins in its name.\n\
         name = {}\nsecret_key = \"{}\"\n",
        toml_string(name),
        hex(secret)
    )
}

/// The trust list entry for a key (what `NAME.pub` holds), to add to a
/// site's trust list.
pub fn trust_entry(name: &str, public_key: &[u8; 32]) -> String {
    format!(
        "[keys.{}]\npublic_key = \"{}\"\n",
        toml_string(name),
        hex(public_key)
    )
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ() {
        assert_ne!(generate_secret().unwrap(), generate_secret().unwrap());
    }

    #[test]
    fn a_key_file_reads_back_and_errors_do_not_show_the_secret() {
        let text = secret_text("site \"team\"", &[8; 32]);
        assert_eq!(
            parse_secret(&text).unwrap(),
            ("site \"team\"".into(), [8; 32])
        );
        let bad = text.replace("secret_key", "secret");
        let e = parse_secret(&bad).unwrap_err();
        assert!(!e.contains(&hex(&[8; 32])), "{e}");
        assert!(e.contains("secret"), "{e}");
        let short = secret_text("a", &[8; 32]).replace("0808\"", "\"");
        assert!(parse_secret(&short).unwrap_err().contains("secret_key"));
    }
}
