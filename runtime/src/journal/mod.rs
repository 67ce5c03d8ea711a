//! The journal: the durable record of every message received, its outputs
//! and their delivery state, the operators' view of them and the audit
//! trail. A message is acknowledged only once it is in here; destinations
//! read their work from here, so a restart resumes every pending delivery.
//!
//! [`Journal`] is the only way in: the pipeline, the sources, the
//! dispatchers, retention, the admin API and the command line all hold an
//! `Arc<dyn Journal>` from [`open`] (the running runtime) or [`attach`] (a
//! command beside it), or from [`for_config`], which opens the engine the
//! configuration's `[journal]` names. The embedded engine is SQLite
//! ([`sqlite`], WAL, one writer thread with group commit); PostgreSQL
//! ([`postgres`]) holds the journal of several nodes. Both pass one
//! behaviour suite (`conformance.rs`).

pub mod audit;
pub mod commit;
#[cfg(test)]
mod conformance;
pub mod nodes;
pub mod postgres;
pub mod query;
pub mod retention;
pub mod seal;
pub mod sealed;
pub mod sqlite;
pub mod time;
mod write;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

pub use commit::{Commit, commit_until_done};
pub use nodes::{Node, NodePlugin, NodeState};

use self::audit::{AuditFilter, Entry, Record, Verdict};
use self::query::{Detail, Filter, Purged, Reprocessed, Resent, Summary};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How hard a journal commit holds on to the disk (from `weft-config`).
pub use weft_config::JournalSync;

/// A message as it is first recorded.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The runtime's id.
    pub id: String,
    /// The source's name.
    pub source: String,
    /// The peer's address.
    pub remote: Option<String>,
    /// The subject of the peer's client certificate (mutual TLS).
    pub peer_subject: Option<String>,
    /// When it arrived (ms since the epoch).
    pub received_at: i64,
    /// Media type.
    pub content_type: String,
    /// The bytes as received.
    pub body: Vec<u8>,
    /// MSH-9 (or resourceType).
    pub message_type: String,
    /// MSH-10.
    pub control_id: String,
    /// MSH-3.
    pub sending_application: String,
    /// MSH-4.
    pub sending_facility: String,
    /// The route chosen for it.
    pub route: String,
    /// (destination, key) for each destination of the route that orders
    /// deliveries by key: until this message is recorded, later messages
    /// with the same key wait for it there (even if their plugins finish
    /// first).
    pub ordering_keys: Vec<(String, String)>,
    /// The patient's identifiers (PID-3: each repetition's ID number,
    /// CX.1), indexed for search by patient ([`query::Filter::patient`]).
    pub patient_ids: Vec<String>,
    /// Set when the source drops duplicates: the message is refused
    /// ([`JournalError::Duplicate`]) if another with the same MSH-3, MSH-4
    /// and MSH-10 was received at or after this time (ms since the
    /// epoch). Checked in the intake's own transaction, so two copies
    /// arriving together (on two connections, or at two nodes sharing a
    /// journal) are never both taken.
    pub dedup_since: Option<i64>,
}

/// A message as the tests record it: an ADT^A01 received in 1970 from
/// source `in`, control id `C-{id}`, on route `adt`.
#[cfg(test)]
pub(crate) fn test_message(id: &str) -> NewMessage {
    NewMessage {
        id: id.into(),
        source: "in".into(),
        remote: None,
        peer_subject: None,
        received_at: 1,
        content_type: "application/hl7-v2".into(),
        body: b"MSH|^~\\&|".to_vec(),
        message_type: "ADT^A01".into(),
        control_id: format!("C-{id}"),
        sending_application: "A".into(),
        sending_facility: "F".into(),
        route: "adt".into(),
        ordering_keys: Vec::new(),
        patient_ids: Vec::new(),
        dedup_since: None,
    }
}

