//! Operator actions in PostgreSQL: put deliveries back in line, queue
//! messages to run through the plugins again, purge what is settled. The
//! same actions as `../sqlite/operate.rs`, each in one transaction; any
//! node's dispatchers pick resent deliveries up, and any node takes a
//! message queued for reprocessing (claiming it, so only one does).

use postgres::{Client, Transaction};

use super::conn::describe;
use crate::journal::JournalError;
use crate::journal::query::{Purged, Reprocessed, Resent};

fn write(e: postgres::Error) -> JournalError {
    JournalError::Write(describe(&e))
}

fn rows(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Sends every output of these messages again (delivered or dead alike):
/// their deliveries become pending with a fresh attempt count.
pub fn resend(c: &mut Client, ids: &[String]) -> Result<Resent, JournalError> {
    let mut tx = c.transaction().map_err(write)?;
    let mut queued = 0;
    let mut none = Vec::new();
    for id in ids {
        let n = rows(
            tx.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0,
                   delivered_at = NULL
                 WHERE message_id = $1 AND state <> 'superseded'
                   AND run = (SELECT run FROM messages WHERE id = $1)",
                &[id],
            )
            .map_err(write)?,
        );
        if n == 0 {
            none.push(id.clone());
        }
        queued += n;
    }
    tx.commit().map_err(write)?;
    Ok(Resent {
        queued,
        without_outputs: none,
    })
}

/// Gives every dead delivery another round of attempts.
pub fn resend_dead(c: &mut Client) -> Result<usize, JournalError> {
    c.execute(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0
         WHERE state = 'dead'",
        &[],
    )
    .map(rows)
    .map_err(write)
}

/// Queues these messages to run through the plugins again (see
/// [`Journal::reprocess`](crate::journal::Journal::reprocess)), in one
/// transaction.
pub fn reprocess(c: &mut Client, ids: &[String], now: i64) -> Result<Reprocessed, JournalError> {
    let mut tx = c.transaction().map_err(write)?;
    let mut done = Reprocessed::default();
    for id in ids {
        // Locked: a node recording this message's outcome waits, or this
        // waits for it.
        let found = tx
            .query_opt(
                "SELECT status, source FROM messages WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .map_err(write)?
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)));
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
        requeue(&mut tx, id, now)?;
        done.superseded += rows(
            tx.execute(
                "UPDATE deliveries SET state = 'superseded'
                 WHERE message_id = $1 AND state IN ('pending', 'dead')",
                &[id],
            )
            .map_err(write)?,
        );
        done.queued += 1;
    }
    tx.commit().map_err(write)?;
    Ok(done)
}

/// Keeps the message's outcome as an earlier run and queues it again.
fn requeue(tx: &mut Transaction<'_>, id: &String, now: i64) -> Result<(), JournalError> {
    tx.execute(
        "INSERT INTO outcomes (message_id, run, status, error, plugin_versions, replaced_at)
         SELECT id, run, status, error, plugin_versions, $2 FROM messages WHERE id = $1",
        &[id, &now],
    )
    .map_err(write)?;
    tx.execute(
        "UPDATE messages SET status = 'received', error = NULL, plugin_versions = NULL,
           run = run + 1, claimed_by = NULL
         WHERE id = $1",
        &[id],
    )
    .map_err(write)?;
    tx.execute(
        "INSERT INTO reprocess (message_id, requested_at) VALUES ($1, $2)",
        &[id, &now],
    )
    .map_err(write)?;
    Ok(())
}

/// Takes up to `limit` messages off the reprocessing queue, oldest request
/// first, and claims them for node run `run`: the ids. Two nodes never
/// take the same one.
pub fn take_reprocess(
    c: &mut Client,
    limit: usize,
    run: &str,
) -> Result<Vec<String>, JournalError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut tx = c.transaction().map_err(write)?;
    let mut ids: Vec<(i64, String)> = tx
        .query(
            "DELETE FROM reprocess WHERE message_id IN (
               SELECT message_id FROM reprocess ORDER BY requested_at, message_id LIMIT $1
               FOR UPDATE SKIP LOCKED)
             RETURNING requested_at, message_id",
            &[&limit],
        )
        .map_err(write)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    ids.sort();
    let ids: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
    tx.execute(
        "UPDATE messages SET claimed_by = $2 WHERE id = ANY($1)",
        &[&ids, &run],
    )
    .map_err(write)?;
    tx.commit().map_err(write)?;
    Ok(ids)
}

/// Deletes the messages received before `before` (ms) whose work is
/// settled (transformed, rejected or failed, no delivery pending), with
/// their deliveries, in one transaction. PostgreSQL's autovacuum makes
/// the space reusable; giving it back to the file system is the DBA's
/// `VACUUM FULL`, never run from here (it locks the tables).
pub fn purge(c: &mut Client, before: i64) -> Result<Purged, JournalError> {
    let mut tx = c.transaction().map_err(write)?;
    let ids: Vec<String> = tx
        .query(
            "SELECT m.id FROM messages m
             WHERE m.received_at < $1 AND m.status <> 'received'
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.message_id = m.id AND d.state = 'pending')
             FOR UPDATE SKIP LOCKED",
            &[&before],
        )
        .map_err(write)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let deliveries = rows(
        tx.execute("DELETE FROM deliveries WHERE message_id = ANY($1)", &[&ids])
            .map_err(write)?,
    );
    for table in ["order_holds", "patient_ids", "outcomes", "reprocess"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE message_id = ANY($1)"),
            &[&ids],
        )
        .map_err(write)?;
    }
    let messages = rows(
        tx.execute("DELETE FROM messages WHERE id = ANY($1)", &[&ids])
            .map_err(write)?,
    );
    tx.commit().map_err(write)?;
    Ok(Purged {
        messages,
        deliveries,
    })
}
