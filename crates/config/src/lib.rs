//! Weft's configuration: `weft.toml` read into typed settings. Every error
//! names the file, the line and the key, and a file is checked whole: all
//! its errors are reported at once. No WebAssembly engine and no I/O but
//! reading the files the configuration names (TLS certificates, the trust
//! list), so the loader is fuzzed on its own (`fuzz/`, target `config`).
//!
//! One module per section (`runtime`, `admin`, `sources`, `destinations`,
//! `plugins`, `routes`, `alerts`, and the `tls` tables they share) holds that section's
//! types, its key table and the code that reads it; `check` walks the
//! document and reads typed values; `keys` turns each key table into both the
//! test for a known key and the "unknown key (expected …)" answer. The
//! README's Configuration section shows every key (a test holds it to that).
//!
//! Relative paths are relative to the directory of the config file.

mod admin;
mod alerts;
mod check;
mod destinations;
mod journal;
mod keys;
mod plugins;
mod routes;
mod runtime;
mod sources;
mod tls;
mod trust;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

pub use admin::{AdminConfig, DEFAULT_MAX_CONNECTIONS};
pub use alerts::{ALERT_KINDS, AlertConfig, AlertKind, MAX_ALERT_WINDOW_S, MAX_REJECTS_WINDOW_S};
pub use destinations::{
    AckPolicy, DEFAULT_FILE_BATCH, DEFAULT_FILENAME, DestinationConfig, DestinationKind,
    FILENAME_PLACEHOLDERS, FileDestinationConfig, HttpDestinationConfig, HttpMethod,
    MllpDestinationConfig,
};
pub use journal::{DEFAULT_LEASE_S, JournalConfig, PostgresJournal};
pub use plugins::{
    CANDIDATE_SUFFIX, DEFAULT_CANDIDATE_SHARE, Expect, HEADER_WEIGHT, Limits, OUTPUT_WEIGHT,
    PluginSpec, Sample,
};
pub use routes::RouteConfig;
pub use runtime::{DEFAULT_AUDIT_RETAIN_DAYS, JournalSync, RuntimeConfig, systemd_credential};
pub use sources::{AckMode, HttpSourceConfig, MllpSourceConfig, SourceConfig, SourceKind};
pub use trust::TrustConfig;

/// The default configuration, compiled into the binary: the repository's
/// `weft.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../weft.toml");

/// A loaded, checked configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where it was read from (for messages).
    pub source: String,
    /// Runtime-wide settings.
    pub runtime: RuntimeConfig,
    /// Which engine holds the journal (`[journal]`).
    pub journal: JournalConfig,
    /// Plugins by name; each spec's `path` is resolved.
    pub plugins: BTreeMap<String, PluginSpec>,
    /// Routes by name.
    pub routes: BTreeMap<String, RouteConfig>,
    /// Route names in the order the file lists them: the order `match`
    /// rules are tried in.
    pub route_order: Vec<String>,
    /// Sources by name.
    pub sources: BTreeMap<String, SourceConfig>,
    /// Destinations by name.
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// Where in the file each plugin's `path` key is, to report load errors.
    pub plugin_locations: HashMap<String, Location>,
    /// The admin HTTP API (`[admin]`); `None`: not served.
    pub admin: Option<AdminConfig>,
    /// Whose plugin signatures the site trusts (`[trust]`).
    pub trust: TrustConfig,
    /// Alerts by name (`[alerts.NAME]`).
    pub alerts: BTreeMap<String, AlertConfig>,
}

impl Config {
    /// What is allowed but unwise, for `weft check` and the start of `weft
    /// run`: a secret header sent in clear to another host.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, d) in &self.destinations {
            let DestinationKind::Http(h) = &d.kind else {
                continue;
            };
            let loopback = h
                .url
                .host()
                .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
                .is_some_and(|host| {
                    host == "localhost"
                        || host
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                });
            let secret = h.headers.iter().any(|(k, _)| {
                k.eq_ignore_ascii_case("authorization")
                    || k.eq_ignore_ascii_case("proxy-authorization")
            });
            if h.url.scheme_str() == Some("http") && secret && !loopback {
                out.push(format!(
                    "destinations.{name}: its Authorization header crosses the network in clear \
                     (http:// to another host): use https://"
                ));
            }
        }
        out
    }

    /// Every certificate, key and CA file the admin API, the sources and
    /// the destinations name.
    pub fn tls_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .admin
            .iter()
            .flat_map(|a| a.tls.iter())
            .flat_map(|t| t.files())
            .map(Path::to_path_buf)
            .collect();
        for s in self.sources.values() {
            let tls = match &s.kind {
                SourceKind::Mllp(m) => m.tls.as_ref(),
                SourceKind::Http(h) => h.tls.as_ref(),
            };
            files.extend(tls.iter().flat_map(|t| t.files()).map(Path::to_path_buf));
        }
        for d in self.destinations.values() {
            let tls = match &d.kind {
                DestinationKind::Mllp(m) => m.tls.as_ref(),
                DestinationKind::Http(h) => h.tls.as_ref(),
                DestinationKind::File(_) => None,
            };
            files.extend(tls.iter().flat_map(|t| t.files()).map(Path::to_path_buf));
        }
        files
    }
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

/// The largest config file read.
pub const MAX_CONFIG_FILE: u64 = 4 << 20;

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    use std::io::Read;
    let name = path.display().to_string();
    let refuse = |message: String| {
        ConfigErrors(vec![ConfigError {
            location: Location {
                file: name.clone(),
                line: 0,
                column: 0,
            },
            key: String::new(),
            message,
        }])
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_FILE + 1).read_to_string(&mut text))
        .map_err(|e| refuse(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(refuse(format!(
            "larger than a configuration can be ({MAX_CONFIG_FILE} bytes)"
        )));
    }
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse(&text, &name, base)
}

/// Checks config text; `name` is used in errors and relative paths are
/// resolved against `base_dir`.
pub fn parse(text: &str, name: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    let mut c = check::Checker::new(text, name, base_dir);
    let config = c.check();
    if c.errors.is_empty() {
        Ok(config)
    } else {
        c.errors
            .sort_by_key(|e| (e.location.line, e.location.column));
        Err(ConfigErrors(c.errors))
    }
}

#[cfg(test)]
mod tests;
