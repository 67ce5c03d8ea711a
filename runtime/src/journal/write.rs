//! The message path's writes as every engine queues them: what a write
//! is, and how it reaches the engine's writer thread (which commits the
//! writes waiting at one moment together) without ever being dropped.

use std::sync::mpsc::{SyncSender, TrySendError};

use tokio::sync::oneshot;

use super::{Commit, JournalError, NewMessage, Outcome};

/// A write of the message path.
pub(crate) enum Op {
    Append(Box<NewMessage>),
    Record(Outcome),
    AppendSettled(Box<(NewMessage, Outcome)>),
    Delivered(i64, i64),
    Failed(i64, String, Option<i64>),
}

impl Op {
    /// The message this write takes in, if it takes one in.
    pub(crate) fn intake(&self) -> Option<&NewMessage> {
        match self {
            Op::Append(m) => Some(m),
            Op::AppendSettled(both) => Some(&both.0),
            _ => None,
        }
    }
}

/// A write refused because its message is a duplicate: the original's id.
pub(crate) struct Duplicate(pub(crate) String);

impl From<Duplicate> for JournalError {
    fn from(d: Duplicate) -> JournalError {
        JournalError::Duplicate { original: d.0 }
    }
}

/// The sender and control id a message is deduplicated by, when its
/// source drops duplicates and it has a control id: (MSH-3, MSH-4,
/// MSH-10, since).
pub(crate) fn dedup_key(m: &NewMessage) -> Option<(&str, &str, &str, i64)> {
    let since = m.dedup_since?;
    (!m.control_id.is_empty()).then_some((
        &m.sending_application,
        &m.sending_facility,
        &m.control_id,
        since,
    ))
}

/// A write and who waits for it.
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<(), JournalError>>,
    /// No answer to a sender waits on it: the writer may hold it a moment
    /// for the next intake to share its commit.
    pub(crate) lazy: bool,
}

/// Queues `op` for the writer thread behind `sender` (`None`: closed).
/// A full queue means the storage is behind: the write then waits in the
/// returned commit and is queued by whoever waits on it, never dropped.
pub(crate) fn queue(sender: Option<SyncSender<Request>>, op: Op, lazy: bool) -> Commit {
    let Some(sender) = sender else {
        return Commit::finished(Err(JournalError::Closed));
    };
    let (reply, rx) = oneshot::channel();
    match sender.try_send(Request { op, reply, lazy }) {
        Ok(()) => Commit::queued(rx),
        Err(TrySendError::Full(req)) => {
            let mut req = Some(req);
            Commit::waiting_for_room(
                rx,
                Box::new(move || {
                    let Some(r) = req.take() else { return true };
                    match sender.try_send(r) {
                        Ok(()) => true,
                        Err(TrySendError::Full(r)) => {
                            req = Some(r);
                            false
                        }
                        // The writer is gone: the reply channel closed
                        // with the request.
                        Err(TrySendError::Disconnected(_)) => true,
                    }
                }),
            )
        }
        Err(TrySendError::Disconnected(req)) => {
            let _ = req.reply.send(Err(JournalError::Closed));
            Commit::queued(rx)
        }
    }
}
