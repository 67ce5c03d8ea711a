//! The journal in SQLite, the embedded engine for one node: one file
//! (`data_dir/journal.db`) in WAL mode. In the runtime, one writer thread
//! takes every write of the message path and commits them in groups
//! ([`writer`]); the message path reads on a connection of its own, and
//! operators' queries, actions and the audit trail run on a third, so a
//! long query never holds up intake. A command attached beside the
//! runtime commits each write on its own, waiting for the runtime's
//! writer when they meet (SQLite lets one writer in at a time).

mod audit;
mod operate;
mod query;
mod schema;
mod sealing;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

pub use self::schema::SCHEMA_VERSION;
use self::schema::{checkpoint_on_close, connect, migrate, open_error};
use self::writer::write_loop;
use super::audit::{AuditFilter, Entry, Record, Verdict};
use super::query::{Detail, Filter, Purged, Reprocessed, Resent, Summary};
use super::write::{Op, Request};
use super::{
    Attach, Commit, DueDelivery, Health, Journal, JournalError, JournalSync, MessageStatus,
    NewMessage, Outcome, Recent, Recorded, SealedColumn, Stale, Unfinished,
};

/// The journal's file name in the data directory.
pub const FILE: &str = "journal.db";

/// How long an operator's write waits for the writer thread (or another
/// process) to let go of the file.
const SIDE_BUSY: Duration = Duration::from_secs(30);

/// How many writes may wait for the writer thread before a write waits in
/// its [`Commit`] for room.
const QUEUE: usize = 4096;

/// The SQLite journal.
pub struct SqliteJournal {
    path: PathBuf,
    /// The writer thread's queue; `None` when attached or closed.
    writes: Mutex<Option<SyncSender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Reads of the message path: due deliveries, duplicates, recovery.
    /// `None` once closed.
    reader: Mutex<Option<Connection>>,
    /// Operators' queries and actions and the audit trail; when attached,
    /// every write. `None` once closed.
    side: Mutex<Option<Connection>>,
    /// Attached beside a runtime: writes go through `side`, one by one.
    attached: bool,
    closed: AtomicBool,
}

pub(super) fn read_err(e: rusqlite::Error) -> JournalError {
    JournalError::Read(e.to_string())
}

pub(super) fn write_err(e: rusqlite::Error) -> JournalError {
    JournalError::Write(e.to_string())
}

/// A column holding a stored name (a status, a state), read as its type.
pub(super) fn stored<T: FromStr<Err = String>>(
    r: &rusqlite::Row<'_>,
    column: usize,
) -> rusqlite::Result<T> {
    let text: String = r.get(column)?;
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e.into())
    })
}

/// The columns of a message as [`unfinished`] reads them.
const UNFINISHED: &str =
    "SELECT id, source, remote, received_at, content_type, body, message_type, control_id,
            sending_application, sending_facility, route, peer_subject
     FROM messages";

/// A message to run through the plugins, from an [`UNFINISHED`] row.
fn unfinished(r: &rusqlite::Row<'_>) -> rusqlite::Result<Unfinished> {
    Ok(Unfinished {
        message: NewMessage {
            id: r.get(0)?,
            source: r.get(1)?,
            remote: r.get(2)?,
            peer_subject: r.get(11)?,
            received_at: r.get(3)?,
            content_type: r.get(4)?,
            body: r.get(5)?,
            message_type: r.get(6)?,
            control_id: r.get(7)?,
            sending_application: r.get(8)?,
            sending_facility: r.get(9)?,
            route: r.get(10)?,
            ordering_keys: Vec::new(),
            // Indexed when it was first recorded.
            patient_ids: Vec::new(),
            dedup_since: None,
        },
    })
}

/// Runs `f` on one of the journal's connections, unless it is closed.
fn with<T>(
    conn: &Mutex<Option<Connection>>,
    f: impl FnOnce(&mut Connection) -> Result<T, JournalError>,
) -> Result<T, JournalError> {
    // A panic while a connection was held leaves no transaction open
    // (rusqlite rolls back on drop): the connection is fine to reuse.
    let mut guard: MutexGuard<'_, _> = conn.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.as_mut().ok_or(JournalError::Closed)?)
}

