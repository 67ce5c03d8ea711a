//! The journal's file: how a connection is set up (WAL, fsync policy,
//! incremental vacuum) and the schema, checked and migrated in place.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::journal::{JournalError, JournalSync};

/// The schema version this runtime writes.
pub const SCHEMA_VERSION: i64 = 8;

pub(super) fn open_error(path: &Path, reason: impl std::fmt::Display) -> JournalError {
    JournalError::Open {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

pub(super) fn connect(path: &Path, sync: JournalSync) -> Result<Connection, JournalError> {
    let new = !path.exists();
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    // Until the file has passed its checks, closing must not copy a
    // write-ahead log into it: a damaged journal is left as it was found.
    checkpoint_on_close(&conn, false).map_err(|e| open_error(path, e))?;
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

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), JournalError> {
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
    let version = stored_version(&tx).map_err(|e| open_error(path, e))?;
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
    if version < 6 {
        // v6: search by patient. Each message's PID-3 identifiers, indexed;
        // messages recorded before the upgrade are not indexed.
        tx.execute_batch(
            "CREATE TABLE patient_ids (message_id TEXT NOT NULL, id TEXT NOT NULL);
             CREATE INDEX patient_ids_id ON patient_ids (id, message_id);
             CREATE INDEX patient_ids_message ON patient_ids (message_id);",
        )
        .map_err(|e| open_error(path, e))?;
    }
    if version < 7 {
        // v7: reprocessing. A message runs through the plugins once per
        // run; each earlier run's outcome is kept in `outcomes`, each
        // delivery belongs to the run that made it, and the messages an
        // operator asked to run again wait in `reprocess` for the runtime.
        tx.execute_batch(
            "ALTER TABLE messages ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
             ALTER TABLE deliveries ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
             CREATE TABLE outcomes (
               message_id TEXT NOT NULL,
               run INTEGER NOT NULL,
               status TEXT NOT NULL,
               error TEXT,
               plugin_versions TEXT,
               replaced_at INTEGER NOT NULL,
               PRIMARY KEY (message_id, run)
             );
             CREATE TABLE reprocess (
               message_id TEXT PRIMARY KEY,
               requested_at INTEGER NOT NULL
             );",
        )
        .map_err(|e| open_error(path, e))?;
    }
    // v8: no table changes. Bodies, outputs and reasons may be sealed, and
    // patient identifiers and ordering keys hashed (`journal::sealed`,
    // `[runtime] encryption_key`): a weft of schema 7 or older would read
    // ciphertext as a message and hand it on, so it must refuse this file.
    // Indexes changed at every open, not by a new schema version: a
    // runtime of schema 7 opens the journal as before and needs neither.
    // `deliveries_key` (v2) has served no query since v3 added
    // `deliveries_key_seq` with the same leading columns, yet every
    // delivery's insert and change of state rewrote a page of it.
    // `deliveries_pending` holds the pending deliveries in the order
    // `due()` takes them: it reads the first few and stops, where
    // `deliveries_due` made it read, and sort, every pending delivery
    // (bodies and all) to return the first few.
    tx.execute_batch(
        "DROP INDEX IF EXISTS deliveries_key;
         CREATE INDEX IF NOT EXISTS deliveries_pending
           ON deliveries (destination, id, next_attempt_at) WHERE state = 'pending';",
    )
    .map_err(|e| open_error(path, e))?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![SCHEMA_VERSION.to_string()],
    )
    .map_err(|e| open_error(path, e))?;
    tx.commit().map_err(|e| open_error(path, e))
}

/// Whether closing `conn`, the last connection to the file, copies the
/// write-ahead log into it (and removes the log): on once the file has
/// passed its checks, so that a stopped journal is one whole file.
pub(super) fn checkpoint_on_close(conn: &Connection, on: bool) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        !on,
    )
    .map(|_| ())
}

/// The schema version the file holds: 0 for a new file.
pub(super) fn stored_version(conn: &Connection) -> rusqlite::Result<i64> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(0);
    }
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}
