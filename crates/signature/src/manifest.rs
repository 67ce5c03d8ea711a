//! A plugin's manifest (the custom section `weft-manifest`, JSON, which
//! the SDK's `manifest!` writes into the plugin's core module) and the
//! component's import and export names: what an operator reviews before
//! turning a plugin on, read without compiling or running any of it.
//!
//! The manifest sits before the signature section, so a signature covers
//! it: a signed plugin's declarations cannot be edited without breaking
//! the signature.

use serde::{Deserialize, Serialize};
use wasmparser::{Parser, Payload};

/// The custom section's name.
pub const SECTION: &str = "weft-manifest";

/// The longest manifest read (a typical one is about 300 bytes).
const MAX_SECTION: usize = 64 * 1024;
/// The most entries in one of its lists.
const MAX_ITEMS: usize = 1024;
/// The longest entry.
const MAX_ITEM_LEN: usize = 256;

/// What a plugin declares about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The format, 1.
    pub format: u32,
    /// The plugin's name (its crate name).
    pub name: String,
    /// Its version (its crate version).
    pub version: String,
    /// The `weft:plugin` contract version it was built against.
    pub contract: String,
    /// What it maps, for people (`ADT^A01..A40`).
    #[serde(default)]
    pub maps: Vec<String>,
    /// Lookup tables it needs.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Lookup tables it reads when granted.
    #[serde(default)]
    pub optional_tables: Vec<String>,
    /// Settings (`config` keys) it reads.
    #[serde(default)]
    pub config: Vec<String>,
    /// The limits it needs.
    #[serde(default)]
    pub limits: Limits,
}

/// The limits a plugin says it needs (0: no claim).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory, MiB.
    #[serde(default)]
    pub memory_mib: u32,
    /// Time per message, milliseconds.
    #[serde(default)]
    pub deadline_ms: u32,
}

/// Why a component's manifest or names cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not a WebAssembly binary the parser can walk.
    #[error("not a well-formed WebAssembly file: {0}")]
    Malformed(String),
    /// More than one manifest.
    #[error("more than one {SECTION} section")]
    Several,
    /// The manifest does not parse or breaks a cap.
    #[error("the {SECTION} section cannot be read: {0}")]
    Unreadable(String),
}

/// What [`read`] finds in a component.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComponentInfo {
    /// Its manifest, if it has one.
    pub manifest: Option<Manifest>,
    /// The names the component imports (`weft:plugin/host@0.1.0`).
    pub imports: Vec<String>,
    /// The names it exports (`weft:plugin/transform@0.1.0`).
    pub exports: Vec<String>,
}

