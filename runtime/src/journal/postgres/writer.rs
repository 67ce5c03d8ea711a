//! The PostgreSQL journal's writer thread: as in SQLite
//! (`../sqlite/writer.rs`), every write of the message path waiting at
//! the same moment goes into one transaction and one commit
//! (`synchronous_commit = on`: durable on the server before any caller
//! is answered). Across nodes, a message with ordering keys takes each
//! key's advisory lock before its intake number, so for any one key the
//! intake numbers follow the commit order cluster-wide; a message its
//! source deduplicates takes its sender and control id's lock before
//! looking for an earlier copy, so two nodes taking in the same message
//! at once never both keep it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::conn::Conn;
use crate::journal::write::{Duplicate, Op, Request, dedup_key};
use crate::journal::{JournalError, NewMessage, Outcome};
use postgres::{Client, Transaction};

/// Most writes applied in one transaction.
const MAX_BATCH: usize = 1024;

/// How often intakes left in doubt are tried again while no write comes.
const IN_DOUBT_RETRY: Duration = Duration::from_secs(1);

/// The advisory locks a batch needs (each ordering key's, each
/// deduplicated sender and control id's), in one order for every node: no
/// two nodes wait on each other's locks in opposite orders.
fn key_locks(ops: &[&Op]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for m in ops.iter().filter_map(|op| op.intake()) {
        for (d, k) in &m.ordering_keys {
            keys.push(format!("o\u{1f}{d}\u{1f}{k}"));
        }
        if let Some((app, fac, ctrl, _)) = dedup_key(m) {
            keys.push(format!("d\u{1f}{app}\u{1f}{fac}\u{1f}{ctrl}"));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Applies `ops` in `tx`, its node run being `run`; stops at the first
/// duplicate (the caller rolls back).
pub(super) fn apply_all(
    tx: &mut Transaction<'_>,
    ops: &[&Op],
    run: &str,
) -> Result<Result<(), Duplicate>, postgres::Error> {
    for key in key_locks(ops) {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&key],
        )?;
    }
    for op in ops {
        if let Some(original) = op.intake().map(|m| earlier(tx, m)).transpose()?.flatten() {
            return Ok(Err(Duplicate(original)));
        }
        apply(tx, op, run)?;
    }
    Ok(Ok(()))
}

/// Applies `op` in a transaction of its own.
pub(super) fn apply_alone(conn: &mut Conn, op: &Op, run: &str) -> Result<(), JournalError> {
    conn.with(|c| {
        let mut tx = c.transaction()?;
        if let Err(d) = apply_all(&mut tx, &[op], run)? {
            return Ok(Err(d));
        }
        tx.commit().map(Ok)
    })
    .map_err(JournalError::Write)?
    .map_err(JournalError::from)
}

/// The message `m` duplicates, if its source drops duplicates and one was
/// received within the window (committed by any node: this transaction
/// holds the key's lock, so none is on its way).
fn earlier(tx: &mut Transaction<'_>, m: &NewMessage) -> Result<Option<String>, postgres::Error> {
    let Some((app, fac, ctrl, since)) = dedup_key(m) else {
        return Ok(None);
    };
    Ok(tx
        .query_opt(
            "SELECT id FROM messages
             WHERE sending_application = $1 AND sending_facility = $2 AND control_id = $3
               AND received_at >= $4
             LIMIT 1",
            &[&app, &fac, &ctrl, &since],
        )?
        .map(|r| r.get(0)))
}

fn apply(tx: &mut Transaction<'_>, op: &Op, run: &str) -> Result<(), postgres::Error> {
    match op {
        Op::AppendSettled(both) => {
            append(tx, &both.0, run)?;
            record(tx, &both.1, run)?;
        }
        Op::Append(m) => append(tx, m, run)?,
        Op::Record(o) => record(tx, o, run)?,
        Op::Delivered(id, at) => {
            let n = tx.execute(
                &format!(
                    "UPDATE deliveries SET state = 'delivered', delivered_at = $2,
                       attempts = attempts + 1, claimed_by = NULL
                     WHERE id = $1 AND {}",
                    still_ours(3)
                ),
                &[id, at, &run],
            )?;
            taken_over(n, "delivery", &id.to_string());
        }
        Op::Failed(id, error, next) => {
            let n = match next {
                Some(at) => tx.execute(
                    &format!(
                        "UPDATE deliveries SET attempts = attempts + 1, last_error = $2,
                           next_attempt_at = $3, claimed_by = NULL
                         WHERE id = $1 AND {}",
                        still_ours(4)
                    ),
                    &[id, error, at, &run],
                )?,
                // A delivery superseded by a reprocessing while its attempt
                // was under way stays superseded: never resent.
                None => tx.execute(
                    &format!(
                        "UPDATE deliveries SET attempts = attempts + 1, last_error = $2,
                           state = CASE state WHEN 'pending' THEN 'dead' ELSE state END,
                           claimed_by = NULL
                         WHERE id = $1 AND {}",
                        still_ours(3)
                    ),
                    &[id, error, &run],
                )?,
            };
            taken_over(n, "delivery", &id.to_string());
        }
    }
    Ok(())
}

/// The SQL condition "the row's claim is still this run's" (the run's id
/// being parameter `run`): claimed by it, or by nobody. A run whose lease
/// ran out while it could not reach the server (an outage longer than the
/// lease) may find its work claimed by another node when it comes back:
/// what it did meanwhile is then not recorded, and the node holding the
/// claim does it again. Recording it would let the key's next delivery go
/// out while the other node's attempt of this one is still under way:
/// the same message twice, the second after a later one.
fn still_ours(run: usize) -> String {
    format!("(claimed_by = ${run}::TEXT OR claimed_by IS NULL)")
}

/// Says that a write changed nothing because another node took the work
/// over (`changed` rows).
fn taken_over(changed: u64, what: &str, id: &str) {
    if changed == 0 {
        tracing::warn!(
            id,
            "this node's claim on the {what} lapsed and another node took it over: its result here is not recorded, the other node's stands"
        );
    }
}

/// Records a message as received, claimed by this node run (and its holds
/// and patient ids).
fn append(tx: &mut Transaction<'_>, m: &NewMessage, run: &str) -> Result<(), postgres::Error> {
    let seq: i64 = tx
        .query_one(
            "INSERT INTO messages (id, seq, source, remote, received_at, content_type, body,
               message_type, control_id, sending_application, sending_facility, route, status,
               peer_subject, claimed_by)
             VALUES ($1, nextval('message_seq'), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
               'received', $12, $13)
             RETURNING seq",
            &[
                &m.id,
                &m.source,
                &m.remote,
                &m.received_at,
                &m.content_type,
                &m.body,
                &m.message_type,
                &m.control_id,
                &m.sending_application,
                &m.sending_facility,
                &m.route,
                &m.peer_subject,
                &run,
            ],
        )?
        .get(0);
    for (destination, key) in &m.ordering_keys {
        tx.execute(
            "INSERT INTO order_holds (message_id, message_seq, destination, ordering_key)
             VALUES ($1, $2, $3, $4)",
            &[&m.id, &seq, destination, key],
        )?;
    }
    for id in &m.patient_ids {
        tx.execute(
            "INSERT INTO patient_ids (message_id, id) VALUES ($1, $2)",
            &[&m.id, id],
        )?;
    }
    Ok(())
}

