//! The pipeline between sources and destinations: route selection, the
//! bounded queue to the plugin workers, the bounded queue of each
//! destination, and the outcome each source acknowledges with.
//!
//! Every queue is bounded and every hand-off waits for room, so a slow
//! destination slows the workers, which slow the sources (an MLLP connection
//! stops being read): nothing is ever dropped to make room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{AckMode, Config};
use crate::destinations::{self, Delivery, DeliveryError, Destination};
use crate::plugins::{CallError, Message, Output, PluginEngine};
use crate::routes::Chain;

/// What happened to a message, as far as its source needs to know.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Taken in (on-receipt).
    Accepted,
    /// The route's plugins ran and their outputs are queued; the outputs
    /// themselves when the source asked for them.
    Transformed(Option<Vec<Output>>),
    /// Every output was delivered.
    Delivered,
    /// A plugin rejected the message: AR.
    Rejected(String),
    /// A plugin failed, asked for a retry, or hit a limit; or a delivery
    /// failed for good: AE.
    Failed(String),
}

/// Counters for the log and the health endpoint.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages taken into the pipeline.
    pub received: AtomicU64,
    /// Messages whose plugins ran without error.
    pub transformed: AtomicU64,
    /// Messages rejected by a plugin.
    pub rejected: AtomicU64,
    /// Messages failed by a plugin or a limit.
    pub failed: AtomicU64,
    /// Outputs delivered.
    pub delivered: AtomicU64,
    /// Outputs that failed for good.
    pub delivery_failed: AtomicU64,
    /// Delivery attempts that will be retried.
    pub delivery_retries: AtomicU64,
}

/// A route, ready to run.
pub struct Route {
    /// Its name.
    pub name: String,
    chain: Chain,
    matches: crate::config::RouteConfig,
    destinations: Vec<Arc<DestinationQueue>>,
}

struct DestinationQueue {
    name: String,
    tx: async_channel::Sender<Queued>,
}

struct Queued {
    delivery: Delivery,
    tracker: Option<Arc<Tracker>>,
}

/// Counts the deliveries of one message, for `after-delivery` sources.
struct Tracker {
    remaining: AtomicUsize,
    failure: Mutex<Option<String>>,
    reply: Mutex<Option<oneshot::Sender<Outcome>>>,
}

impl Tracker {
    fn finish(&self, failure: Option<String>) {
        if let Some(f) = failure
            && let Ok(mut slot) = self.failure.lock()
        {
            slot.get_or_insert(f);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let failure = self.failure.lock().ok().and_then(|mut f| f.take());
            if let Some(reply) = self.reply.lock().ok().and_then(|mut r| r.take()) {
                let _ = reply.send(match failure {
                    Some(f) => Outcome::Failed(f),
                    None => Outcome::Delivered,
                });
            }
        }
    }
}

/// A message on its way to the workers.
pub struct Job {
    /// The message.
    pub message: Message,
    /// MSH-10, for file names and logs.
    pub control_id: String,
    /// MSH-9, for file names and logs.
    pub message_type: String,
    /// When it arrived.
    pub received: SystemTime,
    /// Its route.
    pub route: Arc<Route>,
    /// When the source wants to hear back.
    pub ack: AckMode,
    /// Where to tell it.
    pub reply: Option<oneshot::Sender<Outcome>>,
    /// Send the outputs back with the outcome (HTTP after-transform).
    pub want_outputs: bool,
}

/// The running pipeline.
pub struct Pipeline {
    routes: HashMap<String, Arc<Route>>,
    route_order: Vec<Arc<Route>>,
    work_tx: async_channel::Sender<Job>,
    destination_queues: Vec<Arc<DestinationQueue>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    delivery_tasks: TaskTracker,
    /// Stops retry loops at shutdown.
    stop_retrying: CancellationToken,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Outputs queued or being delivered (after shutdown: left undelivered).
    in_delivery: Arc<AtomicUsize>,
}

/// Why a job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTaken {
    /// The workers' queue is full.
    Full,
    /// The pipeline is shutting down.
    ShuttingDown,
}

/// A configuration the pipeline cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A plugin did not load.
    #[error(transparent)]
    Load(#[from] crate::plugins::engine::LoadError),
    /// A route has no destination, so its outputs would go nowhere.
    #[error("route {0}: no destinations: its outputs would be lost (add destinations = [...])")]
    NoDestinations(String),
}

