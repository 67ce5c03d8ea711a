//! The journal's writer thread: takes every write of the message path,
//! applies as many as are waiting in one transaction, commits (one fsync
//! for the lot) and only then answers each caller.

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::journal::write::{Duplicate, Op, Request, dedup_key};
use crate::journal::{JournalError, NewMessage, Outcome};
use rusqlite::{Connection, OptionalExtension, params};

/// Most writes applied in one transaction.
const MAX_BATCH: usize = 1024;

/// Applies one write inside `tx`; a message that is a duplicate is not
/// taken in (one writer applies every write, so the check and the intake
/// are one step).
pub(super) fn apply(
    tx: &rusqlite::Transaction<'_>,
    op: &Op,
) -> rusqlite::Result<Result<(), Duplicate>> {
    if let Some(original) = op.intake().map(|m| earlier(tx, m)).transpose()?.flatten() {
        return Ok(Err(Duplicate(original)));
    }
    match op {
        Op::AppendSettled(both) => {
            append(tx, &both.0)?;
            record(tx, &both.1)?;
        }
        Op::Append(m) => append(tx, m)?,
        Op::Record(o) => record(tx, o)?,
        Op::Delivered(id, at) => delivered(tx, *id, *at)?,
        Op::Failed(id, error, next) => failed(tx, *id, error, *next)?,
    }
    Ok(Ok(()))
}

/// Records a delivery as delivered.
// Frames of their own (`append`, `earlier`, `record`, `delivered`,
// `failed`), so the stage bench's profile can tell the journal's work
// apart.
#[inline(never)]
fn delivered(tx: &rusqlite::Transaction<'_>, id: i64, at: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE deliveries SET state = 'delivered', delivered_at = ?2, attempts = attempts + 1 WHERE id = ?1",
    )?
    .execute(params![id, at])
    .map(drop)
}

/// Records a failed attempt: retried at `next`, or dead.
#[inline(never)]
fn failed(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    error: &str,
    next: Option<i64>,
) -> rusqlite::Result<()> {
    match next {
        Some(at) => tx.execute(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            params![id, error, at],
        ),
        // A delivery superseded by a reprocessing while its attempt was
        // under way stays superseded: never resent.
        None => tx.execute(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2,
               state = CASE state WHEN 'pending' THEN 'dead' ELSE state END
             WHERE id = ?1",
            params![id, error],
        ),
    }
    .map(drop)
}

/// The message `m` duplicates, if its source drops duplicates and one was
/// received within the window.
#[inline(never)]
fn earlier(tx: &rusqlite::Transaction<'_>, m: &NewMessage) -> rusqlite::Result<Option<String>> {
    let Some((app, fac, ctrl, since)) = dedup_key(m) else {
        return Ok(None);
    };
    tx.prepare_cached(
        "SELECT id FROM messages
         WHERE sending_application = ?1 AND sending_facility = ?2 AND control_id = ?3
           AND received_at >= ?4
         LIMIT 1",
    )?
    .query_row(params![app, fac, ctrl, since], |r| r.get(0))
    .optional()
}

/// Applies `op` in a transaction of its own.
pub(super) fn apply_alone(conn: &mut Connection, op: &Op) -> Result<(), JournalError> {
    use super::write_err;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(write_err)?;
    apply(&tx, op).map_err(write_err)??;
    tx.commit().map_err(write_err)
}

/// Records a message as received (and its holds and patient ids).
#[inline(never)]
fn append(tx: &rusqlite::Transaction<'_>, m: &NewMessage) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO messages (id, source, remote, received_at, content_type, body, message_type,
           control_id, sending_application, sending_facility, route, status, seq, peer_subject)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'received',
           (SELECT IFNULL(MAX(seq), 0) + 1 FROM messages), ?12)",
    )?
    .execute(params![
        m.id,
        m.source,
        m.remote,
        m.received_at,
        m.content_type,
        m.body,
        m.message_type,
        m.control_id,
        m.sending_application,
        m.sending_facility,
        m.route,
        m.peer_subject
    ])?;
    let mut hold = tx.prepare_cached(
        "INSERT INTO order_holds (message_id, message_seq, destination, ordering_key)
         SELECT ?1, seq, ?2, ?3 FROM messages WHERE id = ?1",
    )?;
    for (destination, key) in &m.ordering_keys {
        hold.execute(params![m.id, destination, key])?;
    }
    let mut patient =
        tx.prepare_cached("INSERT INTO patient_ids (message_id, id) VALUES (?1, ?2)")?;
    for id in &m.patient_ids {
        patient.execute(params![m.id, id])?;
    }
    Ok(())
}

