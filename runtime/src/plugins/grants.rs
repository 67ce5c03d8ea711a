//! What a plugin's manifest asks for, held against what the site grants it
//! in `weft.toml`: the lookup tables it needs (`[plugins.NAME.lookups]`),
//! the settings it reads (`[plugins.NAME.config]`) and the limits it needs
//! (`memory_mib`, `deadline_ms`). Each mismatch is a finding: logged as a
//! warning, or, with `[trust] strict_grants = true`, the plugin is refused
//! naming them.

use super::plugin::PluginSpec;
use super::signature::manifest::Manifest;

/// Every way `manifest` and the site's grants in `spec` disagree, for
/// people (names of tables, keys and limits only: they come from the
/// plugin and the config, never from a message).
pub fn findings(manifest: &Manifest, spec: &PluginSpec) -> Vec<String> {
    let name = &spec.name;
    let mut out = Vec::new();
    for table in &manifest.tables {
        if !spec.lookups.contains_key(table) {
            out.push(format!(
                "it needs lookup table {table:?}, which plugins.{name}.lookups does not grant (its lookups there find nothing)"
            ));
        }
    }
    let mut set: Vec<&String> = spec.config.keys().collect();
    set.sort();
    for key in set {
        if !manifest.config.contains(key) {
            out.push(format!(
                "plugins.{name}.config.{key} is set, but the plugin does not read it (declared: {}); a misspelt key?",
                list(&manifest.config)
            ));
        }
    }
    let mut granted: Vec<&String> = spec.lookups.keys().collect();
    granted.sort();
    for table in granted {
        let declared = manifest.tables.contains(table)
            || manifest
                .optional_tables
                .iter()
                .any(|t| t == table || t == "*");
        if !declared {
            out.push(format!(
                "plugins.{name}.lookups.{table} is granted, but the plugin does not read it (declared: {}); a misspelt name?",
                list(&manifest.tables.iter().chain(&manifest.optional_tables).cloned().collect::<Vec<_>>())
            ));
        }
    }
    let mib = spec.limits.memory_bytes >> 20;
    if manifest.limits.memory_mib as usize > mib {
        out.push(format!(
            "it needs {} MiB of memory, plugins.{name}.memory_mib gives {mib}",
            manifest.limits.memory_mib
        ));
    }
    let ms = spec.limits.deadline.as_millis();
    if u128::from(manifest.limits.deadline_ms) > ms {
        out.push(format!(
            "it needs {} ms per message, plugins.{name}.deadline_ms gives {ms}",
            manifest.limits.deadline_ms
        ));
    }
    out
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::signature::manifest::Limits;

    fn manifest() -> Manifest {
        Manifest {
            format: 1,
            name: "adt-to-fhir".into(),
            version: "1.0.0".into(),
            contract: "0.1.0".into(),
            maps: vec![],
            tables: vec!["gender".into()],
            optional_tables: vec!["coding_system".into()],
            config: vec!["default_utc_offset".into()],
            limits: Limits {
                memory_mib: 64,
                deadline_ms: 100,
            },
        }
    }

    fn spec() -> PluginSpec {
        let mut spec = PluginSpec {
            name: "adt".into(),
            path: "x.wasm".into(),
            ..Default::default()
        };
        spec.lookups.insert("gender".into(), "g.csv".into());
        spec.config
            .insert("default_utc_offset".into(), "+01:00".into());
        spec.limits.memory_bytes = 64 << 20;
        spec.limits.deadline = std::time::Duration::from_millis(100);
        spec
    }

    #[test]
    fn a_site_that_grants_what_is_asked_has_no_findings() {
        assert!(findings(&manifest(), &spec()).is_empty());
        let mut with_optional = spec();
        with_optional
            .lookups
            .insert("coding_system".into(), "c.csv".into());
        assert!(findings(&manifest(), &with_optional).is_empty());
        // "*": whatever tables its settings name.
        let mut any = manifest();
        any.optional_tables = vec!["*".into()];
        with_optional
            .lookups
            .insert("site_sex".into(), "s.csv".into());
        assert!(findings(&any, &with_optional).is_empty());
    }

    #[test]
    fn each_mismatch_is_named() {
        let mut s = spec();
        s.lookups.remove("gender");
        s.lookups.insert("gendre".into(), "g.csv".into());
        s.config.insert("default_utc_ofset".into(), "+01:00".into());
        s.limits.memory_bytes = 32 << 20;
        s.limits.deadline = std::time::Duration::from_millis(50);
        let f = findings(&manifest(), &s);
        assert_eq!(f.len(), 5, "{f:#?}");
        assert!(f[0].contains("needs lookup table \"gender\""), "{}", f[0]);
        assert!(f[1].contains("config.default_utc_ofset is set"), "{}", f[1]);
        assert!(f[2].contains("lookups.gendre is granted"), "{}", f[2]);
        assert!(
            f[3].contains("needs 64 MiB") && f[3].contains("gives 32"),
            "{}",
            f[3]
        );
        assert!(
            f[4].contains("needs 100 ms") && f[4].contains("gives 50"),
            "{}",
            f[4]
        );
    }
}
