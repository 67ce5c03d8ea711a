//! Operator actions in SQL: put deliveries back in line, queue messages to
//! run through the plugins again, purge what is settled. Run on a connection of their own beside the writer thread (or
//! in another process beside `weft run`), whose dispatchers pick resent
//! deliveries up within a second.

use rusqlite::{Connection, OptionalExtension, params};

use super::write_err;
use crate::journal::JournalError;
use crate::journal::query::{Purged, Reprocessed, Resent};

/// A write transaction that takes the write lock at its start, waiting (the
/// busy timeout) for the journal's writer thread. A deferred one that read
/// first would fail at once with SQLITE_BUSY if the writer committed in
/// between, and an operator's resend or purge would answer 503.
fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, JournalError> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(write_err)
}

/// Sends every output of these messages again (delivered or dead alike):
/// their deliveries become pending with a fresh attempt count.
pub fn resend(conn: &mut Connection, ids: &[String]) -> Result<Resent, JournalError> {
    let tx = write_tx(conn)?;
    let mut queued = 0;
    let mut none = Vec::new();
    for id in ids {
        let n = tx
            .execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, delivered_at = NULL
                 WHERE message_id = ?1 AND state <> 'superseded'
                   AND run = (SELECT run FROM messages WHERE id = ?1)",
                params![id],
            )
            .map_err(write_err)?;
        if n == 0 {
            none.push(id.clone());
        }
        queued += n;
    }
    tx.commit().map_err(write_err)?;
    Ok(Resent {
        queued,
        without_outputs: none,
    })
}

/// Gives every dead delivery another round of attempts.
pub fn resend_dead(conn: &mut Connection) -> Result<usize, JournalError> {
    let tx = write_tx(conn)?;
    let n = tx.execute(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0 WHERE state = 'dead'",
        [],
    )
    .map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    Ok(n)
}

/// Queues these messages to run through the plugins again (see
/// [`Journal::reprocess`](crate::journal::Journal::reprocess)), in one
/// transaction.
pub fn reprocess(
    conn: &mut Connection,
    ids: &[String],
    now: i64,
) -> Result<Reprocessed, JournalError> {
    let tx = write_tx(conn)?;
    let mut done = Reprocessed::default();
    for id in ids {
        let found: Option<(String, String)> = tx
            .query_row(
                "SELECT status, source FROM messages WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(write_err)?;
        match found {
            None => {
                done.unknown.push(id.clone());
                continue;
            }
            Some((_, source)) if source == crate::alerts::SOURCE => {
                done.own_events.push(id.clone());
                continue;
            }
            Some((status, _)) if status == "received" => {
                done.in_progress.push(id.clone());
                continue;
            }
            Some(_) => {}
        }
        tx.execute(
            "INSERT INTO outcomes (message_id, run, status, error, plugin_versions, replaced_at)
             SELECT id, run, status, error, plugin_versions, ?2 FROM messages WHERE id = ?1",
            params![id, now],
        )
        .map_err(write_err)?;
        done.superseded += tx
            .execute(
                "UPDATE deliveries SET state = 'superseded'
                 WHERE message_id = ?1 AND state IN ('pending', 'dead')",
                [id],
            )
            .map_err(write_err)?;
        tx.execute(
            "UPDATE messages SET status = 'received', error = NULL, plugin_versions = NULL, run = run + 1
             WHERE id = ?1",
            [id],
        )
        .map_err(write_err)?;
        tx.execute(
            "INSERT INTO reprocess (message_id, requested_at) VALUES (?1, ?2)",
            params![id, now],
        )
        .map_err(write_err)?;
        done.queued += 1;
    }
    tx.commit().map_err(write_err)?;
    Ok(done)
}

/// Takes up to `limit` messages off the reprocessing queue, oldest request
/// first: the ids, in one transaction.
pub fn take_reprocess(conn: &mut Connection, limit: usize) -> Result<Vec<String>, JournalError> {
    let tx = write_tx(conn)?;
    let ids = {
        let mut stmt = tx
            .prepare("SELECT message_id FROM reprocess ORDER BY requested_at, message_id LIMIT ?1")
            .map_err(write_err)?;
        let rows = stmt
            .query_map([limit as i64], |r| r.get::<_, String>(0))
            .map_err(write_err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(write_err)?
    };
    for id in &ids {
        tx.execute("DELETE FROM reprocess WHERE message_id = ?1", [id])
            .map_err(write_err)?;
    }
    tx.commit().map_err(write_err)?;
    Ok(ids)
}

/// A message whose work is settled: transformed, rejected or failed, with
/// no delivery pending. Only those are ever purged.
const SETTLED: &str = "m.status <> 'received'
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = 'pending')";

/// Deletes the messages received before `before` (ms) whose work is
/// settled. Their deliveries go with them. Pending work is never deleted.
/// Gives the space back to the file system.
pub fn purge(conn: &mut Connection, before: i64) -> Result<Purged, JournalError> {
    let deleted = delete_where(
        conn,
        &format!("SELECT m.id FROM messages m WHERE m.received_at < ?1 AND {SETTLED}"),
        before,
    )?;
    give_back(conn)?;
    Ok(deleted)
}

/// The bytes the journal's pages take (the file's size once free pages
/// are given back).
pub fn used_bytes(conn: &Connection) -> Result<u64, JournalError> {
    let pragma = |name: &str| -> Result<i64, JournalError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(write_err)
    };
    let pages = pragma("page_count")? - pragma("freelist_count")?;
    Ok((pages.max(0) * pragma("page_size")?) as u64)
}

