//! The journal in PostgreSQL, for several nodes sharing one database.
//!
//! `[journal] engine = "postgres"` chooses it. It passes the behaviour
//! tests every engine passes (`../conformance.rs`) against a real server,
//! and its own for several nodes (`tests.rs`).
//!
//! The client is the `postgres` crate (rust-postgres, the synchronous face
//! of `tokio-postgres`): [`crate::journal::Journal`] is a synchronous
//! trait, called from plain threads and `spawn_blocking`, and its
//! message-path writes go through one writer thread with group commit,
//! exactly as the SQLite engine's do; an async pool (`deadpool-postgres`)
//! or `sqlx` would put a second runtime model under the same trait for
//! nothing.
//!
//! Every node run (one `weft run` process) has a row in `nodes` with a
//! heartbeat; a message it accepted, and a delivery it is attempting, are
//! *claimed* by that run. A claim holds while the run's heartbeat is
//! younger than the lease; then any node may take the work over. A result
//! is recorded only while its claim is still the run's (or nobody's): a
//! node cut off for longer than its lease comes back to find its work
//! taken over, and what it did meanwhile is done again by the node
//! holding the claim, never recorded twice or out of its key's order.

mod audit;
mod conn;
mod nodes;
mod operate;
mod probe;
mod query;
mod schema;
mod sealing;
mod server;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::Client;

use self::conn::Conn;
pub use self::probe::{Probe, probe};
pub use self::schema::SCHEMA_VERSION;
use self::schema::{migrate, open_error};
pub use self::server::{Server, redact};
use self::writer::write_loop;
use super::audit::{AuditFilter, Entry, Record, Verdict};
use super::query::{Detail, Filter, Purged, Reprocessed, Resent, Summary};
use super::write::{Op, Request};
use super::{
    Commit, DueDelivery, Health, Journal, JournalError, MessageStatus, NewMessage, Node,
    NodePlugin, NodeState, Outcome, Recent, Recorded, SealedColumn, Stale, Unfinished,
};

/// How many writes may wait for the writer thread before a write waits in
/// its [`Commit`] for room.
const QUEUE: usize = 4096;

/// The server's clock in milliseconds since the epoch, as SQL. Leases are
/// stamped and compared with it, never with a node's own clock, so nodes
/// whose clocks disagree still agree on whose lease has run out. The
/// statement's start time: one value for every row a statement looks at
/// (a stable function, which the planner may hoist out of a claim's
/// per-row checks; `clock_timestamp()` is volatile and would not be).
pub(super) const SERVER_NOW: &str = "(extract(epoch FROM statement_timestamp()) * 1000)::BIGINT";

/// The SQL condition "delivery `d` is the head of its key" (shared with
/// SQLite).
const HEAD_OF_KEY: &str = crate::journal::query::head_of_key!();

/// How long a node run's claims outlive its last heartbeat, by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(weft_config::DEFAULT_LEASE_S);

fn read_err(e: String) -> JournalError {
    JournalError::Read(e)
}

fn stored(text: String) -> Result<MessageStatus, String> {
    text.parse()
}

/// The columns of a message as [`unfinished`] reads them.
const UNFINISHED: &str = "id, source, remote, received_at, content_type, body, message_type,
    control_id, sending_application, sending_facility, route, peer_subject";

/// A message to run through the plugins, from an [`UNFINISHED`] row.
fn unfinished(r: &postgres::Row) -> Unfinished {
    Unfinished {
        message: NewMessage {
            id: r.get(0),
            source: r.get(1),
            remote: r.get(2),
            received_at: r.get(3),
            content_type: r.get(4),
            body: r.get(5),
            message_type: r.get(6),
            control_id: r.get(7),
            sending_application: r.get(8),
            sending_facility: r.get(9),
            route: r.get(10),
            peer_subject: r.get(11),
            ordering_keys: Vec::new(),
            // Indexed when it was first recorded.
            patient_ids: Vec::new(),
            dedup_since: None,
        },
    }
}

