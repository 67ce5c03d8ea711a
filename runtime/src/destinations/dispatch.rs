//! A destination's dispatcher: reads due deliveries from the journal,
//! attempts them, records each result (delivered, retried later with
//! backoff or after the receiver's `Retry-After`, or dead after its attempt
//! or age limit), and settles after-delivery sources.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Delivery, DeliveryError, Destination};
use crate::journal::{self, Journal, commit_until_done, now_ms};
use crate::metrics::metrics;
use crate::pipeline::Stats;
use crate::pipeline::tracker::Trackers;
use crate::plugins::{Message, Output};

/// When a destination gives up on a delivery.
#[derive(Debug, Clone, Copy)]
pub struct RetryLimits {
    /// Most attempts; `None`: no limit.
    pub max_attempts: Option<u32>,
    /// Most time since the message arrived.
    pub max_age: Duration,
}

/// Most deliveries read from the journal at once, and most in one batch.
const MAX_BATCH: usize = 1024;

/// Milliseconds since the Unix epoch, as the journal records time: the wall
/// clock in production, tokio's paused clock in the tests.
pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub(crate) fn wall_clock() -> Clock {
    Arc::new(now_ms)
}

/// One destination's dispatcher: what it delivers to and how.
pub(crate) struct Dispatch {
    /// The destination's name.
    pub(crate) name: String,
    /// The transport.
    pub(crate) destination: Arc<dyn Destination>,
    /// Deliveries under way at once.
    pub(crate) concurrency: usize,
    /// When to give up.
    pub(crate) limits: RetryLimits,
    /// Wakes it (deliveries committed, resend).
    pub(crate) wake: Arc<Notify>,
    /// What time it is.
    pub(crate) clock: Clock,
}

/// How long the dispatcher waits before asking again when the deliveries
/// due are all held (under way, behind their key's head, or claimed by
/// another node); the end of an attempt here wakes it sooner.
const BLOCKED_POLL: Duration = Duration::from_millis(100);

/// Delivers a destination's due deliveries until `stop`: reads them from the
/// journal (at most `concurrency` under way, never one twice at once),
/// attempts each and records the result; sleeps until the next is due or
/// `wake` is notified.
pub(crate) async fn dispatch_loop(
    d: Dispatch,
    journal: Arc<dyn Journal>,
    stats: Arc<Stats>,
    trackers: Arc<Trackers>,
    stop: CancellationToken,
) {
    let d = Arc::new(d);
    let permits = Arc::new(Semaphore::new(d.concurrency));
    let busy: Arc<Mutex<HashSet<i64>>> = Arc::new(Mutex::new(HashSet::new()));
    let attempts = TaskTracker::new();
    let batch_size = d.destination.max_batch().clamp(1, MAX_BATCH);
    while !stop.is_cancelled() {
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                p = permits.clone().acquire_owned() => drop(p),
                _ = stop.cancelled() => break,
            }
            continue;
        }
        let (j, name, clock) = (journal.clone(), d.name.clone(), d.clock.clone());
        let taken: Vec<i64> = busy
            .lock()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default();
        let wanted = free.saturating_mul(batch_size).min(MAX_BATCH);
        let due = tokio::task::spawn_blocking(move || {
            let due = j.due(&name, clock(), wanted, &taken)?;
            let next = if due.is_empty() {
                j.next_due(&name)?
            } else {
                None
            };
            Ok::<_, journal::JournalError>((due, next))
        })
        .await;
        let (due, next) = match due {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                tracing::error!(destination = %d.name, error = %e, "cannot read due deliveries");
                (Vec::new(), Some((d.clock)() + 1000))
            }
            Err(_) => break,
        };
        if due.is_empty() {
            // Nothing to start: sleep until the next delivery falls due.
            // One that is due already but was not handed out is under way
            // here (its end wakes this loop), waits behind the head of its
            // ordering key, or is another node's: look again after
            // `BLOCKED_POLL` rather than at once, which would spin for as
            // long as the attempt takes.
            let wait = next.map_or(Duration::from_secs(1), |at| match at - (d.clock)() {
                ms if ms <= 0 => BLOCKED_POLL,
                ms => Duration::from_millis(ms.min(1000) as u64),
            });
            tokio::select! {
                _ = d.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
            continue;
        }
        // A destination that writes in batches takes the due deliveries
        // in batches of up to `max_batch`, each under one permit.
        let mut due = due.into_iter().peekable();
        while due.peek().is_some() {
            let batch: Vec<journal::DueDelivery> = due.by_ref().take(batch_size).collect();
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            if let Ok(mut b) = busy.lock() {
                b.extend(batch.iter().map(|i| i.id));
            }
            let (d, journal, stats, trackers, busy) = (
                d.clone(),
                journal.clone(),
                stats.clone(),
                trackers.clone(),
                busy.clone(),
            );
            // Every line about one delivery's attempt carries its message's id.
            let span = match batch.as_slice() {
                [one] => tracing::info_span!(
                    "delivery",
                    message_id = %one.message_id,
                    destination = %d.name
                ),
                _ => tracing::info_span!("deliveries", count = batch.len(), destination = %d.name),
            };
            attempts.spawn(tracing::Instrument::instrument(
                async move {
                    let ids: Vec<i64> = batch.iter().map(|i| i.id).collect();
                    // The permit covers the attempt itself; recording its
                    // results (journal commits, queued together so one
                    // group commit takes them) happens after, while the
                    // ids stay busy so they are not picked up again.
                    let mut records = attempt_batch(&d, &stats, batch).await;
                    drop(permit);
                    // All but the last on tasks of their own (none for a
                    // batch of one), so their commits queue together.
                    let last = records.pop();
                    let mut settling = tokio::task::JoinSet::new();
                    for record in records {
                        let (d, journal, stats, trackers) =
                            (d.clone(), journal.clone(), stats.clone(), trackers.clone());
                        settling.spawn(async move {
                            settle(&d, journal.as_ref(), &stats, &trackers, record).await
                        });
                    }
                    if let Some(record) = last {
                        settle(&d, journal.as_ref(), &stats, &trackers, record).await;
                    }
                    while settling.join_next().await.is_some() {}
                    if let Ok(mut b) = busy.lock() {
                        for id in &ids {
                            b.remove(id);
                        }
                    }
                    d.wake.notify_one();
                },
                span,
            ));
        }
    }
    attempts.close();
    attempts.wait().await;
}