/// What the tests record a message became: transformed, with one output
/// (`out`, text/plain) for destination `d`.
#[cfg(test)]
pub(crate) fn test_outcome(id: &str) -> Outcome {
    Outcome {
        message_id: id.into(),
        status: MessageStatus::Transformed,
        error: None,
        versions: vec![],
        deliveries: vec![NewDelivery {
            destination: "d".into(),
            n: 1,
            content_type: "text/plain".into(),
            body: b"out".to_vec(),
            ordering_key: None,
        }],
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Recorded, plugins not run yet.
    Received,
    /// Plugins ran; outputs recorded.
    Transformed,
    /// A plugin rejected it.
    Rejected,
    /// A plugin failed or hit a limit.
    Failed,
}

impl MessageStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Received => "received",
            MessageStatus::Transformed => "transformed",
            MessageStatus::Rejected => "rejected",
            MessageStatus::Failed => "failed",
        }
    }

    /// Every status, in the order a message goes through them.
    pub const ALL: [MessageStatus; 4] = [
        MessageStatus::Received,
        MessageStatus::Transformed,
        MessageStatus::Rejected,
        MessageStatus::Failed,
    ];
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageStatus::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown message status {s:?}"))
    }
}

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not done yet: due now or at its next attempt.
    Pending,
    /// Done.
    Delivered,
    /// Given up on (out of attempts or time, or refused for good); an
    /// operator may resend it.
    Dead,
    /// Not sent, and never will be: its message was reprocessed first,
    /// and the new run's outputs replace it.
    Superseded,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Superseded => "superseded",
        }
    }

    /// Every state.
    pub const ALL: [DeliveryState; 4] = [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Dead,
        DeliveryState::Superseded,
    ];
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryState::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown delivery state {s:?}"))
    }
}

/// The latest message with a sender's control id (duplicate detection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    /// Its id.
    pub id: String,
    /// Where it stands.
    pub status: MessageStatus,
    /// Why it was rejected or failed.
    pub error: Option<String>,
}

/// One output to record for delivery.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The destination's name.
    pub destination: String,
    /// The output's number among its message's outputs, from 1.
    pub n: usize,
    /// Media type.
    pub content_type: String,
    /// The bytes.
    pub body: Vec<u8>,
    /// Deliveries with the same key go out one at a time, in order; `None`
    /// is not ordered.
    pub ordering_key: Option<String>,
}

/// One plugin version a message went through, and who signed it: enough to
/// trace an output to exactly the code that made it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginUse {
    /// The plugin's name in the configuration.
    pub plugin: String,
    /// The sha256 of its component.
    pub sha256: String,
    /// The version its manifest declares (`None`: no manifest).
    #[serde(default, rename = "version", skip_serializing_if = "Option::is_none")]
    pub declared_version: Option<String>,
    /// The trust list's name for the key that signed it (`None`: unsigned,
    /// or a key the list does not have).
    #[serde(default)]
    pub signer: Option<String>,
    /// The short id of the key that signed it (`None`: unsigned).
    #[serde(default)]
    pub key: Option<String>,
}

impl PluginUse {
    /// `plugin@sha256`.
    pub fn version(&self) -> String {
        format!("{}@{}", self.plugin, self.sha256)
    }

    /// Who signed it, for people: `signed by NAME (key ID)`, `signed by an
    /// unknown key (key ID)` or `unsigned`.
    pub fn signature(&self) -> String {
        match (&self.signer, &self.key) {
            (Some(s), Some(k)) => format!("signed by {s} (key {k})"),
            (Some(s), None) => format!("signed by {s}"),
            (None, Some(k)) => format!("signed by a key not in the trust list (key {k})"),
            (None, None) => "unsigned".into(),
        }
    }
}

/// What the plugins made of a message.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The message.
    pub message_id: String,
    /// Its new status.
    pub status: MessageStatus,
    /// The reason, for rejected and failed messages.
    pub error: Option<String>,
    /// Every plugin version it went through, in order.
    pub versions: Vec<PluginUse>,
    /// Its outputs, one row per destination.
    pub deliveries: Vec<NewDelivery>,
}

/// A delivery that is due.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery's id.
    pub id: i64,
    /// Its message.
    pub message_id: String,
    /// MSH-10 of the message.
    pub control_id: String,
    /// MSH-9 of the message.
    pub message_type: String,
    /// When the message arrived (ms).
    pub received_at: i64,
    /// The output's number.
    pub n: usize,
    /// Media type.
    pub content_type: String,
    /// The bytes.
    pub body: Vec<u8>,
    /// Attempts so far.
    pub attempts: u32,
}