/// The journal in PostgreSQL, as one node run sees it.
pub struct PgJournal {
    location: String,
    /// This node run's id (`nodes.run`).
    run: String,
    writes: Mutex<Option<SyncSender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Reads of the message path.
    reader: Mutex<Conn>,
    /// Operators' queries and actions: a long query never holds up the
    /// message path's reads.
    side: Mutex<Conn>,
    heartbeat: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The plugins this run runs, as `nodes.plugins` holds them (JSON):
    /// written when they change and with every heartbeat.
    plugins: Arc<Mutex<String>>,
    closed: Arc<AtomicBool>,
    /// A command's journal (see [`PgJournal::attach`]): `Some(read_only)`.
    attached: Option<bool>,
}

impl PgJournal {
    /// Connects to `server`, brings the schema up to date (a newer one is an
    /// error), registers this process as a run of node `node` with
    /// `version`, and starts the writer and the heartbeat. Claims of this
    /// run hold until `lease` after its last heartbeat (beaten every third
    /// of it).
    pub fn open(
        server: impl Into<Server>,
        node: &str,
        version: &str,
        lease: Duration,
    ) -> Result<PgJournal, JournalError> {
        let server = server.into();
        conn::outside_runtime(|| PgJournal::open_here(&server, node, version, lease))
            .map_err(|e| open_error(&server.location(), e))?
    }

    fn open_here(
        server: &Server,
        node: &str,
        version: &str,
        lease: Duration,
    ) -> Result<PgJournal, JournalError> {
        let location = server.location();
        let fail = |e: postgres::Error| open_error(&location, conn::describe(&e));
        let mut setup = server
            .connect(false)
            .map_err(|e| open_error(&location, e))?;
        migrate(&mut setup, &location)?;
        let run = uuid::Uuid::now_v7().to_string();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        setup
            .execute(
                &format!(
                    "INSERT INTO nodes (run, name, started_at, heartbeat_at, lease_until, version)
                     VALUES ($1, $2, {SERVER_NOW}, {SERVER_NOW}, {SERVER_NOW} + $3, $4)"
                ),
                &[&run, &node, &lease_ms, &version],
            )
            .map_err(fail)?;
        nodes::forget_old(&mut setup).map_err(fail)?;
        let writer_conn = Conn::open(server, false).map_err(|e| open_error(&location, e))?;
        let reader = Conn::open(server, false).map_err(|e| open_error(&location, e))?;
        let side = Conn::open(server, false).map_err(|e| open_error(&location, e))?;
        let closed = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel::<Request>(QUEUE);
        let writer_run = run.clone();
        let writer = std::thread::Builder::new()
            .name("weft-journal".into())
            .spawn(move || write_loop(writer_conn, rx, writer_run))
            .map_err(|e| open_error(&location, format!("cannot start the writer: {e}")))?;
        let plugins = Arc::new(Mutex::new("[]".to_string()));
        let heartbeat = {
            let (run, closed, server) = (run.clone(), closed.clone(), server.clone());
            let plugins = plugins.clone();
            std::thread::Builder::new()
                .name("weft-heartbeat".into())
                .spawn(move || beat(&server, &run, lease, &plugins, &closed))
                .map_err(|e| open_error(&location, format!("cannot start the heartbeat: {e}")))?
        };
        Ok(PgJournal {
            location,
            run,
            writes: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            reader: Mutex::new(reader),
            side: Mutex::new(side),
            heartbeat: Mutex::new(Some(heartbeat)),
            plugins,
            closed,
            attached: None,
        })
    }

    /// The journal at `url` for a command beside the nodes (`weft
    /// messages`, `weft audit`, `weft replay`): no node run, no writer
    /// thread, each write committed on its own; its schema is brought up
    /// to date when behind. `read_only`: every session is read-only on the
    /// server, the schema must be this runtime's, and writes fail.
    pub fn attach(server: impl Into<Server>, read_only: bool) -> Result<PgJournal, JournalError> {
        let server = server.into();
        conn::outside_runtime(|| PgJournal::attach_here(&server, read_only))
            .map_err(|e| open_error(&server.location(), e))?
    }