/// Records an outcome with its deliveries, releases the message's holds
/// and its claim; nothing when another node took the message over.
fn record(tx: &mut Transaction<'_>, o: &Outcome, run: &str) -> Result<(), postgres::Error> {
    let versions = serde_json::to_string(&o.versions).unwrap_or_default();
    // Only a message still waiting for its outcome, claimed by this run
    // (or by nobody): another node's outcome and deliveries stand.
    let changed = tx.execute(
        &format!(
            "UPDATE messages SET status = $2, error = $3, plugin_versions = $4, claimed_by = NULL
             WHERE id = $1 AND status = 'received' AND {}",
            still_ours(5)
        ),
        &[&o.message_id, &o.status.as_str(), &o.error, &versions, &run],
    )?;
    if changed == 0 {
        taken_over(changed, "message", &o.message_id);
        return Ok(());
    }
    tx.execute(
        "DELETE FROM order_holds WHERE message_id = $1",
        &[&o.message_id],
    )?;
    for d in &o.deliveries {
        let n = i32::try_from(d.n).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO deliveries (message_id, destination, n, content_type, body, state,
               next_attempt_at, ordering_key, message_seq, run)
             SELECT $1, $2, $3, $4, $5, 'pending', 0, $6, seq, run FROM messages WHERE id = $1",
            &[
                &o.message_id,
                &d.destination,
                &n,
                &d.content_type,
                &d.body,
                &d.ordering_key,
            ],
        )?;
    }
    Ok(())
}