/// The result of one attempt, to be recorded.
struct Attempted {
    id: i64,
    message_id: String,
    attempt: u32,
    /// `Ok`: delivered; `Err((reason, next))`: failed, retried at `next`
    /// or dead when `None`.
    result: Result<(), (String, Option<i64>)>,
}

/// The delivery a due row describes, for `destination` (the body moves
/// out of the row).
fn delivery(destination: &str, item: &mut journal::DueDelivery) -> Delivery {
    Delivery {
        seq: item.id,
        message_id: item.message_id.clone(),
        control_id: item.control_id.clone(),
        message_type: item.message_type.clone(),
        n: item.n,
        received: UNIX_EPOCH + Duration::from_millis(item.received_at.max(0) as u64),
        output: Output {
            destination: Some(destination.to_string()),
            message: Message {
                id: item.message_id.clone(),
                content_type: std::mem::take(&mut item.content_type),
                body: std::mem::take(&mut item.body),
                headers: vec![],
            },
        },
    }
}

/// Attempts a batch of deliveries (one at a time unless the destination
/// takes batches): for each, delivered, or failed with when to try again
/// (backoff, or the receiver's `Retry-After`), or dead (out of attempts or
/// time, or refused for good).
async fn attempt_batch(
    d: &Dispatch,
    stats: &Stats,
    mut items: Vec<journal::DueDelivery>,
) -> Vec<Attempted> {
    let deliveries: Vec<Delivery> = items.iter_mut().map(|i| delivery(&d.name, i)).collect();
    let sent = std::time::Instant::now();
    let mut results = d.destination.deliver_batch(&deliveries).await;
    let took = sent.elapsed();
    // A destination that answers fewer results than it was given failed
    // the rest: tried again.
    results.resize_with(items.len(), || {
        Err(DeliveryError::Transient(
            "the destination gave no result".into(),
        ))
    });
    items
        .into_iter()
        .zip(results)
        .map(|(item, delivered)| {
            metrics().attempted(&d.name, took);
            crate::activity::activity().attempted(&d.name, delivered.is_ok());
            judge(d, stats, item, delivered)
        })
        .collect()
}