/// Connections to a file that passed its checks: the last one closed
/// leaves the journal one whole file.
fn checked(path: &Path, conns: &[&Connection]) -> Result<(), JournalError> {
    for c in conns {
        checkpoint_on_close(c, true).map_err(|e| open_error(path, e))?;
    }
    Ok(())
}

impl SqliteJournal {
    /// Opens (or creates) the journal at `path`, checks it and migrates its
    /// schema, fsyncing every commit. A file that exists but is empty, is
    /// not a database, or fails the integrity check is an error naming the
    /// file: the journal never silently starts over.
    pub fn open(path: &Path) -> Result<SqliteJournal, JournalError> {
        SqliteJournal::open_with(path, JournalSync::Full)
    }

    /// [`SqliteJournal::open`], with commits fsynced or not; starts the
    /// writer thread.
    pub fn open_with(path: &Path, sync: JournalSync) -> Result<SqliteJournal, JournalError> {
        make_dir(path)?;
        refuse_empty(path)?;
        let mut writer = connect(path, sync)?;
        migrate(&mut writer, path)?;
        let reader = connect(path, sync)?;
        let side = connect(path, sync)?;
        side.busy_timeout(SIDE_BUSY)
            .map_err(|e| open_error(path, e))?;
        checked(path, &[&writer, &reader, &side])?;
        let (tx, rx) = sync_channel::<Request>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("weft-journal".into())
            .spawn(move || write_loop(writer, rx))
            .map_err(|e| open_error(path, format!("cannot start the writer: {e}")))?;
        Ok(SqliteJournal {
            path: path.to_path_buf(),
            writes: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            reader: Mutex::new(Some(reader)),
            side: Mutex::new(Some(side)),
            attached: false,
            closed: AtomicBool::new(false),
        })
    }

    /// The journal at `path` for a command beside the runtime (see
    /// [`crate::journal::attach`]): no writer thread; its schema is brought
    /// up to date only when it is behind (no integrity check, which reads
    /// the whole file).
    pub fn attach(path: &Path, mode: Attach) -> Result<SqliteJournal, JournalError> {
        match mode {
            Attach::Existing if !path.is_file() => {
                return Err(open_error(path, "no journal here (is data_dir right?)"));
            }
            Attach::Existing => {}
            Attach::CreateIfMissing => make_dir(path)?,
        }
        refuse_empty(path)?;
        let mut side = connect(path, JournalSync::Full)?;
        side.busy_timeout(SIDE_BUSY)
            .map_err(|e| open_error(path, e))?;
        if schema::stored_version(&side).map_err(|e| open_error(path, e))? != SCHEMA_VERSION {
            migrate(&mut side, path)?;
        }
        let reader = connect(path, JournalSync::Full)?;
        checked(path, &[&side, &reader])?;
        Ok(SqliteJournal {
            path: path.to_path_buf(),
            writes: Mutex::new(None),
            writer: Mutex::new(None),
            reader: Mutex::new(Some(reader)),
            side: Mutex::new(Some(side)),
            attached: true,
            closed: AtomicBool::new(false),
        })
    }

