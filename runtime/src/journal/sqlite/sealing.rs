//! What the sealing layer reads and writes below the message path: the
//! journal's settings (`meta`) and the values a rotation rewrites.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::{read_err, write_err};
use crate::journal::{JournalError, SealedColumn, Stale};

/// (table, integer key, message id, column) of each sealed column.
fn place(column: SealedColumn) -> (&'static str, &'static str, &'static str, &'static str) {
    match column {
        SealedColumn::MessageBody => ("messages", "rowid", "id", "body"),
        SealedColumn::MessageError => ("messages", "rowid", "id", "error"),
        SealedColumn::OutcomeError => ("outcomes", "rowid", "message_id", "error"),
        SealedColumn::DeliveryBody => ("deliveries", "id", "message_id", "body"),
        SealedColumn::DeliveryError => ("deliveries", "id", "message_id", "last_error"),
        SealedColumn::PatientId => ("patient_ids", "rowid", "message_id", "id"),
        SealedColumn::OrderingKey => ("deliveries", "id", "message_id", "ordering_key"),
        SealedColumn::HoldKey => ("order_holds", "rowid", "message_id", "ordering_key"),
    }
}

/// A value of `column` as SQLite compares it: text columns as text.
fn value(column: SealedColumn, bytes: &[u8]) -> Value {
    if column.is_text() {
        Value::Text(String::from_utf8_lossy(bytes).into_owned())
    } else {
        Value::Blob(bytes.to_vec())
    }
}

pub(super) fn setting(c: &Connection, key: &str) -> Result<Option<String>, JournalError> {
    c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(read_err)
}

pub(super) fn set_setting(c: &Connection, key: &str, value: &str) -> Result<(), JournalError> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(drop)
    .map_err(write_err)
}

pub(super) fn stale(
    c: &Connection,
    column: SealedColumn,
    prefix: &[u8],
    after: i64,
    limit: usize,
) -> Result<Vec<Stale>, JournalError> {
    let (table, row, message, col) = place(column);
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {row}, {message}, {col} FROM {table}
             WHERE {row} > ?1 AND {col} IS NOT NULL AND substr({col}, 1, ?2) IS NOT ?3
             ORDER BY {row} LIMIT ?4"
        ))
        .map_err(read_err)?;
    let rows = stmt
        .query_map(
            params![
                after,
                prefix.len() as i64,
                value(column, prefix),
                limit as i64
            ],
            |r| {
                let stored = match r.get::<_, Value>(2)? {
                    Value::Blob(b) => b,
                    Value::Text(t) => t.into_bytes(),
                    other => format!("{other:?}").into_bytes(),
                };
                Ok(Stale {
                    column,
                    row: r.get(0)?,
                    message_id: r.get(1)?,
                    value: stored,
                })
            },
        )
        .map_err(read_err)?;
    rows.collect::<Result<_, _>>().map_err(read_err)
}

pub(super) fn replace_stale(
    c: &mut Connection,
    done: &[(Stale, Vec<u8>)],
) -> Result<usize, JournalError> {
    let tx = c
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(write_err)?;
    let mut written = 0;
    for (old, new) in done {
        let (table, row, _, col) = place(old.column);
        written += tx
            .prepare_cached(&format!(
                "UPDATE {table} SET {col} = ?1 WHERE {row} = ?2 AND {col} IS ?3"
            ))
            .map_err(write_err)?
            .execute(params![
                value(old.column, new),
                old.row,
                value(old.column, &old.value)
            ])
            .map_err(write_err)?;
    }
    tx.commit().map_err(write_err)?;
    Ok(written)
}
