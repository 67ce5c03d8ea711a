//! What a plugin declares about itself, embedded in its component as the
//! custom section `weft-manifest` (JSON) by [`manifest!`](crate::manifest):
//! its name and version, the contract it was built against, what it maps,
//! the lookup tables and settings it reads, and the limits it needs. The
//! runtime checks it against what the site grants; `weft plugin inspect`
//! prints it; the plugin's signature covers it.
//!
//! The JSON is written at compile time (`const fn`), so declaring a
//! manifest costs the plugin nothing at run time.

/// The custom section's name.
pub const SECTION: &str = "weft-manifest";

/// The manifest's format version.
pub const FORMAT: u32 = 1;

/// A plugin's declaration. Build it with [`manifest!`](crate::manifest),
/// which fills in the name and version from the crate's `Cargo.toml` and
/// the contract version from the SDK.
#[derive(Debug, Clone, Copy)]
pub struct Manifest {
    /// The plugin's name (its crate name).
    pub name: &'static str,
    /// Its version (its crate version).
    pub version: &'static str,
    /// The `weft:plugin` contract version it was built against.
    pub contract: &'static str,
    /// What it maps, for people: message types (`ADT^A01`), ranges
    /// (`ADT^A01..A40`), or content types.
    pub maps: &'static [&'static str],
    /// Lookup tables it needs: a site that does not grant one gets a
    /// warning (or, with `strict_grants`, a refusal).
    pub tables: &'static [&'static str],
    /// Lookup tables it reads when granted and does without otherwise.
    /// `"*"`: any table the site grants (a plugin whose settings name the
    /// tables it reads).
    pub optional_tables: &'static [&'static str],
    /// Settings (`config` keys) it reads. A site that sets a key not listed
    /// here gets a warning: usually a misspelt key.
    pub config: &'static [&'static str],
    /// Linear memory it needs, in MiB (0: no claim).
    pub memory_mib: u32,
    /// Time it needs per message, in milliseconds (0: no claim).
    pub deadline_ms: u32,
}

impl Manifest {
    /// A manifest with `name` and `version` and nothing declared.
    pub const fn new(name: &'static str, version: &'static str) -> Manifest {
        Manifest {
            name,
            version,
            contract: crate::WIT_VERSION,
            maps: &[],
            tables: &[],
            optional_tables: &[],
            config: &[],
            memory_mib: 0,
            deadline_ms: 0,
        }
    }

    /// The length of [`encode`](Self::encode)'s JSON.
    pub const fn encoded_len(&self) -> usize {
        self.write(&mut [])
    }

    /// The manifest as JSON, `N` bytes long (`N` =
    /// [`encoded_len`](Self::encoded_len)).
    pub const fn encode<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = self.write(&mut out);
        assert!(n == N, "encode::<N> needs N == encoded_len()");
        out
    }

    /// Writes the JSON into `out` as far as it fits; returns its full length.
    const fn write(&self, out: &mut [u8]) -> usize {
        let mut at = raw(out, 0, "{\"format\":");
        at = number(out, at, FORMAT);
        at = raw(out, at, ",\"name\":");
        at = string(out, at, self.name);
        at = raw(out, at, ",\"version\":");
        at = string(out, at, self.version);
        at = raw(out, at, ",\"contract\":");
        at = string(out, at, self.contract);
        at = raw(out, at, ",\"maps\":");
        at = list(out, at, self.maps);
        at = raw(out, at, ",\"tables\":");
        at = list(out, at, self.tables);
        at = raw(out, at, ",\"optional_tables\":");
        at = list(out, at, self.optional_tables);
        at = raw(out, at, ",\"config\":");
        at = list(out, at, self.config);
        at = raw(out, at, ",\"limits\":{\"memory_mib\":");
        at = number(out, at, self.memory_mib);
        at = raw(out, at, ",\"deadline_ms\":");
        at = number(out, at, self.deadline_ms);
        raw(out, at, "}}")
    }
}

/// Puts `b` at `at` if it fits; the next position either way.
const fn put(out: &mut [u8], at: usize, b: u8) -> usize {
    if at < out.len() {
        out[at] = b;
    }
    at + 1
}