/// What `weft doctor` reads of a journal: its own integrity check and the
/// work it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// The store's integrity check (SQLite's `quick_check`): the problems
    /// found, empty when none; `None` where the engine leaves it to its own
    /// tools (PostgreSQL: `amcheck`, `pg_checksums`, the DBA's monitoring).
    pub integrity: Option<Vec<String>>,
    /// Deliveries waiting to be made.
    pub pending: u64,
    /// Deliveries given up on (dead letters).
    pub dead: u64,
    /// When the oldest message with a pending delivery was received (ms
    /// since the epoch).
    pub oldest_pending: Option<i64>,
    /// Messages received but not yet run through their route.
    pub unfinished: u64,
}

/// A message recorded but not yet transformed (found at start-up).
#[derive(Debug, Clone)]
pub struct Unfinished {
    /// The message as recorded.
    pub message: NewMessage,
}

/// A message as the journal recorded it, with what its current run made:
/// what `weft replay` runs again and compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The runtime's id.
    pub id: String,
    /// The source's name.
    pub source: String,
    /// The peer's address.
    pub remote: Option<String>,
    /// The subject of the peer's client certificate.
    pub peer_subject: Option<String>,
    /// Media type of the input.
    pub content_type: String,
    /// The input bytes.
    pub body: Vec<u8>,
    /// MSH-9 (or resourceType).
    pub message_type: String,
    /// The route it took.
    pub route: String,
    /// Where it stands.
    pub status: MessageStatus,
    /// Why it was rejected or failed.
    pub error: Option<String>,
    /// The current run's outputs, in order (each once, whatever the number
    /// of destinations it went to).
    pub outputs: Vec<RecordedOutput>,
}

/// One output of a recorded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedOutput {
    /// Its media type.
    pub content_type: String,
    /// Its bytes.
    pub body: Vec<u8>,
}

impl From<crate::plugins::Output> for RecordedOutput {
    fn from(o: crate::plugins::Output) -> RecordedOutput {
        RecordedOutput {
            content_type: o.message.content_type,
            body: o.message.body,
        }
    }
}

impl From<&crate::plugins::Output> for RecordedOutput {
    fn from(o: &crate::plugins::Output) -> RecordedOutput {
        RecordedOutput {
            content_type: o.message.content_type.clone(),
            body: o.message.body.clone(),
        }
    }
}

/// A column whose values the sealing layer ([`sealed`]) seals (bodies,
/// reasons) or hashes (patient identifiers, ordering keys): what a
/// rotation, or a journal given its first key, rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `messages.body`, sealed with `m:` and the message id.
    MessageBody,
    /// `messages.error`, sealed with `e:` and the message id.
    MessageError,
    /// An earlier run's reason (`outcomes.error`), as `messages.error`.
    OutcomeError,
    /// `deliveries.body`, sealed with `d:` and the message id.
    DeliveryBody,
    /// `deliveries.last_error`, sealed with `l:` and the delivery id.
    DeliveryError,
    /// A patient identifier (`patient_ids.id`), hashed.
    PatientId,
    /// A delivery's ordering key, hashed.
    OrderingKey,
    /// A held ordering key (`order_holds`), hashed.
    HoldKey,
}

impl SealedColumn {
    /// Every one, in the order a pass goes through them.
    pub const ALL: [SealedColumn; 8] = [
        SealedColumn::MessageBody,
        SealedColumn::MessageError,
        SealedColumn::OutcomeError,
        SealedColumn::DeliveryBody,
        SealedColumn::DeliveryError,
        SealedColumn::PatientId,
        SealedColumn::OrderingKey,
        SealedColumn::HoldKey,
    ];

    /// Whether the column holds text (a reason, an identifier), not bytes.
    pub fn is_text(self) -> bool {
        !matches!(self, SealedColumn::MessageBody | SealedColumn::DeliveryBody)
    }

    /// Whether its values are hashed (searchable), not sealed.
    pub fn is_hashed(self) -> bool {
        matches!(
            self,
            SealedColumn::PatientId | SealedColumn::OrderingKey | SealedColumn::HoldKey
        )
    }
}

