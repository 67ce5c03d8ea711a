//! The journal: the durable record of every message received, its outputs
//! and their delivery state. A message is acknowledged only once it is in
//! here; destinations read their work from here, so a restart resumes every
//! pending delivery.
//!
//! [`sqlite::SqliteJournal`] is the embedded implementation (WAL, one writer
//! thread with group commit). The pipeline only uses [`Journal`], so another
//! store (PostgreSQL, for several nodes) is one more file.

pub mod audit;
pub mod operate;
pub mod query;
pub mod retention;
pub mod sqlite;
pub mod time;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How hard a journal commit holds on to the disk (`runtime.journal_sync` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JournalSync {
    /// Every group commit is fsynced before anything is acknowledged: an
    /// acknowledged message survives a crash of the process and of the
    /// machine (power cut). The default.
    #[default]
    Full,
    /// Commits are written but not fsynced (only checkpoints are): an
    /// acknowledged message survives a crash of the process, but a power
    /// cut may lose the last commits. For hardware with a battery-backed
    /// cache, or for measuring what fsync costs.
    Normal,
}

impl std::fmt::Display for JournalSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JournalSync::Full => "full",
            JournalSync::Normal => "normal",
        })
    }
}

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
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What the plugins made of a message.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The message.
    pub message_id: String,
    /// Its new status.
    pub status: MessageStatus,
    /// The reason, for rejected and failed messages.
    pub error: Option<String>,
    /// (plugin, sha256) of every plugin it went through.
    pub versions: Vec<(String, String)>,
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

/// A message recorded but not yet transformed (found at start-up).
#[derive(Debug, Clone)]
pub struct Unfinished {
    /// The message as recorded.
    pub message: NewMessage,
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
}

/// The durable store behind the pipeline.
pub trait Journal: Send + Sync {
    /// Records a message durably; returns once it is committed.
    fn append(&self, message: NewMessage) -> Result<(), JournalError>;
    /// Records what the plugins made of a message, atomically with its
    /// deliveries.
    fn record(&self, outcome: Outcome) -> Result<(), JournalError>;
    /// Up to `limit` deliveries for `destination` due at `now`, oldest
    /// first, skipping the ids in `busy`.
    fn due(
        &self,
        destination: &str,
        now: i64,
        limit: usize,
        busy: &[i64],
    ) -> Result<Vec<DueDelivery>, JournalError>;
    /// When the next delivery for `destination` falls due, if any is pending.
    fn next_due(&self, destination: &str) -> Result<Option<i64>, JournalError>;
    /// Marks a delivery done.
    fn delivered(&self, id: i64, at: i64) -> Result<(), JournalError>;
    /// Records a failed attempt: retried at `next_attempt`, or dead (given
    /// up) when that is `None`.
    fn attempt_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt: Option<i64>,
    ) -> Result<(), JournalError>;
    /// Messages recorded but never transformed (the process stopped first).
    fn unfinished(&self) -> Result<Vec<Unfinished>, JournalError>;
    /// Pending deliveries, per destination.
    fn pending_counts(&self) -> Result<Vec<(String, u64)>, JournalError>;
    /// The latest message from this sender with this control id received at
    /// or after `since`: (id, status, error). For duplicate detection.
    fn find_recent(
        &self,
        sending_application: &str,
        sending_facility: &str,
        control_id: &str,
        since: i64,
    ) -> Result<Option<(String, String, Option<String>)>, JournalError>;
}