    fn attach_here(server: &Server, read_only: bool) -> Result<PgJournal, JournalError> {
        let location = server.location();
        let fail = |e: postgres::Error| open_error(&location, conn::describe(&e));
        let mut setup = server
            .connect(read_only)
            .map_err(|e| open_error(&location, e))?;
        if read_only {
            let version = schema::version(&mut setup).map_err(fail)?;
            if version != SCHEMA_VERSION {
                return Err(open_error(
                    &location,
                    format!(
                        "schema version {version}, and this weft reads version {SCHEMA_VERSION} \
                         without changing the database: start this version's `weft run` on it first"
                    ),
                ));
            }
        } else {
            migrate(&mut setup, &location)?;
        }
        let reader = Conn::open(server, read_only).map_err(|e| open_error(&location, e))?;
        let side = Conn::open(server, read_only).map_err(|e| open_error(&location, e))?;
        Ok(PgJournal {
            location,
            run: format!("command-{}", uuid::Uuid::now_v7()),
            writes: Mutex::new(None),
            writer: Mutex::new(None),
            reader: Mutex::new(reader),
            side: Mutex::new(side),
            heartbeat: Mutex::new(None),
            plugins: Arc::new(Mutex::new("[]".into())),
            closed: Arc::new(AtomicBool::new(false)),
            attached: Some(read_only),
        })
    }

    /// This node run's id.
    pub fn run_id(&self) -> &str {
        &self.run
    }

    fn submit(&self, op: Op) -> Commit {
        if self.closed.load(Ordering::Acquire) {
            return Commit::finished(Err(JournalError::Closed));
        }
        if let Some(read_only) = self.attached {
            if read_only {
                return Commit::finished(Err(JournalError::Write(
                    "the journal is open read-only".into(),
                )));
            }
            let mut side = self.side.lock().unwrap_or_else(PoisonError::into_inner);
            return Commit::finished(writer::apply_alone(&mut side, &op, &self.run));
        }
        let sender = self
            .writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        super::write::queue(sender, op, false)
    }

    /// A read of the message path, on its own connection.
    fn read<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, JournalError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(JournalError::Closed);
        }
        self.reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .with(f)
            .map_err(read_err)
    }

    /// The SQL condition "claim `column` holds for nobody else": unclaimed,
    /// claimed by this run, or by a run stopped or whose lease ran out by
    /// the server's clock (this run's id is the parameter numbered `run`).
    fn free(column: &str, run: usize) -> String {
        format!(
            "({column} IS NULL OR {column} = ${run}::TEXT OR NOT EXISTS (
               SELECT 1 FROM nodes n WHERE n.run = {column}
                 AND n.stopped_at IS NULL AND n.lease_until > {SERVER_NOW}))"
        )
    }

    /// Claims for this run up to `limit` untransformed messages whose
    /// claim is free (with `own`, this run's own claims count as free),
    /// oldest first.
    fn claim_untransformed(&self, own: bool, limit: i64) -> Result<Vec<Unfinished>, JournalError> {
        let free = if own {
            PgJournal::free("m.claimed_by", 1)
        } else {
            format!(
                "m.claimed_by IS DISTINCT FROM $1 AND {}",
                PgJournal::free("m.claimed_by", 1)
            )
        };
        let run = self.run.clone();
        self.read(|c| {
            let rows = c.query(
                &format!(
                    "UPDATE messages SET claimed_by = $1 WHERE id IN (
                       SELECT m.id FROM messages m
                       WHERE m.status = 'received' AND {free}
                         AND m.id NOT IN (SELECT message_id FROM reprocess)
                       ORDER BY m.seq LIMIT $2
                       FOR UPDATE SKIP LOCKED)
                     RETURNING {UNFINISHED}, seq"
                ),
                &[&run, &limit],
            )?;
            let mut out: Vec<(i64, Unfinished)> =
                rows.iter().map(|r| (r.get(12), unfinished(r))).collect();
            // Intake order (UPDATE … RETURNING has none of its own).
            out.sort_by_key(|(seq, _)| *seq);
            Ok(out.into_iter().map(|(_, u)| u).collect())
        })
    }

    /// Work on the operators' connection.
    fn side<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, JournalError> + Send,
    ) -> Result<T, JournalError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(JournalError::Closed);
        }
        let mut guard = self.side.lock().unwrap_or_else(PoisonError::into_inner);
        let mut outcome = None;
        let ran = guard.with(|c| {
            outcome = Some(f(c));
            Ok(())
        });
        match (ran, outcome) {
            (_, Some(result)) => result,
            (Err(e), None) => Err(JournalError::Read(e)),
            (Ok(()), None) => Err(JournalError::Closed),
        }
    }
}

