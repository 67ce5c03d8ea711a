//! The journal in SQLite (WAL, `synchronous=FULL`): one writer thread takes
//! every write, applies as many as are waiting in one transaction, commits
//! (one fsync for the lot) and only then answers each caller.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{
    DueDelivery, Journal, JournalError, JournalSync, MessageStatus, NewMessage, Outcome, Unfinished,
};

/// The schema version this runtime writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Most writes applied in one transaction.
const MAX_BATCH: usize = 1024;

/// A write waiting for its commit. When the writer's queue was full (the
/// disk is behind), the write itself waits in here and is queued by
/// whoever waits: a plain thread sleeps, async code yields, so a tokio
/// worker thread never sleeps on a full queue. Wait for every commit: one
/// dropped unwaited may drop a write still waiting for room.
pub struct Commit {
    rx: oneshot::Receiver<Result<(), JournalError>>,
    pending: Option<(SyncSender<Request>, Request)>,
}

/// How long to wait before trying a full queue again.
const QUEUE_RETRY: std::time::Duration = std::time::Duration::from_micros(200);

impl Commit {
    /// Tries to queue a write still waiting for room: `Err(())` when the
    /// queue is still full.
    fn try_queue(&mut self) -> Result<(), ()> {
        let Some((sender, req)) = self.pending.take() else {
            return Ok(());
        };
        match sender.try_send(req) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(req)) => {
                self.pending = Some((sender, req));
                Err(())
            }
            // The writer is gone: the reply channel closes with the request.
            Err(TrySendError::Disconnected(_)) => Ok(()),
        }
    }

    /// Waits for the commit from a plain thread.
    pub fn wait(mut self) -> Result<(), JournalError> {
        while self.try_queue().is_err() {
            std::thread::sleep(QUEUE_RETRY);
        }
        self.rx.blocking_recv().unwrap_or(Err(JournalError::Closed))
    }

    /// Waits for the commit from async code.
    pub async fn done(mut self) -> Result<(), JournalError> {
        while self.try_queue().is_err() {
            tokio::time::sleep(QUEUE_RETRY).await;
        }
        self.rx.await.unwrap_or(Err(JournalError::Closed))
    }
}

enum Op {
    Append(NewMessage),
    Record(Outcome),
    Delivered(i64, i64),
    Failed(i64, String, Option<i64>),
}

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<(), JournalError>>,
}

