//! Sources: where messages come in. Each kind is one file; they share the
//! intake below (route selection, ids, hand-off, waiting per ACK mode).

pub mod budget;
pub mod http;
pub mod mllp;
pub mod set;

use std::net::SocketAddr;

use tokio::sync::oneshot;

use crate::config::{AckMode, SourceConfig};
use crate::journal::{JournalError, MessageStatus, NewMessage, Recent, now_ms};
use crate::metrics::metrics;
use crate::pipeline::{Answer, Job, Pipeline};
use crate::plugins::Message;

/// Why a message was not taken in.
#[derive(Debug, Clone)]
pub enum IntakeRefusal {
    /// A header field Weft files the message under (MSH-3, MSH-4, MSH-9,
    /// MSH-10) is too long or holds control characters.
    BadHeader(BadHeader),
    /// No route takes this message type.
    NoRoute(String),
    /// The plugin workers' queue is full (HTTP answers 503).
    Busy,
    /// The journal could not record it (disk full, file not writable): it
    /// was not accepted.
    NotRecorded(String),
    /// The runtime is shutting down: send again later.
    ShuttingDown,
    /// A duplicate of a message received within the source's window; it
    /// was not processed again.
    Duplicate {
        /// The original's id.
        original: String,
        /// What became of the original, as it was answered.
        outcome: Answer,
    },
}

impl IntakeRefusal {
    /// Why, one word (the `reason` label of `weft_source_refused_total`).
    pub fn word(&self) -> &'static str {
        match self {
            IntakeRefusal::BadHeader(_) => "bad_header",
            IntakeRefusal::NoRoute(_) => "no_route",
            IntakeRefusal::Busy => "busy",
            IntakeRefusal::NotRecorded(_) => "not_recorded",
            IntakeRefusal::ShuttingDown => "shutting_down",
            IntakeRefusal::Duplicate { .. } => "duplicate",
        }
    }
}

/// A message as a source read it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The bytes.
    pub body: Vec<u8>,
    /// Their media type.
    pub content_type: String,
    /// MSH-10 (empty when not HL7).
    pub control_id: String,
    /// MSH-3 (empty when not HL7).
    pub sending_application: String,
    /// MSH-4 (empty when not HL7).
    pub sending_facility: String,
    /// What routes match on: MSH-9 (`ADT^A01`) for HL7 v2, `resourceType`
    /// for FHIR JSON.
    pub message_type: String,
    /// Return the outputs with the outcome.
    pub want_outputs: bool,
    /// The subject of the client certificate the sender presented (mutual
    /// TLS).
    pub peer_subject: Option<String>,
}

/// A header field refused at intake: which, and why (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHeader {
    /// `MSH-10`, ….
    pub field: &'static str,
    /// Its field number in MSH.
    pub number: usize,
    /// Too long (else: control characters).
    pub too_long: bool,
    /// What is wrong, with the field named.
    pub reason: String,
}

/// The longest MSH-10 taken in (HL7 v2.5+ allows 199 characters): a
/// longer one is refused at the door rather than carried into file names,
/// logs and the journal's indexes.
pub const MAX_CONTROL_ID: usize = 199;

/// The longest MSH-3 or MSH-4 (HD) taken in.
pub const MAX_SENDER: usize = 227;

/// The longest MSH-9 (or FHIR `resourceType`) taken in.
pub const MAX_MESSAGE_TYPE: usize = 100;

/// Checks the header fields Weft files a message under: each within its
/// length and free of control characters (an escaped line break such as
/// `\X0A\` decodes to one, and could forge a log line).
pub fn check_header(incoming: &Incoming) -> Result<(), BadHeader> {
    for (field, number, value, max) in [
        ("MSH-3", 3, &incoming.sending_application, MAX_SENDER),
        ("MSH-4", 4, &incoming.sending_facility, MAX_SENDER),
        ("MSH-9", 9, &incoming.message_type, MAX_MESSAGE_TYPE),
        ("MSH-10", 10, &incoming.control_id, MAX_CONTROL_ID),
    ] {
        let chars = value.chars().count();
        if chars > max {
            return Err(BadHeader {
                field,
                number,
                too_long: true,
                reason: format!("{field} is {chars} characters long; at most {max} are taken"),
            });
        }
        if value.chars().any(char::is_control) {
            return Err(BadHeader {
                field,
                number,
                too_long: false,
                reason: format!("{field} holds a control character (a line break, say)"),
            });
        }
    }
    Ok(())
}

/// The most patient identifiers indexed per message.
pub const MAX_PATIENT_IDS: usize = 16;
/// The longest patient identifier indexed (CX.1 allows 15 characters in
/// HL7 v2.5.1; sites send longer ones).
pub const MAX_PATIENT_ID: usize = 64;