/// Deletes the oldest settled messages until the journal's pages take at
/// most `max_bytes` (aiming a tenth below, so that it does not purge at
/// every check), and gives the space back. Pending work is never deleted,
/// so a journal full of pending work stays over the cap. Returns what was
/// deleted and the bytes used after.
pub fn purge_to_size(conn: &mut Connection, max_bytes: u64) -> Result<(Purged, u64), JournalError> {
    let mut purged = Purged::default();
    give_back(conn)?;
    let mut used = used_bytes(conn)?;
    let target = max_bytes - max_bytes / 10;
    while used > max_bytes || (purged.messages > 0 && used > target) {
        let count: i64 = conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .map_err(write_err)?;
        // Estimate how many messages free the excess; at least 100 a round.
        let per_message = used / count.max(1) as u64;
        let excess = used.saturating_sub(target);
        let batch = (excess / per_message.max(1) + 1).max(100) as i64;
        let round = delete_where(
            conn,
            &format!("SELECT m.id FROM messages m WHERE {SETTLED} ORDER BY m.received_at LIMIT ?1"),
            batch,
        )?;
        if round.messages == 0 {
            break;
        }
        purged.messages += round.messages;
        purged.deliveries += round.deliveries;
        give_back(conn)?;
        used = used_bytes(conn)?;
    }
    Ok((purged, used))
}

/// Deletes the messages `select` (one `?1` parameter) names, with their
/// deliveries, in one transaction.
fn delete_where(conn: &mut Connection, select: &str, param: i64) -> Result<Purged, JournalError> {
    let tx = write_tx(conn)?;
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS purge_ids (id TEXT PRIMARY KEY); DELETE FROM purge_ids;",
    )
    .map_err(write_err)?;
    tx.execute(
        &format!("INSERT INTO purge_ids (id) {select}"),
        params![param],
    )
    .map_err(write_err)?;
    let deliveries = tx
        .execute(
            "DELETE FROM deliveries WHERE message_id IN (SELECT id FROM purge_ids)",
            [],
        )
        .map_err(write_err)?;
    tx.execute(
        "DELETE FROM order_holds WHERE message_id IN (SELECT id FROM purge_ids)",
        [],
    )
    .map_err(write_err)?;
    for table in ["patient_ids", "outcomes", "reprocess"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE message_id IN (SELECT id FROM purge_ids)"),
            [],
        )
        .map_err(write_err)?;
    }
    let messages = tx
        .execute(
            "DELETE FROM messages WHERE id IN (SELECT id FROM purge_ids)",
            [],
        )
        .map_err(write_err)?;
    tx.execute("DELETE FROM purge_ids", []).map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    Ok(Purged {
        messages,
        deliveries,
    })
}

/// Returns free pages to the file system. The file shrinks once the
/// write-ahead log is copied back into it: a passive checkpoint does that
/// now if no reader is in the way, else a later one does. (A passive
/// checkpoint never makes the runtime's writer wait, unlike a truncating
/// one.)
pub fn give_back(conn: &Connection) -> Result<(), JournalError> {
    // The pragma frees one page per step: step it to the end.
    let mut vacuum = conn
        .prepare("PRAGMA incremental_vacuum")
        .map_err(write_err)?;
    let mut rows = vacuum.query([]).map_err(write_err)?;
    while rows.next().map_err(write_err)?.is_some() {}
    drop(rows);
    drop(vacuum);
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    Ok(())
}