/// The SQLite journal.
pub struct SqliteJournal {
    path: PathBuf,
    writes: Mutex<Option<SyncSender<Request>>>,
    reader: Mutex<Connection>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn open_error(path: &Path, reason: impl std::fmt::Display) -> JournalError {
    JournalError::Open {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn connect(path: &Path, sync: JournalSync) -> Result<Connection, JournalError> {
    let new = !path.exists();
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| open_error(path, e))?;
    // On a new file this must come before WAL mode is set: it lets purges
    // give space back to the file system (`PRAGMA incremental_vacuum`).
    // (Never on an existing file: it would write before the integrity check.)
    if new {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(|e| open_error(path, e))?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| open_error(path, e))?;
    let sync = match sync {
        JournalSync::Full => "FULL",
        JournalSync::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(|e| open_error(path, e))?;
    // After a burst, the write-ahead log shrinks back to this at the next
    // checkpoint instead of keeping its peak size.
    conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)
        .map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// A connection to the journal at `path`, made (and its schema brought up
/// to date) if need be: for the command line's own writes, such as audit
/// entries, beside a running `weft run`.
pub fn open_connection(path: &Path) -> Result<Connection, JournalError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::private::create_dir(dir)
            .map_err(|e| open_error(path, format!("cannot create its directory: {e}")))?;
    }
    let mut conn = connect(path, JournalSync::Full)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| open_error(path, e))?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), JournalError> {
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| open_error(path, format!("integrity check failed: {e}")))?;
    if check != "ok" {
        return Err(open_error(path, format!("integrity check failed: {check}")));
    }
    // A journal made before space could be given back is rebuilt once
    // (VACUUM) so that purges shrink the file.
    let auto_vacuum: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    if auto_vacuum == 0 {
        tracing::info!(path = %path.display(), "rebuilding the journal once so that purges give space back");
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
            .map_err(|e| open_error(path, e))?;
    }
    let tx = conn.transaction().map_err(|e| open_error(path, e))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    )
    .map_err(|e| open_error(path, e))?;
    let version: i64 = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(|e| open_error(path, e))?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(open_error(
            path,
            format!(
                "schema version {version} is newer than this runtime's ({SCHEMA_VERSION}); upgrade weft"
            ),
        ));
    }
    if version < 1 {
        tx.execute_batch(
            "CREATE TABLE messages (
                id TEXT PRIMARY KEY,
                source TEXT NOT NULL,
                remote TEXT,
                received_at INTEGER NOT NULL,
                content_type TEXT NOT NULL,
                body BLOB NOT NULL,
                message_type TEXT NOT NULL,
                control_id TEXT NOT NULL,
                sending_application TEXT NOT NULL,
                sending_facility TEXT NOT NULL,
                route TEXT NOT NULL,
                status TEXT NOT NULL,
                error TEXT,
                plugin_versions TEXT
            );
            CREATE INDEX messages_received ON messages (received_at);
            CREATE INDEX messages_status ON messages (status, received_at);
            CREATE INDEX messages_control ON messages (sending_application, sending_facility, control_id);
            CREATE TABLE deliveries (
                id INTEGER PRIMARY KEY,
                message_id TEXT NOT NULL REFERENCES messages (id),
                destination TEXT NOT NULL,
                n INTEGER NOT NULL,
                content_type TEXT NOT NULL,
                body BLOB NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL,
                last_error TEXT,
                delivered_at INTEGER
            );
            CREATE INDEX deliveries_due ON deliveries (destination, state, next_attempt_at);
            CREATE INDEX deliveries_message ON deliveries (message_id);",
        )
        .map_err(|e| open_error(path, e))?;
    }
    if version < 2 {
        // v2: per-key ordering of deliveries.
        tx.execute_batch(
            "ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
             CREATE INDEX deliveries_key ON deliveries (destination, ordering_key, state, id);",
        )
        .map_err(|e| open_error(path, e))?;
    }
    if version < 3 {
        // v3: per-key order is intake order, not the order plugins finish
        // in: messages carry their intake sequence, deliveries the
        // sequence of their message, and a message not yet recorded holds
        // its keys.
        tx.execute_batch(
            "ALTER TABLE messages ADD COLUMN seq INTEGER;
             UPDATE messages SET seq = rowid;
             CREATE INDEX messages_seq ON messages (seq);
             ALTER TABLE deliveries ADD COLUMN message_seq INTEGER;
             UPDATE deliveries SET message_seq =
               (SELECT m.seq FROM messages m WHERE m.id = deliveries.message_id);
             CREATE INDEX deliveries_key_seq ON deliveries (destination, ordering_key, state, message_seq);
             CREATE TABLE order_holds (
               message_id TEXT NOT NULL,
               message_seq INTEGER NOT NULL,
               destination TEXT NOT NULL,
               ordering_key TEXT NOT NULL
             );
             CREATE INDEX order_holds_key ON order_holds (destination, ordering_key, message_seq);
             CREATE INDEX order_holds_message ON order_holds (message_id);",
        )
        .map_err(|e| open_error(path, e))?;
    }
    if version < 4 {
        // v4: the subject of a sender's client certificate (mutual TLS).
        tx.execute_batch("ALTER TABLE messages ADD COLUMN peer_subject TEXT;")
            .map_err(|e| open_error(path, e))?;
    }
    if version < 5 {
        // v5: the audit trail, append-only and hash-chained (audit.rs).
        tx.execute_batch(
            "CREATE TABLE audit (
                seq INTEGER PRIMARY KEY,
                at INTEGER NOT NULL,
                who TEXT NOT NULL,
                via TEXT NOT NULL,
                action TEXT NOT NULL,
                messages TEXT NOT NULL,
                remote TEXT NOT NULL,
                result TEXT NOT NULL,
                prev TEXT NOT NULL,
                hash TEXT NOT NULL
             );
             CREATE INDEX audit_at ON audit (at);
             CREATE INDEX audit_who ON audit (who, seq);
             CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
             BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;",
        )
        .map_err(|e| open_error(path, e))?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![SCHEMA_VERSION.to_string()],
    )
    .map_err(|e| open_error(path, e))?;
    tx.commit().map_err(|e| open_error(path, e))
}