/// A stored value not yet in the form the active key gives
/// ([`Journal::stale`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// Its column.
    pub column: SealedColumn,
    /// Its row (the table's integer key).
    pub row: i64,
    /// The message the row belongs to.
    pub message_id: String,
    /// The value as stored (text columns: its UTF-8 bytes).
    pub value: Vec<u8>,
}

/// A journal operation that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The store cannot be opened: corrupt, unreadable, a newer schema.
    #[error("journal {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The journal's encryption key cannot be used: unreadable, not a key,
    /// open to other users, or not the key the journal is sealed with.
    #[error("{0}")]
    Key(String),
    /// A write failed (disk full, file not writable…): nothing of it was
    /// recorded.
    #[error("journal write failed: {0}")]
    Write(String),
    /// A read failed.
    #[error("journal read failed: {0}")]
    Read(String),
    /// The journal is closed (shutting down).
    #[error("journal closed")]
    Closed,
    /// An append refused: a message with the same sender and control id
    /// was received within the source's window ([`NewMessage::dedup_since`]).
    #[error("a duplicate of message {original}")]
    Duplicate {
        /// The message first received.
        original: String,
    },
}

/// The durable store: everything that reads or writes the journal goes
/// through this trait.
///
/// Every method may block on I/O (async code calls them through
/// `spawn_blocking`), except the writes of the message path, which return
/// at once with a [`Commit`] to wait on (`done().await` in async code,
/// `wait()` on a plain thread): an engine commits the writes waiting at
/// the same moment together.
pub trait Journal: Send + Sync {
    /// Where it is, for operators (a file's path): never a secret.
    fn location(&self) -> String;
    /// What it takes on disk, in bytes (for `weft_journal_bytes`).
    fn disk_bytes(&self) -> Result<u64, JournalError>;

    // -- intake and outcomes --

    /// Records a message as received; the commit resolves once it is
    /// durable (and only then may the sender be acknowledged).
    fn append(&self, message: NewMessage) -> Commit;
    /// Records what the plugins made of a message, atomically with its
    /// deliveries, and releases its hold on its ordering keys.
    fn record(&self, outcome: Outcome) -> Commit;
    /// [`Journal::record`] for an outcome no answer waits on (its source
    /// was answered already): the engine may hold it a moment to share the
    /// commit of the next message taken in, whose ACK then waits for one
    /// commit instead of this one's and its own. By default, `record`.
    fn record_lazily(&self, outcome: Outcome) -> Commit {
        self.record(outcome)
    }
    /// Records a message and its outcome at once, with its deliveries: an
    /// event Weft makes itself (an alert), never run through plugins.
    fn append_settled(&self, message: NewMessage, outcome: Outcome) -> Commit;
    /// Messages recorded but never transformed (the process stopped first),
    /// oldest first; not those waiting to be reprocessed
    /// ([`Journal::take_reprocess`] hands those out).
    fn unfinished(&self) -> Result<Vec<Unfinished>, JournalError>;
    /// Takes up to `limit` of the messages operators asked to run again
    /// ([`Journal::reprocess`]) off their queue, oldest request first, for
    /// the runtime to run through its plugins. A message taken and not yet
    /// recorded when the process stops is among the next start's
    /// [`Journal::unfinished`].
    fn take_reprocess(&self, limit: usize) -> Result<Vec<Unfinished>, JournalError>;
    /// Takes over up to `limit` messages another node run accepted and can
    /// no longer finish (it stopped, or its lease ran out), oldest first,
    /// for this run to run through its plugins. An engine only one process
    /// writes (SQLite) has none: a restart's [`Journal::unfinished`] covers
    /// its own.
    fn take_over(&self, limit: usize) -> Result<Vec<Unfinished>, JournalError>;
    /// Says which plugins this node run runs (for [`Journal::nodes`]):
    /// called at start and after every reload.
    fn set_plugins(&self, plugins: &[NodePlugin]) -> Result<(), JournalError>;
    /// The node runs sharing this journal: every one not stopped, and the
    /// latest run of each node name, by name (at most 1,000). `None` for an
    /// engine only one process writes (SQLite).
    fn nodes(&self) -> Result<Option<Vec<Node>>, JournalError>;
    /// The latest message from this sender with this control id received at
    /// or after `since` (duplicate detection).
    fn find_recent(
        &self,
        sending_application: &str,
        sending_facility: &str,
        control_id: &str,
        since: i64,
    ) -> Result<Option<Recent>, JournalError>;

