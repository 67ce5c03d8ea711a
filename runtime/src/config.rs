//! The `weft.toml` model. Every error names the file, the line and the key,
//! and a file is checked whole: all its errors are reported at once.
//!
//! ```toml
//! [runtime]
//! cache_dir = ".weft/cache"        # compiled plugins, reused across restarts
//!
//! [plugins.site-normalize]
//! path = "plugins/site_normalize.wasm"
//! deadline_ms = 100                # wall clock per message
//! memory_mib = 64                  # linear memory cap
//! fuel = 50000000                  # optional instruction budget
//! max_output_mib = 16              # total size of one message's outputs
//! [plugins.site-normalize.config]  # what `config("key")` returns
//! mrn_prefix = "NORTH-"
//! [plugins.site-normalize.lookups] # what `lookup("table", key)` reads
//! sex = "lookups/sex.csv"
//!
//! [routes.adt]
//! plugins = ["site-normalize", "adt-to-fhir"]
//! ```
//!
//! Relative paths are relative to the directory of the config file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::plugins::{Limits, PluginSpec};

/// The default configuration, compiled into the binary: the repository's
/// `weft.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../weft.toml");

/// A loaded, checked configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where it was read from (for messages).
    pub source: String,
    /// Runtime-wide settings.
    pub runtime: RuntimeConfig,
    /// Plugins by name; each spec's `path` is resolved.
    pub plugins: BTreeMap<String, PluginSpec>,
    /// Routes by name.
    pub routes: BTreeMap<String, RouteConfig>,
    /// Where in the file each plugin's `path` key is, to report load errors.
    pub plugin_locations: HashMap<String, Location>,
}

/// Runtime-wide settings (`[runtime]`).
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Where compiled plugins are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// One route (`[routes.NAME]`): the plugins a message runs through, in order.
#[derive(Debug, Clone, Default)]
pub struct RouteConfig {
    /// The route's name.
    pub name: String,
    /// Plugin names, in order.
    pub plugins: Vec<String>,
}

/// A place in a config file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file (or `<embedded weft.toml>`).
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where.
    pub location: Location,
    /// The dotted key, e.g. `plugins.adt-to-fhir.path`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.location, self.message)
        } else {
            write!(f, "{}: {}: {}", self.location, self.key, self.message)
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            location: Location {
                file: name.clone(),
                line: 0,
                column: 0,
            },
            key: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse(&text, &name, base)
}

/// Checks config text; `name` is used in errors and relative paths are
/// resolved against `base_dir`.
pub fn parse(text: &str, name: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    let mut c = Checker {
        text,
        file: name,
        base: base_dir,
        errors: Vec::new(),
    };
    let config = c.check();
    if c.errors.is_empty() {
        Ok(config)
    } else {
        c.errors
            .sort_by_key(|e| (e.location.line, e.location.column));
        Err(ConfigErrors(c.errors))
    }
}

struct Checker<'a> {
    text: &'a str,
    file: &'a str,
    base: &'a Path,
    errors: Vec<ConfigError>,
}

type Entry<'i> = (
    &'i Spanned<toml::de::DeString<'i>>,
    &'i Spanned<DeValue<'i>>,
);

impl<'a> Checker<'a> {
    fn location(&self, offset: usize) -> Location {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location {
            file: self.file.to_string(),
            line,
            column,
        }
    }