    /// The journal at `path`, read-only (see [`crate::journal::read_only`]).
    pub fn read_only(path: &Path) -> Result<SqliteJournal, JournalError> {
        use rusqlite::OpenFlags;
        if !path.is_file() {
            return Err(open_error(path, "no journal here (is data_dir right?)"));
        }
        refuse_empty(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(path, e))?;
        conn.busy_timeout(SIDE_BUSY)
            .map_err(|e| open_error(path, e))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(|e| open_error(path, e))?;
        let version = schema::stored_version(&conn).map_err(|e| open_error(path, e))?;
        if version != SCHEMA_VERSION {
            return Err(open_error(
                path,
                format!(
                    "schema version {version}, and this weft reads version {SCHEMA_VERSION} \
                     without changing the file: start this version's `weft run` on it first"
                ),
            ));
        }
        Ok(SqliteJournal {
            path: path.to_path_buf(),
            writes: Mutex::new(None),
            writer: Mutex::new(None),
            reader: Mutex::new(None),
            side: Mutex::new(Some(conn)),
            attached: true,
            closed: AtomicBool::new(false),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn submit(&self, op: Op) -> Commit {
        self.submit_with(op, false)
    }

    /// Queues `op` for the writer; `lazy`: it may wait a moment there for
    /// the next intake's commit.
    fn submit_with(&self, op: Op, lazy: bool) -> Commit {
        if self.closed.load(Ordering::Acquire) {
            return Commit::finished(Err(JournalError::Closed));
        }
        if self.attached {
            return Commit::finished(self.apply_now(&op));
        }
        let sender = self
            .writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        super::write::queue(sender, op, lazy)
    }

    /// An attached journal's write, committed on its own.
    fn apply_now(&self, op: &Op) -> Result<(), JournalError> {
        self.side(|conn| writer::apply_alone(conn, op))
    }

    /// A read of the message path.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        with(&self.reader, |c| f(c).map_err(read_err))
    }

    /// Work on the operators' connection.
    fn side<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        with(&self.side, f)
    }
}

fn make_dir(path: &Path) -> Result<(), JournalError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => crate::private::create_dir(dir)
            .map_err(|e| open_error(path, format!("cannot create its directory: {e}"))),
        None => Ok(()),
    }
}

fn refuse_empty(path: &Path) -> Result<(), JournalError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => Err(open_error(
            path,
            "the file exists but is empty (truncated?); restore it or move it away to start a new journal",
        )),
        _ => Ok(()),
    }
}

impl Drop for SqliteJournal {
    fn drop(&mut self) {
        self.close();
    }
}