    // -- deliveries --

    /// Up to `limit` deliveries for `destination` due at `now`, oldest
    /// first, skipping the ids in `busy` (claimed by attempts under way) and
    /// every delivery behind an earlier pending one with the same ordering
    /// key.
    fn due(
        &self,
        destination: &str,
        now: i64,
        limit: usize,
        busy: &[i64],
    ) -> Result<Vec<DueDelivery>, JournalError>;
    /// When the next delivery for `destination` falls due, if any is pending.
    fn next_due(&self, destination: &str) -> Result<Option<i64>, JournalError>;
    /// Records a delivery as done at `at`.
    fn delivered(&self, id: i64, at: i64) -> Commit;
    /// [`Journal::delivered`] for a delivery no answer waits on, held like
    /// [`Journal::record_lazily`]. By default, `delivered`.
    fn delivered_lazily(&self, id: i64, at: i64) -> Commit {
        self.delivered(id, at)
    }
    /// Records a failed attempt: retried at `next_attempt`, or dead (given
    /// up) when that is `None`.
    fn attempt_failed(&self, id: i64, error: &str, next_attempt: Option<i64>) -> Commit;
    /// Pending deliveries, per destination.
    fn pending_counts(&self) -> Result<Vec<(String, u64)>, JournalError>;
    /// The deliveries pending and dead at `destination`, each counted up to
    /// `cap` (alerts ask every few seconds: cheap however deep the backlog).
    fn backlog(&self, destination: &str, cap: u64) -> Result<(u64, u64), JournalError>;
    /// Its integrity check and the work it holds, for `weft doctor` (a full
    /// read: not for the message path).
    fn health(&self) -> Result<Health, JournalError>;
    /// A consistent copy of the whole journal as of one moment, written to
    /// `dest` (which must not exist) while the message path goes on:
    /// SQLite's `VACUUM INTO`, in one read transaction. PostgreSQL refuses,
    /// naming the server's own tools (`pg_dump`, `pg_basebackup`).
    fn snapshot_to(&self, dest: &Path) -> Result<(), JournalError>;

    // -- what operators ask --

    /// Messages matching `filter`, newest first.
    fn list(&self, filter: &Filter) -> Result<Vec<Summary>, JournalError>;
    /// One message with its deliveries; `None` when the id is unknown.
    fn show(&self, id: &str) -> Result<Option<Detail>, JournalError>;
    /// Message `id` as recorded, with its current run's outputs (`None`:
    /// unknown id).
    fn recorded(&self, id: &str) -> Result<Option<Recorded>, JournalError>;
    /// The ids of the messages matching `filter` (its limit and offset
    /// aside), newest first, at most `max`: what a bulk action acts on.
    fn select(&self, filter: &Filter, max: usize) -> Result<Vec<String>, JournalError>;

    // -- what operators do --

    /// Sends every output of these messages again (delivered or dead alike):
    /// their deliveries become pending with a fresh attempt count.
    fn resend(&self, ids: &[String]) -> Result<Resent, JournalError>;
    /// Gives every dead delivery another round of attempts: how many.
    fn resend_dead(&self) -> Result<usize, JournalError>;
    /// Runs these messages through the plugins again, as they are live
    /// when the runtime takes them: each one's outcome is kept as an
    /// earlier run, its deliveries not yet made are superseded (never
    /// sent), and it waits as received for the runtime, whose new outcome
    /// and deliveries replace the old. A message still on its way through
    /// the plugins is left alone.
    fn reprocess(&self, ids: &[String]) -> Result<Reprocessed, JournalError>;
    /// Deletes the messages received before `before` (ms) whose work is
    /// settled (never pending work), with their deliveries, and gives the
    /// space back.
    fn purge(&self, before: i64) -> Result<Purged, JournalError>;
    /// Deletes the oldest settled messages until the journal takes at most
    /// `max_bytes` (aiming a tenth below): what went and the bytes used
    /// after. Pending work is never deleted, so a journal full of it stays
    /// over the cap.
    fn purge_to_size(&self, max_bytes: u64) -> Result<(Purged, u64), JournalError>;