impl SqliteJournal {
    /// Opens (or creates) the journal at `path`, checks it and migrates its
    /// schema. A file that exists but is empty, is not a database, or fails
    /// the integrity check is an error naming the file: the journal never
    /// silently starts over.
    pub fn open(path: &Path) -> Result<SqliteJournal, JournalError> {
        SqliteJournal::open_with(path, JournalSync::Full)
    }

    /// [`SqliteJournal::open`], with commits fsynced or not.
    pub fn open_with(path: &Path, sync: JournalSync) -> Result<SqliteJournal, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private::create_dir(dir)
                .map_err(|e| open_error(path, format!("cannot create its directory: {e}")))?;
        }
        if let Ok(meta) = std::fs::metadata(path)
            && meta.len() == 0
        {
            return Err(open_error(
                path,
                "the file exists but is empty (truncated?); restore it or move it away to start a new journal",
            ));
        }
        let mut writer = connect(path, sync)?;
        migrate(&mut writer, path)?;
        let reader = connect(path, sync)?;
        let (tx, rx) = sync_channel::<Request>(4096);
        let handle = std::thread::Builder::new()
            .name("weft-journal".into())
            .spawn(move || write_loop(writer, rx))
            .map_err(|e| open_error(path, format!("cannot start the writer: {e}")))?;
        Ok(SqliteJournal {
            path: path.to_path_buf(),
            writes: Mutex::new(Some(tx)),
            reader: Mutex::new(reader),
            writer: Mutex::new(Some(handle)),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn submit(&self, op: Op) -> Commit {
        let (reply, rx) = oneshot::channel();
        let sender = self.writes.lock().ok().and_then(|w| w.clone());
        let mut commit = Commit { rx, pending: None };
        match sender {
            // A full queue means the disk is behind: the write waits in the
            // commit, it is never dropped.
            Some(s) => match s.try_send(Request { op, reply }) {
                Ok(()) => {}
                Err(TrySendError::Full(req)) => commit.pending = Some((s, req)),
                Err(TrySendError::Disconnected(req)) => {
                    let _ = req.reply.send(Err(JournalError::Closed));
                }
            },
            None => {
                let _ = reply.send(Err(JournalError::Closed));
            }
        }
        commit
    }

    /// Records a message; the returned [`Commit`] resolves once it is
    /// durable.
    pub fn append_commit(&self, message: NewMessage) -> Commit {
        self.submit(Op::Append(message))
    }

    /// Records a delivery as done; resolves once durable.
    pub fn delivered_commit(&self, id: i64, at: i64) -> Commit {
        self.submit(Op::Delivered(id, at))
    }

    /// Records what the plugins made of a message; resolves once durable.
    pub fn record_commit(&self, outcome: Outcome) -> Commit {
        self.submit(Op::Record(outcome))
    }

    /// Records a failed attempt; resolves once durable.
    pub fn failed_commit(&self, id: i64, error: &str, next: Option<i64>) -> Commit {
        self.submit(Op::Failed(id, error.to_string(), next))
    }

    /// Stops the writer after the writes already queued.
    pub fn close(&self) {
        if let Ok(mut w) = self.writes.lock() {
            w.take();
        }
        if let Some(h) = self.writer.lock().ok().and_then(|mut h| h.take()) {
            let _ = h.join();
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| JournalError::Read("reader lock poisoned".into()))?;
        f(&conn).map_err(|e| JournalError::Read(e.to_string()))
    }
}

impl Drop for SqliteJournal {
    fn drop(&mut self) {
        self.close();
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Append(m) => {
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
        }
        Op::Record(o) => {
            let versions: Vec<String> =
                o.versions.iter().map(|(p, s)| format!("{p}@{s}")).collect();
            tx.prepare_cached(
                "UPDATE messages SET status = ?2, error = ?3, plugin_versions = ?4 WHERE id = ?1",
            )?
            .execute(params![
                o.message_id,
                o.status.as_str(),
                o.error,
                versions.join(",")
            ])?;
            tx.prepare_cached("DELETE FROM order_holds WHERE message_id = ?1")?
                .execute(params![o.message_id])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO deliveries (message_id, destination, n, content_type, body, state, next_attempt_at,
                   ordering_key, message_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, (SELECT seq FROM messages WHERE id = ?1))",
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
        }
        Op::Delivered(id, at) => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'delivered', delivered_at = ?2, attempts = attempts + 1 WHERE id = ?1",
            )?
            .execute(params![id, at])?;
        }
        Op::Failed(id, error, next) => match next {
            Some(at) => {
                tx.execute(
                    "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                    params![id, error, at],
                )?;
            }
            None => {
                tx.execute(
                    "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, state = 'dead' WHERE id = ?1",
                    params![id, error],
                )?;
            }
        },
    }
    Ok(())
}

