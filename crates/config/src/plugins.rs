//! `[plugins.NAME]`: a plugin's file, limits, config, lookups and samples.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};
use weft_signature::trust::SignaturePolicy;

use super::Config;
use super::check::Checker;
use super::keys::{Key, any};

/// The keys of `[plugins.NAME]`.
pub(super) const KEYS: &[Key] = &[
    any("path"),
    any("deadline_ms"),
    any("memory_mib"),
    any("fuel"),
    any("max_output_mib"),
    any("max_outputs"),
    any("max_headers"),
    any("config"),
    any("lookups"),
    any("samples"),
    any("signer"),
    any("candidate"),
    any("candidate_share"),
];

/// What a candidate version's name is made of: `NAME@candidate`. Names in
/// the file cannot hold `@`, so it never meets one of them.
pub const CANDIDATE_SUFFIX: &str = "@candidate";

/// The share of a plugin's own time its candidate may take, in
/// thousandths, when `candidate_share` does not say.
pub const DEFAULT_CANDIDATE_SHARE: u32 = 200;

/// The keys of one `[[plugins.NAME.samples]]` table.
pub(super) const SAMPLE_KEYS: &[Key] = &[any("input"), any("expect"), any("contains")];

impl Checker<'_> {
    pub(super) fn plugin(
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
            if !self.known(KEYS, "", k, &key) {
                continue;
            }
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
                "max_outputs" => {
                    if let Some(n) = self.integer(v, &key, 1, 1_000_000) {
                        spec.limits.max_outputs = n as usize;
                    }
                }
                "max_headers" => {
                    if let Some(n) = self.integer(v, &key, 0, 1_000_000) {
                        spec.limits.max_headers = n as usize;
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
                                        format!(
                                            "expected a string, number or boolean, found {}",
                                            other.type_str()
                                        ),
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
                "samples" => spec.samples = self.samples(v, &key),
                "signer" => {
                    self.signer_offsets.insert(name.to_string(), v.span().start);
                    spec.signing.signer = self.string(entry, &key);
                }
                "candidate" => spec.candidate = self.path(entry, &key, true),
                "candidate_share" => {
                    let share = match v.get_ref() {
                        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
                        DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
                        _ => None,
                    };
                    match share {
                        Some(x) if x > 0.0 && x <= 1.0 => {
                            spec.candidate_share = ((x * 1000.0).round() as u32).max(1);
                        }
                        _ => self.error(
                            v.span().start,
                            &key,
                            "expected a share of the plugin's own time, above 0 and at most 1 (0.2)",
                        ),
                    }
                }
                _ => {} // not in the key table: reported by `known` above
            }
        }
        if !has_path {
            let offset = t.iter().next().map_or(0, |(k, _)| k.span().start);
            self.error(offset, &format!("{key}.path"), "required key is missing");
        }
        spec
    }

    /// A plugin's check samples: `[[plugins.NAME.samples]]` tables (or an
    /// inline list of them) with `input`, `expect` and `contains`.
    pub(super) fn samples(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Vec<Sample> {
        let DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span().start,
                key,
                "expected a list of samples ([[...samples]] tables with input, expect, contains)",
            );
            return Vec::new();
        };
        let mut samples = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let skey = format!("{key}[{i}]");
            let Some(t) = self.table(item, &skey) else {
                continue;
            };
            let mut sample = Sample::default();
            let mut has_input = false;
            for entry in t.iter() {
                let k = entry.0.get_ref().as_ref();
                let ekey = format!("{skey}.{k}");
                if !self.known(SAMPLE_KEYS, "", entry.0, &ekey) {
                    continue;
                }
                match k {
                    "input" => {
                        has_input = true;
                        if let Some(p) = self.path(entry, &ekey, true) {
                            sample.input = p;
                        }
                    }
                    "expect" => match self.string(entry, &ekey).as_deref().map(Expect::parse) {
                        Some(Some(e)) => sample.expect = e,
                        Some(None) => self.error(
                            entry.1.span().start,
                            &ekey,
                            "expected \"transformed\", \"filtered\" or \"rejected\"",
                        ),
                        None => {}
                    },
                    "contains" => {
                        sample.contains = self
                            .string_list(entry.1, &ekey)
                            .into_iter()
                            .map(|(_, s)| s)
                            .collect();
                    }
                    _ => {} // not in the key table: reported by `known` above
                }
            }
            if !has_input {
                self.error(
                    item.span().start,
                    &format!("{skey}.input"),
                    "required key is missing",
                );
            }
            samples.push(sample);
        }
        samples
    }
}

