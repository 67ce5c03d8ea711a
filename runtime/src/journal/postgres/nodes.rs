//! The node runs of a shared journal as `weft nodes` lists them, and the
//! stopped runs' rows a node clears as it starts.

use postgres::Client;

use super::SERVER_NOW;
use crate::journal::{Node, NodePlugin, NodeState};

/// Most runs listed.
pub(super) const MAX_LISTED: i64 = 1_000;

/// How long a stopped run's row is kept (its claims were freed as it
/// stopped; the row only tells operators when it ran).
pub(super) const KEEP_STOPPED_MS: i64 = 7 * 24 * 3600 * 1000;

/// Every run not stopped (running, or lapsed with its work being taken
/// over), and each node name's latest run, by name then newest first,
/// with the claims each holds.
pub(super) fn list(c: &mut Client) -> Result<Vec<Node>, postgres::Error> {
    // Leases are the server's clock's; so is "now" here (one reading).
    let now: i64 = c.query_one(&format!("SELECT {SERVER_NOW}"), &[])?.get(0);
    let rows = c.query(
        "SELECT n.name, n.run, n.version, n.started_at, n.heartbeat_at, n.lease_until,
           n.stopped_at, n.plugins,
           (SELECT count(*) FROM messages m WHERE m.claimed_by = n.run AND m.status = 'received'),
           (SELECT count(*) FROM deliveries d WHERE d.claimed_by = n.run AND d.state = 'pending')
         FROM nodes n
         WHERE n.stopped_at IS NULL
            OR n.run IN (SELECT DISTINCT ON (name) run FROM nodes ORDER BY name, started_at DESC)
         ORDER BY n.name, n.started_at DESC
         LIMIT $1",
        &[&MAX_LISTED],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let (stopped_at, lease_until): (Option<i64>, i64) = (r.get(6), r.get(5));
            let plugins: Vec<NodePlugin> =
                serde_json::from_str(r.get::<_, &str>(7)).unwrap_or_default();
            Node {
                name: r.get(0),
                run: r.get(1),
                version: r.get(2),
                started_at: r.get(3),
                heartbeat_at: r.get(4),
                lease_until,
                stopped_at,
                state: NodeState::at(now, stopped_at, lease_until),
                plugins,
                claimed_messages: u64::try_from(r.get::<_, i64>(8)).unwrap_or(0),
                claimed_deliveries: u64::try_from(r.get::<_, i64>(9)).unwrap_or(0),
            }
        })
        .collect())
}

/// Forgets the runs stopped more than [`KEEP_STOPPED_MS`] ago, keeping each
/// name's latest.
pub(super) fn forget_old(c: &mut Client) -> Result<u64, postgres::Error> {
    c.execute(
        &format!(
            "DELETE FROM nodes WHERE stopped_at < {SERVER_NOW} - $1
               AND run NOT IN
                 (SELECT DISTINCT ON (name) run FROM nodes ORDER BY name, started_at DESC)"
        ),
        &[&KEEP_STOPPED_MS],
    )
}
