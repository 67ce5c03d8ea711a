//! What operators ask of the journal and what their actions report:
//! filters and views for [`Journal::list`](super::Journal::list) and
//! [`Journal::show`](super::Journal::show), results of resend and purge.
//! Every engine answers in these types.

use std::str::FromStr;

use super::{DeliveryState, MessageStatus, PluginUse};

/// Which messages a status filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Messages in this status.
    Message(MessageStatus),
    /// Messages with at least one delivery in this state (`pending`: work
    /// not done yet; `dead`: a delivery given up).
    Delivery(DeliveryState),
}

impl StatusFilter {
    /// The words an operator may filter by.
    pub const NAMES: &str = "received, transformed, rejected, failed, pending, dead";
}

impl FromStr for StatusFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(StatusFilter::Delivery(DeliveryState::Pending)),
            "dead" => Ok(StatusFilter::Delivery(DeliveryState::Dead)),
            _ => s
                .parse()
                .map(StatusFilter::Message)
                .map_err(|_| format!("unknown status {s:?} (expected {})", StatusFilter::NAMES)),
        }
    }
}

/// Filters for [`Journal::list`](super::Journal::list).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The status (of the message, or of one of its deliveries).
    pub status: Option<StatusFilter>,
    /// The source's name.
    pub source: Option<String>,
    /// MSH-9, with `*` wildcards (`ADT^A0*`).
    pub message_type: Option<String>,
    /// MSH-10.
    pub control_id: Option<String>,
    /// The route it took.
    pub route: Option<String>,
    /// A patient identifier (PID-3's ID number, CX.1), exactly.
    pub patient: Option<String>,
    /// Received at or after (ms since the epoch).
    pub since: Option<i64>,
    /// Received before (ms since the epoch).
    pub until: Option<i64>,
    /// Most rows.
    pub limit: usize,
    /// Rows to skip (for paging).
    pub offset: usize,
}

impl Filter {
    /// What it selects, for the audit trail and confirmations:
    /// `status=rejected route=adt since=2026-11-29T00:00:00Z`. A patient
    /// identifier is named as given, never shown (it is patient data).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let status = self.status.map(|s| match s {
            StatusFilter::Message(m) => m.as_str(),
            StatusFilter::Delivery(d) => d.as_str(),
        });
        let text = [
            ("status", status.map(str::to_string)),
            ("source", self.source.clone()),
            ("type", self.message_type.clone()),
            ("control_id", self.control_id.clone()),
            ("route", self.route.clone()),
            (
                "patient",
                self.patient.as_ref().map(|_| "(given)".to_string()),
            ),
            ("since", self.since.map(super::time::iso)),
            ("until", self.until.map(super::time::iso)),
        ];
        for (name, value) in text {
            if let Some(v) = value {
                parts.push(format!("{name}={v}"));
            }
        }
        if parts.is_empty() {
            "every message".into()
        } else {
            parts.join(" ")
        }
    }

    /// True when it keeps every message.
    pub fn is_everything(&self) -> bool {
        self.status.is_none()
            && self.source.is_none()
            && self.message_type.is_none()
            && self.control_id.is_none()
            && self.route.is_none()
            && self.patient.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }
}

/// The most messages one bulk action (a resend or a reprocessing of a
/// search's result) may take: a wider one is refused, to be narrowed.
pub const MAX_BULK: usize = 100_000;

/// One line of [`Journal::list`](super::Journal::list).
#[derive(Debug, Clone)]
pub struct Summary {
    /// The message id.
    pub id: String,
    /// When it arrived (ms).
    pub received_at: i64,
    /// The source.
    pub source: String,
    /// MSH-9.
    pub message_type: String,
    /// MSH-10.
    pub control_id: String,
    /// Its status.
    pub status: MessageStatus,
    /// Deliveries done (of its latest run, as are the two below).
    pub delivered: u64,
    /// Deliveries pending.
    pub pending: u64,
    /// Deliveries given up.
    pub dead: u64,
}

/// One delivery of a message, for [`Journal::show`](super::Journal::show).
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// Its id.
    pub id: i64,
    /// The destination.
    pub destination: String,
    /// The output's number.
    pub n: i64,
    /// Media type.
    pub content_type: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// When it was delivered (ms).
    pub delivered_at: Option<i64>,
    /// When it is next tried (ms).
    pub next_attempt_at: i64,
    /// The output bytes.
    pub body: Vec<u8>,
    /// The run of the message that made it (1, then one more per
    /// reprocessing).
    pub run: i64,
}

