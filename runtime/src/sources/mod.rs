//! Sources: where messages come in. Each kind is one file; they share the
//! intake below (route selection, ids, hand-off, waiting per ACK mode).

pub mod http;
pub mod mllp;

use std::net::SocketAddr;
use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::config::{AckMode, SourceConfig};
use crate::pipeline::{Job, NotTaken, Outcome, Pipeline};
use crate::plugins::Message;

/// Why a message was not taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No route takes this message type.
    NoRoute(String),
    /// The plugin workers' queue is full (HTTP answers 503).
    Busy,
    /// The runtime is shutting down: send again later.
    ShuttingDown,
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
    /// What routes match on: MSH-9 (`ADT^A01`) for HL7 v2, `resourceType`
    /// for FHIR JSON.
    pub message_type: String,
    /// Return the outputs with the outcome.
    pub want_outputs: bool,
}

/// A new message id: time-ordered (UUIDv7), unique, never derived from the
/// content.
pub fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Takes a message into the pipeline and waits as long as the source's ACK
/// mode asks. With `wait_for_room`, a full queue makes the caller wait
/// (MLLP stops reading); without, it is refused as [`Refusal::Busy`].
pub async fn take(
    pipeline: &Pipeline,
    source: &SourceConfig,
    incoming: Incoming,
    remote: Option<SocketAddr>,
    wait_for_room: bool,
) -> Result<(String, Outcome), Refusal> {
    let Some(route) = pipeline.route_for(source.route.as_deref(), &incoming.message_type) else {
        return Err(Refusal::NoRoute(incoming.message_type));
    };
    let id = new_message_id();
    let mut headers = vec![("source".to_string(), source.name.clone())];
    if let Some(addr) = remote {
        headers.push(("remote-addr".to_string(), addr.to_string()));
    }
    let (reply, wait) = match source.ack {
        AckMode::OnReceipt => (None, None),
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
        received: SystemTime::now(),
        route,
        ack: source.ack,
        reply,
        want_outputs: incoming.want_outputs,
    };
    if wait_for_room {
        if pipeline.submit(job).await.is_err() {
            return Err(Refusal::ShuttingDown);
        }
    } else if let Err(e) = pipeline.try_submit(job) {
        return Err(match e {
            NotTaken::Full => Refusal::Busy,
            NotTaken::ShuttingDown => Refusal::ShuttingDown,
        });
    }
    let outcome = match wait {
        None => Outcome::Accepted,
        Some(rx) => rx.await.unwrap_or_else(|_| {
            Outcome::Failed("the pipeline stopped before the message finished".into())
        }),
    };
    Ok((id, outcome))
}