    // -- the audit trail (see [`audit`]) --

    /// Appends `record` at the end of the chain.
    fn audit_append(&self, record: &Record) -> Result<Entry, JournalError>;
    /// Entries matching `filter`, newest first.
    fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<Entry>, JournalError>;
    /// Walks the chain from its anchor and checks every link and hash.
    fn audit_verify(&self) -> Result<Verdict, JournalError>;
    /// The hash of entry `seq`, if the trail still holds it.
    fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, JournalError>;
    /// Removes the entries older than `before` (ms), oldest first, keeping
    /// the last one removed as the chain's anchor: how many.
    fn audit_purge(&self, before: i64) -> Result<usize, JournalError>;

    // -- sealing at rest (see [`sealed`]) --

    /// A value of the journal's own settings (`encryption.key_id`…),
    /// `None` when unset.
    fn setting(&self, key: &str) -> Result<Option<String>, JournalError>;
    /// Sets one of the journal's own settings.
    fn set_setting(&self, key: &str, value: &str) -> Result<(), JournalError>;
    /// Up to `limit` values of `column` in rows after `after`, in row
    /// order, that do not start with `prefix` (the form the active key
    /// gives): what a rotation has left to rewrite.
    fn stale(
        &self,
        column: SealedColumn,
        prefix: &[u8],
        after: i64,
        limit: usize,
    ) -> Result<Vec<Stale>, JournalError>;
    /// Writes each new value over its stale one, in one transaction, where
    /// the stored value is still the one read (a value changed meanwhile is
    /// left for the next pass): how many were written.
    fn replace_stale(&self, done: &[(Stale, Vec<u8>)]) -> Result<usize, JournalError>;
    /// Makes `new` the key that seals, while serving (see
    /// [`sealed::Sealed::rotate`]): its id.
    fn rotate_key(&self, new: seal::JournalKey) -> Result<String, JournalError> {
        let _ = new;
        Err(JournalError::Write(
            "the journal is not encrypted: set [runtime] encryption_key and restart first".into(),
        ))
    }
    /// The other node runs serving this journal now (running, their lease
    /// not lapsed), as `name (run id)`: a key is changed only with none,
    /// since each holds its keys in memory. Always none for an engine one
    /// process owns.
    fn other_nodes(&self) -> Result<Vec<String>, JournalError> {
        Ok(Vec::new())
    }

    /// Finishes the writes already queued and closes; later writes answer
    /// [`JournalError::Closed`].
    fn close(&self);
}

/// Opens (or creates) the SQLite journal of the runtime whose data
/// directory is `data_dir`, checks it and brings its schema up to date:
/// for `weft run`, which then owns its writes. ([`for_config`] opens the
/// engine a configuration names.)
pub fn open(data_dir: &Path, sync: JournalSync) -> Result<Arc<dyn Journal>, JournalError> {
    let journal = sqlite::SqliteJournal::open_with(&data_dir.join(sqlite::FILE), sync)?;
    Ok(Arc::new(journal))
}

/// The journal of `data_dir`, opened read-only: it is never written, not
/// even migrated (a journal of another schema version is an error), and
/// any write through it fails. For reading beside a running `weft run`
/// (`weft replay`); each reader opens its own.
pub fn read_only(data_dir: &Path) -> Result<Arc<dyn Journal>, JournalError> {
    let journal = sqlite::SqliteJournal::read_only(&data_dir.join(sqlite::FILE))?;
    Ok(Arc::new(journal))
}

/// Whether [`attach`] may make a journal that is not there yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Only an existing journal: a wrong `data_dir` is an error, not a new
    /// empty journal.
    Existing,
    /// Make it if need be (a record that must be kept even before the
    /// first `weft run`, such as an audit entry for a new token).
    CreateIfMissing,
}

/// The journal of `data_dir` for a command run beside `weft run` (or
/// without it): its writes are committed one by one, each waiting for the
/// runtime's when they meet.
pub fn attach(data_dir: &Path, mode: Attach) -> Result<Arc<dyn Journal>, JournalError> {
    let journal = sqlite::SqliteJournal::attach(&data_dir.join(sqlite::FILE), mode)?;
    Ok(Arc::new(journal))
}