impl Journal for SqliteJournal {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn disk_bytes(&self) -> Result<u64, JournalError> {
        // The file and its write-ahead log (and shared-memory index).
        let mut total = 0;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            match std::fs::metadata(&name) {
                Ok(m) => total += m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
                Err(e) => return Err(JournalError::Read(format!("{}: {e}", self.path.display()))),
            }
        }
        Ok(total)
    }

    fn append(&self, message: NewMessage) -> Commit {
        self.submit(Op::Append(Box::new(message)))
    }

    fn record(&self, outcome: Outcome) -> Commit {
        self.submit(Op::Record(outcome))
    }

    fn record_lazily(&self, outcome: Outcome) -> Commit {
        self.submit_with(Op::Record(outcome), true)
    }

    fn append_settled(&self, message: NewMessage, outcome: Outcome) -> Commit {
        self.submit(Op::AppendSettled(Box::new((message, outcome))))
    }

    fn unfinished(&self) -> Result<Vec<Unfinished>, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "{UNFINISHED} WHERE status = ?1 AND id NOT IN (SELECT message_id FROM reprocess)
                 ORDER BY received_at, id"
            ))?;
            let rows = stmt.query_map(params![MessageStatus::Received.as_str()], unfinished)?;
            rows.collect()
        })
    }

    fn take_reprocess(&self, limit: usize) -> Result<Vec<Unfinished>, JournalError> {
        self.side(|c| {
            let ids = operate::take_reprocess(c, limit)?;
            let mut stmt = c
                .prepare_cached(&format!(
                    "{UNFINISHED} WHERE id = ?1 AND status = 'received'"
                ))
                .map_err(read_err)?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(u) = stmt
                    .query_row([id], unfinished)
                    .optional()
                    .map_err(read_err)?
                {
                    out.push(u);
                }
            }
            Ok(out)
        })
    }

    fn take_over(&self, _limit: usize) -> Result<Vec<Unfinished>, JournalError> {
        // One process writes this journal: no other node's work to take.
        Ok(Vec::new())
    }

    // One process writes this journal: there are no nodes to tell apart.
    fn set_plugins(&self, _plugins: &[super::NodePlugin]) -> Result<(), JournalError> {
        Ok(())
    }

    fn nodes(&self) -> Result<Option<Vec<super::Node>>, JournalError> {
        Ok(None)
    }

    fn find_recent(
        &self,
        sending_application: &str,
        sending_facility: &str,
        control_id: &str,
        since: i64,
    ) -> Result<Option<Recent>, JournalError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, status, error FROM messages
                 WHERE sending_application = ?1 AND sending_facility = ?2 AND control_id = ?3
                   AND received_at >= ?4
                 ORDER BY received_at DESC LIMIT 1",
            )?
            .query_row(
                params![sending_application, sending_facility, control_id, since],
                |r| {
                    Ok(Recent {
                        id: r.get(0)?,
                        status: stored(r, 1)?,
                        error: r.get(2)?,
                    })
                },
            )
            .optional()
        })
    }

    fn due(
        &self,
        destination: &str,
        now: i64,
        limit: usize,
        busy: &[i64],
    ) -> Result<Vec<DueDelivery>, JournalError> {
        // Read in id order from the pending deliveries' own index, which
        // stops at `limit`; the deliveries under way are left out by the
        // query itself (a JSON array of their ids), so their bodies are
        // never read.
        let busy = format!(
            "[{}]",
            busy.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(concat!(
                "SELECT d.id, d.message_id, m.control_id, m.message_type, m.received_at, d.n,
                        d.content_type, d.body, d.attempts
                 FROM deliveries d INDEXED BY deliveries_pending
                 JOIN messages m ON m.id = d.message_id
                 WHERE d.destination = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2
                   AND d.id NOT IN (SELECT value FROM json_each(?4))
                   AND ",
                crate::journal::query::head_of_key!(),
                " ORDER BY d.id LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![destination, now, limit as i64, busy], |r| {
                Ok(DueDelivery {
                    id: r.get(0)?,
                    message_id: r.get(1)?,
                    control_id: r.get(2)?,
                    message_type: r.get(3)?,
                    received_at: r.get(4)?,
                    n: r.get::<_, i64>(5)? as usize,
                    content_type: r.get(6)?,
                    body: r.get(7)?,
                    attempts: r.get::<_, i64>(8)? as u32,
                })
            })?;
            rows.collect()
        })
    }

    fn next_due(&self, destination: &str) -> Result<Option<i64>, JournalError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE destination = ?1 AND state = 'pending'",
            )?
            .query_row(params![destination], |r| r.get(0))
        })
    }

    fn delivered(&self, id: i64, at: i64) -> Commit {
        self.submit(Op::Delivered(id, at))
    }

    fn delivered_lazily(&self, id: i64, at: i64) -> Commit {
        self.submit_with(Op::Delivered(id, at), true)
    }

    fn attempt_failed(&self, id: i64, error: &str, next_attempt: Option<i64>) -> Commit {
        self.submit(Op::Failed(id, error.to_string(), next_attempt))
    }

    fn pending_counts(&self) -> Result<Vec<(String, u64)>, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT destination, COUNT(*) FROM deliveries WHERE state = 'pending' GROUP BY destination",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
            rows.collect()
        })
    }

    fn health(&self) -> Result<Health, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare("PRAGMA quick_check")?;
            let problems: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?;
            let problems = problems.into_iter().filter(|p| p != "ok").collect();
            let (pending, dead): (i64, i64) = c.query_row(
                "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'dead'), 0)
                 FROM deliveries WHERE state IN ('pending', 'dead')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let oldest_pending: Option<i64> = c.query_row(
                "SELECT MIN(m.received_at) FROM deliveries d JOIN messages m ON m.id = d.message_id
                 WHERE d.state = 'pending'",
                [],
                |r| r.get(0),
            )?;
            let unfinished: i64 = c.query_row(
                "SELECT COUNT(*) FROM messages WHERE status = 'received'",
                [],
                |r| r.get(0),
            )?;
            Ok(Health {
                integrity: Some(problems),
                pending: pending.max(0) as u64,
                dead: dead.max(0) as u64,
                oldest_pending,
                unfinished: unfinished.max(0) as u64,
            })
        })
    }

    fn snapshot_to(&self, dest: &Path) -> Result<(), JournalError> {
        let Some(target) = dest.to_str() else {
            return Err(JournalError::Write(format!(
                "{}: the path is not UTF-8",
                dest.display()
            )));
        };
        // On the side connection: the reader serves the admin API, and a
        // large journal's copy takes a while. The copy is one read
        // transaction: the writer goes on (WAL), the copy sees none of it.
        self.side(|c| {
            c.execute("VACUUM INTO ?1", [target])
                .map(|_| ())
                .map_err(|e| JournalError::Write(format!("{}: {e}", dest.display())))
        })
    }

    fn backlog(&self, destination: &str, cap: u64) -> Result<(u64, u64), JournalError> {
        self.read(|c| {
            let count = |state: &str| -> rusqlite::Result<u64> {
                c.prepare_cached(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
                     WHERE destination = ?1 AND state = ?2 LIMIT ?3)",
                )?
                .query_row(params![destination, state, cap as i64], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as u64)
            };
            Ok((count("pending")?, count("dead")?))
        })
    }

    fn list(&self, filter: &Filter) -> Result<Vec<Summary>, JournalError> {
        self.side(|c| query::list(c, filter))
    }

    fn show(&self, id: &str) -> Result<Option<Detail>, JournalError> {
        self.side(|c| query::show(c, id))
    }

    fn resend(&self, ids: &[String]) -> Result<Resent, JournalError> {
        self.side(|c| operate::resend(c, ids))
    }

    fn recorded(&self, id: &str) -> Result<Option<Recorded>, JournalError> {
        self.side(|c| query::recorded(c, id))
    }

    fn select(&self, filter: &Filter, max: usize) -> Result<Vec<String>, JournalError> {
        self.side(|c| query::select(c, filter, max))
    }

    fn resend_dead(&self) -> Result<usize, JournalError> {
        self.side(operate::resend_dead)
    }

    fn reprocess(&self, ids: &[String]) -> Result<Reprocessed, JournalError> {
        self.side(|c| operate::reprocess(c, ids, crate::journal::now_ms()))
    }

    fn purge(&self, before: i64) -> Result<Purged, JournalError> {
        self.side(|c| operate::purge(c, before))
    }

    fn purge_to_size(&self, max_bytes: u64) -> Result<(Purged, u64), JournalError> {
        self.side(|c| operate::purge_to_size(c, max_bytes))
    }

    fn audit_append(&self, record: &Record) -> Result<Entry, JournalError> {
        self.side(|c| audit::append(c, record))
    }

    fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<Entry>, JournalError> {
        self.side(|c| audit::list(c, filter))
    }

    fn audit_verify(&self) -> Result<Verdict, JournalError> {
        self.side(|c| audit::verify(c))
    }

    fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, JournalError> {
        self.side(|c| audit::hash_at(c, seq))
    }

    fn audit_purge(&self, before: i64) -> Result<usize, JournalError> {
        self.side(|c| audit::purge(c, before))
    }

    fn setting(&self, key: &str) -> Result<Option<String>, JournalError> {
        self.side(|c| sealing::setting(c, key))
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), JournalError> {
        self.side(|c| sealing::set_setting(c, key, value))
    }

    fn stale(
        &self,
        column: SealedColumn,
        prefix: &[u8],
        after: i64,
        limit: usize,
    ) -> Result<Vec<Stale>, JournalError> {
        self.side(|c| sealing::stale(c, column, prefix, after, limit))
    }

    fn replace_stale(&self, done: &[(Stale, Vec<u8>)]) -> Result<usize, JournalError> {
        self.side(|c| sealing::replace_stale(c, done))
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        // The operators' connection last: as the last one to the file, it
        // copies the write-ahead log in and removes it.
        for conn in [&self.reader, &self.side] {
            conn.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
    }
}

#[cfg(test)]
mod tests;