/// The patient identifiers of a message, for search by patient: the ID
/// number (CX.1) of each PID-3 repetition, decoded and trimmed. Empty,
/// over-long and control-character ones are left out, and at most
/// [`MAX_PATIENT_IDS`] are kept.
pub fn patient_ids(message: &weft_hl7::Message) -> Vec<String> {
    let Some(pid) = message.segment("PID") else {
        return Vec::new();
    };
    let mut ids: Vec<String> = Vec::new();
    for repetition in message.field(pid, 3).repetitions() {
        let value = repetition.component(1).value();
        let id = value.trim();
        if id.is_empty()
            || id.chars().count() > MAX_PATIENT_ID
            || id.chars().any(char::is_control)
            || ids.iter().any(|i| i == id)
        {
            continue;
        }
        ids.push(id.to_string());
        if ids.len() == MAX_PATIENT_IDS {
            break;
        }
    }
    ids
}

/// A new message id: time-ordered (UUIDv7), unique, never derived from the
/// content.
pub fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The headers a plugin sees with a message: `source`, `remote-addr`, and
/// `tls-client-subject` when the sender presented a client certificate.
pub fn message_headers(
    source: &str,
    remote: Option<String>,
    peer_subject: Option<String>,
) -> Vec<(String, String)> {
    let mut headers = vec![("source".to_string(), source.to_string())];
    if let Some(addr) = remote {
        headers.push(("remote-addr".to_string(), addr));
    }
    if let Some(subject) = peer_subject {
        headers.push(("tls-client-subject".to_string(), subject));
    }
    headers
}

/// Records a message in the journal, hands it to the workers and waits as
/// long as the source's ACK mode asks. `hl7` is the message as the source
/// parsed it (HL7 v2 only): its ordering keys are read from it. Without `wait_for_room`, a full
/// workers' queue refuses the message ([`IntakeRefusal::Busy`]) before anything
/// is recorded.
pub async fn take(
    pipeline: &Pipeline,
    source: &SourceConfig,
    incoming: Incoming,
    hl7: Option<&weft_hl7::Message>,
    remote: Option<SocketAddr>,
    wait_for_room: bool,
) -> Result<(String, Answer), IntakeRefusal> {
    // Every line about this message carries its source, and its id once
    // it has one.
    let span = tracing::info_span!(
        "message",
        source = %source.name,
        message_id = tracing::field::Empty
    );
    let taken = tracing::Instrument::instrument(
        record_and_wait(pipeline, source, incoming, hl7, remote, wait_for_room),
        span,
    )
    .await;
    if let Err(refusal) = &taken {
        metrics().refused(&source.name, refusal.word());
        crate::activity::activity().record(crate::activity::Subject::Source, &source.name, false);
    }
    taken
}

/// The copy of a message taken in since `since` with the same MSH-3,
/// MSH-4 and MSH-10 (`sender`), and how it was answered: `None` when
/// there is none. An original still being processed has no verdict yet:
/// given a moment (up to two seconds).
async fn earlier_copy(
    pipeline: &Pipeline,
    sender: &(String, String, String),
    since: i64,
) -> Option<(String, Answer)> {
    let (app, fac, ctrl) = sender.clone();
    let journal = pipeline.journal().clone();
    tokio::task::spawn_blocking(move || {
        let mut found = journal.find_recent(&app, &fac, &ctrl, since).ok().flatten();
        for _ in 0..100 {
            match &found {
                Some(recent) if recent.status == MessageStatus::Received => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    found = journal.find_recent(&app, &fac, &ctrl, since).ok().flatten();
                }
                _ => break,
            }
        }
        found
    })
    .await
    .ok()
    .flatten()
    .map(|Recent { id, status, error }| {
        let error = error.unwrap_or_default();
        let outcome = match status {
            MessageStatus::Rejected => Answer::Rejected(error),
            MessageStatus::Failed => Answer::Failed(error),
            MessageStatus::Received | MessageStatus::Transformed => Answer::Accepted,
        };
        (id, outcome)
    })
}

