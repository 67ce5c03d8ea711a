//! The pipeline between sources and destinations, around the journal.
//!
//! A source records a message in the journal (the ACK waits for that
//! commit), then hands it to the plugin workers through a bounded queue.
//! A worker runs the route's plugins and records the outcome and one
//! delivery per output and destination, atomically. Each destination has a
//! dispatcher that reads its due deliveries from the journal, attempts them
//! and records the result: delivered, retried later (backoff with jitter,
//! or the receiver's `Retry-After`), or dead after its attempt or age limit.
//! A restart resumes from the journal: messages never transformed are run
//! again, pending deliveries are attempted again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{AckMode, Config};
use crate::destinations::{self, Delivery, DeliveryError, Destination};
use crate::journal::sqlite::SqliteJournal;
use crate::journal::{self, Journal, MessageStatus, NewDelivery, now_ms};
use crate::plugins::{CallError, Message, Output};
use crate::routes::Chain;
use crate::workqueue::WorkQueue;

/// What happened to a message, as far as its source needs to know.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Recorded in the journal (after-commit).
    Accepted,
    /// The route's plugins ran and their outputs are recorded; the outputs
    /// themselves when the source asked for them.
    Transformed(Option<Vec<Output>>),
    /// Every output was delivered.
    Delivered,
    /// A plugin rejected the message: AR.
    Rejected(String),
    /// A plugin failed, asked for a retry, or hit a limit; a delivery
    /// failed for good; or the journal could not record it: AE.
    Failed(String),
}

/// Counters for the log and the health endpoint.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages recorded.
    pub received: AtomicU64,
    /// Messages whose plugins ran without error.
    pub transformed: AtomicU64,
    /// Messages rejected by a plugin.
    pub rejected: AtomicU64,
    /// Messages failed by a plugin or a limit.
    pub failed: AtomicU64,
    /// Outputs delivered.
    pub delivered: AtomicU64,
    /// Outputs given up on (dead letters).
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
    destinations: Vec<String>,
}

impl Route {
    /// (plugin, sha256) of each plugin in the route's chain, in order.
    pub fn versions(&self) -> Vec<(String, String)> {
        self.chain.versions()
    }
}

/// Every route, built over one set of plugin versions. The pipeline holds
/// the live one behind an atomic pointer: a hot reload builds a new one and
/// swaps it in; a message uses the routing that is live when a worker picks
/// it up, to its end.
pub struct Routing {
    routes: HashMap<String, Arc<Route>>,
    order: Vec<Arc<Route>>,
}

impl Routing {
    /// Builds the routes of `config` over `plugins` (which must hold every
    /// plugin a route names).
    pub fn build(
        config: &Config,
        plugins: &std::collections::BTreeMap<String, Arc<crate::plugins::Plugin>>,
    ) -> Result<Routing, BuildError> {
        let mut routes = HashMap::new();
        let mut order = Vec::new();
        for name in &config.route_order {
            let rc = &config.routes[name];
            if rc.destinations.is_empty() {
                return Err(BuildError::NoDestinations(name.clone()));
            }
            let mut chain = Vec::new();
            for p in &rc.plugins {
                match plugins.get(p) {
                    Some(plugin) => chain.push(plugin.clone()),
                    None => return Err(BuildError::MissingPlugin(name.clone(), p.clone())),
                }
            }
            let route = Arc::new(Route {
                name: name.clone(),
                chain: Chain::new(chain).of_route(name, &rc.destinations),
                matches: rc.clone(),
                destinations: rc.destinations.clone(),
            });
            routes.insert(name.clone(), route.clone());
            order.push(route);
        }
        Ok(Routing { routes, order })
    }

    /// The route for a message: the source's own, else the first route
    /// (in file order) whose `match` patterns take the message type.
    pub fn route_for(&self, source_route: Option<&str>, message_type: &str) -> Option<Arc<Route>> {
        match source_route {
            Some(name) => self.routes.get(name).cloned(),
            None => self
                .order
                .iter()
                .find(|r| r.matches.matches(message_type))
                .cloned(),
        }
    }
}

