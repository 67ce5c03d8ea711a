//! Operator actions on the journal: put deliveries back in line, purge
//! what is settled. Works
//! beside a running `weft run`, whose dispatchers pick the deliveries up
//! within a second.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::JournalError;

fn write_err(e: rusqlite::Error) -> JournalError {
    JournalError::Write(e.to_string())
}

/// Opens an existing journal for an operator's write.
pub fn open(path: &Path) -> Result<Connection, JournalError> {
    let conn = super::query::open_writable(path)?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(write_err)?;
    Ok(conn)
}

/// Sends every output of these messages again (delivered or dead alike):
/// their deliveries become pending with a fresh attempt count. Returns how
/// many deliveries were queued, and the ids that have none (unknown ids, or
/// messages a plugin rejected, which have no outputs to send).
pub fn resend(conn: &mut Connection, ids: &[String]) -> Result<(usize, Vec<String>), JournalError> {
    let tx = conn.transaction().map_err(write_err)?;
    let mut queued = 0;
    let mut none = Vec::new();
    for id in ids {
        let n = tx
            .execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, delivered_at = NULL
                 WHERE message_id = ?1",
                params![id],
            )
            .map_err(write_err)?;
        if n == 0 {
            none.push(id.clone());
        }
        queued += n;
    }
    tx.commit().map_err(write_err)?;
    Ok((queued, none))
}

/// Gives every dead delivery another round of attempts.
pub fn resend_dead(conn: &mut Connection) -> Result<usize, JournalError> {
    conn.execute(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0 WHERE state = 'dead'",
        [],
    )
    .map_err(write_err)
}

/// Deletes the messages received before `before` (ms) whose work is
/// settled: transformed, rejected or failed, with no delivery pending. Their
/// deliveries go with them. Pending work is never deleted. Gives the space
/// back to the file system. Returns (messages, deliveries) deleted.
pub fn purge(conn: &mut Connection, before: i64) -> Result<(usize, usize), JournalError> {
    let tx = conn.transaction().map_err(write_err)?;
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS purge_ids (id TEXT PRIMARY KEY); DELETE FROM purge_ids;",
    )
    .map_err(write_err)?;
    tx.execute(
        "INSERT INTO purge_ids (id)
         SELECT m.id FROM messages m
         WHERE m.received_at < ?1 AND m.status <> 'received'
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = 'pending')",
        params![before],
    )
    .map_err(write_err)?;
    let deliveries = tx
        .execute(
            "DELETE FROM deliveries WHERE message_id IN (SELECT id FROM purge_ids)",
            [],
        )
        .map_err(write_err)?;
    let messages = tx
        .execute(
            "DELETE FROM messages WHERE id IN (SELECT id FROM purge_ids)",
            [],
        )
        .map_err(write_err)?;
    tx.execute("DELETE FROM purge_ids", []).map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    conn.execute_batch("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(write_err)?;
    Ok((messages, deliveries))
}