/// [`take`], but for counting its refusals.
async fn record_and_wait(
    pipeline: &Pipeline,
    source: &SourceConfig,
    incoming: Incoming,
    hl7: Option<&weft_hl7::Message>,
    remote: Option<SocketAddr>,
    wait_for_room: bool,
) -> Result<(String, Answer), IntakeRefusal> {
    check_header(&incoming).map_err(IntakeRefusal::BadHeader)?;
    let Some(route) = pipeline.route_for(source.route.as_deref(), &incoming.message_type) else {
        return Err(IntakeRefusal::NoRoute(incoming.message_type));
    };
    if !wait_for_room && !pipeline.has_room() {
        return Err(IntakeRefusal::Busy);
    }
    let dedup_since = source
        .dedup_window
        .filter(|_| !incoming.control_id.is_empty())
        .map(|window| now_ms() - window.as_millis() as i64);
    let sender = (
        incoming.sending_application.clone(),
        incoming.sending_facility.clone(),
        incoming.control_id.clone(),
    );
    if let Some(since) = dedup_since
        && let Some((original, outcome)) = earlier_copy(pipeline, &sender, since).await
    {
        tracing::info!(source = %source.name, original = %original, "duplicate: not processed again");
        return Err(IntakeRefusal::Duplicate { original, outcome });
    }
    let id = new_message_id();
    tracing::Span::current().record("message_id", id.as_str());
    let ordering_keys = hl7
        .map(|m| pipeline.ordering_keys(&route, m))
        .unwrap_or_default();
    let record = NewMessage {
        ordering_keys: ordering_keys.clone(),
        patient_ids: hl7.map(patient_ids).unwrap_or_default(),
        id: id.clone(),
        source: source.name.clone(),
        remote: remote.map(|a| a.to_string()),
        peer_subject: incoming.peer_subject.clone(),
        received_at: now_ms(),
        content_type: incoming.content_type.clone(),
        body: incoming.body.clone(),
        message_type: incoming.message_type.clone(),
        control_id: incoming.control_id.clone(),
        sending_application: incoming.sending_application,
        sending_facility: incoming.sending_facility,
        route: route.name.clone(),
        dedup_since,
    };
    let committing = std::time::Instant::now();
    match pipeline.journal().append(record).done().await {
        Ok(()) => {}
        // Another copy was taken in at the same moment (on another
        // connection, or by another node): answered as that one is.
        Err(JournalError::Duplicate { original }) => {
            let since = dedup_since.unwrap_or_default();
            let (original, outcome) = earlier_copy(pipeline, &sender, since)
                .await
                .unwrap_or((original, Answer::Accepted));
            tracing::info!(source = %source.name, original = %original, "duplicate: not processed again");
            return Err(IntakeRefusal::Duplicate { original, outcome });
        }
        Err(e) => {
            tracing::error!(source = %source.name, error = %e, "message not recorded; refused");
            return Err(IntakeRefusal::NotRecorded(e.to_string()));
        }
    }
    metrics().received(&source.name, committing.elapsed());
    crate::activity::activity().received(&source.name);
    let headers = message_headers(
        &source.name,
        remote.map(|a| a.to_string()),
        incoming.peer_subject,
    );
    let (reply, wait) = match source.ack {
        AckMode::AfterCommit => (None, None),
        _ => {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        }
    };
    let job = Job {
        message: Message {
            id: id.clone(),
            content_type: incoming.content_type,
            body: incoming.body,
            headers,
        },
        control_id: incoming.control_id,
        message_type: incoming.message_type,
        route,
        ack: source.ack,
        reply,
        want_outputs: incoming.want_outputs,
        ordering_keys,
    };
    if pipeline.submit(job).await.is_err() {
        // Recorded: it resumes at the next start. Say so honestly.
        return match wait {
            None => Ok((id, Answer::Accepted)),
            Some(_) => Err(IntakeRefusal::ShuttingDown),
        };
    }
    let outcome = match wait {
        None => Answer::Accepted,
        Some(rx) => rx.await.unwrap_or_else(|_| {
            Answer::Failed("the pipeline stopped before the message finished".into())
        }),
    };
    Ok((id, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid3(field: &str) -> Vec<String> {
        let text = format!("MSH|^~\\&|A|F|W|E|20240102||ADT^A01|C1|P|2.5.1\rPID|1||{field}\r");
        patient_ids(&weft_hl7::Message::parse(text.as_bytes()).unwrap())
    }

    #[test]
    fn patient_identifiers_are_capped_in_number_and_length() {
        assert_eq!(pid3("MRN1^^^EDGE^MR~E9^^^HIE^PI"), ["MRN1", "E9"]);
        // Decoded, trimmed, each once; empty ones left out.
        assert_eq!(pid3(" A\\T\\B ^^^X~~A\\T\\B~"), ["A&B"]);
        // Many repetitions: the first 16 distinct ones.
        let many: Vec<String> = (0..1000).map(|i| format!("ID{i}^^^X")).collect();
        let ids = pid3(&many.join("~"));
        assert_eq!(ids.len(), MAX_PATIENT_IDS);
        assert_eq!(ids[15], "ID15");
        // Too long, or with a control character (an escaped line break):
        // left out, the rest kept.
        let long = "9".repeat(MAX_PATIENT_ID + 1);
        assert_eq!(
            pid3(&format!("{long}~OK1~BAD\\X0A\\LINE~OK2")),
            ["OK1", "OK2"]
        );
        assert_eq!(pid3(&"7".repeat(MAX_PATIENT_ID)).len(), 1);
        // No PID: nothing.
        let no_pid =
            weft_hl7::Message::parse(b"MSH|^~\\&|A|F|W|E|1||ADT^A01|C1|P|2.5.1\r").unwrap();
        assert!(patient_ids(&no_pid).is_empty());
    }
}