/// What an earlier run through the plugins made of a message, kept when
/// it was reprocessed.
#[derive(Debug, Clone)]
pub struct EarlierRun {
    /// Its number, from 1.
    pub run: i64,
    /// Its outcome.
    pub status: MessageStatus,
    /// Why it was rejected or failed.
    pub error: Option<String>,
    /// The plugin versions it went through.
    pub plugins: Vec<PluginUse>,
    /// When an operator asked for the run that replaced it (ms).
    pub replaced_at: i64,
}

/// Everything about one message, for [`Journal::show`](super::Journal::show).
#[derive(Debug, Clone)]
pub struct Detail {
    /// The summary fields.
    pub summary: Summary,
    /// The peer's address.
    pub remote: Option<String>,
    /// The subject of the peer's client certificate (mutual TLS).
    pub peer_subject: Option<String>,
    /// Media type of the input.
    pub content_type: String,
    /// MSH-3 / MSH-4.
    pub sender: (String, String),
    /// The route it took.
    pub route: String,
    /// Why it was rejected or failed.
    pub error: Option<String>,
    /// Each plugin version it went through, and who signed it.
    pub plugins: Vec<PluginUse>,
    /// The input bytes.
    pub body: Vec<u8>,
    /// Its deliveries, this run's and earlier runs'.
    pub deliveries: Vec<DeliveryRow>,
    /// This run's number: 1, then one more per reprocessing.
    pub run: i64,
    /// The earlier runs' outcomes, oldest first.
    pub earlier: Vec<EarlierRun>,
}

/// What a resend queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resent {
    /// Deliveries queued again.
    pub queued: usize,
    /// The ids that have no outputs to send: unknown ids, or messages a
    /// plugin rejected or failed.
    pub without_outputs: Vec<String>,
}

/// What a reprocessing queued.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reprocessed {
    /// Messages queued to run through the plugins again.
    pub queued: usize,
    /// Their deliveries not yet made, now never to be (superseded).
    pub superseded: usize,
    /// Ids the journal does not have.
    pub unknown: Vec<String>,
    /// Messages still on their way through the plugins (or already queued
    /// to run again): left alone.
    pub in_progress: Vec<String>,
    /// Weft's own events (alerts): no plugins to run them through, and
    /// their notifications must not be superseded. Left alone.
    pub own_events: Vec<String>,
}

/// What a purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Messages.
    pub messages: usize,
    /// Their deliveries.
    pub deliveries: usize,
}

/// The plugin versions a message went through, as stored: JSON, or, in rows
/// written before signatures were recorded, `plugin@sha256,…`.
pub(crate) fn plugin_uses(stored: Option<&str>) -> Vec<PluginUse> {
    let stored = stored.unwrap_or_default();
    if stored.starts_with('[') {
        return serde_json::from_str(stored).unwrap_or_default();
    }
    stored
        .split(',')
        .filter_map(|v| v.split_once('@'))
        .map(|(plugin, sha256)| PluginUse {
            declared_version: None,
            plugin: plugin.to_string(),
            sha256: sha256.to_string(),
            signer: None,
            key: None,
        })
        .collect()
}

/// The SQL condition "delivery `d` is the head of its key", as both engines
/// test it (plain SQL; a macro so it can be `concat!`ed into a literal):
/// unordered, or no earlier pending delivery nor message hold with its key.
/// Written as an `OR` so a server looks each key up by index for the
/// candidates that have one (a subquery per row), and not at all for
/// unordered ones: as two anti-joins, a freshly filled PostgreSQL table's
/// statistics led the planner to compare every pending delivery with
/// every other (2.4 s a claim with 2,200 pending, `cargo bench -p weft
/// --bench nodes`).
macro_rules! head_of_key {
    () => {
        "(d.ordering_key IS NULL OR (
      NOT EXISTS (
        SELECT 1 FROM deliveries e
        WHERE e.destination = d.destination AND e.ordering_key = d.ordering_key
          AND e.state = 'pending'
          AND (e.message_seq < d.message_seq
               OR (e.message_seq = d.message_seq AND e.id < d.id)))
      AND NOT EXISTS (
        SELECT 1 FROM order_holds h
        WHERE h.destination = d.destination AND h.ordering_key = d.ordering_key
          AND h.message_seq < d.message_seq)))"
    };
}
pub(crate) use head_of_key;

/// A message's summary row, as both engines select it (plain SQL).
pub(crate) const SUMMARY: &str =
    "SELECT m.id, m.received_at, m.source, m.message_type, m.control_id, m.status,
    (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = m.id AND d.run = m.run AND d.state = 'delivered'),
    (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = m.id AND d.state = 'pending'),
    (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = m.id AND d.state = 'dead')
    FROM messages m";