/// Reads a component's manifest (in the component or any module or
/// component nested in it) and its own import and export names.
pub fn read(bytes: &[u8]) -> Result<ComponentInfo, ManifestError> {
    let mut info = ComponentInfo::default();
    let mut manifests: Vec<&[u8]> = Vec::new();
    // 1 while in the outer component; more inside nested ones.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ManifestError::Malformed(e.message().to_string()))?;
        match payload {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(c) if c.name() == SECTION => manifests.push(c.data()),
            Payload::ComponentImportSection(s) if depth == 1 => {
                for import in s {
                    let import =
                        import.map_err(|e| ManifestError::Malformed(e.message().to_string()))?;
                    info.imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(s) if depth == 1 => {
                for export in s {
                    let export =
                        export.map_err(|e| ManifestError::Malformed(e.message().to_string()))?;
                    info.exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    info.manifest = match manifests.as_slice() {
        [] => None,
        [one] => Some(parse(one)?),
        _ => return Err(ManifestError::Several),
    };
    Ok(info)
}

/// Parses a manifest section's data, holding it to the caps.
pub fn parse(data: &[u8]) -> Result<Manifest, ManifestError> {
    let bad = |why: String| ManifestError::Unreadable(why);
    if data.len() > MAX_SECTION {
        return Err(bad(format!(
            "{} bytes, more than {MAX_SECTION}",
            data.len()
        )));
    }
    let m: Manifest = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
    if m.format != 1 {
        return Err(bad(format!(
            "format {} (this runtime reads format 1)",
            m.format
        )));
    }
    let lists = [
        ("maps", &m.maps),
        ("tables", &m.tables),
        ("optional_tables", &m.optional_tables),
        ("config", &m.config),
    ];
    for (what, list) in lists {
        if list.len() > MAX_ITEMS {
            return Err(bad(format!(
                "{what}: {} entries, more than {MAX_ITEMS}",
                list.len()
            )));
        }
        if let Some(long) = list.iter().find(|s| s.len() > MAX_ITEM_LEN) {
            return Err(bad(format!(
                "{what}: an entry of {} bytes, more than {MAX_ITEM_LEN}",
                long.len()
            )));
        }
    }
    for (what, text) in [
        ("name", &m.name),
        ("version", &m.version),
        ("contract", &m.contract),
    ] {
        if text.is_empty() || text.len() > MAX_ITEM_LEN || text.chars().any(char::is_control) {
            return Err(bad(format!(
                "{what}: empty, longer than {MAX_ITEM_LEN} bytes, or with control characters"
            )));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one custom section.
    fn module_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut m = b"\0asm\x01\x00\x00\x00".to_vec();
        let mut payload = vec![name.len() as u8];
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(data);
        m.push(0);
        crate::leb_push(&mut m, payload.len());
        m.extend_from_slice(&payload);
        m
    }

    /// A component holding `module` as its core module section.
    fn component_of(module: &[u8]) -> Vec<u8> {
        let mut c = b"\0asm\x0d\x00\x01\x00".to_vec();
        c.push(1);
        crate::leb_push(&mut c, module.len());
        c.extend_from_slice(module);
        c
    }

    const JSON: &str = r#"{"format":1,"name":"p","version":"1.0.0","contract":"0.1.0","tables":["gender"],"limits":{"memory_mib":8}}"#;

    #[test]
    fn finds_the_manifest_in_a_nested_module() {
        let c = component_of(&module_with(SECTION, JSON.as_bytes()));
        let m = read(&c).unwrap().manifest.unwrap();
        assert_eq!(m.name, "p");
        assert_eq!(m.tables, ["gender"]);
        assert_eq!(m.limits.memory_mib, 8);
        assert_eq!(m.limits.deadline_ms, 0);
        assert!(m.config.is_empty());
        // None at all, and one signed over: still read.
        assert_eq!(
            read(&component_of(&module_with("other", b"x")))
                .unwrap()
                .manifest,
            None
        );
        let signed = crate::sign(&c, "team", &[3; 32]).unwrap();
        assert_eq!(read(&signed).unwrap().manifest.unwrap().name, "p");
    }

    #[test]
    fn hostile_manifests_are_refused() {
        let two = {
            let mut m = module_with(SECTION, JSON.as_bytes());
            let again = module_with(SECTION, JSON.as_bytes());
            m.extend_from_slice(&again[8..]);
            component_of(&m)
        };
        assert_eq!(read(&two), Err(ManifestError::Several));
        for bad in [
            JSON.replace("\"format\":1", "\"format\":2"),
            JSON.replace("\"name\":\"p\"", "\"name\":\"\""),
            JSON.replace("\"name\":\"p\"", "\"name\":\"a\\nb\""),
            JSON.replace(
                "\"gender\"",
                &format!("\"{}\"", "x".repeat(MAX_ITEM_LEN + 1)),
            ),
            JSON.replace(
                "[\"gender\"]",
                &format!("[{}\"x\"]", "\"x\",".repeat(MAX_ITEMS)),
            ),
            JSON.replace("\"format\"", "\"formt\""),
            "{".to_string(),
        ] {
            let c = component_of(&module_with(SECTION, bad.as_bytes()));
            assert!(
                matches!(read(&c), Err(ManifestError::Unreadable(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse(&vec![b' '; MAX_SECTION + 1]),
            Err(ManifestError::Unreadable(_))
        ));
        for junk in [
            &b""[..],
            b"\0asm",
            b"\0asm\x0d\x00\x01\x00\x01\x7f",
            b"not wasm",
        ] {
            assert!(read(junk).is_err(), "{junk:?}");
        }
    }
}
