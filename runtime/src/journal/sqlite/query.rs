//! The operators' questions in SQL: which messages, what became of one.

use rusqlite::{Connection, params_from_iter, types::Value};

use super::{read_err, stored};
use crate::journal::query::{DeliveryRow, Detail, EarlierRun, Filter, StatusFilter, Summary};
use crate::journal::query::{SUMMARY, plugin_uses};
use crate::journal::{JournalError, Recorded, RecordedOutput};

fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    Ok(Summary {
        id: r.get(0)?,
        received_at: r.get(1)?,
        source: r.get(2)?,
        message_type: r.get(3)?,
        control_id: r.get(4)?,
        status: stored(r, 5)?,
        delivered: r.get::<_, i64>(6)? as u64,
        pending: r.get::<_, i64>(7)? as u64,
        dead: r.get::<_, i64>(8)? as u64,
    })
}

/// The `WHERE` clause (empty, or with its leading space) and its
/// arguments for the messages `filter` keeps.
fn conditions(filter: &Filter) -> (String, Vec<Value>) {
    let mut clauses = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    // With a patient, the patient index finds the few rows and the other
    // conditions only sift them: a `+` keeps SQLite from picking a
    // column's own index (the status index would walk every message of
    // that status).
    let col = |name: &str| {
        if filter.patient.is_some() {
            format!("+m.{name}")
        } else {
            format!("m.{name}")
        }
    };
    match filter.status {
        Some(StatusFilter::Delivery(s)) => {
            clauses.push(
                "EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = ?)"
                    .to_string(),
            );
            args.push(Value::Text(s.as_str().to_string()));
        }
        Some(StatusFilter::Message(s)) => {
            clauses.push(format!("{} = ?", col("status")));
            args.push(Value::Text(s.as_str().to_string()));
        }
        None => {}
    }
    if let Some(s) = &filter.source {
        clauses.push(format!("{} = ?", col("source")));
        args.push(Value::Text(s.clone()));
    }
    if let Some(t) = &filter.message_type {
        clauses.push(format!("{} GLOB ?", col("message_type")));
        args.push(Value::Text(t.clone()));
    }
    if let Some(c) = &filter.control_id {
        clauses.push(format!("{} = ?", col("control_id")));
        args.push(Value::Text(c.clone()));
    }
    if let Some(r) = &filter.route {
        clauses.push(format!("{} = ?", col("route")));
        args.push(Value::Text(r.clone()));
    }
    if let Some(p) = &filter.patient {
        clauses.push("m.id IN (SELECT message_id FROM patient_ids WHERE id = ?)".into());
        args.push(Value::Text(p.clone()));
    }
    if let Some(t) = filter.since {
        clauses.push(format!("{} >= ?", col("received_at")));
        args.push(Value::Integer(t));
    }
    if let Some(t) = filter.until {
        clauses.push(format!("{} < ?", col("received_at")));
        args.push(Value::Integer(t));
    }
    if clauses.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", clauses.join(" AND ")), args)
    }
}