    fn error(&mut self, offset: usize, key: &str, message: impl Into<String>) {
        let location = self.location(offset);
        self.errors.push(ConfigError {
            location,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn check(&mut self) -> Config {
        let mut config = Config {
            source: self.file.to_string(),
            ..Config::default()
        };
        let doc = match DeTable::parse(self.text) {
            Ok(doc) => doc,
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                self.error(offset, "", e.message().trim().to_string());
                return config;
            }
        };
        let doc = doc.get_ref();
        let mut route_refs = Vec::new();
        for (key, value) in doc.iter() {
            let k = key.get_ref().as_ref();
            match k {
                "runtime" => {
                    if let Some(t) = self.table(value, "runtime") {
                        config.runtime = self.runtime(t);
                    }
                }
                "plugins" => {
                    if let Some(t) = self.table(value, "plugins") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("plugins.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key) {
                                let spec = self.plugin(&n, t, &key, &mut config);
                                config.plugins.insert(n, spec);
                            }
                        }
                    }
                }
                "routes" => {
                    if let Some(t) = self.table(value, "routes") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("routes.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key) {
                                let route = self.route(&n, t, &key, &mut route_refs);
                                config.routes.insert(n, route);
                            }
                        }
                    }
                }
                other => self.error(
                    key.span().start,
                    other,
                    "unknown section (expected runtime, plugins or routes)",
                ),
            }
        }
        for (offset, key, plugin) in route_refs {
            if !config.plugins.contains_key(&plugin) {
                self.error(
                    offset,
                    &key,
                    format!("no plugin named {plugin:?} is defined"),
                );
            }
        }
        config
    }

    fn check_name(&mut self, offset: usize, key: &str, name: &str) {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            self.error(
                offset,
                key,
                "names may only hold lower-case letters, digits, '-' and '_'",
            );
        }
    }

    fn table<'i>(&mut self, value: &'i Spanned<DeValue<'i>>, key: &str) -> Option<&'i DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(
                    value.span().start,
                    key,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn string(&mut self, (key, value): Entry<'_>, path: &str) -> Option<String> {
        let _ = key;
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(
                    value.span().start,
                    path,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn integer(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        path: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => {
                u64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
            }
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    value.span().start,
                    path,
                    format!("expected a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn path(&mut self, entry: Entry<'_>, key: &str, must_exist: bool) -> Option<PathBuf> {
        let s = self.string(entry, key)?;
        let p = self.base.join(&s);
        if must_exist && !p.is_file() {
            self.error(
                entry.1.span().start,
                key,
                format!("file {} does not exist", p.display()),
            );
        }
        Some(p)
    }

    fn runtime(&mut self, t: &DeTable<'_>) -> RuntimeConfig {
        let mut r = RuntimeConfig::default();
        for entry in t.iter() {
            let k = entry.0.get_ref().as_ref();
            let key = format!("runtime.{k}");
            match k {
                "cache_dir" => r.cache_dir = self.path(entry, &key, false),
                _ => self.error(
                    entry.0.span().start,
                    &key,
                    "unknown key (expected cache_dir)",
                ),
            }
        }
        r
    }

    fn plugin(
        &mut self,
        name: &str,
        t: &DeTable<'_>,
        key: &str,
        config: &mut Config,
    ) -> PluginSpec {
        let mut spec = PluginSpec {
            name: name.to_string(),
            limits: Limits::default(),
            ..PluginSpec::default()
        };
        let mut has_path = false;
        for entry in t.iter() {
            let (k, v) = entry;
            let kname = k.get_ref().as_ref();
            let key = format!("{key}.{kname}");
            const MIB: u64 = 1024 * 1024;
            match kname {
                "path" => {
                    has_path = true;
                    config
                        .plugin_locations
                        .insert(name.to_string(), self.location(v.span().start));
                    if let Some(p) = self.path(entry, &key, true) {
                        spec.path = p;
                    }
                }
                "deadline_ms" => {
                    if let Some(ms) = self.integer(v, &key, 1, 600_000) {
                        spec.limits.deadline = Duration::from_millis(ms);
                    }
                }
                "memory_mib" => {
                    if let Some(m) = self.integer(v, &key, 1, 4096) {
                        spec.limits.memory_bytes = (m * MIB) as usize;
                    }
                }
                "fuel" => spec.limits.fuel = self.integer(v, &key, 1, u64::MAX),
                "max_output_mib" => {
                    if let Some(m) = self.integer(v, &key, 1, 1024) {
                        spec.limits.max_output_bytes = (m * MIB) as usize;
                    }
                }
                "config" => {
                    if let Some(t) = self.table(v, &key) {
                        for (ck, cv) in t.iter() {
                            let ckey = format!("{key}.{}", ck.get_ref().as_ref());
                            let value = match cv.get_ref() {
                                DeValue::String(s) => Some(s.to_string()),
                                DeValue::Integer(i) => Some(i.as_str().to_string()),
                                DeValue::Float(f) => Some(f.as_str().to_string()),
                                DeValue::Boolean(b) => Some(b.to_string()),
                                other => {
                                    self.error(
                                        cv.span().start,
                                        &ckey,
                                        format!("expected a string, number or boolean, found {}", other.type_str()),
                                    );
                                    None
                                }
                            };
                            if let Some(value) = value {
                                spec.config.insert(ck.get_ref().as_ref().to_string(), value);
                            }
                        }
                    }
                }
                "lookups" => {
                    if let Some(t) = self.table(v, &key) {
                        for le in t.iter() {
                            let table = le.0.get_ref().as_ref().to_string();
                            let lkey = format!("{key}.{table}");
                            if let Some(p) = self.path(le, &lkey, true) {
                                spec.lookups.insert(table, p);
                            }
                        }
                    }
                }
                _ => self.error(
                    k.span().start,
                    &key,
                    "unknown key (expected path, deadline_ms, memory_mib, fuel, max_output_mib, config, lookups)",
                ),
            }
        }
        if !has_path {
            let offset = t.iter().next().map_or(0, |(k, _)| k.span().start);
            self.error(offset, &format!("{key}.path"), "required key is missing");
        }
        spec
    }

    fn route(
        &mut self,
        name: &str,
        t: &DeTable<'_>,
        key: &str,
        refs: &mut Vec<(usize, String, String)>,
    ) -> RouteConfig {
        let mut route = RouteConfig {
            name: name.to_string(),
            plugins: Vec::new(),
        };
        for (k, v) in t.iter() {
            let kname = k.get_ref().as_ref();
            let key = format!("{key}.{kname}");
            match kname {
                "plugins" => match v.get_ref() {
                    DeValue::Array(items) if !items.is_empty() => {
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::String(s) => {
                                    refs.push((item.span().start, key.clone(), s.to_string()));
                                    route.plugins.push(s.to_string());
                                }
                                _ => self.error(item.span().start, &key, "expected a plugin name"),
                            }
                        }
                    }
                    _ => self.error(
                        v.span().start,
                        &key,
                        "expected a non-empty list of plugin names",
                    ),
                },
                _ => self.error(k.span().start, &key, "unknown key (expected plugins)"),
            }
        }
        route
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_error_with_line_and_key() {
        let text = r#"
[runtime]
cache_dri = "x"

[plugins.a]
path = "does-not-exist.wasm"
deadline_ms = 0
memory_mib = "lots"

[plugins.b]
deadline_ms = 10

[routes.r]
plugins = ["a", "missing"]

[sources]
"#;
        let errs = parse(text, "weft.toml", Path::new("/nonexistent"))
            .unwrap_err()
            .0;
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let want = [
            "weft.toml:3:1: runtime.cache_dri: unknown key",
            "weft.toml:6:8: plugins.a.path: file /nonexistent/does-not-exist.wasm does not exist",
            "weft.toml:7:15: plugins.a.deadline_ms: expected a whole number from 1 to 600000",
            "weft.toml:8:14: plugins.a.memory_mib: expected a whole number",
            "weft.toml:11:1: plugins.b.path: required key is missing",
            "weft.toml:14:17: routes.r.plugins: no plugin named \"missing\" is defined",
            "weft.toml:16:2: sources: unknown section",
        ];
        assert_eq!(lines.len(), want.len(), "{lines:#?}");
        for (line, want) in lines.iter().zip(want) {
            assert!(line.starts_with(want), "{line} does not start with {want}");
        }
    }

    #[test]
    fn syntax_error_has_a_line() {
        let errs = parse("[plugins\n", "w.toml", Path::new(".")).unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].location.line, 1);
    }

    #[test]
    fn embedded_default_parses() {
        // Plugin files may not be built yet; only syntax and keys matter here.
        let errs = match parse(EMBEDDED_DEFAULT, "weft.toml", Path::new("..")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        };
        for e in &errs {
            assert!(e.message.contains("does not exist"), "{e}");
        }
    }
}