const fn raw(out: &mut [u8], mut at: usize, text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        at = put(out, at, bytes[i]);
        i += 1;
    }
    at
}

/// `text` as a JSON string: quotes, backslashes and control characters
/// escaped; everything else (UTF-8 included) as is.
const fn string(out: &mut [u8], mut at: usize, text: &str) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    at = put(out, at, b'"');
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' || b == b'\\' {
            at = put(out, at, b'\\');
            at = put(out, at, b);
        } else if b < 0x20 {
            at = raw(out, at, "\\u00");
            at = put(out, at, HEX[(b >> 4) as usize]);
            at = put(out, at, HEX[(b & 0xf) as usize]);
        } else {
            at = put(out, at, b);
        }
        i += 1;
    }
    put(out, at, b'"')
}

const fn list(out: &mut [u8], mut at: usize, items: &[&str]) -> usize {
    at = put(out, at, b'[');
    let mut i = 0;
    while i < items.len() {
        if i > 0 {
            at = put(out, at, b',');
        }
        at = string(out, at, items[i]);
        i += 1;
    }
    put(out, at, b']')
}

const fn number(out: &mut [u8], mut at: usize, n: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut rest = n;
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    while len > 0 {
        len -= 1;
        at = put(out, at, digits[len]);
    }
    at
}

/// Declares the plugin's [`Manifest`] and embeds it in the component as the
/// custom section `weft-manifest`. Call it once, beside
/// [`export!`](crate::export); every field but `name`, `version` and
/// `contract` (taken from `Cargo.toml` and the SDK) is optional:
///
/// ```
/// weft_sdk::manifest! {
///     maps: &["ADT^A01..A40"],
///     tables: &["gender"],
///     optional_tables: &["assigning_authority"],
///     config: &["default_utc_offset"],
///     memory_mib: 64,
///     deadline_ms: 100,
/// }
/// ```
///
/// It also defines `pub const MANIFEST: weft_sdk::Manifest` in the crate,
/// for the crate's own tests.
#[macro_export]
macro_rules! manifest {
    ($($field:ident : $value:expr),* $(,)?) => {
        /// What this plugin declares about itself (embedded in its
        /// component as the `weft-manifest` section).
        pub const MANIFEST: $crate::Manifest = $crate::Manifest {
            $($field: $value,)*
            ..$crate::Manifest::new(
                ::core::env!("CARGO_PKG_NAME"),
                ::core::env!("CARGO_PKG_VERSION"),
            )
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const LEN: usize = MANIFEST.encoded_len();
            #[used]
            #[unsafe(link_section = "weft-manifest")]
            static SECTION: [u8; LEN] = MANIFEST.encode::<LEN>();
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_is_valid_and_escaped() {
        const M: Manifest = Manifest {
            maps: &["ADT^A01..A40", "say \"hi\"\\\n"],
            tables: &["gender"],
            config: &[],
            memory_mib: 64,
            deadline_ms: 4_000_000_000,
            ..Manifest::new("adt-to-fhir", "1.2.3")
        };
        const LEN: usize = M.encoded_len();
        const BYTES: [u8; LEN] = M.encode::<LEN>();
        let v: serde_json::Value = serde_json::from_slice(&BYTES).unwrap();
        assert_eq!(v["format"], 1);
        assert_eq!(v["name"], "adt-to-fhir");
        assert_eq!(v["version"], "1.2.3");
        assert_eq!(v["contract"], crate::WIT_VERSION);
        assert_eq!(v["maps"][1], "say \"hi\"\\\n");
        assert_eq!(v["tables"][0], "gender");
        assert_eq!(v["config"], serde_json::json!([]));
        assert_eq!(v["limits"]["memory_mib"], 64);
        assert_eq!(v["limits"]["deadline_ms"], 4_000_000_000u32);
        let zero = Manifest::new("a", "0");
        let mut buf = [0u8; 256];
        let n = zero.write(&mut buf);
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(v["limits"]["deadline_ms"], 0);
    }
}
