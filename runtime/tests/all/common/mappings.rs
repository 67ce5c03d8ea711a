//! The shipped mapping plugins (HL7 v2 → FHIR, and FHIR → HL7 v2), loaded into the real
//! sandbox with the shipped lookup tables: shared by the corpus test and
//! the mapping benchmark.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use weft::plugins::{Plugin, PluginEngine, PluginSpec};

/// Each mapping plugin and the message types (MSH-9, `*` for any trigger)
/// it is routed in the default configuration.
pub const MAPPINGS: &[(&str, &[&str])] = &[
    ("adt-to-fhir", &["ADT^*"]),
    ("oru-to-fhir", &["ORU^R01", "OUL^R22", "OUL^R23", "OUL^R24"]),
    (
        "order-to-fhir",
        &["ORM^O01", "OML^O21", "REF^I12", "REF^I13", "REF^I14"],
    ),
    ("siu-to-fhir", &["SIU^*"]),
    ("vxu-to-fhir", &["VXU^V04"]),
    (
        "pharmacy-to-fhir",
        &["RDE^O11", "RDE^O25", "RDS^O13", "RAS^O17"],
    ),
    ("mdm-to-fhir", &["MDM^*"]),
    ("billing-to-fhir", &["BAR^*", "DFT^*"]),
];

/// The plugins of the way back, FHIR to HL7 v2 (routed by resourceType,
/// never by MSH-9): not in [`MAPPINGS`], which the HL7 v2 corpus runs.
pub const WAY_BACK: &[&str] = &["fhir-to-v2"];

/// The plugin a message type is routed to, if any.
pub fn plugin_for(message_type: &str) -> Option<&'static str> {
    let code = message_type.split('^').next().unwrap_or_default();
    MAPPINGS.iter().find_map(|(name, types)| {
        types
            .iter()
            .any(|t| {
                *t == message_type
                    || (t.ends_with("^*") && t.starts_with(code) && t.len() == code.len() + 2)
            })
            .then_some(*name)
    })
}

/// The spec of mapping plugin `name` (a crate name); its tables are read
/// from `repo`.
pub fn spec(repo: &Path, name: &str) -> PluginSpec {
    let path: PathBuf = weft_test_artifacts::component(name)
        .unwrap_or_else(|| panic!("weft-test-artifacts does not build {name}"))
        .to_path_buf();
    let mut spec = PluginSpec {
        name: name.to_string(),
        path,
        ..Default::default()
    };
    spec.limits.deadline = std::time::Duration::from_millis(1000);
    let tables: &[(&str, &str)] = if name == "fhir-to-v2" {
        &[("authority", "authority.csv")]
    } else {
        &[
            ("gender", "gender.csv"),
            ("assigning_authority", "assigning-authority.csv"),
        ]
    };
    for &(table, file) in tables {
        spec.lookups
            .insert(table.into(), repo.join("lookups").join(file));
    }
    spec
}

/// Every HL7 v2 to FHIR mapping plugin, loaded.
pub fn load_all(engine: &PluginEngine, repo: &Path) -> Vec<(&'static str, Plugin)> {
    load(engine, repo, MAPPINGS.iter().map(|(name, _)| *name))
}

/// The plugins `names`, loaded.
pub fn load(
    engine: &PluginEngine,
    repo: &Path,
    names: impl Iterator<Item = &'static str>,
) -> Vec<(&'static str, Plugin)> {
    names
        .map(|name| {
            let plugin = engine
                .load(&spec(repo, name))
                .unwrap_or_else(|e| panic!("{name} loads: {e}"));
            (name, plugin)
        })
        .collect()
}

/// MSH-9 of an HL7 v2 message, as `CODE^TRIGGER`.
pub fn message_type(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let msh = text
        .trim_start_matches('\u{feff}')
        .split(['\r', '\n'])
        .next()
        .unwrap_or_default();
    let msh9 = msh.split('|').nth(8).unwrap_or_default();
    let mut parts = msh9.split('^');
    let code = parts.next().unwrap_or_default();
    match parts.next() {
        Some(t) if !t.is_empty() => format!("{code}^{t}"),
        _ => code.to_string(),
    }
}

/// A reason names where the problem is: a field (`PID-7`, `OBX-5 at segment
/// 12)`, `SCH-11.4`), the message type (`MSH-9`) or a missing segment.
pub fn precise(reason: &str) -> bool {
    let b = reason.as_bytes();
    let field = (0..b.len().saturating_sub(4)).any(|i| {
        b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_alphanumeric()
            && b[i + 2].is_ascii_alphanumeric()
            && b[i + 3] == b'-'
            && b[i + 4].is_ascii_digit()
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
    });
    field || (reason.contains("no ") && reason.contains(" segment"))
}
