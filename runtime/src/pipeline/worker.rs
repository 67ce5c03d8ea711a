//! A plugin worker: runs a message through its route, answers the source,
//! and records the outcome with one delivery per output and destination.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use super::tracker::Trackers;
use super::{Answer, Job, Stats};
use crate::config::AckMode;
use crate::destinations::set::DestinationSet;
use crate::journal::{self, MessageStatus, NewDelivery};
use crate::journal::{Journal, commit_until_done};
use crate::plugins::CallError;
use crate::routing::Routing;
use crate::workqueue::WorkQueue;

/// What a plugin worker thread needs.
pub(super) struct WorkerCtx {
    /// The live routing.
    pub(super) routing: Arc<ArcSwap<Routing>>,
    /// The live destinations (their wake-up calls).
    pub(super) destinations: Arc<DestinationSet>,
    /// Where jobs come from.
    pub(super) work: Arc<WorkQueue<Job>>,
    pub(super) runtime: tokio::runtime::Handle,
    /// Outcome commits under way.
    pub(super) recording: TaskTracker,
    pub(super) journal: Arc<dyn Journal>,
    pub(super) stats: Arc<Stats>,
    pub(super) trackers: Arc<Trackers>,
}

/// Runs one message through its route's plugins, answers its source, and
/// records the outcome and its deliveries (then wakes their destinations).
pub(super) fn run_job(job: Job, ctx: &WorkerCtx) {
    let Job {
        message,
        control_id: _,
        message_type,
        route,
        ack,
        reply,
        want_outputs,
        ordering_keys,
    } = job;
    let message_id = message.id.clone();
    // The route as it is now (a reload may have swapped in new plugin
    // versions since the message was taken); the one it was taken with if
    // a reload removed it.
    let route = ctx.routing.load().get(&route.name).unwrap_or(route);
    // Every line about this message (the plugins' own included) carries
    // its id and route.
    let span = tracing::info_span!("message", message_id = %message_id, route = %route.name);
    let _in_span = span.enter();
    // Ordering keys were read from the message at intake.
    let keys: HashMap<&str, &str> = ordering_keys
        .iter()
        .map(|(d, k)| (d.as_str(), k.as_str()))
        .collect();
    let reply_with = |reply: Option<oneshot::Sender<Answer>>, o: Answer| {
        if let Some(r) = reply {
            let _ = r.send(o);
        }
    };
    // A copy for the route's candidates, only when one runs on it.
    let admitted: Vec<&crate::shadow::Shadow> =
        route.shadows.iter().filter(|s| s.admit()).collect();
    let shadow_input = (!admitted.is_empty()).then(|| message.clone());
    let live_started = std::time::Instant::now();
    let (status, error, versions, outputs) = match route.chain.run(message) {
        Ok(r) => (MessageStatus::Transformed, None, r.versions, r.outputs),
        Err(e) => {
            // The plugin's reason may quote the message: debug level only.
            tracing::warn!(message_id, route = %route.name, message_type, "message not transformed: {}", e.summary());
            tracing::debug!(message_id, error = %e, "reason");
            let status = if matches!(e, CallError::Reject { .. }) {
                MessageStatus::Rejected
            } else {
                MessageStatus::Failed
            };
            (status, Some(e.to_string()), Vec::new(), Vec::new())
        }
    };
    // One delivery per output and destination; a destination the route
    // does not have fails the message as a whole.
    let mut deliveries = Vec::new();
    let mut status = status;
    let mut error = error;
    for (i, output) in outputs.iter().enumerate() {
        let targets: Vec<&String> = match &output.destination {
            Some(name) => match route.destinations.iter().find(|d| *d == name) {
                Some(d) => vec![d],
                None => {
                    // The chain refuses these first; never echo the name
                    // (plugin text).
                    status = MessageStatus::Failed;
                    error = Some(format!(
                        "an output names a destination that route {} does not have",
                        route.name
                    ));
                    tracing::warn!(message_id, route = %route.name, "{}", error.as_deref().unwrap_or_default());
                    deliveries.clear();
                    break;
                }
            },
            None => route.destinations.iter().collect(),
        };
        for d in targets {
            deliveries.push(NewDelivery {
                destination: d.clone(),
                n: i + 1,
                content_type: output.message.content_type.clone(),
                body: output.message.body.clone(),
                ordering_key: keys.get(d.as_str()).map(|k| k.to_string()),
            });
        }
    }
    let targets: HashSet<String> = deliveries.iter().map(|d| d.destination.clone()).collect();
    let tracked = matches!(ack, AckMode::AfterDelivery)
        && status == MessageStatus::Transformed
        && !deliveries.is_empty();
    let mut reply = reply;
    if tracked && let Some(r) = reply.take() {
        ctx.trackers.track(message_id.clone(), deliveries.len(), r);
    }
    // The message itself is already durable: if the process stops before
    // this outcome is, the message is run again at the next start. So the
    // source is answered now, and the destinations are woken once the
    // deliveries are committed (they only read committed rows).
    let outcome = journal::Outcome {
        message_id: message_id.clone(),
        status,
        error: error.clone(),
        versions,
        deliveries,
    };
    let word = match status {
        MessageStatus::Transformed => {
            ctx.stats.transformed.fetch_add(1, Ordering::Relaxed);
            "transformed"
        }
        MessageStatus::Rejected => {
            ctx.stats.rejected.fetch_add(1, Ordering::Relaxed);
            "rejected"
        }
        _ => {
            ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
            "failed"
        }
    };
    let live_ns = u64::try_from(live_started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    for shadow in &route.shadows {
        shadow.add_live(live_ns);
    }
    let shadow_work = shadow_input.map(|input| {
        let live: Vec<journal::RecordedOutput> = outputs.iter().map(Into::into).collect();
        (input, live)
    });
    crate::metrics::metrics().routed(&route.name, word);
    crate::activity::activity().routed(&route.name, status == MessageStatus::Transformed);
    let error = error.unwrap_or_default();
    reply_with(
        reply,
        match (status, ack) {
            (MessageStatus::Rejected, _) => Answer::Rejected(error),
            (MessageStatus::Failed, _) => Answer::Failed(error),
            (_, AckMode::AfterDelivery) => Answer::Delivered,
            _ => Answer::Transformed(want_outputs.then_some(outputs)),
        },
    );
    let (journal, trackers) = (ctx.journal.clone(), ctx.trackers.clone());
    let destinations = ctx.destinations.clone();
    let _guard = ctx.runtime.enter();
    ctx.recording.spawn(tracing::Instrument::instrument(
        async move {
            // Retried while the journal cannot write (a full disk): the message
            // is durable already, and its outcome lands once space returns. If
            // the process stops first, the message is run again at the next start.
            // A transformed message's outcome lazily, unless its source
            // waits for the deliveries (its answer, given above, waited for
            // nothing the journal does); a reject or failure at once, so
            // that it shows in the journal as soon as the sender has it.
            let lazy = !tracked && status == MessageStatus::Transformed;
            let recorded = commit_until_done("the outcome of message", &message_id, || {
                if !lazy {
                    journal.record(outcome.clone())
                } else {
                    journal.record_lazily(outcome.clone())
                }
            })
            .await;
            match recorded {
                Ok(()) => destinations.wake(&targets),
                Err(e) => trackers.fail(
                    &message_id,
                    format!("the journal could not record the outcome: {e}"),
                ),
            }
        },
        span.clone(),
    ));
    // The candidates, after the source has its answer and the outcome is on
    // its way: within their share of the live time, compared, never
    // delivered.
    if let Some((input, live)) = shadow_work {
        for shadow in admitted {
            shadow.run(input.clone(), status, &live);
        }
    }
}