/// Counts the deliveries of one message, for `after-delivery` sources.
struct Tracker {
    remaining: AtomicUsize,
    failure: Mutex<Option<String>>,
    reply: Mutex<Option<oneshot::Sender<Outcome>>>,
}

impl Tracker {
    /// One delivery is settled; the last one answers the source.
    fn settle(&self, failure: Option<String>) -> bool {
        if let Some(f) = failure
            && let Ok(mut slot) = self.failure.lock()
        {
            slot.get_or_insert(f);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.answer(None);
            return true;
        }
        false
    }

    fn answer(&self, instead: Option<String>) {
        let failure = instead.or_else(|| self.failure.lock().ok().and_then(|mut f| f.take()));
        if let Some(reply) = self.reply.lock().ok().and_then(|mut r| r.take()) {
            let _ = reply.send(match failure {
                Some(f) => Outcome::Failed(f),
                None => Outcome::Delivered,
            });
        }
    }
}

type Trackers = Arc<Mutex<HashMap<String, Arc<Tracker>>>>;

/// A recorded message on its way to the workers.
pub struct Job {
    /// The message.
    pub message: Message,
    /// MSH-10.
    pub control_id: String,
    /// MSH-9.
    pub message_type: String,
    /// Its route.
    pub route: Arc<Route>,
    /// When the source wants to hear back.
    pub ack: AckMode,
    /// Where to tell it.
    pub reply: Option<oneshot::Sender<Outcome>>,
    /// Send the outputs back with the outcome (HTTP after-transform).
    pub want_outputs: bool,
    /// (destination, key) for the route's destinations that order by key
    /// ([`Pipeline::ordering_keys`]).
    pub ordering_keys: Vec<(String, String)>,
}

/// Why a job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTaken {
    /// The pipeline is shutting down.
    ShuttingDown,
}

/// When a destination gives up on a delivery.
#[derive(Debug, Clone, Copy)]
pub struct RetryLimits {
    /// Most attempts; `None`: no limit.
    pub max_attempts: Option<u32>,
    /// Most time since the message arrived.
    pub max_age: Duration,
}

struct Dispatch {
    name: String,
    destination: Arc<dyn Destination>,
    concurrency: usize,
    limits: RetryLimits,
    wake: Arc<Notify>,
}

/// A destination as it runs: its dispatcher, and what the workers need of
/// it. A reload that changes or removes it stops the dispatcher (attempts
/// under way finish first); its pending deliveries stay in the journal.
struct LiveDestination {
    /// Its settings, to tell whether a reload changed them.
    config: crate::config::DestinationConfig,
    /// Wakes its dispatcher (new deliveries committed, resend).
    wake: Arc<Notify>,
    /// Stops its dispatcher.
    stop: CancellationToken,
    /// Cancelled once its dispatcher has stopped.
    done: CancellationToken,
}

/// The live destinations, by name.
type Destinations = Arc<ArcSwap<HashMap<String, Arc<LiveDestination>>>>;

/// The running pipeline.
pub struct Pipeline {
    routing: Arc<ArcSwap<Routing>>,
    journal: Arc<SqliteJournal>,
    work: Arc<WorkQueue<Job>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    dispatchers: TaskTracker,
    stop_dispatch: CancellationToken,
    trackers: Trackers,
    /// Outcome commits under way (the workers do not wait for them).
    recording: TaskTracker,
    /// The live destinations.
    destinations: Destinations,
    /// Serialises destination changes.
    changing: Mutex<()>,
    runtime: tokio::runtime::Handle,
    /// What the sources may hold in memory at once.
    budget: crate::sources::budget::Budget,
    /// Counters.
    pub stats: Arc<Stats>,
}

/// A configuration the pipeline cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A plugin did not load.
    #[error(transparent)]
    Load(#[from] crate::plugins::engine::LoadError),
    /// The journal did not open.
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    /// A route names a plugin that is not loaded.
    #[error("route {0}: plugin {1} is not loaded")]
    MissingPlugin(String, String),
    /// A route has no destination, so its outputs would go nowhere.
    #[error("route {0}: no destinations: its outputs would be lost (add destinations = [...])")]
    NoDestinations(String),
    /// A thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Thread(String),
}