/// What an attempt's result means for its delivery.
fn judge(
    d: &Dispatch,
    stats: &Stats,
    item: journal::DueDelivery,
    delivered: Result<(), DeliveryError>,
) -> Attempted {
    let attempt_no = item.attempts + 1;
    let result = match delivered {
        Ok(()) => Ok(()),
        Err(e) => {
            let age = Duration::from_millis(((d.clock)() - item.received_at).max(0) as u64);
            let out_of_tries = d.limits.max_attempts.is_some_and(|m| attempt_no >= m);
            let out_of_time = age >= d.limits.max_age;
            let next = match &e {
                DeliveryError::Permanent(_) => None,
                _ if out_of_tries || out_of_time => None,
                DeliveryError::Throttled { after, .. } => {
                    Some((d.clock)() + after.min(&Duration::from_secs(3600)).as_millis() as i64)
                }
                DeliveryError::Transient(_) => {
                    Some((d.clock)() + backoff(attempt_no).as_millis() as i64)
                }
            };
            let reason = match (&e, next) {
                (DeliveryError::Permanent(_), _) | (_, Some(_)) => e.to_string(),
                (_, None) if out_of_tries => format!("gave up after {attempt_no} attempts: {e}"),
                (_, None) => format!("gave up after {} s: {e}", age.as_secs()),
            };
            if let Some(at) = next {
                stats.delivery_retries.fetch_add(1, Ordering::Relaxed);
                metrics().retried(&d.name);
                tracing::warn!(destination = %d.name, message_id = %item.message_id, attempt = attempt_no, retry_in_ms = at - (d.clock)(), error = %reason, "delivery failed; will retry");
            }
            Err((reason, next))
        }
    };
    Attempted {
        id: item.id,
        message_id: item.message_id,
        attempt: attempt_no,
        result,
    }
}

/// Records an attempt's result and answers an after-delivery source when
/// its message is settled.
async fn settle(
    d: &Dispatch,
    journal: &dyn Journal,
    stats: &Stats,
    trackers: &Trackers,
    a: Attempted,
) {
    let finish = |failure: Option<String>| trackers.settle(&a.message_id, failure);
    // A result that cannot be recorded is retried until it is (the delivery
    // stays busy meanwhile, so it is not sent again and again while the
    // disk is full); if the process stops first, it is sent again at the
    // next start.
    match a.result {
        Ok(()) => {
            let at = (d.clock)();
            // Lazily unless the message's source waits for its deliveries.
            let waited = trackers.waits_for(&a.message_id);
            let recorded = commit_until_done("a delivery of message", &a.message_id, || {
                if waited {
                    journal.delivered(a.id, at)
                } else {
                    journal.delivered_lazily(a.id, at)
                }
            })
            .await;
            if recorded.is_err() {
                return;
            }
            stats.delivered.fetch_add(1, Ordering::Relaxed);
            metrics().delivered(&d.name);
            finish(None);
        }
        Err((reason, next)) => {
            let recorded =
                commit_until_done("a delivery attempt of message", &a.message_id, || {
                    journal.attempt_failed(a.id, &reason, next)
                })
                .await;
            if recorded.is_err() {
                return;
            }
            if next.is_none() {
                stats.delivery_failed.fetch_add(1, Ordering::Relaxed);
                metrics().dead(&d.name);
                tracing::error!(destination = %d.name, message_id = %a.message_id, attempt = a.attempt, error = %reason, "delivery failed for good (dead letter)");
                finish(Some(format!("destination {}: {reason}", d.name)));
            }
        }
    }
}