fn write_loop(mut conn: Connection, rx: Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        // Fast path: the whole batch in one transaction, one fsync.
        let together = (|| {
            let tx = conn.transaction()?;
            for r in &batch {
                apply(&tx, &r.op)?;
            }
            tx.commit()
        })();
        match together {
            Ok(()) => {
                for r in batch {
                    let _ = r.reply.send(Ok(()));
                }
            }
            Err(_) => {
                // Something in the batch failed: apply each alone, so only
                // the writes that really fail are refused.
                for r in batch {
                    let alone = (|| {
                        let tx = conn.transaction()?;
                        apply(&tx, &r.op)?;
                        tx.commit()
                    })();
                    let _ = r
                        .reply
                        .send(alone.map_err(|e| JournalError::Write(e.to_string())));
                }
            }
        }
    }
}

impl Journal for SqliteJournal {
    fn append(&self, message: NewMessage) -> Result<(), JournalError> {
        self.append_commit(message).wait()
    }

    fn record(&self, outcome: Outcome) -> Result<(), JournalError> {
        self.submit(Op::Record(outcome)).wait()
    }

    fn due(
        &self,
        destination: &str,
        now: i64,
        limit: usize,
        busy: &[i64],
    ) -> Result<Vec<DueDelivery>, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.id, d.message_id, m.control_id, m.message_type, m.received_at, d.n,
                        d.content_type, d.body, d.attempts
                 FROM deliveries d JOIN messages m ON m.id = d.message_id
                 WHERE d.destination = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2
                   AND NOT EXISTS (
                     SELECT 1 FROM deliveries e
                     WHERE e.destination = d.destination AND e.ordering_key = d.ordering_key
                       AND e.state = 'pending'
                       AND (e.message_seq < d.message_seq
                            OR (e.message_seq = d.message_seq AND e.id < d.id)))
                   AND NOT EXISTS (
                     SELECT 1 FROM order_holds h
                     WHERE h.destination = d.destination AND h.ordering_key = d.ordering_key
                       AND h.message_seq < d.message_seq)
                 ORDER BY d.id LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![destination, now, (limit + busy.len()) as i64],
                |r| {
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
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let d = row?;
                if !busy.contains(&d.id) && out.len() < limit {
                    out.push(d);
                }
            }
            Ok(out)
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

    fn delivered(&self, id: i64, at: i64) -> Result<(), JournalError> {
        self.delivered_commit(id, at).wait()
    }