impl Pipeline {
    /// Opens the journal, loads every plugin, starts the plugin workers and
    /// the destination dispatchers, and queues again every message the
    /// journal holds untransformed. Must be called inside a tokio runtime.
    pub async fn start(
        config: &Config,
        plugins: &std::collections::BTreeMap<String, Arc<crate::plugins::Plugin>>,
        workers: usize,
    ) -> Result<Arc<Pipeline>, BuildError> {
        let journal = Arc::new(SqliteJournal::open_with(
            &config.runtime.data_dir.join("journal.db"),
            config.runtime.journal_sync,
        )?);
        let stats = Arc::new(Stats::default());
        let trackers: Trackers = Arc::new(Mutex::new(HashMap::new()));
        let routing = Arc::new(ArcSwap::from_pointee(Routing::build(config, plugins)?));
        let destinations: Destinations = Arc::new(ArcSwap::from_pointee(HashMap::new()));
        let dispatchers = TaskTracker::new();
        let stop_dispatch = CancellationToken::new();
        let work = Arc::new(WorkQueue::new(workers.max(1) * 64, workers.max(1)));
        let recording = TaskTracker::new();
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let ctx = WorkerCtx {
                routing: routing.clone(),
                destinations: destinations.clone(),
                work: work.clone(),
                runtime: tokio::runtime::Handle::current(),
                recording: recording.clone(),
                journal: journal.clone(),
                stats: stats.clone(),
                trackers: trackers.clone(),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("weft-worker-{i}"))
                    .spawn(move || {
                        while let Some((job, _turn)) = ctx.work.take() {
                            run_job(job, &ctx);
                        }
                    })
                    .map_err(|e| BuildError::Thread(e.to_string()))?,
            );
        }
        let pipeline = Arc::new(Pipeline {
            routing,
            journal,
            work,
            workers: Mutex::new(threads),
            dispatchers,
            stop_dispatch,
            trackers,
            recording,
            destinations,
            changing: Mutex::new(()),
            runtime: tokio::runtime::Handle::current(),
            budget: crate::sources::budget::Budget::new(config.runtime.max_inflight_bytes),
            stats,
        });
        pipeline.apply_destinations(&config.destinations);
        pipeline.report_orphans().await;
        pipeline.recover().await?;
        let retention = Retention {
            messages: config.runtime.retain,
            max_bytes: config.runtime.retain_max_bytes,
            audit: config.runtime.audit_retain,
        };
        let path = pipeline.journal.path().to_path_buf();
        let stop = pipeline.stop_dispatch.clone();
        pipeline
            .dispatchers
            .spawn(retention_loop(path, retention, stop));
        Ok(pipeline)
    }

    /// Queues again the messages recorded but never transformed.
    async fn recover(&self) -> Result<(), BuildError> {
        let journal = self.journal.clone();
        let unfinished = tokio::task::spawn_blocking(move || journal.unfinished())
            .await
            .map_err(|e| BuildError::Thread(e.to_string()))??;
        if unfinished.is_empty() {
            return Ok(());
        }
        tracing::info!(
            count = unfinished.len(),
            "resuming messages recorded before the last stop"
        );
        for u in unfinished {
            let m = u.message;
            let Some(route) = self.routing.load().routes.get(&m.route).cloned() else {
                let journal = self.journal.clone();
                let id = m.id.clone();
                let reason = format!("route {} no longer exists", m.route);
                tracing::error!(message_id = %id, "cannot resume: {reason}");
                let _ = tokio::task::spawn_blocking(move || {
                    journal.record(journal::Outcome {
                        message_id: id,
                        status: MessageStatus::Failed,
                        error: Some(reason),
                        versions: vec![],
                        deliveries: vec![],
                    })
                })
                .await;
                continue;
            };
            // Resumed messages are parsed again for their keys (HL7 v2 only).
            let ordering_keys = weft_hl7::Message::parse(&m.body)
                .map(|hl7| self.ordering_keys(&route, &hl7))
                .unwrap_or_default();
            let job = Job {
                ordering_keys,
                message: Message {
                    id: m.id,
                    content_type: m.content_type,
                    body: m.body,
                    headers: crate::sources::message_headers(&m.source, m.remote, m.peer_subject),
                },
                control_id: m.control_id,
                message_type: m.message_type,
                route,
                ack: AckMode::AfterCommit,
                reply: None,
                want_outputs: false,
            };
            let route = job.route.clone();
            if self.work.push(&route.name, job).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// The ordering key of `message` for each destination of `route` that
    /// orders deliveries by key. Read at intake, from the message as the
    /// source parsed it, so that per-key order is the order messages arrived
    /// in, whatever order their plugins finish in.
    pub fn ordering_keys(
        &self,
        route: &Route,
        message: &weft_hl7::Message,
    ) -> Vec<(String, String)> {
        let live = self.destinations.load_full();
        let ordered: Vec<(&str, &weft_hl7::Path)> = route
            .destinations
            .iter()
            .filter_map(|d| {
                let path = live.get(d)?.config.ordering_key.as_ref()?;
                Some((d.as_str(), path))
            })
            .collect();
        ordered
            .into_iter()
            .filter_map(|(d, path)| {
                let key = message.element_at(path)?.non_empty()?.into_owned();
                Some((d.to_string(), key))
            })
            .collect()
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<SqliteJournal> {
        &self.journal
    }

    /// What the sources may hold in memory at once.
    pub fn budget(&self) -> &crate::sources::budget::Budget {
        &self.budget
    }

    /// The route for a message: the source's own, else the first route
    /// (in file order) whose `match` patterns take the message type.
    pub fn route_for(&self, source_route: Option<&str>, message_type: &str) -> Option<Arc<Route>> {
        self.routing.load().route_for(source_route, message_type)
    }

    /// Makes `routing` live: the next message a worker picks up uses it;
    /// messages under way finish on the one they started with.
    pub fn swap_routing(&self, routing: Routing) {
        self.routing.store(Arc::new(routing));
    }

    /// True when the workers' queue has room now.
    pub fn has_room(&self) -> bool {
        self.work.has_room()
    }

    /// Hands a recorded message to the workers, waiting while their queue
    /// is full. Fails only when the pipeline is shutting down (the message
    /// is then resumed from the journal at the next start).
    pub async fn submit(&self, job: Job) -> Result<(), NotTaken> {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let route = job.route.clone();
        self.work
            .push(&route.name, job)
            .await
            .map_err(|_| NotTaken::ShuttingDown)
    }

    /// Makes every destination look for due deliveries now (after an
    /// operator queued some again) rather than at its next poll.
    pub fn wake_dispatchers(&self) {
        for d in self.destinations.load().values() {
            d.wake.notify_one();
        }
    }

    /// Brings the running destinations in line with `next`: a new one
    /// starts; a changed one restarts once the attempts its old settings
    /// have under way are done; a removed one stops, and its pending
    /// deliveries stay in the journal (delivered if it comes back; counted
    /// in the returned lines). Returns a line per change.
    pub fn apply_destinations(
        &self,
        next: &std::collections::BTreeMap<String, crate::config::DestinationConfig>,
    ) -> Vec<String> {
        let _one_at_a_time = self.changing.lock();
        let _rt = self.runtime.enter();
        let current = self.destinations.load_full();
        let mut live: HashMap<String, Arc<LiveDestination>> = HashMap::new();
        let mut changes = Vec::new();
        for (name, dc) in next {
            let old = current.get(name);
            if let Some(old) = old
                && old.config == *dc
            {
                live.insert(name.clone(), old.clone());
                continue;
            }
            let after = old.map(|o| {
                o.stop.cancel();
                o.done.clone()
            });
            let d = Arc::new(LiveDestination {
                config: dc.clone(),
                wake: Arc::new(Notify::new()),
                stop: self.stop_dispatch.child_token(),
                done: CancellationToken::new(),
            });
            let dispatch = Dispatch {
                name: name.clone(),
                destination: Arc::from(destinations::build(dc)),
                concurrency: dc.concurrency,
                limits: RetryLimits {
                    max_attempts: dc.max_attempts,
                    max_age: dc.max_age,
                },
                wake: d.wake.clone(),
            };
            let (journal, stats, trackers, stop, done) = (
                self.journal.clone(),
                self.stats.clone(),
                self.trackers.clone(),
                d.stop.clone(),
                d.done.clone(),
            );
            self.dispatchers.spawn(async move {
                let _done = done.drop_guard();
                if let Some(previous) = after {
                    // Never two dispatchers on one destination's deliveries.
                    previous.cancelled().await;
                }
                dispatch_loop(dispatch, journal, stats, trackers, stop).await;
            });
            if old.is_some() {
                tracing::info!(destination = %name, "destination changed: restarted with its new settings");
                changes.push(format!(
                    "destination {name} restarted with its new settings"
                ));
            } else if !current.is_empty() {
                tracing::info!(destination = %name, "destination added");
                changes.push(format!("destination {name} added"));
            }
            live.insert(name.clone(), d);
        }
        let removed: Vec<&String> = current.keys().filter(|n| !next.contains_key(*n)).collect();
        if !removed.is_empty() {
            let pending: HashMap<String, u64> = self
                .journal
                .pending_counts()
                .map(|p| p.into_iter().collect())
                .unwrap_or_default();
            for name in removed {
                if let Some(d) = current.get(name) {
                    d.stop.cancel();
                }
                let n = pending.get(name).copied().unwrap_or(0);
                tracing::warn!(
                    destination = %name,
                    pending = n,
                    "destination removed: its pending deliveries stay in the journal (delivered if it is added back)"
                );
                changes.push(format!(
                    "destination {name} removed: {n} pending deliveries stay in the journal"
                ));
            }
        }
        self.destinations.store(Arc::new(live));
        changes
    }

    /// Logs pending deliveries for destinations the configuration no
    /// longer has: they wait in the journal until it has them again.
    async fn report_orphans(&self) {
        let journal = self.journal.clone();
        let Ok(Ok(pending)) = tokio::task::spawn_blocking(move || journal.pending_counts()).await
        else {
            return;
        };
        let live = self.destinations.load();
        for (name, n) in pending {
            if !live.contains_key(&name) {
                tracing::warn!(
                    destination = %name,
                    pending = n,
                    "deliveries pending for a destination this configuration does not have; they stay in the journal until it is added back"
                );
            }
        }
    }

    /// Messages waiting for a plugin worker.
    pub fn queued(&self) -> usize {
        self.work.len()
    }

    /// Stops taking work, lets the workers finish the queue and the
    /// dispatchers finish the attempts under way, for at most `grace`.
    /// Pending deliveries stay in the journal for the next start. Returns
    /// the pending count per destination.
    pub async fn shutdown(&self, grace: Duration) -> Vec<(String, u64)> {
        let deadline = tokio::time::Instant::now() + grace;
        self.work.close();
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
            tracing::warn!(
                "plugin workers still busy at the end of the grace period; their messages resume at the next start"
            );
        }
        self.recording.close();
        let _ = tokio::time::timeout_at(deadline, self.recording.wait()).await;
        // Flush: let the destinations deliver what is pending, within the grace.
        loop {
            let (journal, live) = (self.journal.clone(), self.destinations.load_full());
            let pending: u64 = tokio::task::spawn_blocking(move || pending_at(&journal, &live))
                .await
                .unwrap_or(0);
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop_dispatch.cancel();
        self.dispatchers.close();
        let _ = tokio::time::timeout_at(deadline, self.dispatchers.wait()).await;
        // Sources still waiting for a delivery are told it is pending.
        let waiting: Vec<_> = self
            .trackers
            .lock()
            .map(|mut t| t.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        for t in waiting {
            t.answer(Some(
                "the runtime stopped; delivery is pending in the journal".into(),
            ));
        }
        let journal = self.journal.clone();
        tokio::task::spawn_blocking(move || {
            let pending = journal.pending_counts().unwrap_or_default();
            journal.close();
            pending
        })
        .await
        .unwrap_or_default()
    }
}

/// Pending deliveries of the destinations in `live`.
fn pending_at(journal: &SqliteJournal, live: &HashMap<String, Arc<LiveDestination>>) -> u64 {
    journal
        .pending_counts()
        .unwrap_or_default()
        .iter()
        .filter(|(d, _)| live.contains_key(d))
        .map(|(_, n)| n)
        .sum()
}

struct WorkerCtx {
    /// The live routing.
    routing: Arc<ArcSwap<Routing>>,
    /// The live destinations (their ordering keys and wake-up calls).
    destinations: Destinations,
    work: Arc<WorkQueue<Job>>,
    runtime: tokio::runtime::Handle,
    recording: TaskTracker,
    journal: Arc<SqliteJournal>,
    stats: Arc<Stats>,
    trackers: Trackers,
}

fn run_job(job: Job, ctx: &WorkerCtx) {
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
    let route = ctx
        .routing
        .load()
        .routes
        .get(&route.name)
        .cloned()
        .unwrap_or(route);
    // Ordering keys were read from the message at intake.
    let keys: HashMap<&str, &str> = ordering_keys
        .iter()
        .map(|(d, k)| (d.as_str(), k.as_str()))
        .collect();
    let reply_with = |reply: Option<oneshot::Sender<Outcome>>, o: Outcome| {
        if let Some(r) = reply {
            let _ = r.send(o);
        }
    };
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
    if tracked
        && let Some(r) = reply.take()
        && let Ok(mut t) = ctx.trackers.lock()
    {
        t.insert(
            message_id.clone(),
            Arc::new(Tracker {
                remaining: AtomicUsize::new(deliveries.len()),
                failure: Mutex::new(None),
                reply: Mutex::new(Some(r)),
            }),
        );
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
    match status {
        MessageStatus::Transformed => ctx.stats.transformed.fetch_add(1, Ordering::Relaxed),
        MessageStatus::Rejected => ctx.stats.rejected.fetch_add(1, Ordering::Relaxed),
        _ => ctx.stats.failed.fetch_add(1, Ordering::Relaxed),
    };
    let error = error.unwrap_or_default();
    reply_with(
        reply,
        match (status, ack) {
            (MessageStatus::Rejected, _) => Outcome::Rejected(error),
            (MessageStatus::Failed, _) => Outcome::Failed(error),
            (_, AckMode::AfterDelivery) => Outcome::Delivered,
            _ => Outcome::Transformed(want_outputs.then_some(outputs)),
        },
    );
    let (journal, trackers) = (ctx.journal.clone(), ctx.trackers.clone());
    let destinations = ctx.destinations.clone();
    let _guard = ctx.runtime.enter();
    ctx.recording.spawn(async move {
        // Retried while the journal cannot write (a full disk): the message
        // is durable already, and its outcome lands once space returns. If
        // the process stops first, the message is run again at the next start.
        let recorded = commit_until_done("the outcome of message", &message_id, || {
            journal.record_commit(outcome.clone())
        })
        .await;
        match recorded {
            Ok(()) => {
                let live = destinations.load();
                for d in &targets {
                    if let Some(l) = live.get(d) {
                        l.wake.notify_one();
                    }
                }
            }
            Err(e) => {
                if let Some(t) = trackers.lock().ok().and_then(|mut t| t.remove(&message_id)) {
                    t.answer(Some(format!(
                        "the journal could not record the outcome: {e}"
                    )));
                }
            }
        }
    });
}

/// Commits a journal write, retrying with backoff (200 ms doubling to 5 s)
/// while the journal cannot write; gives up only when the journal closes.
/// The first failure and the recovery are logged.
async fn commit_until_done(
    what: &str,
    message_id: &str,
    commit: impl Fn() -> journal::sqlite::Commit,
) -> Result<(), journal::JournalError> {
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
            Err(journal::JournalError::Closed) => {
                if failed {
                    tracing::warn!(
                        message_id,
                        "stopped before {what} could be recorded; it is redone at the next start"
                    );
                }
                return Err(journal::JournalError::Closed);
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

async fn dispatch_loop(
    d: Dispatch,
    journal: Arc<SqliteJournal>,
    stats: Arc<Stats>,
    trackers: Trackers,
    stop: CancellationToken,
) {
    let d = Arc::new(d);
    let permits = Arc::new(Semaphore::new(d.concurrency));
    let busy: Arc<Mutex<HashSet<i64>>> = Arc::new(Mutex::new(HashSet::new()));
    let attempts = TaskTracker::new();
    while !stop.is_cancelled() {
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                p = permits.clone().acquire_owned() => drop(p),
                _ = stop.cancelled() => break,
            }
            continue;
        }
        let (j, name) = (journal.clone(), d.name.clone());
        let taken: Vec<i64> = busy
            .lock()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default();
        let due = tokio::task::spawn_blocking(move || {
            let due = j.due(&name, now_ms(), free, &taken)?;
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
                (Vec::new(), Some(now_ms() + 1000))
            }
            Err(_) => break,
        };
        if due.is_empty() {
            let wait = next.map_or(Duration::from_secs(1), |at| {
                Duration::from_millis((at - now_ms()).clamp(0, 1000) as u64)
            });
            tokio::select! {
                _ = d.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
            continue;
        }
        for item in due {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            if let Ok(mut b) = busy.lock() {
                b.insert(item.id);
            }
            let (d, journal, stats, trackers, busy) = (
                d.clone(),
                journal.clone(),
                stats.clone(),
                trackers.clone(),
                busy.clone(),
            );
            attempts.spawn(async move {
                let id = item.id;
                // The permit covers the attempt itself; recording its result
                // (a journal commit) happens after, while the id stays busy
                // so it is not picked up again.
                let record = attempt(&d, &stats, item).await;
                drop(permit);
                settle(&d, &journal, &stats, &trackers, record).await;
                if let Ok(mut b) = busy.lock() {
                    b.remove(&id);
                }
                d.wake.notify_one();
            });
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

async fn attempt(d: &Dispatch, stats: &Stats, item: journal::DueDelivery) -> Attempted {
    let delivery = Delivery {
        message_id: item.message_id.clone(),
        control_id: item.control_id.clone(),
        message_type: item.message_type.clone(),
        n: item.n,
        received: UNIX_EPOCH + Duration::from_millis(item.received_at.max(0) as u64),
        output: Output {
            destination: Some(d.name.clone()),
            message: Message {
                id: item.message_id.clone(),
                content_type: item.content_type,
                body: item.body,
                headers: vec![],
            },
        },
    };
    let attempt_no = item.attempts + 1;
    let result = match d.destination.deliver(&delivery).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let age = SystemTime::now()
                .duration_since(delivery.received)
                .unwrap_or_default();
            let out_of_tries = d.limits.max_attempts.is_some_and(|m| attempt_no >= m);
            let out_of_time = age >= d.limits.max_age;
            let next = match &e {
                DeliveryError::Permanent(_) => None,
                _ if out_of_tries || out_of_time => None,
                DeliveryError::Throttled { after, .. } => {
                    Some(now_ms() + after.min(&Duration::from_secs(3600)).as_millis() as i64)
                }
                DeliveryError::Transient(_) => {
                    Some(now_ms() + backoff(attempt_no).as_millis() as i64)
                }
            };
            let reason = match (&e, next) {
                (DeliveryError::Permanent(_), _) | (_, Some(_)) => e.to_string(),
                (_, None) if out_of_tries => format!("gave up after {attempt_no} attempts: {e}"),
                (_, None) => format!("gave up after {} s: {e}", age.as_secs()),
            };
            if let Some(at) = next {
                stats.delivery_retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(destination = %d.name, message_id = %item.message_id, attempt = attempt_no, retry_in_ms = at - now_ms(), error = %reason, "delivery failed; will retry");
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
    journal: &SqliteJournal,
    stats: &Stats,
    trackers: &Trackers,
    a: Attempted,
) {
    let finish = |failure: Option<String>| {
        let tracker = trackers
            .lock()
            .ok()
            .and_then(|t| t.get(&a.message_id).cloned());
        if let Some(t) = tracker
            && t.settle(failure)
            && let Ok(mut all) = trackers.lock()
        {
            all.remove(&a.message_id);
        }
    };
    // A result that cannot be recorded is retried until it is (the delivery
    // stays busy meanwhile, so it is not sent again and again while the
    // disk is full); if the process stops first, it is sent again at the
    // next start.
    match a.result {
        Ok(()) => {
            let at = now_ms();
            let recorded = commit_until_done("a delivery of message", &a.message_id, || {
                journal.delivered_commit(a.id, at)
            })
            .await;
            if recorded.is_err() {
                return;
            }
            stats.delivered.fetch_add(1, Ordering::Relaxed);
            finish(None);
        }
        Err((reason, next)) => {
            let recorded =
                commit_until_done("a delivery attempt of message", &a.message_id, || {
                    journal.failed_commit(a.id, &reason, next)
                })
                .await;
            if recorded.is_err() {
                return;
            }
            if next.is_none() {
                stats.delivery_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(destination = %d.name, message_id = %a.message_id, attempt = a.attempt, error = %reason, "delivery failed for good (dead letter)");
                finish(Some(format!("destination {}: {reason}", d.name)));
            }
        }
    }
}

/// What the journal keeps (`runtime.retain_days`, `retain_max_mb`,
/// `audit_retain_days`).
struct Retention {
    messages: Option<Duration>,
    max_bytes: Option<u64>,
    audit: Duration,
}

/// Purges settled messages older than `retain` and audit entries older than
/// their retention (at start, then hourly) and the oldest settled messages
/// while the journal is over `max_bytes` (checked every 10 s).
async fn retention_loop(path: std::path::PathBuf, retention: Retention, stop: CancellationToken) {
    const CHECK: Duration = Duration::from_secs(10);
    let Retention {
        messages: retain,
        max_bytes,
        audit,
    } = retention;
    let mut since_age_purge = None::<tokio::time::Instant>;
    let mut warned_full = false;
    loop {
        let now = tokio::time::Instant::now();
        let hourly =
            since_age_purge.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(3600));
        let by_age = retain.filter(|_| hourly);
        if hourly {
            since_age_purge = Some(now);
        }
        let p = path.clone();
        let purged = tokio::task::spawn_blocking(move || {
            let mut conn = journal::operate::open(&p)?;
            if hourly {
                let n = journal::audit::purge(&mut conn, now_ms() - audit.as_millis() as i64)?;
                if n > 0 {
                    tracing::info!(
                        entries = n,
                        "retention: removed audit entries older than audit_retain_days"
                    );
                }
            }
            let aged = match by_age {
                Some(retain) => {
                    journal::operate::purge(&mut conn, now_ms() - retain.as_millis() as i64)?
                }
                None => (0, 0),
            };
            let sized = match max_bytes {
                Some(max) => Some(journal::operate::purge_to_size(&mut conn, max)?),
                None => None,
            };
            Ok::<_, journal::JournalError>((aged, sized))
        })
        .await;
        match purged {
            Ok(Ok((aged, sized))) => {
                if aged.0 > 0 {
                    tracing::info!(
                        messages = aged.0,
                        deliveries = aged.1,
                        "retention: purged settled messages older than retain_days"
                    );
                }
                if let (Some((m, d, used)), Some(max)) = (sized, max_bytes) {
                    if m > 0 {
                        tracing::info!(
                            messages = m,
                            deliveries = d,
                            used_mb = used / (1024 * 1024),
                            "retention: purged the oldest settled messages to stay under retain_max_mb"
                        );
                    }
                    let over = used > max;
                    if over && !warned_full {
                        tracing::warn!(
                            used_mb = used / (1024 * 1024),
                            max_mb = max / (1024 * 1024),
                            "retention: the journal is over retain_max_mb and holds nothing settled to purge (pending work is never purged)"
                        );
                    }
                    warned_full = over;
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "retention: purge failed"),
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(if max_bytes.is_some() { CHECK } else { Duration::from_secs(3600) }) => {}
            _ = stop.cancelled() => break,
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
