//! What a reload would change: each plugin's fingerprint (its file, its
//! tables, its settings), the plan (keep, swap in a loaded and checked
//! version, or refuse), and the config sections that need a restart.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Reloader, State};
use crate::config::Config;
use crate::plugins::engine::hex;
use crate::plugins::{Plugin, PluginSpec, Tier};

/// What a plugin's behaviour depends on: its file, its tables, its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fingerprint {
    /// The sha256 of the component.
    pub(super) file: String,
    /// The sha256 of its tables and settings.
    pub(super) rest: String,
}

impl Reloader {
    /// What to do with each plugin of `config`; an error when a plugin the
    /// running config does not have cannot be loaded (the config is then
    /// refused whole).
    pub(super) fn plan(&self, st: &State, config: &Config) -> Result<Vec<(String, Step)>, String> {
        let mut steps = Vec::new();
        for (name, spec) in &config.plugins {
            let live = st.plugins.get(name);
            let fp = match fingerprint(spec) {
                Ok(fp) => fp,
                Err(reason) => {
                    if live.is_none() {
                        return Err(format!("plugin {name}: {reason}"));
                    }
                    steps.push((name.clone(), Step::Refuse(None, reason)));
                    continue;
                }
            };
            if live.is_some_and(|l| l.fingerprint == fp) {
                steps.push((name.clone(), Step::Keep));
                continue;
            }
            // A version refused already is not tried again until it changes.
            if let Some(l) = live
                && l.refused.as_ref() == Some(&fp)
            {
                steps.push((name.clone(), Step::Keep));
                continue;
            }
            match self.load(spec) {
                Ok(plugin) => steps.push((name.clone(), Step::Swap(Arc::new(plugin), fp))),
                Err(reason) => {
                    if live.is_none() {
                        return Err(format!("plugin {name}: {reason}"));
                    }
                    steps.push((name.clone(), Step::Refuse(Some(fp), reason)));
                }
            }
        }
        Ok(steps)
    }

    /// Loads a version with the baseline compiler (quick to compile; the
    /// optimizing one when the baseline cannot take it), instantiates it
    /// once and runs its samples.
    pub(super) fn load(&self, spec: &PluginSpec) -> Result<Plugin, String> {
        let plugin = match self.engine.load_tier(spec, Tier::Baseline) {
            Ok(p) => p,
            Err(e) if self.engine.has_baseline() => {
                tracing::debug!(plugin = %spec.name, error = %e, "baseline compile failed; compiling optimized");
                self.engine.load(spec).map_err(|e| e.to_string())?
            }
            Err(e) => return Err(e.to_string()),
        };
        check(&plugin)?;
        Ok(plugin)
    }
}

/// What a reload does with one plugin.
pub(super) enum Step {
    /// Nothing changed (or the change was refused already).
    Keep,
    /// A new version, loaded and checked, to go live.
    Swap(Arc<Plugin>, Fingerprint),
    /// A new version refused (what it was, when it could be read), and why.
    Refuse(Option<Fingerprint>, String),
}

/// A version's checks before it serves: one instantiation within its
/// limits with its `init`, then its samples.
pub(super) fn check(plugin: &Plugin) -> Result<(), String> {
    crate::plugins::samples::check(plugin).map(|_| ())
}

/// The sha256 of the component, and of its tables and settings.
pub(super) fn fingerprint(spec: &PluginSpec) -> Result<Fingerprint, String> {
    let bytes = std::fs::read(&spec.path)
        .map_err(|e| format!("cannot read {}: {e}", spec.path.display()))?;
    let mut rest = Sha256::new();
    let mut settings: Vec<_> = spec.config.iter().collect();
    settings.sort();
    rest.update(format!("{:?}{settings:?}", spec.limits).as_bytes());
    rest.update(spec.signing.digest().as_bytes());
    rest.update([u8::from(spec.strict_grants)]);
    let mut tables: Vec<_> = spec.lookups.iter().collect();
    tables.sort();
    for (name, path) in tables {
        let data = std::fs::read(path)
            .map_err(|e| format!("cannot read table {name} ({}): {e}", path.display()))?;
        rest.update(name.as_bytes());
        rest.update(Sha256::digest(&data));
    }
    Ok(Fingerprint {
        file: hex(&Sha256::digest(&bytes)),
        rest: hex(&rest.finalize()),
    })
}

/// Where the named files' digest starts in what a config stands for.
pub(super) const FILES_MARK: &str = "\n# weft: named files ";

/// The files a config names whose contents are part of it: TLS
/// certificates, keys and CAs, and the trust list.
pub(super) fn named_files(config: &Config) -> Vec<PathBuf> {
    let mut files = config.tls_files();
    files.extend(config.trust.keys.iter().cloned());
    files
}

/// A config file's text with the digest of the files `config` names (a
/// renewed certificate or an edited trust list changes what the config
/// stands for, as an edit of the file would).
pub(super) fn with_named_files(text: String, config: &Config) -> String {
    let files = named_files(config);
    if files.is_empty() {
        return text;
    }
    let refs: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    format!("{text}{FILES_MARK}{}", crate::tls::fingerprint(&refs))
}

/// Config sections whose change is not applied live (a renewed admin
/// certificate is: see [`Reloader::renew_admin_tls`]).
pub(super) fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if old.runtime != new.runtime {
        out.push("runtime".to_string());
    }
    // A renewed certificate (same files, new contents) is not a change.
    let without_contents = |c: &Config| {
        let mut admin = c.admin.clone();
        if let Some(t) = admin.as_mut().and_then(|a| a.tls.as_mut()) {
            t.fingerprint.clear();
        }
        admin
    };
    if without_contents(old) != without_contents(new) {
        out.push("admin".to_string());
    }
    out
}
