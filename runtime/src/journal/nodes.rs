//! The nodes sharing a journal, as `weft nodes` and `GET /nodes` show
//! them: each node run's heartbeat, version, plugins and the claims it
//! holds, and which plugins differ between the nodes running.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// A plugin a node runs: its name and the sha256 of its component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NodePlugin {
    /// The plugin's name in the configuration.
    pub name: String,
    /// Lower-case hex sha256 of the component it runs.
    pub sha256: String,
}

/// Where a node run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Beating: its claims hold.
    Running,
    /// Silent past its lease (killed, hung, cut off): the other nodes
    /// take its work over.
    Lapsed,
    /// Closed cleanly: its claims were freed as it stopped.
    Stopped,
}

/// One node run (one `weft run` process) of a shared journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Its `[journal] node` name.
    pub name: String,
    /// This run's id (a new one at every start).
    pub run: String,
    /// The weft version it runs.
    pub version: String,
    /// When it started (ms since the epoch).
    pub started_at: i64,
    /// Its last heartbeat.
    pub heartbeat_at: i64,
    /// Until when its claims hold without another heartbeat.
    pub lease_until: i64,
    /// When it stopped, if it did so cleanly.
    pub stopped_at: Option<i64>,
    /// Running, lapsed or stopped (at the time it was read).
    pub state: NodeState,
    /// The plugins it runs, by name.
    pub plugins: Vec<NodePlugin>,
    /// Messages it holds to run through its plugins.
    pub claimed_messages: u64,
    /// Deliveries it holds to send.
    pub claimed_deliveries: u64,
}

impl NodeState {
    /// A run's state at `now` from its stop time and lease.
    pub fn at(now: i64, stopped_at: Option<i64>, lease_until: i64) -> NodeState {
        match stopped_at {
            Some(_) => NodeState::Stopped,
            None if lease_until > now => NodeState::Running,
            None => NodeState::Lapsed,
        }
    }

    /// Its name in lists.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Running => "running",
            NodeState::Lapsed => "lapsed",
            NodeState::Stopped => "stopped",
        }
    }
}

/// The plugins the running nodes do not agree on: a name run at
/// different sha256s, or run by some running nodes and not others.
pub fn differing(nodes: &[Node]) -> BTreeSet<String> {
    let running: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Running)
        .collect();
    let mut versions: BTreeMap<&str, BTreeSet<Option<&str>>> = BTreeMap::new();
    let names: BTreeSet<&str> = running
        .iter()
        .flat_map(|n| n.plugins.iter().map(|p| p.name.as_str()))
        .collect();
    for name in names {
        for node in &running {
            let sha = node
                .plugins
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.sha256.as_str());
            versions.entry(name).or_default().insert(sha);
        }
    }
    versions
        .into_iter()
        .filter(|(_, shas)| shas.len() > 1)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The nodes as `GET /nodes` and `weft nodes --json` answer: whether the
/// journal is shared (`None`: SQLite, one process), the plugins the
/// running nodes do not agree on, and the runs.
pub fn report(nodes: Option<&[Node]>) -> serde_json::Value {
    serde_json::json!({
        "shared": nodes.is_some(),
        "differing_plugins": nodes.map(differing).unwrap_or_default(),
        "nodes": nodes.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, state: NodeState, plugins: &[(&str, &str)]) -> Node {
        Node {
            name: name.into(),
            run: format!("run-{name}"),
            version: "1".into(),
            started_at: 0,
            heartbeat_at: 0,
            lease_until: 0,
            stopped_at: None,
            state,
            plugins: plugins
                .iter()
                .map(|(n, s)| NodePlugin {
                    name: n.to_string(),
                    sha256: s.to_string(),
                })
                .collect(),
            claimed_messages: 0,
            claimed_deliveries: 0,
        }
    }

    #[test]
    fn a_plugin_at_another_version_or_missing_on_a_running_node_differs() {
        let nodes = [
            node("a", NodeState::Running, &[("map", "aa"), ("norm", "cc")]),
            node("b", NodeState::Running, &[("map", "bb"), ("norm", "cc")]),
            node("c", NodeState::Running, &[("map", "aa")]),
            // Nodes that do not run take no part.
            node("d", NodeState::Stopped, &[("map", "zz"), ("norm", "yy")]),
        ];
        assert_eq!(
            differing(&nodes).into_iter().collect::<Vec<_>>(),
            ["map", "norm"]
        );
        assert!(differing(&nodes[..1]).is_empty());
        let same = [
            node("a", NodeState::Running, &[("map", "aa")]),
            node("b", NodeState::Running, &[("map", "aa")]),
            node("c", NodeState::Lapsed, &[("map", "old")]),
        ];
        assert!(differing(&same).is_empty());
    }

    #[test]
    fn a_run_is_running_until_its_lease_ends_or_it_stops() {
        assert_eq!(NodeState::at(10, None, 11), NodeState::Running);
        assert_eq!(NodeState::at(11, None, 11), NodeState::Lapsed);
        assert_eq!(NodeState::at(5, Some(4), 11), NodeState::Stopped);
    }
}