/// How a process uses the journal [`for_config`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// `weft run`: it owns the message path's writes (with PostgreSQL, as
    /// one node run among the others).
    Run,
    /// A command beside it (see [`attach`]).
    Attach(Attach),
    /// Reading only (see [`read_only`]).
    ReadOnly,
}

/// Refuses root in a data directory that belongs to another user (the
/// package's `weft`): SQLite would make its `-wal` and `-shm` files, or a
/// new journal, as root, and the service could then no longer write its
/// own journal. The error says which user to run as.
pub fn refuse_root_in_a_users_dir(data_dir: &std::path::Path) -> Result<(), JournalError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(());
        }
        let Ok(meta) = std::fs::metadata(data_dir) else {
            return Ok(());
        };
        if meta.uid() != 0 {
            let owner =
                audit::user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid()));
            return Err(JournalError::Open {
                path: data_dir.display().to_string(),
                reason: format!(
                    "belongs to {owner}, and this runs as root: run it as {owner} \
                     (`sudo -u {owner} weft ...`), so the journal's files stay its own"
                ),
            });
        }
    }
    Ok(())
}

/// The journal `config` names (`[journal]`): SQLite in `data_dir`, or the
/// PostgreSQL database shared by the nodes.
pub fn for_config(
    config: &weft_config::Config,
    how: Use,
) -> Result<Arc<dyn Journal>, JournalError> {
    let data_dir = &config.runtime.data_dir;
    if matches!(config.journal, weft_config::JournalConfig::Sqlite) {
        refuse_root_in_a_users_dir(data_dir)?;
    }
    let keys = keys_for(&config.runtime, how)?;
    sealed::wrap(engine_for(config, how)?, keys, how)
}

/// The journal keys `runtime` names (`encryption_key` first, then
/// `previous_encryption_keys`), read. A command beside the runtime whose
/// user may not read the key, or that runs outside the service holding it
/// as a systemd credential, works without it (bodies and reasons marked
/// encrypted); `weft run` must have it.
pub fn keys_for(
    runtime: &weft_config::RuntimeConfig,
    how: Use,
) -> Result<Option<(seal::JournalKey, Vec<seal::JournalKey>)>, JournalError> {
    let Some(active) = &runtime.encryption_key else {
        return Ok(None);
    };
    let load =
        |path: &Path| seal::JournalKey::load(path).map_err(|e| JournalError::Key(e.to_string()));
    if how != Use::Run
        && let Err(e) = std::fs::File::open(active)
        && (e.kind() == std::io::ErrorKind::PermissionDenied
            || weft_config::systemd_credential(active))
    {
        tracing::debug!(key = %active.display(), "the journal key is not readable here (another user's, or the service's systemd credential): bodies and reasons stay encrypted");
        return Ok(None);
    }
    let previous = runtime
        .previous_encryption_keys
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((load(active)?, previous)))
}

/// The engine `config` names, opened for `how`, not yet sealed.
fn engine_for(config: &weft_config::Config, how: Use) -> Result<Arc<dyn Journal>, JournalError> {
    let data_dir = &config.runtime.data_dir;
    match (&config.journal, how) {
        (weft_config::JournalConfig::Sqlite, Use::Run) => {
            open(data_dir, config.runtime.journal_sync)
        }
        (weft_config::JournalConfig::Sqlite, Use::Attach(mode)) => attach(data_dir, mode),
        (weft_config::JournalConfig::Sqlite, Use::ReadOnly) => read_only(data_dir),
        (weft_config::JournalConfig::Postgres(pg), Use::Run) => {
            Ok(Arc::new(postgres::PgJournal::open(
                postgres::Server::for_config(pg)?,
                &pg.node,
                env!("CARGO_PKG_VERSION"),
                pg.lease,
            )?))
        }
        (weft_config::JournalConfig::Postgres(pg), Use::Attach(_)) => Ok(Arc::new(
            postgres::PgJournal::attach(postgres::Server::for_config(pg)?, false)?,
        )),
        (weft_config::JournalConfig::Postgres(pg), Use::ReadOnly) => Ok(Arc::new(
            postgres::PgJournal::attach(postgres::Server::for_config(pg)?, true)?,
        )),
    }
}