/// Records an outcome with its deliveries and releases the message's holds.
#[inline(never)]
fn record(tx: &rusqlite::Transaction<'_>, o: &Outcome) -> rusqlite::Result<()> {
    // JSON (older rows hold `plugin@sha256,…`; query.rs reads both).
    let versions = serde_json::to_string(&o.versions).unwrap_or_default();
    tx.prepare_cached(
        "UPDATE messages SET status = ?2, error = ?3, plugin_versions = ?4 WHERE id = ?1",
    )?
    .execute(params![o.message_id, o.status.as_str(), o.error, versions])?;
    tx.prepare_cached("DELETE FROM order_holds WHERE message_id = ?1")?
        .execute(params![o.message_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (message_id, destination, n, content_type, body, state, next_attempt_at,
           ordering_key, message_seq, run)
         SELECT ?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, seq, run FROM messages WHERE id = ?1",
    )?;
    for d in &o.deliveries {
        insert.execute(params![
            o.message_id,
            d.destination,
            d.n as i64,
            d.content_type,
            d.body,
            d.ordering_key
        ])?;
    }
    Ok(())
}

/// Longest a group of lazy writes waits for an intake to share its commit.
pub(super) const LINGER: Duration = Duration::from_millis(2);

/// How recent the last intake must be for lazy writes to wait: messages
/// are arriving, so the next one is likely within [`LINGER`].
const TRAFFIC: Duration = Duration::from_millis(20);

/// Moves the writes already waiting into `batch`, up to [`MAX_BATCH`].
fn take_waiting(rx: &Receiver<Request>, batch: &mut Vec<Request>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(r) => batch.push(r),
            Err(_) => break,
        }
    }
}

/// Applies the writes as they come, in groups, until every sender is gone.
/// A group of lazy writes only (outcomes and deliveries no answer waits
/// on) waits up to [`LINGER`] for an intake while messages are arriving,
/// so that an intake does not queue behind their commit: one connection
/// sending a message at a time then waits for one commit per ACK, not two.
pub(super) fn write_loop(mut conn: Connection, rx: Receiver<Request>) {
    let mut last_intake: Option<Instant> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        take_waiting(&rx, &mut batch);
        if last_intake.is_some_and(|t| t.elapsed() < TRAFFIC) {
            let until = Instant::now() + LINGER;
            while batch.len() < MAX_BATCH && batch.iter().all(|r| r.lazy) {
                let Some(left) = until.checked_duration_since(Instant::now()) else {
                    break;
                };
                match rx.recv_timeout(left) {
                    Ok(r) => {
                        batch.push(r);
                        take_waiting(&rx, &mut batch);
                    }
                    Err(_) => break,
                }
            }
        }
        if batch.iter().any(|r| r.op.intake().is_some()) {
            last_intake = Some(Instant::now());
        }
        // Fast path: the whole batch in one transaction, one fsync.
        let together = (|| {
            let tx = conn.transaction()?;
            for r in &batch {
                if apply(&tx, &r.op)?.is_err() {
                    return Ok(false);
                }
            }
            tx.commit().map(|()| true)
        })();
        if let Ok(true) = together {
            for r in batch {
                let _ = r.reply.send(Ok(()));
            }
            continue;
        }
        // Something in the batch failed or was a duplicate: apply each
        // alone, so only the writes that really fail are refused.
        for r in batch {
            let alone = apply_alone(&mut conn, &r.op);
            let _ = r.reply.send(alone);
        }
    }
}