/// Releases this run's claim on the messages `ids` still waiting for their
/// outcome: intakes whose commit was in doubt (the connection broke while
/// it was under way, so the sender was answered AE, yet the server may
/// have committed it). One that did land is then run by whichever node
/// takes unclaimed work over next (this one included), never left claimed
/// by a run that is not running it; one that did not land is not there.
/// Returns how many were released.
pub(super) fn release(c: &mut Client, ids: &[String], run: &str) -> Result<u64, postgres::Error> {
    c.execute(
        "UPDATE messages SET claimed_by = NULL
         WHERE id = ANY($1) AND status = 'received' AND claimed_by = $2",
        &[&ids, &run],
    )
}

/// [`release`] over `conn` for the intakes left in doubt; they are kept for
/// the next try while the server is away.
fn release_in_doubt(conn: &mut Conn, in_doubt: &mut Vec<String>, run: &str) {
    if in_doubt.is_empty() {
        return;
    }
    let ids = in_doubt.clone();
    let run = run.to_string();
    if let Ok(n) = conn.with(move |c| release(c, &ids, &run)) {
        if n > 0 {
            tracing::warn!(
                count = n,
                "messages whose intake was in doubt when the journal's server went away had been committed: released, to be run by the next node that takes work over"
            );
        }
        in_doubt.clear();
    }
}

/// Applies the writes as they come, in groups, until every sender is gone.
pub(super) fn write_loop(mut conn: Conn, rx: Receiver<Request>, run: String) {
    // Intakes whose commit is in doubt, until released.
    let mut in_doubt: Vec<String> = Vec::new();
    loop {
        let first = if in_doubt.is_empty() {
            match rx.recv() {
                Ok(r) => r,
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(IN_DOUBT_RETRY) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    release_in_doubt(&mut conn, &mut in_doubt, &run);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        release_in_doubt(&mut conn, &mut in_doubt, &run);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let ops: Vec<&Op> = batch.iter().map(|r| &r.op).collect();
        // Whether the COMMIT was sent: only then can a broken connection
        // leave the batch's outcome in doubt.
        let committing = AtomicBool::new(false);
        let together = conn.with(|c| {
            let mut tx = c.transaction()?;
            if apply_all(&mut tx, &ops, &run)?.is_err() {
                return Ok(false);
            }
            committing.store(true, Ordering::Relaxed);
            tx.commit().map(|()| true)
        });
        match together {
            Ok(true) => {
                for r in batch {
                    let _ = r.reply.send(Ok(()));
                }
            }
            // The server is gone: every write of the batch fails (the
            // sources answer AE / 503); the next batch connects again. A
            // COMMIT under way when the connection broke may have landed all
            // the same: that batch's intakes are released once the server
            // answers again (batches refused while it is away never reach a
            // COMMIT, so the list stays a batch or two long).
            Err(e) if conn.is_down() => {
                if committing.load(Ordering::Relaxed) {
                    in_doubt.extend(
                        ops.iter()
                            .filter_map(|op| op.intake())
                            .map(|m| m.id.clone()),
                    );
                }
                let e = JournalError::Write(e);
                for r in batch {
                    let _ = r.reply.send(Err(e.clone()));
                }
            }
            Ok(false) | Err(_) => {
                // Something in the batch failed or was a duplicate: apply
                // each alone, so only the writes that really fail are
                // refused.
                for r in batch {
                    let alone = apply_alone(&mut conn, &r.op, &run);
                    let _ = r.reply.send(alone);
                }
            }
        }
    }
}