    fn attempt_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt: Option<i64>,
    ) -> Result<(), JournalError> {
        self.failed_commit(id, error, next_attempt).wait()
    }

    fn unfinished(&self) -> Result<Vec<Unfinished>, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, source, remote, received_at, content_type, body, message_type, control_id,
                        sending_application, sending_facility, route, peer_subject
                 FROM messages WHERE status = ?1 ORDER BY received_at, id",
            )?;
            let rows = stmt.query_map(params![MessageStatus::Received.as_str()], |r| {
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
                    },
                })
            })?;
            rows.collect()
        })
    }

    fn find_recent(
        &self,
        sending_application: &str,
        sending_facility: &str,
        control_id: &str,
        since: i64,
    ) -> Result<Option<(String, String, Option<String>)>, JournalError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, status, error FROM messages
                 WHERE sending_application = ?1 AND sending_facility = ?2 AND control_id = ?3
                   AND received_at >= ?4
                 ORDER BY received_at DESC LIMIT 1",
            )?
            .query_row(
                params![sending_application, sending_facility, control_id, since],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
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
}

/// Commits a journal write, retrying with backoff (200 ms doubling to 5 s)
/// while the journal cannot write; gives up only when the journal closes.
/// The first failure and the recovery are logged.
pub async fn commit_until_done(
    what: &str,
    message_id: &str,
    commit: impl Fn() -> Commit,
) -> Result<(), JournalError> {
    let mut wait = Duration::from_millis(200);
    let mut failed = false;
    loop {
        match commit().done().await {
            Ok(()) => {
                if failed {
                    tracing::info!(message_id, "journal writable again: recorded {what}");
                }
                return Ok(());
            }
            Err(JournalError::Closed) => {
                if failed {
                    tracing::warn!(
                        message_id,
                        "stopped before {what} could be recorded; it is redone at the next start"
                    );
                }
                return Err(JournalError::Closed);
            }
            Err(e) => {
                if !failed {
                    tracing::error!(message_id, error = %e, "cannot record {what}; retrying until the journal can write");
                    failed = true;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::NewDelivery;

    fn msg(id: &str) -> NewMessage {
        crate::journal::test_message(id)
    }

    /// A transformed message with one delivery to `d` under `key`.
    fn keyed_outcome(id: &str, key: &str) -> Outcome {
        Outcome {
            message_id: id.into(),
            status: MessageStatus::Transformed,
            error: None,
            versions: vec![],
            deliveries: vec![NewDelivery {
                destination: "d".into(),
                n: 1,
                content_type: "text/plain".into(),
                body: vec![],
                ordering_key: Some(key.into()),
            }],
        }
    }

    /// The messages whose deliveries to `d` are due now, skipping `busy`.
    fn due_ids(j: &SqliteJournal, busy: &[i64]) -> Vec<String> {
        j.due("d", 10, 10, busy)
            .unwrap()
            .into_iter()
            .map(|d| d.message_id)
            .collect()
    }

    #[test]
    fn records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        {
            let j = SqliteJournal::open(&path).unwrap();
            j.append(msg("m1")).unwrap();
            j.append(msg("m2")).unwrap();
            j.record(Outcome {
                message_id: "m1".into(),
                status: MessageStatus::Transformed,
                error: None,
                versions: vec![("p".into(), "abc".into())],
                deliveries: vec![NewDelivery {
                    destination: "files".into(),
                    n: 1,
                    content_type: "application/json".into(),
                    body: b"{}".to_vec(),
                    ordering_key: None,
                }],
            })
            .unwrap();
        }
        let j = SqliteJournal::open(&path).unwrap();
        let unfinished = j.unfinished().unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].message.id, "m2");
        let due = j.due("files", 10, 10, &[]).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].control_id, "C-m1");
        j.attempt_failed(due[0].id, "down", Some(100)).unwrap();
        assert!(j.due("files", 10, 10, &[]).unwrap().is_empty());
        assert_eq!(j.next_due("files").unwrap(), Some(100));
        assert_eq!(j.due("files", 100, 10, &[]).unwrap()[0].attempts, 1);
        j.delivered(due[0].id, 200).unwrap();
        assert_eq!(j.next_due("files").unwrap(), None);
        assert!(j.pending_counts().unwrap().is_empty());
    }

    #[test]
    fn order_is_intake_order_not_the_order_plugins_finish_in() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(&dir.path().join("j.db")).unwrap();
        let keyed = |id: &str| NewMessage {
            ordering_keys: vec![("d".into(), "A".into())],
            ..msg(id)
        };
        let outcome = |id: &str| keyed_outcome(id, "A");
        j.append(keyed("first")).unwrap();
        j.append(keyed("second")).unwrap();
        j.append(msg("unkeyed")).unwrap();
        // The second message's plugins finish first: it waits for the first.
        j.record(outcome("second")).unwrap();
        assert!(j.due("d", 10, 10, &[]).unwrap().is_empty());
        // A first message that maps to nothing releases it.
        j.record(Outcome {
            deliveries: vec![],
            status: MessageStatus::Rejected,
            ..outcome("first")
        })
        .unwrap();
        assert_eq!(due_ids(&j, &[]), ["second"]);
        // Recorded later but received earlier: goes first.
        j.append(keyed("third")).unwrap();
        j.append(keyed("fourth")).unwrap();
        j.record(outcome("fourth")).unwrap();
        j.record(outcome("third")).unwrap();
        let due = j.due("d", 10, 10, &[]).unwrap();
        j.delivered(due[0].id, 20).unwrap();
        assert_eq!(due_ids(&j, &[]), ["third"]);
    }

    #[test]
    fn a_stuck_head_blocks_only_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(&dir.path().join("j.db")).unwrap();
        for (i, key) in ["A", "A", "B"].iter().enumerate() {
            let id = format!("m{i}");
            j.append(msg(&id)).unwrap();
            j.record(keyed_outcome(&id, key)).unwrap();
        }
        let due = j.due("d", 10, 10, &[]).unwrap();
        let ids: Vec<&str> = due.iter().map(|d| d.message_id.as_str()).collect();
        assert_eq!(ids, ["m0", "m2"], "only the head of A, and B");
        // A's head fails and waits: A stays blocked, B is unaffected.
        j.attempt_failed(due[0].id, "down", Some(1000)).unwrap();
        assert_eq!(due_ids(&j, &[]), ["m2"]);
        j.delivered(due[0].id, 1000).unwrap();
        assert_eq!(
            due_ids(&j, &[due[1].id]),
            ["m1"],
            "A's next one is free once its head is delivered"
        );
    }

    #[test]
    fn refuses_a_damaged_journal() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let e = SqliteJournal::open(&empty).err().unwrap();
        assert!(
            e.to_string().contains("empty.db") && e.to_string().contains("empty"),
            "{e}"
        );
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
        let e = SqliteJournal::open(&junk).err().unwrap();
        assert!(e.to_string().contains("junk.db"), "{e}");
    }

    #[test]
    fn purges_give_space_back_even_in_an_older_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // A journal from before incremental vacuum was set.
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "journal_mode", "WAL").unwrap();
            c.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
                .unwrap();
        }
        let j = SqliteJournal::open(&path).unwrap();
        for i in 0..300 {
            let mut m = msg(&format!("m{i}"));
            m.body = vec![b'x'; 8000];
            j.append(m).unwrap();
            j.record(Outcome {
                message_id: format!("m{i}"),
                status: MessageStatus::Rejected,
                error: Some("no".into()),
                versions: vec![],
                deliveries: vec![],
            })
            .unwrap();
        }
        j.close();
        let mut conn = super::super::operate::open(&path).unwrap();
        let auto: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(auto, 2, "rebuilt with incremental vacuum");
        let before = super::super::operate::used_bytes(&conn).unwrap();
        assert!(before > 2_000_000, "{before}");
        let (m, _, after) = super::super::operate::purge_to_size(&mut conn, 1024 * 1024).unwrap();
        assert!(m > 150 && m < 300, "{m}");
        assert!(after <= 1024 * 1024, "{after}");
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let file = std::fs::metadata(&path).unwrap().len();
        assert!(file <= 1024 * 1024, "the file shrank: {file}");
    }

    #[test]
    fn many_writers_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let j = std::sync::Arc::new(SqliteJournal::open(&dir.path().join("j.db")).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let j = j.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        j.append(msg(&format!("t{t}-{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(j.unfinished().unwrap().len(), 1600);
    }
}
