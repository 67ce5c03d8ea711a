//! The admin API's plugin and reload bodies as types, shared by the server
//! (`reload.rs` builds them) and `weft plugins` (which reads them): one
//! definition, so neither side can name a key the other does not.

use serde::{Deserialize, Serialize};

/// What one reload did (`POST /reload`, and `last_reload` in
/// `GET /plugins`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Plugins now running a new version.
    pub swapped: Vec<Swap>,
    /// Plugins whose new version was refused.
    pub refused: Vec<PluginRefusal>,
    /// The config file changed and was applied.
    pub config_applied: bool,
    /// The config file changed and was refused: why.
    pub config_refused: Option<String>,
    /// Sections that changed but apply only at the next start.
    pub needs_restart: Vec<String>,
    /// What else changed (sources, destinations, routes), a line each.
    pub changes: Vec<String>,
    /// How long the reload took.
    pub elapsed_ms: u64,
    /// When it ran (ISO 8601), in `last_reload` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A plugin that now runs a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    /// The plugin's name.
    pub plugin: String,
    /// The sha256 of the version it replaced (`None`: a new plugin).
    pub from: Option<String>,
    /// The sha256 of the version now live.
    pub to: String,
}

/// A plugin version that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRefusal {
    /// The plugin's name.
    pub plugin: String,
    /// Why (the check or load error).
    pub reason: String,
}

/// The plugin versions a running weft serves (`GET /plugins`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginsStatus {
    /// Each plugin, by name.
    pub plugins: Vec<PluginStatus>,
    /// The config file.
    pub config: ConfigStatus,
    /// Reloads since the start.
    pub reloads: u64,
    /// The last reload, if any.
    pub last_reload: Option<ReloadReport>,
}

/// One plugin's live version and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStatus {
    /// Its name.
    pub name: String,
    /// Its file.
    pub path: String,
    /// The sha256 of the live version.
    pub sha256: String,
    /// Which code runs: baseline or optimized.
    pub code: String,
    /// Since when this version serves (ISO 8601).
    pub live_since: String,
    /// Versions swapped in since the start.
    pub swaps: u64,
    /// The versions it replaced, newest first.
    pub replaced: Vec<ReplacedVersion>,
    /// The last version refused, if any.
    pub last_refusal: Option<RefusedChange>,
}

/// A version that served and was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacedVersion {
    /// Its sha256.
    pub sha256: String,
    /// When it went live (ISO 8601).
    pub live_since: String,
    /// When it was replaced (ISO 8601).
    pub replaced_at: String,
}

/// A refused change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedChange {
    /// When (ISO 8601).
    pub at: String,
    /// The sha256 of what was refused, when it could be read.
    pub sha256: Option<String>,
    /// Why.
    pub reason: String,
}

/// The config file and its last refused change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The file watched (`None`: the embedded default).
    pub path: Option<String>,
    /// Its last refused change, if any.
    pub last_refusal: Option<RefusedChange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shape_and_a_round_trip() {
        let report = ReloadReport {
            swapped: vec![Swap {
                plugin: "adt".into(),
                from: None,
                to: "ab12".into(),
            }],
            refused: vec![PluginRefusal {
                plugin: "oru".into(),
                reason: "does not instantiate".into(),
            }],
            config_applied: true,
            config_refused: None,
            needs_restart: vec!["runtime".into()],
            changes: vec!["destination d added".into()],
            elapsed_ms: 12,
            at: None,
        };
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"swapped":[{"plugin":"adt","from":null,"to":"ab12"}],"refused":[{"plugin":"oru","reason":"does not instantiate"}],"config_applied":true,"config_refused":null,"needs_restart":["runtime"],"changes":["destination d added"],"elapsed_ms":12}"#
        );
        let status = PluginsStatus {
            plugins: vec![PluginStatus {
                name: "adt".into(),
                path: "adt.wasm".into(),
                sha256: "ab12".into(),
                code: "optimized".into(),
                live_since: "2026-11-30T12:00:00Z".into(),
                swaps: 1,
                replaced: vec![ReplacedVersion {
                    sha256: "cd34".into(),
                    live_since: "2026-11-30T11:00:00Z".into(),
                    replaced_at: "2026-11-30T12:00:00Z".into(),
                }],
                last_refusal: None,
            }],
            config: ConfigStatus {
                path: Some("weft.toml".into()),
                last_refusal: Some(RefusedChange {
                    at: "2026-11-30T12:01:00Z".into(),
                    sha256: None,
                    reason: "weft.toml:3:1: runtime.x: unknown key".into(),
                }),
            },
            reloads: 2,
            last_reload: Some(ReloadReport {
                at: Some("2026-11-30T12:00:00Z".into()),
                ..report
            }),
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["last_reload"]["at"], "2026-11-30T12:00:00Z");
        assert_eq!(json["plugins"][0]["replaced"][0]["sha256"], "cd34");
        let back: PluginsStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
    }
}
