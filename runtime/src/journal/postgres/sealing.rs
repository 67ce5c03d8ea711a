//! What the sealing layer reads and writes below the message path in
//! PostgreSQL: the values a key rotation (or a journal's first key) seals
//! again, found and replaced a step at a time on the side connection.

use postgres::Client;
use postgres::types::ToSql;

use crate::journal::{JournalError, SealedColumn, Stale};

/// (table, integer key, message id, column) of each sealed column.
fn place(column: SealedColumn) -> (&'static str, &'static str, &'static str, &'static str) {
    match column {
        SealedColumn::MessageBody => ("messages", "seq", "id", "body"),
        SealedColumn::MessageError => ("messages", "seq", "id", "error"),
        SealedColumn::OutcomeError => ("outcomes", "rid", "message_id", "error"),
        SealedColumn::DeliveryBody => ("deliveries", "id", "message_id", "body"),
        SealedColumn::DeliveryError => ("deliveries", "id", "message_id", "last_error"),
        SealedColumn::PatientId => ("patient_ids", "rid", "message_id", "id"),
        SealedColumn::OrderingKey => ("deliveries", "id", "message_id", "ordering_key"),
        SealedColumn::HoldKey => ("order_holds", "rid", "message_id", "ordering_key"),
    }
}

/// A value of `column` as PostgreSQL stores it: `TEXT` or `BYTEA`.
fn value(column: SealedColumn, bytes: &[u8]) -> Box<dyn ToSql + Sync + Send> {
    if column.is_text() {
        Box::new(String::from_utf8_lossy(bytes).into_owned())
    } else {
        Box::new(bytes.to_vec())
    }
}

fn read_err(e: postgres::Error) -> JournalError {
    JournalError::Read(e.to_string())
}

fn write_err(e: postgres::Error) -> JournalError {
    JournalError::Write(e.to_string())
}

/// Up to `limit` values of `column` after row `after` that do not start
/// with `prefix`, in row order.
pub(super) fn stale(
    c: &mut Client,
    column: SealedColumn,
    prefix: &[u8],
    after: i64,
    limit: usize,
) -> Result<Vec<Stale>, JournalError> {
    let (table, row, message, col) = place(column);
    // `substring` of a BYTEA is bytes, `left` of a TEXT characters: the
    // prefixes are ASCII, so both compare what the layer wrote.
    let head = if column.is_text() {
        format!("left({col}, $2::INT)")
    } else {
        format!("substring({col} FROM 1 FOR $2::INT)")
    };
    let sql = format!(
        "SELECT {row}, {message}, {col} FROM {table}
         WHERE {row} > $1 AND {col} IS NOT NULL AND {head} IS DISTINCT FROM $3
         ORDER BY {row} LIMIT $4"
    );
    let len = i32::try_from(prefix.len()).unwrap_or(i32::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let prefix = value(column, prefix);
    let rows = c
        .query(&sql, &[&after, &len, &*prefix, &limit])
        .map_err(read_err)?;
    Ok(rows
        .into_iter()
        .map(|r| Stale {
            column,
            row: r.get(0),
            message_id: r.get(1),
            value: if column.is_text() {
                r.get::<_, String>(2).into_bytes()
            } else {
                r.get(2)
            },
        })
        .collect())
}

/// Replaces each stale value with its new form where it is still the value
/// read, one statement per column (one transaction); how many were
/// replaced.
pub(super) fn replace_stale(
    c: &mut Client,
    done: &[(Stale, Vec<u8>)],
) -> Result<usize, JournalError> {
    let mut tx = c.transaction().map_err(write_err)?;
    let mut written = 0;
    let mut columns: Vec<SealedColumn> = Vec::new();
    for (s, _) in done {
        if !columns.contains(&s.column) {
            columns.push(s.column);
        }
    }
    for column in columns {
        let (table, row, _, col) = place(column);
        let these = done.iter().filter(|(s, _)| s.column == column);
        let rows: Vec<i64> = these.clone().map(|(s, _)| s.row).collect();
        let ty = if column.is_text() { "TEXT" } else { "BYTEA" };
        let sql = format!(
            "UPDATE {table} SET {col} = v.new
             FROM unnest($1::BIGINT[], $2::{ty}[], $3::{ty}[]) AS v (row, new, old)
             WHERE {table}.{row} = v.row AND {table}.{col} = v.old"
        );
        let n = if column.is_text() {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let new: Vec<String> = these.clone().map(|(_, n)| text(n)).collect();
            let old: Vec<String> = these.map(|(s, _)| text(&s.value)).collect();
            tx.execute(&sql, &[&rows, &new, &old])
        } else {
            let new: Vec<&[u8]> = these.clone().map(|(_, n)| n.as_slice()).collect();
            let old: Vec<&[u8]> = these.map(|(s, _)| s.value.as_slice()).collect();
            tx.execute(&sql, &[&rows, &new, &old])
        }
        .map_err(write_err)?;
        written += usize::try_from(n).unwrap_or(usize::MAX);
    }
    tx.commit().map_err(write_err)?;
    Ok(written)
}