/// Messages matching `filter`, newest first.
pub fn list(conn: &Connection, filter: &Filter) -> Result<Vec<Summary>, JournalError> {
    let (conditions, mut args) = conditions(filter);
    let mut sql = format!("{SUMMARY}{conditions}");
    sql.push_str(" ORDER BY m.received_at DESC, m.id DESC LIMIT ? OFFSET ?");
    args.push(Value::Integer(filter.limit as i64));
    args.push(Value::Integer(filter.offset as i64));
    let mut stmt = conn.prepare(&sql).map_err(read_err)?;
    let rows = stmt
        .query_map(params_from_iter(args), summary)
        .map_err(read_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(read_err)
}

/// The ids of the messages matching `filter` (its limit and offset aside),
/// newest first, at most `max`.
pub fn select(conn: &Connection, filter: &Filter, max: usize) -> Result<Vec<String>, JournalError> {
    let (conditions, mut args) = conditions(filter);
    let sql = format!(
        "SELECT m.id FROM messages m{conditions} ORDER BY m.received_at DESC, m.id DESC LIMIT ?"
    );
    args.push(Value::Integer(i64::try_from(max).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare(&sql).map_err(read_err)?;
    let rows = stmt
        .query_map(params_from_iter(args), |r| r.get(0))
        .map_err(read_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(read_err)
}

/// Message `id` as recorded, and its current run's outputs: each output
/// once (the first destination's row of each `n`).
pub fn recorded(conn: &Connection, id: &str) -> Result<Option<Recorded>, JournalError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, source, remote, peer_subject, content_type, body, message_type, route,
                    status, error, run
             FROM messages WHERE id = ?1",
        )
        .map_err(read_err)?;
    let found = stmt
        .query_row([id], |r| {
            Ok((
                Recorded {
                    id: r.get(0)?,
                    source: r.get(1)?,
                    remote: r.get(2)?,
                    peer_subject: r.get(3)?,
                    content_type: r.get(4)?,
                    body: r.get(5)?,
                    message_type: r.get(6)?,
                    route: r.get(7)?,
                    status: stored(r, 8)?,
                    error: r.get(9)?,
                    outputs: Vec::new(),
                },
                r.get::<_, i64>(10)?,
            ))
        })
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(read_err)?;
    let Some((mut recorded, run)) = found else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT content_type, body FROM deliveries
             WHERE message_id = ?1 AND run = ?2
               AND id IN (SELECT MIN(id) FROM deliveries WHERE message_id = ?1 AND run = ?2 GROUP BY n)
             ORDER BY n",
        )
        .map_err(read_err)?;
    recorded.outputs = stmt
        .query_map(rusqlite::params![id, run], |r| {
            Ok(RecordedOutput {
                content_type: r.get(0)?,
                body: r.get(1)?,
            })
        })
        .map_err(read_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(read_err)?;
    Ok(Some(recorded))
}

/// One message with its deliveries; `None` when the id is unknown.
pub fn show(conn: &Connection, id: &str) -> Result<Option<Detail>, JournalError> {
    let sql = format!("{SUMMARY} WHERE m.id = ?1");
    let Some(s) = conn
        .query_row(&sql, [id], summary)
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(read_err)?
    else {
        return Ok(None);
    };
    let mut detail = conn
        .query_row(
            "SELECT remote, content_type, sending_application, sending_facility, route, error, plugin_versions, body,
                    peer_subject, run
             FROM messages WHERE id = ?1",
            [id],
            |r| {
                Ok(Detail {
                    summary: s.clone(),
                    remote: r.get(0)?,
                    peer_subject: r.get(8)?,
                    content_type: r.get(1)?,
                    sender: (r.get(2)?, r.get(3)?),
                    route: r.get(4)?,
                    error: r.get(5)?,
                    plugins: plugin_uses(r.get::<_, Option<String>>(6)?.as_deref()),
                    body: r.get(7)?,
                    deliveries: Vec::new(),
                    run: r.get(9)?,
                    earlier: Vec::new(),
                })
            },
        )
        .map_err(read_err)?;
    let mut stmt = conn
        .prepare(
            "SELECT id, destination, n, content_type, state, attempts, last_error, delivered_at, next_attempt_at, body,
                    run
             FROM deliveries WHERE message_id = ?1 ORDER BY run DESC, n, destination",
        )
        .map_err(read_err)?;
    let deliveries = stmt
        .query_map([id], |r| {
            Ok(DeliveryRow {
                id: r.get(0)?,
                destination: r.get(1)?,
                n: r.get(2)?,
                content_type: r.get(3)?,
                state: stored(r, 4)?,
                attempts: r.get(5)?,
                last_error: r.get(6)?,
                delivered_at: r.get(7)?,
                next_attempt_at: r.get(8)?,
                body: r.get(9)?,
                run: r.get(10)?,
            })
        })
        .map_err(read_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(read_err)?;
    detail.deliveries = deliveries;
    let mut stmt = conn
        .prepare(
            "SELECT run, status, error, plugin_versions, replaced_at
             FROM outcomes WHERE message_id = ?1 ORDER BY run",
        )
        .map_err(read_err)?;
    detail.earlier = stmt
        .query_map([id], |r| {
            Ok(EarlierRun {
                run: r.get(0)?,
                status: stored(r, 1)?,
                error: r.get(2)?,
                plugins: plugin_uses(r.get::<_, Option<String>>(3)?.as_deref()),
                replaced_at: r.get(4)?,
            })
        })
        .map_err(read_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(read_err)?;
    Ok(Some(detail))
}
