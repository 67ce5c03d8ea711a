//! `weft nodes`: the nodes sharing the configuration's PostgreSQL journal,
//! read from the database (no node needs to be up to answer).

use std::process::ExitCode;

use weft::config::JournalConfig;
use weft::journal::nodes::{differing, report};
use weft::journal::{Node, NodeState, Use, now_ms};

/// Arguments of `weft nodes`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    /// Print JSON (as `GET /nodes` answers) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists the node runs: running, lapsed (its work being taken over) and
/// each name's latest; then the plugins the running nodes do not agree on.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    if let JournalConfig::Sqlite = config.journal {
        println!(
            "the journal is SQLite ({}): one node, the `weft run` that owns it; \
             nodes share a journal with [journal] engine = \"postgres\"",
            config.runtime.data_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let journal = weft::journal::for_config(&config, Use::ReadOnly)?;
    let nodes = journal.nodes()?.unwrap_or_default();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report(Some(&nodes)))?);
        return Ok(ExitCode::SUCCESS);
    }
    let differ = differing(&nodes);
    print!("{}", table(&nodes, now_ms()));
    for name in &differ {
        println!("plugin {name} differs between the running nodes:");
        for n in nodes.iter().filter(|n| n.state == NodeState::Running) {
            let sha = n
                .plugins
                .iter()
                .find(|p| &p.name == name)
                .map_or("(not loaded)".to_string(), |p| short(&p.sha256));
            println!("  {:<20} {sha}", n.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The table of `nodes` as seen at `now`.
fn table(nodes: &[Node], now: i64) -> String {
    let mut out = format!(
        "{:<20} {:<8} {:<10} {:<10} {:>8} {:>10}  PLUGINS\n",
        "NODE", "STATE", "HEARTBEAT", "VERSION", "MESSAGES", "DELIVERIES"
    );
    if nodes.is_empty() {
        out.push_str("(no node has run on this journal yet)\n");
    }
    for n in nodes {
        let plugins: Vec<String> = n
            .plugins
            .iter()
            .map(|p| format!("{} {}", p.name, short(&p.sha256)))
            .collect();
        out.push_str(&format!(
            "{:<20} {:<8} {:<10} {:<10} {:>8} {:>10}  {}\n",
            n.name,
            n.state.as_str(),
            ago(now - n.heartbeat_at),
            n.version,
            n.claimed_messages,
            n.claimed_deliveries,
            plugins.join(", ")
        ));
    }
    out
}

/// A sha256's first 12 hex digits.
fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

/// `ms` as "3 s ago", "5 min ago", "2 h ago", "4 d ago".
fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..120 => format!("{s} s ago"),
        120..7_200 => format!("{} min ago", s / 60),
        7_200..172_800 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_read_in_the_largest_unit_that_fits() {
        assert_eq!(ago(-5), "0 s ago");
        assert_eq!(ago(119_999), "119 s ago");
        assert_eq!(ago(120_000), "2 min ago");
        assert_eq!(ago(7_200_000), "2 h ago");
        assert_eq!(ago(200_000_000), "2 d ago");
    }
}
