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

/// A write and who waits for it.
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<(), JournalError>>,
}

/// Queues `op` for the writer thread behind `sender` (`None`: closed).
/// A full queue means the storage is behind: the write then waits in the
/// returned commit and is queued by whoever waits on it, never dropped.
pub(crate) fn queue(sender: Option<SyncSender<Request>>, op: Op) -> Commit {
    let Some(sender) = sender else {
        return Commit::finished(Err(JournalError::Closed));
    };
    let (reply, rx) = oneshot::channel();
    match sender.try_send(Request { op, reply }) {
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
