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
    /// Deliveries done / pending / dead.
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
    /// Its deliveries.
    pub deliveries: Vec<DeliveryRow>,
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

/// What a purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Messages.
    pub messages: usize,
    /// Their deliveries.
    pub deliveries: usize,
}