/// Exponential backoff with jitter: between half and all of
/// 250 ms × 2^(attempt-1), capped at 5 minutes.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = (250u64 << attempt.saturating_sub(1).min(11)).min(300_000);
    let jitter = {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::time::Instant::now())
    };
    Duration::from_millis(cap_ms / 2 + jitter % (cap_ms / 2 + 1))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::journal::NewMessage;
    use crate::pipeline::Answer;
    use tokio::time::Instant;

    /// A destination that answers from a script and notes when it was
    /// called (on tokio's clock).
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<VecDeque<Result<(), DeliveryError>>>,
        calls: Mutex<Vec<Instant>>,
    }

    impl Destination for Scripted {
        fn deliver<'a>(
            &'a self,
            _: &'a Delivery,
        ) -> super::super::BoxFuture<'a, Result<(), DeliveryError>> {
            self.calls.lock().unwrap().push(Instant::now());
            let answer = self.answers.lock().unwrap().pop_front();
            Box::pin(async move { answer.unwrap_or(Err(DeliveryError::Transient("down".into()))) })
        }
    }

    /// Wall time at the start plus the time tokio's (paused) clock has
    /// moved since.
    fn virtual_clock() -> Clock {
        let (wall, start) = (now_ms(), Instant::now());
        Arc::new(move || wall + start.elapsed().as_millis() as i64)
    }

    struct Run {
        journal: Arc<dyn Journal>,
        stats: Arc<Stats>,
        destination: Arc<Scripted>,
        answer: tokio::sync::oneshot::Receiver<Answer>,
        stop: CancellationToken,
        _dir: tempfile::TempDir,
    }

    /// One message with one delivery to `d`, whose source waits for it,
    /// dispatched to a destination answering `answers`.
    async fn run(answers: Vec<Result<(), DeliveryError>>, max_attempts: Option<u32>) -> Run {
        run_limited(
            answers,
            RetryLimits {
                max_attempts,
                max_age: Duration::from_secs(3600),
            },
        )
        .await
    }

    /// Starts a dispatcher for destination `d` on `journal`; cancel the
    /// token returned to stop it.
    fn start(
        destination: Arc<dyn Destination>,
        concurrency: usize,
        limits: RetryLimits,
        journal: &Arc<dyn Journal>,
        stats: &Arc<Stats>,
        trackers: Arc<Trackers>,
        clock: Clock,
    ) -> CancellationToken {
        let stop = CancellationToken::new();
        let dispatch = Dispatch {
            name: "d".into(),
            destination,
            concurrency,
            limits,
            wake: Arc::new(Notify::new()),
            clock,
        };
        tokio::spawn(dispatch_loop(
            dispatch,
            journal.clone(),
            stats.clone(),
            trackers,
            stop.clone(),
        ));
        stop
    }

    /// Like [`run`], with both limits given.
    async fn run_limited(answers: Vec<Result<(), DeliveryError>>, limits: RetryLimits) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal::open(dir.path(), journal::JournalSync::Normal).unwrap();
        let clock = virtual_clock();
        journal
            .append(NewMessage {
                received_at: clock(),
                ..crate::journal::test_message("m1")
            })
            .done()
            .await
            .unwrap();
        journal
            .record(crate::journal::test_outcome("m1"))
            .done()
            .await
            .unwrap();
        let destination = Arc::new(Scripted {
            answers: Mutex::new(answers.into()),
            calls: Mutex::new(Vec::new()),
        });
        let (stats, trackers) = (Arc::new(Stats::default()), Arc::new(Trackers::default()));
        let (tx, answer) = tokio::sync::oneshot::channel();
        trackers.track("m1".into(), 1, tx);
        let stop = start(
            destination.clone(),
            1,
            limits,
            &journal,
            &stats,
            trackers,
            clock,
        );
        Run {
            journal,
            stats,
            destination,
            answer,
            stop,
            _dir: dir,
        }
    }

    impl Run {
        /// The source's answer, within an hour of tokio's clock.
        async fn answer(&mut self) -> Answer {
            let answer = tokio::time::timeout(Duration::from_secs(3600), &mut self.answer)
                .await
                .expect("answered within the hour")
                .expect("answered");
            self.stop.cancel();
            answer
        }

        /// Time between consecutive attempts.
        fn gaps(&self) -> Vec<Duration> {
            let calls = self.destination.calls.lock().unwrap();
            calls.windows(2).map(|w| w[1] - w[0]).collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_after_its_backoff() {
        let mut run = run(
            vec![
                Err(DeliveryError::Transient("connection refused".into())),
                Err(DeliveryError::Transient("connection refused".into())),
                Ok(()),
            ],
            None,
        )
        .await;
        assert!(matches!(run.answer().await, Answer::Delivered));
        let gaps = run.gaps();
        assert_eq!(gaps.len(), 2, "three attempts");
        // backoff(1) is at least 125 ms, backoff(2) at least 250 ms.
        assert!(gaps[0] >= Duration::from_millis(125), "{gaps:?}");
        assert!(gaps[1] >= Duration::from_millis(250), "{gaps:?}");
        assert_eq!(run.stats.delivery_retries.load(Ordering::Relaxed), 2);
        assert_eq!(run.stats.delivered.load(Ordering::Relaxed), 1);
        assert!(run.journal.pending_counts().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_is_given_up_after_its_attempts() {
        let mut run = run(Vec::new(), Some(3)).await;
        match run.answer().await {
            Answer::Failed(reason) => {
                assert!(
                    reason.contains("gave up after 3 attempts: down"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(run.destination.calls.lock().unwrap().len(), 3);
        assert_eq!(run.stats.delivery_failed.load(Ordering::Relaxed), 1);
        assert!(run.journal.pending_counts().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_is_given_up_when_its_message_is_too_old() {
        let mut run = run_limited(
            Vec::new(),
            RetryLimits {
                max_attempts: None,
                max_age: Duration::from_secs(10),
            },
        )
        .await;
        let start = Instant::now();
        match run.answer().await {
            // How old it was when given up: 10 s or more (tokio's paused
            // clock may jump ahead while a commit waits for the journal's
            // writer thread, more so on a busy machine).
            Answer::Failed(reason) => assert!(
                reason
                    .strip_prefix("destination d: gave up after ")
                    .and_then(|r| r.strip_suffix(" s: down"))
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n >= 10),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        // Retried with backoff until the message was 10 s old, then no more.
        let calls = run.destination.calls.lock().unwrap().clone();
        assert!(calls.len() > 3, "{} attempts", calls.len());
        let last = *calls.last().unwrap() - start;
        assert!(last >= Duration::from_secs(10), "{last:?}");
        assert!(calls[calls.len() - 2] - start < Duration::from_secs(10));
        assert_eq!(run.stats.delivery_failed.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_and_a_permanent_error_is_not_retried() {
        let mut run = run(
            vec![
                Err(DeliveryError::Throttled {
                    reason: "503".into(),
                    after: Duration::from_secs(30),
                }),
                Err(DeliveryError::Permanent("422 unprocessable".into())),
            ],
            None,
        )
        .await;
        match run.answer().await {
            Answer::Failed(reason) => assert_eq!(reason, "destination d: 422 unprocessable"),
            other => panic!("{other:?}"),
        }
        let gaps = run.gaps();
        assert_eq!(gaps.len(), 1, "no attempt after the permanent error");
        assert!(gaps[0] >= Duration::from_secs(30), "{gaps:?}");
        assert_eq!(run.stats.delivery_retries.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_five_minutes() {
        for attempt in 1..40 {
            let cap = Duration::from_millis((250u64 << (attempt - 1).min(11)).min(300_000));
            for _ in 0..50 {
                let b = backoff(attempt);
                assert!(
                    b >= cap / 2 && b <= cap,
                    "attempt {attempt}: {b:?} outside {:?}..={cap:?}",
                    cap / 2
                );
            }
        }
        // Attempt 0 (never made; a count from 1) waits like the first.
        let first = backoff(0);
        assert!(first >= Duration::from_millis(125) && first <= Duration::from_millis(250));
        // Jitter: not every wait the same.
        let waits: HashSet<Duration> = (0..50).map(|_| backoff(5)).collect();
        assert!(waits.len() > 1);
    }

    /// A destination taking batches of up to four: notes each batch's
    /// message ids, and fails `m3` the first time it sees it.
    #[derive(Default)]
    struct Batching {
        batches: Mutex<Vec<Vec<String>>>,
    }

    impl Destination for Batching {
        fn deliver<'a>(
            &'a self,
            d: &'a Delivery,
        ) -> super::super::BoxFuture<'a, Result<(), DeliveryError>> {
            Box::pin(async move { self.deliver_batch(std::slice::from_ref(d)).await.remove(0) })
        }

        fn max_batch(&self) -> usize {
            4
        }

        fn deliver_batch<'a>(
            &'a self,
            batch: &'a [Delivery],
        ) -> super::super::BoxFuture<'a, Vec<Result<(), DeliveryError>>> {
            let mut batches = self.batches.lock().unwrap();
            let first_m3 = !batches.iter().flatten().any(|id| id == "m3");
            batches.push(batch.iter().map(|d| d.message_id.clone()).collect());
            let results = batch
                .iter()
                .map(|d| match d.message_id.as_str() {
                    "m3" if first_m3 => Err(DeliveryError::Transient("disk full".into())),
                    _ => Ok(()),
                })
                .collect();
            Box::pin(async move { results })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn due_deliveries_go_out_in_batches_and_each_result_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal::open(dir.path(), journal::JournalSync::Normal).unwrap();
        let clock = virtual_clock();
        let ids: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
        let (stats, trackers) = (Arc::new(Stats::default()), Arc::new(Trackers::default()));
        let mut answers = Vec::new();
        for id in &ids {
            let message = NewMessage {
                received_at: clock(),
                ..crate::journal::test_message(id)
            };
            journal.append(message).done().await.unwrap();
            journal
                .record(crate::journal::test_outcome(id))
                .done()
                .await
                .unwrap();
            let (tx, rx) = tokio::sync::oneshot::channel();
            trackers.track(id.clone(), 1, tx);
            answers.push(rx);
        }
        let destination = Arc::new(Batching::default());
        let limits = RetryLimits {
            max_attempts: None,
            max_age: Duration::from_secs(3600),
        };
        let stop = start(
            destination.clone(),
            2,
            limits,
            &journal,
            &stats,
            trackers,
            clock,
        );
        for rx in answers {
            let answer = tokio::time::timeout(Duration::from_secs(3600), rx)
                .await
                .expect("answered within the hour")
                .expect("answered");
            assert!(matches!(answer, Answer::Delivered), "{answer:?}");
        }
        stop.cancel();
        let batches = destination.batches.lock().unwrap().clone();
        // Ten due at once, two batches under way: 4 + 4 + 2, then m3 again.
        assert!(
            batches.iter().all(|b| !b.is_empty() && b.len() <= 4),
            "{batches:?}"
        );
        assert_eq!(
            batches[..3].iter().map(Vec::len).sum::<usize>(),
            10,
            "{batches:?}"
        );
        let m3 = batches.iter().flatten().filter(|id| *id == "m3").count();
        assert_eq!(m3, 2, "m3 failed once and was sent again: {batches:?}");
        assert_eq!(batches.iter().flatten().count(), 11, "{batches:?}");
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 10);
        assert_eq!(stats.delivery_retries.load(Ordering::Relaxed), 1);
        assert!(journal.pending_counts().unwrap().is_empty());
    }

    /// A destination whose every delivery takes `0`.
    struct Slow(Duration);

    impl Destination for Slow {
        fn deliver<'a>(
            &'a self,
            _: &'a Delivery,
        ) -> super::super::BoxFuture<'a, Result<(), DeliveryError>> {
            Box::pin(async move {
                tokio::time::sleep(self.0).await;
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn a_dispatcher_with_free_permits_does_not_spin_while_its_delivery_is_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal::open(dir.path(), journal::JournalSync::Normal).unwrap();
        let message = NewMessage {
            received_at: now_ms(),
            ..crate::journal::test_message("m1")
        };
        journal.append(message).done().await.unwrap();
        journal
            .record(crate::journal::test_outcome("m1"))
            .done()
            .await
            .unwrap();
        // The dispatcher asks the clock at every look for due work.
        let looks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = looks.clone();
        let clock: Clock = Arc::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            now_ms()
        });
        let (stats, trackers) = (Arc::new(Stats::default()), Arc::new(Trackers::default()));
        let (tx, answer) = tokio::sync::oneshot::channel();
        trackers.track("m1".into(), 1, tx);
        let limits = RetryLimits {
            max_attempts: None,
            max_age: Duration::from_secs(3600),
        };
        // Two permits: one delivery under way leaves one free, and the only
        // due delivery is the busy one.
        let stop = start(
            Arc::new(Slow(Duration::from_millis(600))),
            2,
            limits,
            &journal,
            &stats,
            trackers,
            clock,
        );
        let answer = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .expect("delivered")
            .expect("answered");
        stop.cancel();
        assert!(matches!(answer, Answer::Delivered), "{answer:?}");
        // About one look per BLOCKED_POLL while the attempt runs (and a few
        // around it); a loop that did not wait would make thousands.
        let n = looks.load(std::sync::atomic::Ordering::Relaxed);
        assert!(n < 40, "{n} looks for due work during one 600 ms delivery");
    }
}
