//! Sources: where messages come in. Each kind is one file; they share the
//! intake below (route selection, ids, hand-off, waiting per ACK mode).

pub mod mllp;

use std::net::SocketAddr;
use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::config::{AckMode, SourceConfig};
use crate::pipeline::{Job, Outcome, Pipeline};
use crate::plugins::Message;

/// Why a message was not taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No route takes this message type.
    NoRoute(String),
    /// The runtime is shutting down: send again later.
    ShuttingDown,
}

/// A new message id: time-ordered (UUIDv7), unique, never derived from the
/// content.
pub fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Takes a parsed HL7 v2 message into the pipeline and waits as long as the
/// source's ACK mode asks. Returns the message id and the outcome.
pub async fn take_hl7(
    pipeline: &Pipeline,
    source: &SourceConfig,
    header: &weft_hl7::Header,
    body: Vec<u8>,
    content_type: &str,
    remote: Option<SocketAddr>,
) -> Result<(String, Outcome), Refusal> {
    let message_type = header.message_type();
    let Some(route) = pipeline.route_for(source.route.as_deref(), &message_type) else {
        return Err(Refusal::NoRoute(message_type));
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
            content_type: content_type.to_string(),
            body,
            headers,
        },
        control_id: header.control_id.clone(),
        message_type,
        received: SystemTime::now(),
        route,
        ack: source.ack,
        reply,
    };
    if pipeline.submit(job).await.is_err() {
        return Err(Refusal::ShuttingDown);
    }
    let outcome = match wait {
        None => Outcome::Accepted,
        Some(rx) => rx.await.unwrap_or_else(|_| {
            Outcome::Failed("the pipeline stopped before the message finished".into())
        }),
    };
    Ok((id, outcome))
}