impl Pipeline {
    /// Loads every plugin, starts the plugin workers and the destination
    /// tasks. Must be called inside a tokio runtime.
    pub fn start(
        config: &Config,
        engine: &PluginEngine,
        workers: usize,
    ) -> Result<Arc<Pipeline>, BuildError> {
        let stats = Arc::new(Stats::default());
        let delivery_tasks = TaskTracker::new();
        let stop_retrying = CancellationToken::new();
        let in_delivery = Arc::new(AtomicUsize::new(0));
        let mut queues: HashMap<String, Arc<DestinationQueue>> = HashMap::new();
        for (name, dc) in &config.destinations {
            let (tx, rx) = async_channel::bounded::<Queued>(dc.queue);
            let destination: Arc<dyn Destination> = Arc::from(destinations::build(dc));
            for _ in 0..dc.concurrency {
                delivery_tasks.spawn(deliver_loop(
                    name.clone(),
                    destination.clone(),
                    rx.clone(),
                    stats.clone(),
                    stop_retrying.clone(),
                    in_delivery.clone(),
                ));
            }
            queues.insert(
                name.clone(),
                Arc::new(DestinationQueue {
                    name: name.clone(),
                    tx,
                }),
            );
        }
        let mut plugins = HashMap::new();
        for (name, spec) in &config.plugins {
            plugins.insert(name.clone(), Arc::new(engine.load(spec)?));
        }
        let mut routes = HashMap::new();
        let mut route_order = Vec::new();
        for name in &config.route_order {
            let rc = &config.routes[name];
            if rc.destinations.is_empty() {
                return Err(BuildError::NoDestinations(name.clone()));
            }
            let route = Arc::new(Route {
                name: name.clone(),
                chain: Chain::new(rc.plugins.iter().map(|p| plugins[p].clone()).collect()),
                matches: rc.clone(),
                destinations: rc.destinations.iter().map(|d| queues[d].clone()).collect(),
            });
            routes.insert(name.clone(), route.clone());
            route_order.push(route);
        }
        let (work_tx, work_rx) = async_channel::bounded::<Job>(workers.max(1) * 64);
        let handle = tokio::runtime::Handle::current();
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let rx = work_rx.clone();
            let stats = stats.clone();
            let in_delivery = in_delivery.clone();
            let handle = handle.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("weft-worker-{i}"))
                    .spawn(move || {
                        let _guard = handle.enter();
                        while let Ok(job) = rx.recv_blocking() {
                            run_job(job, &stats, &in_delivery);
                        }
                    })
                    .map_err(|e| {
                        BuildError::Load(crate::plugins::engine::LoadError::Compile {
                            plugin: "-".into(),
                            path: "-".into(),
                            reason: format!("cannot start a worker thread: {e}"),
                        })
                    })?,
            );
        }
        Ok(Arc::new(Pipeline {
            routes,
            route_order,
            work_tx,
            destination_queues: queues.into_values().collect(),
            workers: Mutex::new(threads),
            delivery_tasks,
            stop_retrying,
            stats,
            in_delivery,
        }))
    }

    /// The route for a message: the source's own, else the first route
    /// (in file order) whose `match` patterns take the message type.
    pub fn route_for(&self, source_route: Option<&str>, message_type: &str) -> Option<Arc<Route>> {
        match source_route {
            Some(name) => self.routes.get(name).cloned(),
            None => self
                .route_order
                .iter()
                .find(|r| r.matches.matches(message_type))
                .cloned(),
        }
    }

    /// Hands a job to the workers, waiting while their queue is full.
    /// Fails only when the pipeline is shutting down.
    pub async fn submit(&self, job: Job) -> Result<(), NotTaken> {
        self.work_tx
            .send(job)
            .await
            .map_err(|_| NotTaken::ShuttingDown)?;
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Hands a job to the workers if their queue has room.
    pub fn try_submit(&self, job: Job) -> Result<(), NotTaken> {
        match self.work_tx.try_send(job) {
            Ok(()) => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(async_channel::TrySendError::Full(_)) => Err(NotTaken::Full),
            Err(async_channel::TrySendError::Closed(_)) => Err(NotTaken::ShuttingDown),
        }
    }

    /// Outputs queued or being delivered right now.
    pub fn in_delivery(&self) -> usize {
        self.in_delivery.load(Ordering::Acquire)
    }

    /// Messages waiting for a plugin worker.
    pub fn queued(&self) -> usize {
        self.work_tx.len()
    }

    /// Stops taking work, lets the workers finish what is queued, then lets
    /// the destinations deliver what is queued, for at most `grace`; after
    /// that, retries stop. Returns how many outputs were left undelivered.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        self.work_tx.close();
        let threads: Vec<_> = self
            .workers
            .lock()
            .map(|mut w| w.drain(..).collect())
            .unwrap_or_default();
        let mut joined = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        });
        if tokio::time::timeout_at(deadline, &mut joined)
            .await
            .is_err()
        {
            // Workers wait for room in a destination that is not taking
            // anything: stop retrying so its queue drains.
            self.stop_retrying.cancel();
            let _ = joined.await;
        }
        for q in &self.destination_queues {
            q.tx.close();
        }
        self.delivery_tasks.close();
        if tokio::time::timeout_at(deadline, self.delivery_tasks.wait())
            .await
            .is_err()
        {
            self.stop_retrying.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), self.delivery_tasks.wait()).await;
        }
        self.in_delivery.load(Ordering::Acquire)
    }
}

