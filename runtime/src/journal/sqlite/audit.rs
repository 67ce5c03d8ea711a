//! The audit trail in SQL: the append-only, hash-chained `audit` table
//! (an `UPDATE` trigger aborts) and the chain's anchor in `meta`. What an
//! entry is and how the chain is checked: [`crate::journal::audit`].

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::journal::JournalError;
use crate::journal::audit::{
    AuditFilter, Entry, Record, Verdict, anchor_text, parse_anchor, seal, verify_chain,
};

fn write_err(e: rusqlite::Error) -> JournalError {
    JournalError::Write(format!("audit trail: {e}"))
}

fn read_err(e: rusqlite::Error) -> JournalError {
    JournalError::Read(format!("audit trail: {e}"))
}

/// The chain's anchor: the place and hash just before the oldest entry.
fn anchor(conn: &Connection) -> Result<(i64, String), JournalError> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'audit_anchor'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(read_err)?;
    Ok(parse_anchor(v.as_deref()))
}

/// Appends `r` at the end of the chain (in its own transaction, so the
/// runtime and the command line can both append).
pub fn append(conn: &mut Connection, r: &Record) -> Result<Entry, JournalError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(write_err)?;
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(write_err)?;
    let (prev_seq, prev) = match last {
        Some(l) => l,
        None => anchor(&tx)?,
    };
    let e = seal(r, prev_seq, prev, crate::journal::now_ms());
    tx.execute(
        "INSERT INTO audit (seq, at, who, via, action, messages, remote, result, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            e.seq,
            e.at,
            e.who,
            e.via,
            e.action,
            serde_json::to_string(&e.messages).unwrap_or_default(),
            e.remote,
            e.result,
            e.prev,
            e.hash
        ],
    )
    .map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    Ok(e)
}

fn row_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let messages: String = row.get(5)?;
    Ok(Entry {
        seq: row.get(0)?,
        at: row.get(1)?,
        who: row.get(2)?,
        via: row.get(3)?,
        action: row.get(4)?,
        messages: serde_json::from_str(&messages).unwrap_or_default(),
        remote: row.get(6)?,
        result: row.get(7)?,
        prev: row.get(8)?,
        hash: row.get(9)?,
    })
}

const COLUMNS: &str = "seq, at, who, via, action, messages, remote, result, prev, hash";

/// Entries matching `f`, newest first.
pub fn list(conn: &Connection, f: &AuditFilter) -> Result<Vec<Entry>, JournalError> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(s) = f.since {
        sql.push_str(" AND at >= ?");
        args.push(s.into());
    }
    if let Some(w) = &f.who {
        sql.push_str(" AND who = ?");
        args.push(w.clone().into());
    }
    if let Some(m) = &f.message {
        sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(audit.messages) WHERE value = ?)");
        args.push(m.clone().into());
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    args.push(i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX).into());
    let mut stmt = conn.prepare(&sql).map_err(read_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), row_entry)
        .map_err(read_err)?;
    rows.collect::<Result<_, _>>().map_err(read_err)
}

/// Walks the chain from its anchor and checks every link and hash.
pub fn verify(conn: &Connection) -> Result<Verdict, JournalError> {
    let anchor = anchor(conn)?;
    let mut stmt = conn
        .prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq"))
        .map_err(read_err)?;
    let rows = stmt.query_map([], row_entry).map_err(read_err)?;
    verify_chain(anchor, rows.map(|r| r.map_err(read_err)))
}

/// The hash of entry `seq`, if the trail still holds it.
pub fn hash_at(conn: &Connection, seq: i64) -> Result<Option<String>, JournalError> {
    conn.query_row("SELECT hash FROM audit WHERE seq = ?1", params![seq], |r| {
        r.get(0)
    })
    .optional()
    .map_err(read_err)
}

/// Removes the entries older than `before` (ms), oldest first, and makes
/// the last one removed the chain's anchor: how many were removed.
pub fn purge(conn: &mut Connection, before: i64) -> Result<usize, JournalError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(write_err)?;
    // Only a prefix of the chain: up to the first entry that is too young.
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit
             WHERE seq < COALESCE((SELECT MIN(seq) FROM audit WHERE at >= ?1), 9223372036854775807)
             ORDER BY seq DESC LIMIT 1",
            params![before],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(write_err)?;
    let Some((seq, hash)) = last else {
        return Ok(0);
    };
    let n = tx
        .execute("DELETE FROM audit WHERE seq <= ?1", params![seq])
        .map_err(write_err)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_anchor', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![anchor_text(seq, &hash)],
    )
    .map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::tests::connection(dir.path());
        (dir, conn)
    }

    fn record(action: &'static str, id: &str) -> Record {
        Record {
            who: "ops".into(),
            via: "api",
            action,
            messages: vec![id.into()],
            remote: "127.0.0.1:5000".into(),
            result: "ok".into(),
        }
    }

    #[test]
    fn edits_and_deletions_are_found() {
        let (_d, mut c) = journal();
        for i in 0..5 {
            append(&mut c, &record("message.body", &format!("m{i}"))).unwrap();
        }
        // Updates are refused outright.
        assert!(
            c.execute("UPDATE audit SET who = 'x' WHERE seq = 2", [])
                .is_err()
        );
        // An edit behind the trigger's back (dropped and remade).
        c.execute_batch(
            "DROP TRIGGER audit_append_only;
             UPDATE audit SET who = 'someone-else' WHERE seq = 3;",
        )
        .unwrap();
        match verify(&c).unwrap() {
            Verdict::Broken { seq: 3, reason } => assert!(reason.contains("edited"), "{reason}"),
            v => panic!("{v:?}"),
        }
        c.execute("UPDATE audit SET who = 'ops' WHERE seq = 3", [])
            .unwrap();
        assert!(matches!(verify(&c).unwrap(), Verdict::Intact { .. }));
        c.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
        match verify(&c).unwrap() {
            Verdict::Broken { seq: 3, reason } => assert!(reason.contains("missing"), "{reason}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn retention_keeps_the_chain_verifiable() {
        let (_d, mut c) = journal();
        for i in 0..4 {
            append(&mut c, &record("message.body", &format!("m{i}"))).unwrap();
        }
        let cutoff = crate::journal::now_ms() + 1;
        std::thread::sleep(std::time::Duration::from_millis(5));
        append(&mut c, &record("reload", "")).unwrap();
        assert_eq!(purge(&mut c, cutoff).unwrap(), 4);
        let Verdict::Intact {
            entries, head_seq, ..
        } = verify(&c).unwrap()
        else {
            panic!()
        };
        assert_eq!((entries, head_seq), (1, 5));
        // Deleting the oldest remaining entry is still found.
        append(&mut c, &record("reload", "")).unwrap();
        c.execute("DELETE FROM audit WHERE seq = 5", []).unwrap();
        assert!(matches!(
            verify(&c).unwrap(),
            Verdict::Broken { seq: 6, .. }
        ));
    }
}
