//! The audit trail in PostgreSQL: the append-only, hash-chained `audit`
//! table (an `UPDATE` trigger raises) and the chain's anchor in
//! `weft_meta`, as in `../sqlite/audit.rs`. Nodes append to one chain: an
//! append holds an advisory lock from reading the chain's head to its
//! commit, so two nodes never link to the same entry.

use postgres::{Client, GenericClient};

use super::conn::describe;
use crate::journal::JournalError;
use crate::journal::audit::{
    AuditFilter, Entry, Record, Verdict, anchor_text, parse_anchor, seal, verify_chain,
};

/// The advisory lock appends and purges hold ("audit" in hex).
const AUDIT_LOCK: i64 = 0x61_7564_6974;

fn write_err(e: postgres::Error) -> JournalError {
    JournalError::Write(format!("audit trail: {}", describe(&e)))
}

fn read_err(e: postgres::Error) -> JournalError {
    JournalError::Read(format!("audit trail: {}", describe(&e)))
}

/// The chain's anchor: the place and hash just before the oldest entry.
fn anchor(c: &mut impl GenericClient) -> Result<(i64, String), postgres::Error> {
    let v: Option<String> = c
        .query_opt(
            "SELECT value FROM weft_meta WHERE key = 'audit_anchor'",
            &[],
        )?
        .map(|r| r.get(0));
    Ok(parse_anchor(v.as_deref()))
}

/// Appends `r` at the end of the chain.
pub fn append(c: &mut Client, r: &Record) -> Result<Entry, JournalError> {
    let mut tx = c.transaction().map_err(write_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
        .map_err(write_err)?;
    let last = tx
        .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .map_err(write_err)?
        .map(|row| (row.get::<_, i64>(0), row.get::<_, String>(1)));
    let (prev_seq, prev) = match last {
        Some(l) => l,
        None => anchor(&mut tx).map_err(write_err)?,
    };
    let e = seal(r, prev_seq, prev, crate::journal::now_ms());
    let messages = serde_json::to_string(&e.messages).unwrap_or_default();
    tx.execute(
        "INSERT INTO audit (seq, at, who, via, action, messages, remote, result, prev, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &e.seq, &e.at, &e.who, &e.via, &e.action, &messages, &e.remote, &e.result, &e.prev,
            &e.hash,
        ],
    )
    .map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    Ok(e)
}

fn row_entry(row: &postgres::Row) -> Entry {
    let messages: String = row.get(5);
    Entry {
        seq: row.get(0),
        at: row.get(1),
        who: row.get(2),
        via: row.get(3),
        action: row.get(4),
        messages: serde_json::from_str(&messages).unwrap_or_default(),
        remote: row.get(6),
        result: row.get(7),
        prev: row.get(8),
        hash: row.get(9),
    }
}

const COLUMNS: &str = "seq, at, who, via, action, messages, remote, result, prev, hash";

/// Entries matching `f`, newest first.
pub fn list(c: &mut Client, f: &AuditFilter) -> Result<Vec<Entry>, JournalError> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE TRUE");
    let mut args: Vec<Box<dyn postgres::types::ToSql + Sync>> = Vec::new();
    if let Some(s) = f.since {
        args.push(Box::new(s));
        sql.push_str(&format!(" AND at >= ${}", args.len()));
    }
    if let Some(w) = &f.who {
        args.push(Box::new(w.clone()));
        sql.push_str(&format!(" AND who = ${}", args.len()));
    }
    if let Some(m) = &f.message {
        args.push(Box::new(m.clone()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(audit.messages::jsonb) v
                         WHERE v = ${})",
            args.len()
        ));
    }
    args.push(Box::new(i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX)));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", args.len()));
    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
    Ok(c.query(&sql, &refs)
        .map_err(read_err)?
        .iter()
        .map(row_entry)
        .collect())
}

/// Walks the chain from its anchor and checks every link and hash (in one
/// snapshot: appends beside it do not tear the walk).
pub fn verify(c: &mut Client) -> Result<Verdict, JournalError> {
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(read_err)?;
    let anchor = anchor(&mut tx).map_err(read_err)?;
    // Streamed, not loaded whole: a trail of years is walked in constant
    // memory, as SQLite's is.
    let none: [&str; 0] = [];
    let rows = tx
        .query_raw(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq"), none)
        .map_err(read_err)?;
    verify_chain(
        anchor,
        postgres::fallible_iterator::FallibleIterator::iterator(rows)
            .map(|r| r.map(|r| row_entry(&r)).map_err(read_err)),
    )
}

/// The hash of entry `seq`, if the trail still holds it.
pub fn hash_at(c: &mut Client, seq: i64) -> Result<Option<String>, JournalError> {
    Ok(
        c.query_opt("SELECT hash FROM audit WHERE seq = $1", &[&seq])
            .map_err(read_err)?
            .map(|r| r.get(0)),
    )
}

/// Removes the entries older than `before` (ms), oldest first, and makes
/// the last one removed the chain's anchor: how many were removed.
pub fn purge(c: &mut Client, before: i64) -> Result<usize, JournalError> {
    let mut tx = c.transaction().map_err(write_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
        .map_err(write_err)?;
    // Only a prefix of the chain: up to the first entry that is too young.
    let last = tx
        .query_opt(
            "SELECT seq, hash FROM audit
             WHERE seq < COALESCE((SELECT MIN(seq) FROM audit WHERE at >= $1), 9223372036854775807)
             ORDER BY seq DESC LIMIT 1",
            &[&before],
        )
        .map_err(write_err)?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
    let Some((seq, hash)) = last else {
        return Ok(0);
    };
    let n = tx
        .execute("DELETE FROM audit WHERE seq <= $1", &[&seq])
        .map_err(write_err)?;
    tx.execute(
        "INSERT INTO weft_meta (key, value) VALUES ('audit_anchor', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&anchor_text(seq, &hash)],
    )
    .map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