fn run_job(job: Job, stats: &Stats, in_delivery: &AtomicUsize) {
    let Job {
        message,
        control_id,
        message_type,
        received,
        route,
        ack,
        reply,
        want_outputs,
    } = job;
    let message_id = message.id.clone();
    let result = route.chain.run(message);
    let outputs = match result {
        Ok(r) => r.outputs,
        Err(e) => {
            let outcome = match &e {
                CallError::Reject { .. } => {
                    stats.rejected.fetch_add(1, Ordering::Relaxed);
                    Outcome::Rejected(e.to_string())
                }
                _ => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    Outcome::Failed(e.to_string())
                }
            };
            // The plugin's reason may quote the message: debug level only.
            tracing::warn!(message_id, route = %route.name, message_type, "message not transformed: {}", e.summary());
            tracing::debug!(message_id, error = %e, "reason");
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            }
            return;
        }
    };
    let returned = want_outputs.then(|| outputs.clone());
    // Work out every delivery before queueing any, so a bad destination name
    // fails the message as a whole.
    let mut planned: Vec<(Arc<DestinationQueue>, Output, usize)> = Vec::new();
    for (i, output) in outputs.into_iter().enumerate() {
        match &output.destination {
            Some(name) => match route.destinations.iter().find(|d| &d.name == name) {
                Some(d) => planned.push((d.clone(), output, i + 1)),
                None => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    let reason = format!(
                        "an output names destination {name:?}, which route {} does not have",
                        route.name
                    );
                    tracing::warn!(message_id, route = %route.name, "{reason}");
                    if let Some(reply) = reply {
                        let _ = reply.send(Outcome::Failed(reason));
                    }
                    return;
                }
            },
            None => {
                for d in &route.destinations {
                    planned.push((d.clone(), output.clone(), i + 1));
                }
            }
        }
    }
    stats.transformed.fetch_add(1, Ordering::Relaxed);
    let (tracker, reply) = match (ack, reply) {
        (AckMode::AfterDelivery, Some(reply)) if !planned.is_empty() => (
            Some(Arc::new(Tracker {
                remaining: AtomicUsize::new(planned.len()),
                failure: Mutex::new(None),
                reply: Mutex::new(Some(reply)),
            })),
            None,
        ),
        (_, reply) => (None, reply),
    };
    for (queue, output, n) in planned {
        in_delivery.fetch_add(1, Ordering::AcqRel);
        let queued = Queued {
            delivery: Delivery {
                message_id: message_id.clone(),
                control_id: control_id.clone(),
                message_type: message_type.clone(),
                n,
                received,
                output,
            },
            tracker: tracker.clone(),
        };
        // Waits while the destination's queue is full: back-pressure.
        if let Err(e) = queue.tx.send_blocking(queued) {
            in_delivery.fetch_sub(1, Ordering::AcqRel);
            tracing::error!(message_id, destination = %queue.name, "destination closed during shutdown; output not queued");
            if let Some(t) = e.0.tracker {
                t.finish(Some("runtime shutting down".into()));
            }
        }
    }
    if let Some(reply) = reply {
        let _ = reply.send(match ack {
            AckMode::AfterDelivery => Outcome::Delivered,
            _ => Outcome::Transformed(returned),
        });
    }
}

async fn deliver_loop(
    name: String,
    destination: Arc<dyn Destination>,
    rx: async_channel::Receiver<Queued>,
    stats: Arc<Stats>,
    stop: CancellationToken,
    in_delivery: Arc<AtomicUsize>,
) {
    while let Ok(q) = rx.recv().await {
        let mut attempt: u32 = 0;
        let mut abandoned = false;
        let failure = loop {
            if stop.is_cancelled() {
                tracing::error!(destination = %name, message_id = %q.delivery.message_id, "shutdown: output left undelivered");
                abandoned = true;
                break Some("runtime shut down before delivery".into());
            }
            attempt += 1;
            match destination.deliver(&q.delivery).await {
                Ok(()) => {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                    break None;
                }
                Err(DeliveryError::Permanent(e)) => {
                    stats.delivery_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(destination = %name, message_id = %q.delivery.message_id, attempt, error = %e, "delivery failed for good");
                    break Some(format!("destination {name}: {e}"));
                }
                Err(e @ (DeliveryError::Transient(_) | DeliveryError::Throttled { .. })) => {
                    stats.delivery_retries.fetch_add(1, Ordering::Relaxed);
                    let wait = match &e {
                        // Honour the receiver's Retry-After, within reason.
                        DeliveryError::Throttled { after, .. } => {
                            (*after).min(Duration::from_secs(300))
                        }
                        _ => backoff(attempt),
                    };
                    tracing::warn!(destination = %name, message_id = %q.delivery.message_id, attempt, retry_in_ms = wait.as_millis() as u64, error = %e, "delivery failed; will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => {
                            tracing::error!(destination = %name, message_id = %q.delivery.message_id, "shutdown: output left undelivered");
                            abandoned = true;
                            break Some("runtime shut down before delivery".into());
                        }
                    }
                }
            }
        };
        if !abandoned {
            in_delivery.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(t) = &q.tracker {
            t.finish(failure);
        }
    }
}

/// Exponential backoff with jitter: between half and all of
/// 250 ms × 2^(attempt-1), capped at 30 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = (250u64 << attempt.saturating_sub(1).min(7)).min(30_000);
    let jitter = {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::time::Instant::now())
    };
    Duration::from_millis(cap_ms / 2 + jitter % (cap_ms / 2 + 1))
}