/// Per-plugin limits. The defaults are safe for a mapping plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one message may take, instantiation included.
    pub deadline: Duration,
    /// Most linear memory the plugin may use.
    pub memory_bytes: usize,
    /// Fuel (instructions, roughly) per message; `None` for no fuel limit.
    pub fuel: Option<u64>,
    /// Most bytes all outputs of one message may hold together: bodies,
    /// destination names, ids, content types and headers, each output
    /// counted as at least [`OUTPUT_WEIGHT`] bytes and each header as at
    /// least [`HEADER_WEIGHT`]. Also the most the host copies out of the
    /// sandbox in any one call (the output list, a log record).
    pub max_output_bytes: usize,
    /// Most outputs one message may produce.
    pub max_outputs: usize,
    /// Most headers all outputs of one message may carry together.
    pub max_headers: usize,
}

/// What an output weighs in the output-size check at least, however empty
/// its fields: about what the host allocates for one.
pub const OUTPUT_WEIGHT: usize = 128;
/// What a header weighs in the output-size check at least.
pub const HEADER_WEIGHT: usize = 64;
impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_millis(100),
            memory_bytes: 64 * 1024 * 1024,
            fuel: None,
            max_output_bytes: 16 * 1024 * 1024,
            max_outputs: 1000,
            max_headers: 1000,
        }
    }
}

/// What the configuration says about one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginSpec {
    /// Its name in the configuration.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// Its limits.
    pub limits: Limits,
    /// Settings it may read with `config`.
    pub config: HashMap<String, String>,
    /// Lookup tables it may read with `lookup`: name to CSV file.
    pub lookups: HashMap<String, PathBuf>,
    /// Sample messages a version must handle as expected before it serves.
    pub samples: Vec<Sample>,
    /// Whose signature it must carry (`[trust]`, `signer`).
    pub signing: SignaturePolicy,
    /// Refuse it when its manifest asks for what the site does not grant
    /// (`[trust] strict_grants`; the runtime's `plugins::grants`).
    pub strict_grants: bool,
    /// A candidate version run beside this one on live traffic, its
    /// outputs compared and never delivered (`candidate`). The loaded
    /// configuration also holds it as a plugin of its own, named
    /// `NAME@candidate`.
    pub candidate: Option<PathBuf>,
    /// The share of this plugin's time its candidate may take, in
    /// thousandths (`candidate_share`; 0 when there is no candidate).
    pub candidate_share: u32,
    /// For a candidate: the plugin it is the candidate of.
    pub candidate_of: Option<String>,
}

/// What a sample must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// At least one output.
    #[default]
    Transformed,
    /// No outputs: the plugin filtered the message out.
    Filtered,
    /// The plugin rejected the message.
    Rejected,
}

impl Expect {
    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Transformed => "transformed",
            Expect::Filtered => "filtered",
            Expect::Rejected => "rejected",
        }
    }

    /// Parses a configuration value.
    pub fn parse(s: &str) -> Option<Expect> {
        match s {
            "transformed" => Some(Expect::Transformed),
            "filtered" => Some(Expect::Filtered),
            "rejected" => Some(Expect::Rejected),
            _ => None,
        }
    }
}

/// One check sample of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sample {
    /// The message file.
    pub input: PathBuf,
    /// What the plugin must make of it.
    pub expect: Expect,
    /// Text that must appear in the outputs (each string in at least one).
    pub contains: Vec<String>,
}
