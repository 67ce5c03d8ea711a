//! A journal write on its way to the disk: the caller learns, by waiting
//! on a [`Commit`], when the write is durable (or why it never will be).
//! Engines that commit in groups answer many callers with one fsync.

use std::time::Duration;

use tokio::sync::oneshot;

use super::JournalError;

/// A write the engine could not queue yet because its queue was full (the
/// disk is behind): tried again by whoever waits. Returns `true` once it is
/// queued, or once there is no queue left to try (the reply then says why).
pub type Retry = Box<dyn FnMut() -> bool + Send>;

/// A write waiting for its commit. When the engine's queue was full, the
/// write itself waits in here and is queued by whoever waits: a plain
/// thread sleeps, async code yields, so a tokio worker thread never sleeps
/// on a full queue. Wait for every commit: one dropped unwaited may drop a
/// write still waiting for room.
pub struct Commit {
    rx: oneshot::Receiver<Result<(), JournalError>>,
    pending: Option<Retry>,
}

/// How long to wait before trying a full queue again.
const QUEUE_RETRY: Duration = Duration::from_micros(200);

impl Commit {
    /// A write already queued; `rx` gets its result.
    pub fn queued(rx: oneshot::Receiver<Result<(), JournalError>>) -> Commit {
        Commit { rx, pending: None }
    }

    /// A write still to be queued by `retry`; `rx` gets its result.
    pub fn waiting_for_room(
        rx: oneshot::Receiver<Result<(), JournalError>>,
        retry: Retry,
    ) -> Commit {
        Commit {
            rx,
            pending: Some(retry),
        }
    }

    /// A write whose result is known already (done at once, or refused).
    pub fn finished(result: Result<(), JournalError>) -> Commit {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(result);
        Commit::queued(rx)
    }

    /// Tries to queue a write still waiting for room: `false` while the
    /// queue is still full.
    fn try_queue(&mut self) -> bool {
        let queued = match self.pending.as_mut() {
            None => return true,
            Some(retry) => retry(),
        };
        if queued {
            self.pending = None;
        }
        queued
    }

    /// Waits for the commit from a plain thread.
    pub fn wait(mut self) -> Result<(), JournalError> {
        while !self.try_queue() {
            std::thread::sleep(QUEUE_RETRY);
        }
        self.rx.blocking_recv().unwrap_or(Err(JournalError::Closed))
    }

    /// Waits for the commit from async code.
    pub async fn done(mut self) -> Result<(), JournalError> {
        while !self.try_queue() {
            tokio::time::sleep(QUEUE_RETRY).await;
        }
        self.rx.await.unwrap_or(Err(JournalError::Closed))
    }
}

/// Commits a journal write, retrying with backoff (200 ms doubling to 5 s)
/// while the journal cannot write; gives up only when the journal closes.
/// The first failure and the recovery are logged.
pub async fn commit_until_done(
    what: &str,
    message_id: &str,
    commit: impl Fn() -> Commit,
) -> Result<(), JournalError> {
    let mut wait = Duration::from_millis(200);
    let mut failed = false;
    loop {
        match commit().done().await {
            Ok(()) => {
                if failed {
                    tracing::info!(message_id, "journal writable again: recorded {what}");
                }
                return Ok(());
            }
            Err(JournalError::Closed) => {
                if failed {
                    tracing::warn!(
                        message_id,
                        "stopped before {what} could be recorded; it is redone at the next start"
                    );
                }
                return Err(JournalError::Closed);
            }
            Err(e) => {
                if !failed {
                    tracing::error!(message_id, error = %e, "cannot record {what}; retrying until the journal can write");
                    failed = true;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_write_waiting_for_room_is_queued_by_whoever_waits() {
        let (tx, rx) = oneshot::channel();
        let tries = Arc::new(AtomicUsize::new(0));
        let mut tx = Some(tx);
        let counted = tries.clone();
        let commit = Commit::waiting_for_room(
            rx,
            Box::new(move || {
                // Room on the third try; the engine then answers.
                if counted.fetch_add(1, Ordering::SeqCst) < 2 {
                    return false;
                }
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Ok(()));
                }
                true
            }),
        );
        assert_eq!(commit.wait(), Ok(()));
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_finished_commit_answers_at_once_and_a_dropped_reply_means_closed() {
        let refused = Commit::finished(Err(JournalError::Write("disk full".into())));
        assert_eq!(
            refused.done().await,
            Err(JournalError::Write("disk full".into()))
        );
        let (tx, rx) = oneshot::channel::<Result<(), JournalError>>();
        drop(tx);
        assert_eq!(Commit::queued(rx).done().await, Err(JournalError::Closed));
    }
}
