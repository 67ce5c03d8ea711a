//! The after-delivery tracker: a source that acknowledges once every output
//! is delivered waits here, and the last delivery of its message answers it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::Answer;

/// The deliveries of one message still unsettled, and who waits for them.
struct Tracker {
    remaining: AtomicUsize,
    /// The first delivery that failed for good, if any.
    failure: Mutex<Option<String>>,
    reply: Mutex<Option<oneshot::Sender<Answer>>>,
}

impl Tracker {
    /// One delivery is settled; true when it was the last, which answers.
    fn settle(&self, failure: Option<String>) -> bool {
        if let Some(f) = failure {
            self.failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(f);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.answer(None);
            return true;
        }
        false
    }

    /// Answers the source: delivered, or failed with the first failure (or
    /// `instead`).
    fn answer(&self, instead: Option<String>) {
        let failure = instead.or_else(|| {
            self.failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        });
        let reply = self
            .reply
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(reply) = reply {
            let _ = reply.send(match failure {
                Some(f) => Answer::Failed(f),
                None => Answer::Delivered,
            });
        }
    }
}

/// The messages whose sources wait for their deliveries, by message id.
#[derive(Default)]
pub struct Trackers(Mutex<HashMap<String, Arc<Tracker>>>);

impl Trackers {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Tracker>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `reply` is answered once the `deliveries` of `message_id` are settled.
    pub fn track(&self, message_id: String, deliveries: usize, reply: oneshot::Sender<Answer>) {
        self.map().insert(
            message_id,
            Arc::new(Tracker {
                remaining: AtomicUsize::new(deliveries),
                failure: Mutex::new(None),
                reply: Mutex::new(Some(reply)),
            }),
        );
    }

    /// One delivery of `message_id` is settled: delivered (`None`) or failed
    /// for good (why). The last one answers the source.
    pub fn settle(&self, message_id: &str, failure: Option<String>) {
        let tracker = self.map().get(message_id).cloned();
        if let Some(t) = tracker
            && t.settle(failure)
        {
            self.map().remove(message_id);
        }
    }

    /// Whether a source waits for the deliveries of `message_id`.
    pub fn waits_for(&self, message_id: &str) -> bool {
        self.map().contains_key(message_id)
    }

    /// Answers the source of `message_id` now, as failed for `reason`.
    pub fn fail(&self, message_id: &str, reason: String) {
        let tracker = self.map().remove(message_id);
        if let Some(t) = tracker {
            t.answer(Some(reason));
        }
    }

    /// Answers every waiting source as failed for `reason` (at shutdown).
    pub fn fail_all(&self, reason: &str) {
        let waiting: Vec<Arc<Tracker>> = self.map().drain().map(|(_, t)| t).collect();
        for t in waiting {
            t.answer(Some(reason.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_delivery_answers_with_the_first_failure() {
        let trackers = Trackers::default();
        let (tx, mut rx) = oneshot::channel();
        trackers.track("m1".into(), 3, tx);
        trackers.settle("m1", None);
        trackers.settle("m1", Some("destination a: refused".into()));
        assert!(rx.try_recv().is_err(), "answered before the last delivery");
        trackers.settle("m1", Some("destination b: refused".into()));
        match rx.try_recv() {
            Ok(Answer::Failed(f)) => assert_eq!(f, "destination a: refused"),
            other => panic!("{other:?}"),
        }
        // Settled messages are forgotten; an unknown id is ignored.
        trackers.settle("m1", None);
        let (tx, mut rx) = oneshot::channel();
        trackers.track("m2".into(), 1, tx);
        trackers.settle("m2", None);
        assert!(matches!(rx.try_recv(), Ok(Answer::Delivered)));
    }

    #[test]
    fn a_source_still_waiting_is_told_why() {
        let trackers = Trackers::default();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        trackers.track("m1".into(), 2, tx1);
        trackers.track("m2".into(), 1, tx2);
        trackers.fail("m1", "the journal could not record the outcome".into());
        assert!(matches!(rx1.try_recv(), Ok(Answer::Failed(_))));
        trackers.fail_all("the runtime stopped");
        match rx2.try_recv() {
            Ok(Answer::Failed(f)) => assert_eq!(f, "the runtime stopped"),
            other => panic!("{other:?}"),
        }
    }
}
