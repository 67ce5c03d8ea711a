//! The audit trail (HIPAA §164.312(b)): every access to patient data and
//! every operator action, who did it, from where, on which messages, and
//! how it ended. Entries live in the journal's `audit` table, append-only
//! (an update is refused by a trigger) and hash-chained: each entry holds
//! the SHA-256 of the one before it and of its own content, so an edited
//! entry, or one deleted from the middle, is found by [`verify`].
//! Retention removes only entries older than `runtime.audit_retain_days`,
//! from the oldest, and keeps the last removed entry's hash as the chain's
//! new anchor.
//!
//! The chain shows tampering by anyone who edits rows without recomputing
//! every later hash. Someone who can rewrite the whole file can rewrite
//! the whole chain: `weft audit verify` prints the newest entry's hash, to
//! be kept somewhere else and compared later.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::JournalError;

/// The hash before the first entry of a new journal.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its place in the chain, from 1.
    pub seq: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who: a token's name (the admin API), or `os:USER` (the command line).
    pub who: String,
    /// `api` or `cli`.
    pub via: String,
    /// What: `message.body`, `messages.resend`, `messages.resend-dead`,
    /// `messages.purge`, `reload`, `token.add`, `token.revoke`.
    pub action: String,
    /// The message ids it touched (empty when none or all).
    pub messages: Vec<String>,
    /// From where: the peer's address, or `local`.
    pub remote: String,
    /// How it ended: `ok`, `refused: …`, `failed: …`, or counts.
    pub result: String,
    /// The hash of the entry before it.
    pub prev: String,
    /// The hash of this entry (its content and `prev`).
    pub hash: String,
}

/// An entry to append: everything but its place and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Who.
    pub who: String,
    /// `api` or `cli`.
    pub via: &'static str,
    /// What.
    pub action: &'static str,
    /// Which messages.
    pub messages: Vec<String>,
    /// From where.
    pub remote: String,
    /// How it ended.
    pub result: String,
}

impl Record {
    /// A record of `action` by the command line's OS user.
    pub fn cli(action: &'static str, messages: Vec<String>, result: impl Into<String>) -> Record {
        Record {
            who: format!("os:{}", os_user()),
            via: "cli",
            action,
            messages,
            remote: "local".into(),
            result: result.into(),
        }
    }
}

/// The name of the user running this process (`uid N` when it has none).
pub fn os_user() -> String {
    #[cfg(unix)]
    {
        // SAFETY: getuid cannot fail; getpwuid_r writes only into the
        // buffers given, and the name is copied out before they go.
        unsafe {
            let uid = libc::getuid();
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut buf = vec![0 as libc::c_char; 4096];
            let mut out: *mut libc::passwd = std::ptr::null_mut();
            if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) == 0
                && !out.is_null()
                && !pwd.pw_name.is_null()
            {
                return std::ffi::CStr::from_ptr(pwd.pw_name)
                    .to_string_lossy()
                    .into_owned();
            }
            format!("uid {uid}")
        }
    }
    #[cfg(not(unix))]
    {
        std::env::var("USERNAME").unwrap_or_else(|_| "unknown".into())
    }
}

fn write_err(e: rusqlite::Error) -> JournalError {
    JournalError::Write(format!("audit trail: {e}"))
}

fn read_err(e: rusqlite::Error) -> JournalError {
    JournalError::Read(format!("audit trail: {e}"))
}

/// The hash of an entry's content and the hash before it.
#[allow(clippy::too_many_arguments)]
fn hash(
    seq: i64,
    at: i64,
    who: &str,
    via: &str,
    action: &str,
    messages: &str,
    remote: &str,
    result: &str,
    prev: &str,
) -> String {
    let content = json!([seq, at, who, via, action, messages, remote, result, prev]).to_string();
    crate::plugins::engine::hex(&Sha256::digest(content.as_bytes()))
}

fn entry_hash(e: &Entry) -> String {
    let messages = serde_json::to_string(&e.messages).unwrap_or_default();
    hash(
        e.seq, e.at, &e.who, &e.via, &e.action, &messages, &e.remote, &e.result, &e.prev,
    )
}

/// The chain's anchor: the place and hash just before the oldest entry
/// (`(0, GENESIS)` until retention removes an entry).
fn anchor(conn: &Connection) -> Result<(i64, String), JournalError> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'audit_anchor'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(read_err)?;
    Ok(v.and_then(|v| {
        let (seq, hash) = v.split_once(':')?;
        Some((seq.parse().ok()?, hash.to_string()))
    })
    .unwrap_or((0, GENESIS.to_string())))
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
    let mut e = Entry {
        seq: prev_seq + 1,
        at: super::now_ms(),
        who: r.who.clone(),
        via: r.via.to_string(),
        action: r.action.to_string(),
        messages: r.messages.clone(),
        remote: r.remote.clone(),
        result: r.result.clone(),
        prev,
        hash: String::new(),
    };
    e.hash = entry_hash(&e);
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

/// Which entries [`list`] returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// At or after (ms).
    pub since: Option<i64>,
    /// Exactly this `who`.
    pub who: Option<String>,
    /// Touching this message id.
    pub message: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
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

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry is intact: how many, and the newest one's place and hash.
    Intact {
        /// Entries checked.
        entries: u64,
        /// The newest entry's place (the anchor's when there is none).
        head_seq: i64,
        /// The newest entry's hash.
        head_hash: String,
    },
    /// The first broken entry and what is wrong with it.
    Broken {
        /// Its place in the chain.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// Walks the chain from its anchor and checks every link and hash.
pub fn verify(conn: &Connection) -> Result<Verdict, JournalError> {
    let (mut seq, mut prev) = anchor(conn)?;
    let mut stmt = conn
        .prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq"))
        .map_err(read_err)?;
    let mut rows = stmt.query([]).map_err(read_err)?;
    let mut entries = 0u64;
    while let Some(row) = rows.next().map_err(read_err)? {
        let e = row_entry(row).map_err(read_err)?;
        let broken = |reason: String| Ok(Verdict::Broken { seq: e.seq, reason });
        if e.seq != seq + 1 {
            return broken(format!(
                "entries {} to {} are missing (deleted)",
                seq + 1,
                e.seq - 1
            ));
        }
        if e.prev != prev {
            return broken("it does not follow the entry before it (edited or reordered)".into());
        }
        if entry_hash(&e) != e.hash {
            return broken("its content does not match its hash (edited)".into());
        }
        seq = e.seq;
        prev = e.hash;
        entries += 1;
    }
    Ok(Verdict::Intact {
        entries,
        head_seq: seq,
        head_hash: prev,
    })
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
        params![format!("{seq}:{hash}")],
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
        let conn = crate::journal::sqlite::open_connection(&dir.path().join("j.db")).unwrap();
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
    fn an_intact_chain_verifies_and_lists_newest_first() {
        let (_d, mut c) = journal();
        assert!(matches!(
            verify(&c).unwrap(),
            Verdict::Intact { entries: 0, .. }
        ));
        for i in 0..5 {
            append(&mut c, &record("message.body", &format!("m{i}"))).unwrap();
        }
        let Verdict::Intact {
            entries, head_seq, ..
        } = verify(&c).unwrap()
        else {
            panic!()
        };
        assert_eq!((entries, head_seq), (5, 5));
        let f = AuditFilter {
            message: Some("m3".into()),
            limit: 10,
            ..Default::default()
        };
        let got = list(&c, &f).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].seq, 4);
        let all = list(
            &c,
            &AuditFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(all[0].seq, 5);
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