impl Journal for PgJournal {
    // The URL without its password.
    fn location(&self) -> String {
        self.location.clone()
    }

    fn disk_bytes(&self) -> Result<u64, JournalError> {
        self.side(|c| {
            let n: i64 = c
                .query_one("SELECT pg_database_size(current_database())", &[])
                .map_err(|e| JournalError::Read(conn::describe(&e)))?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    // PostgreSQL keeps the space of deleted rows for new ones (autovacuum)
    // rather than giving it back, so a size measured on disk would not
    // fall after a purge, and purging "until it fits" would purge
    // everything settled. `runtime.retain_max_mb` is refused with this engine
    // (when the configuration is read); retention by age works as in SQLite.
    fn purge_to_size(&self, _max_bytes: u64) -> Result<(Purged, u64), JournalError> {
        Err(JournalError::Write(
            "a size cap (runtime.retain_max_mb) is the SQLite journal's; with PostgreSQL, \
             retain by age (runtime.retain_days) and size the database with the DBA"
                .into(),
        ))
    }

    fn append(&self, message: NewMessage) -> Commit {
        self.submit(Op::Append(Box::new(message)))
    }

    fn record(&self, outcome: Outcome) -> Commit {
        self.submit(Op::Record(outcome))
    }

    fn append_settled(&self, message: NewMessage, outcome: Outcome) -> Commit {
        self.submit(Op::AppendSettled(Box::new((message, outcome))))
    }

    // Messages recorded but never transformed whose claim holds for no
    // other node run, oldest first, not those waiting to be reprocessed:
    // claimed for this run as they are handed out.
    fn unfinished(&self) -> Result<Vec<Unfinished>, JournalError> {
        self.claim_untransformed(true, i64::MAX)
    }

    // The same, only other runs' lapsed claims: never this run's own
    // messages, which it is running.
    fn take_over(&self, limit: usize) -> Result<Vec<Unfinished>, JournalError> {
        self.claim_untransformed(false, i64::try_from(limit).unwrap_or(i64::MAX))
    }

    fn set_plugins(&self, plugins: &[NodePlugin]) -> Result<(), JournalError> {
        if self.attached.is_some() {
            return Ok(());
        }
        let text = serde_json::to_string(plugins).unwrap_or_else(|_| "[]".into());
        // Held while written, as the heartbeat holds it while it writes: a
        // beat that read the list before cannot land after and undo it.
        let mut held = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        held.clone_from(&text);
        let run = self.run.clone();
        self.side
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .with(move |c| {
                c.execute(
                    "UPDATE nodes SET plugins = $2 WHERE run = $1",
                    &[&run, &text],
                )
            })
            .map(|_| ())
            .map_err(JournalError::Write)
    }

    fn nodes(&self) -> Result<Option<Vec<Node>>, JournalError> {
        self.side
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .with(nodes::list)
            .map(Some)
            .map_err(read_err)
    }

    fn find_recent(
        &self,
        sending_application: &str,
        sending_facility: &str,
        control_id: &str,
        since: i64,
    ) -> Result<Option<Recent>, JournalError> {
        let row = self.read(|c| {
            c.query_opt(
                "SELECT id, status, error FROM messages
                 WHERE sending_application = $1 AND sending_facility = $2 AND control_id = $3
                   AND received_at >= $4
                 ORDER BY received_at DESC LIMIT 1",
                &[&sending_application, &sending_facility, &control_id, &since],
            )
        })?;
        row.map(|r| {
            Ok(Recent {
                id: r.get(0),
                status: stored(r.get(1)).map_err(JournalError::Read)?,
                error: r.get(2),
            })
        })
        .transpose()
    }

    // The deliveries handed out are claimed for this run (`FOR UPDATE SKIP
    // LOCKED`: two nodes never take the same one), and a key's head is due
    // only when no node holds an earlier delivery or message with that
    // key: per-key order holds across the nodes.
    fn due(
        &self,
        destination: &str,
        now: i64,
        limit: usize,
        busy: &[i64],
    ) -> Result<Vec<DueDelivery>, JournalError> {
        let free = PgJournal::free("d.claimed_by", 5);
        let run = self.run.clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let busy = busy.to_vec();
        self.read(|c| {
            let rows = c.query(
                &format!(
                    "WITH picked AS (
                       SELECT d.id FROM deliveries d
                       WHERE d.destination = $1 AND d.state = 'pending' AND d.next_attempt_at <= $2
                         AND {free} AND d.id <> ALL($4)
                         AND {HEAD_OF_KEY}
                       ORDER BY d.id LIMIT $3
                       FOR UPDATE OF d SKIP LOCKED)
                     UPDATE deliveries SET claimed_by = $5 FROM picked, messages m
                     WHERE deliveries.id = picked.id AND m.id = deliveries.message_id
                     RETURNING deliveries.id, deliveries.message_id, m.control_id, m.message_type,
                       m.received_at, deliveries.n, deliveries.content_type, deliveries.body,
                       deliveries.attempts"
                ),
                &[&destination, &now, &limit, &busy, &run],
            )?;
            let mut out: Vec<DueDelivery> = rows
                .iter()
                .map(|r| DueDelivery {
                    id: r.get(0),
                    message_id: r.get(1),
                    control_id: r.get(2),
                    message_type: r.get(3),
                    received_at: r.get(4),
                    n: usize::try_from(r.get::<_, i32>(5)).unwrap_or(0),
                    content_type: r.get(6),
                    body: r.get(7),
                    attempts: u32::try_from(r.get::<_, i32>(8)).unwrap_or(0),
                })
                .collect();
            out.sort_by_key(|d| d.id);
            Ok(out)
        })
    }

    // Only deliveries nobody holds: one claimed (by this run, under way,
    // or by another live node) is not this node's to wait for, so a node
    // does not poll hard for work another holds; a lapsed claim shows up
    // at the next poll.
    fn next_due(&self, destination: &str) -> Result<Option<i64>, JournalError> {
        self.read(|c| {
            c.query_one(
                &format!(
                    "SELECT MIN(d.next_attempt_at) FROM deliveries d
                     WHERE d.destination = $1 AND d.state = 'pending'
                       AND (d.claimed_by IS NULL OR NOT EXISTS (
                         SELECT 1 FROM nodes n WHERE n.run = d.claimed_by
                           AND n.stopped_at IS NULL AND n.lease_until > {SERVER_NOW}))"
                ),
                &[&destination],
            )
            .map(|r| r.get(0))
        })
    }

    // Releases the claim.
    fn delivered(&self, id: i64, at: i64) -> Commit {
        self.submit(Op::Delivered(id, at))
    }

    // Releases the claim.
    fn attempt_failed(&self, id: i64, error: &str, next_attempt: Option<i64>) -> Commit {
        self.submit(Op::Failed(id, error.to_string(), next_attempt))
    }

    fn pending_counts(&self) -> Result<Vec<(String, u64)>, JournalError> {
        self.read(|c| {
            let rows = c.query(
                "SELECT destination, COUNT(*) FROM deliveries WHERE state = 'pending'
                 GROUP BY destination ORDER BY destination",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
                .collect())
        })
    }

    fn health(&self) -> Result<Health, JournalError> {
        self.read(|c| {
            let row = c.query_one(
                "SELECT COUNT(*) FILTER (WHERE state = 'pending'), COUNT(*) FILTER (WHERE state = 'dead')
                 FROM deliveries WHERE state IN ('pending', 'dead')",
                &[],
            )?;
            let (pending, dead): (i64, i64) = (row.get(0), row.get(1));
            let oldest_pending: Option<i64> = c
                .query_one(
                    "SELECT MIN(m.received_at) FROM deliveries d JOIN messages m ON m.id = d.message_id
                     WHERE d.state = 'pending'",
                    &[],
                )?
                .get(0);
            let unfinished: i64 = c
                .query_one("SELECT COUNT(*) FROM messages WHERE status = 'received'", &[])?
                .get(0);
            Ok(Health {
                // The server's own tools check its storage (amcheck,
                // pg_checksums); a client's query cannot.
                integrity: None,
                pending: u64::try_from(pending).unwrap_or(0),
                dead: u64::try_from(dead).unwrap_or(0),
                oldest_pending,
                unfinished: u64::try_from(unfinished).unwrap_or(0),
            })
        })
    }

    fn snapshot_to(&self, _dest: &Path) -> Result<(), JournalError> {
        Err(JournalError::Read(
            "the journal is a PostgreSQL database: back it up with the server's tools \
             (pg_dump -Fc for a copy; pg_basebackup with WAL archiving for point-in-time recovery)"
                .into(),
        ))
    }

    fn backlog(&self, destination: &str, cap: u64) -> Result<(u64, u64), JournalError> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        self.read(|c| {
            let mut count = |state: &str| -> Result<u64, postgres::Error> {
                let n: i64 = c
                    .query_one(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
                         WHERE destination = $1 AND state = $2 LIMIT $3) t",
                        &[&destination, &state, &cap],
                    )?
                    .get(0);
                Ok(u64::try_from(n).unwrap_or(0))
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

    fn recorded(&self, id: &str) -> Result<Option<Recorded>, JournalError> {
        self.side(|c| query::recorded(c, id))
    }

    fn select(&self, filter: &Filter, max: usize) -> Result<Vec<String>, JournalError> {
        self.side(|c| query::select(c, filter, max))
    }

    fn resend(&self, ids: &[String]) -> Result<Resent, JournalError> {
        self.side(|c| operate::resend(c, ids))
    }

    fn resend_dead(&self) -> Result<usize, JournalError> {
        self.side(operate::resend_dead)
    }

    fn reprocess(&self, ids: &[String]) -> Result<Reprocessed, JournalError> {
        self.side(|c| operate::reprocess(c, ids, super::now_ms()))
    }

    // The messages taken are claimed for this run.
    fn take_reprocess(&self, limit: usize) -> Result<Vec<Unfinished>, JournalError> {
        let run = self.run.clone();
        self.side(|c| {
            let ids = operate::take_reprocess(c, limit, &run)?;
            let mut out = Vec::new();
            for id in ids {
                let row = c
                    .query_opt(
                        &format!(
                            "SELECT {UNFINISHED} FROM messages WHERE id = $1 AND status = 'received'"
                        ),
                        &[&id],
                    )
                    .map_err(|e| JournalError::Read(conn::describe(&e)))?;
                out.extend(row.as_ref().map(unfinished));
            }
            Ok(out)
        })
    }

    fn purge(&self, before: i64) -> Result<Purged, JournalError> {
        self.side(|c| operate::purge(c, before))
    }

    // One chain for every node.
    fn audit_append(&self, record: &Record) -> Result<Entry, JournalError> {
        self.side(|c| audit::append(c, record))
    }

    fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<Entry>, JournalError> {
        self.side(|c| audit::list(c, filter))
    }

    fn audit_verify(&self) -> Result<Verdict, JournalError> {
        self.side(audit::verify)
    }

    fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, JournalError> {
        self.side(|c| audit::hash_at(c, seq))
    }

    fn audit_purge(&self, before: i64) -> Result<usize, JournalError> {
        self.side(|c| audit::purge(c, before))
    }

    fn setting(&self, key: &str) -> Result<Option<String>, JournalError> {
        let key = key.to_string();
        self.side(move |c| {
            c.query_opt("SELECT value FROM weft_meta WHERE key = $1", &[&key])
                .map(|row| row.map(|r| r.get(0)))
                .map_err(|e| JournalError::Read(e.to_string()))
        })
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), JournalError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.side(move |c| {
            c.execute(
                "INSERT INTO weft_meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .map(drop)
            .map_err(|e| JournalError::Write(e.to_string()))
        })
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

    fn other_nodes(&self) -> Result<Vec<String>, JournalError> {
        Ok(self
            .nodes()?
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.run != self.run && n.state == NodeState::Running)
            .map(|n| format!("{} ({})", n.name, n.run))
            .collect())
    }

    // Finishes the writes already queued, marks this run stopped (its
    // claims are free at once) and closes.
    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        for handle in [&self.writer, &self.heartbeat] {
            let h = handle.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(h) = h {
                let _ = h.join();
            }
        }
        if self.attached.is_some() {
            return;
        }
        let run = self.run.clone();
        let _ = self
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .with(|c| {
                c.execute(
                    &format!("UPDATE nodes SET stopped_at = {SERVER_NOW} WHERE run = $1"),
                    &[&run],
                )
            });
    }
}

impl Drop for PgJournal {
    fn drop(&mut self) {
        self.close();
    }
}

/// How soon a heartbeat that failed is tried again.
const RETRY_BEAT: Duration = Duration::from_millis(250);

/// Beats `run`'s heartbeat every third of `lease` until `closed`, each
/// beat moving its lease on, reconnecting when the server comes back.
fn beat(server: &Server, run: &str, lease: Duration, plugins: &Mutex<String>, closed: &AtomicBool) {
    let every = lease / 3;
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let mut conn: Option<Conn> = None;
    let step = Duration::from_millis(50).min(every);
    // The run's row was written with its lease a moment ago.
    let mut waited = Duration::ZERO;
    while !closed.load(Ordering::Acquire) {
        if waited >= every {
            waited = Duration::ZERO;
            if conn.is_none() {
                conn = Conn::open(server, false).ok();
            }
            if let Some(c) = conn.as_mut() {
                // Held while written (see set_plugins).
                let plugins = plugins.lock().unwrap_or_else(PoisonError::into_inner);
                let text = plugins.clone();
                if let Err(e) = c.with(|c| {
                    c.execute(
                        &format!(
                            "UPDATE nodes SET heartbeat_at = {SERVER_NOW},
                               lease_until = {SERVER_NOW} + $2, plugins = $3
                             WHERE run = $1"
                        ),
                        &[&run, &lease_ms, &text],
                    )
                }) {
                    tracing::warn!("the journal's heartbeat failed: {e}");
                    // Tried again soon, not a third of a lease later: after
                    // an outage the first beat finds its connection broken,
                    // and the lease must be moved on before it runs out.
                    waited = every.saturating_sub(RETRY_BEAT);
                }
            } else {
                waited = every.saturating_sub(RETRY_BEAT);
            }
        }
        std::thread::sleep(step);
        waited += step;
    }
}

#[cfg(test)]
mod tests;
