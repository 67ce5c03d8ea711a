//! What a reload did ([`Report`]) and where each plugin stands
//! ([`Reloader::status`]), as the admin API and `weft plugins` show them.

use std::time::Duration;

use super::Reloader;
use crate::admin::json;
use crate::journal::time;

/// What one reload did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Plugins now running a new version: (name, old sha256, new sha256).
    pub swapped: Vec<(String, Option<String>, String)>,
    /// Plugins whose new version was refused: (name, reason).
    pub refused: Vec<(String, String)>,
    /// The config file changed and was applied.
    pub config_applied: bool,
    /// The config file changed and was refused: why.
    pub config_refused: Option<String>,
    /// Config sections that changed but need a restart.
    pub needs_restart: Vec<String>,
    /// Sources and destinations started, restarted or stopped.
    pub changes: Vec<String>,
    /// How long the reload took.
    pub elapsed: Duration,
}

impl Report {
    /// The report as the admin API sends it.
    pub fn to_body(&self) -> json::ReloadReport {
        json::ReloadReport {
            swapped: self
                .swapped
                .iter()
                .map(|(plugin, from, to)| json::Swap {
                    plugin: plugin.clone(),
                    from: from.clone(),
                    to: to.clone(),
                })
                .collect(),
            refused: self
                .refused
                .iter()
                .map(|(plugin, reason)| json::PluginRefusal {
                    plugin: plugin.clone(),
                    reason: reason.clone(),
                })
                .collect(),
            config_applied: self.config_applied,
            config_refused: self.config_refused.clone(),
            needs_restart: self.needs_restart.clone(),
            changes: self.changes.clone(),
            elapsed_ms: self.elapsed.as_millis() as u64,
            at: None,
        }
    }
}

impl Reloader {
    /// Each plugin: its live version, since when, what it replaced, its last
    /// refusal; and the config file's last refusal.
    pub fn status(&self) -> json::PluginsStatus {
        let st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        json::PluginsStatus {
            plugins: st
                .plugins
                .iter()
                .map(|(name, l)| json::PluginStatus {
                    name: name.clone(),
                    path: l.plugin.spec().path.display().to_string(),
                    sha256: l.plugin.sha256().to_string(),
                    version: l.plugin.manifest().map(|m| m.version.clone()),
                    grant_warnings: l.plugin.grant_findings().to_vec(),
                    code: l.plugin.tier().as_str().to_string(),
                    signature: l.plugin.provenance().to_string(),
                    live_since: time::iso(l.live_since),
                    swaps: l.swaps,
                    replaced: l
                        .replaced
                        .iter()
                        .rev()
                        .map(|r| json::ReplacedVersion {
                            sha256: r.sha256.clone(),
                            live_since: time::iso(r.live_since),
                            replaced_at: time::iso(r.replaced_at),
                        })
                        .collect(),
                    last_refusal: l.last_refusal.clone(),
                    // By the configuration now in force: a candidate taken
                    // out of the file leaves the live version as it is.
                    candidate: st
                        .config
                        .plugins
                        .get(name)
                        .and_then(|s| s.candidate.as_ref())
                        .and_then(|_| crate::shadow::summary(name)),
                })
                .collect(),
            config: json::ConfigStatus {
                path: self.config_path.as_ref().map(|p| p.display().to_string()),
                last_refusal: st.config_refusal.clone(),
            },
            reloads: st.reloads,
            last_reload: st.last.as_ref().map(|(at, r)| json::ReloadReport {
                at: Some(time::iso(*at)),
                ..r.clone()
            }),
        }
    }
}
