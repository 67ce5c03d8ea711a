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

pub mod tracker;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{AckMode, Config};
use crate::destinations::set::DestinationSet;
use crate::journal::retention::{Retention, retention_loop};
use crate::journal::{self, Journal, MessageStatus};
use crate::plugins::{Message, Output};
use crate::routing::{Route, Routing};
use crate::workqueue::WorkQueue;
use tracker::Trackers;
use worker::{WorkerCtx, run_job};

/// What happened to a message, as far as its source needs to know.
#[derive(Debug, Clone)]
pub enum Answer {
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
    pub reply: Option<oneshot::Sender<Answer>>,
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

/// The running pipeline.
pub struct Pipeline {
    routing: Arc<ArcSwap<Routing>>,
    journal: Arc<dyn Journal>,
    work: Arc<WorkQueue<Job>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Sources waiting for their messages' deliveries.
    trackers: Arc<Trackers>,
    /// Outcome commits under way (the workers do not wait for them).
    recording: TaskTracker,
    /// The live destinations and their dispatchers.
    destinations: Arc<DestinationSet>,
    /// Background work: retention.
    housekeeping: TaskTracker,
    /// Stops the background work.
    stop_housekeeping: CancellationToken,
    /// What the sources may hold in memory at once.
    budget: crate::sources::budget::Budget,
    /// Wakes the reprocessing loop.
    reprocess_wanted: tokio::sync::Notify,
    /// The configured alerts and their states.
    alerts: Arc<crate::alerts::Alerts>,
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
    /// The routes cannot be built.
    #[error(transparent)]
    Routing(#[from] crate::routing::RoutingError),
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
        let journal = journal::for_config(config, journal::Use::Run)?;
        crate::metrics::metrics().declare(config);
        let stats = Arc::new(Stats::default());
        let trackers = Arc::new(Trackers::default());
        let routing = Arc::new(ArcSwap::from_pointee(Routing::build(config, plugins)?));
        let destinations = Arc::new(DestinationSet::new(
            tokio::runtime::Handle::current(),
            journal.clone(),
            stats.clone(),
            trackers.clone(),
        ));
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
            trackers,
            recording,
            destinations,
            housekeeping: TaskTracker::new(),
            stop_housekeeping: CancellationToken::new(),
            budget: crate::sources::budget::Budget::new(config.runtime.max_inflight_bytes),
            reprocess_wanted: tokio::sync::Notify::new(),
            alerts: Arc::new(crate::alerts::Alerts::new(config)),
            stats,
        });
        pipeline.apply_destinations(&config.destinations);
        pipeline.destinations.report_orphans().await;
        pipeline.recover().await?;
        let retention = Retention {
            messages: config.runtime.retain,
            max_bytes: config.runtime.retain_max_bytes,
            audit: config.runtime.audit_retain,
        };
        let stop = pipeline.stop_housekeeping.clone();
        pipeline.housekeeping.spawn(retention_loop(
            pipeline.journal.clone(),
            retention,
            stop.clone(),
        ));
        pipeline
            .housekeeping
            .spawn(pipeline.clone().reprocess_loop(stop.clone()));
        pipeline
            .housekeeping
            .spawn(crate::alerts::alert_loop(pipeline.clone(), stop));
        Ok(pipeline)
    }

    /// Queues again the messages recorded but never transformed.
    async fn recover(&self) -> Result<(), BuildError> {
        let journal = self.journal.clone();
        let unfinished = tokio::task::spawn_blocking(move || journal.unfinished())
            .await
            .map_err(|e| BuildError::Thread(e.to_string()))??;
        if !unfinished.is_empty() {
            tracing::info!(
                count = unfinished.len(),
                "resuming messages recorded before the last stop"
            );
            self.requeue(unfinished).await;
        }
        Ok(())
    }

    /// Hands messages already in the journal to the workers (resumed after
    /// a stop, or reprocessed), each on the route it was recorded with as
    /// that route is live now; a message whose route is gone fails.
    /// Returns false when the pipeline is shutting down (the rest are
    /// resumed at the next start).
    async fn requeue(&self, messages: Vec<journal::Unfinished>) -> bool {
        for u in messages {
            let m = u.message;
            let Some(route) = self.routing.load().get(&m.route) else {
                let journal = self.journal.clone();
                let id = m.id.clone();
                let reason = format!("route {} no longer exists", m.route);
                tracing::error!(message_id = %id, "cannot run it: {reason}");
                let _ = journal
                    .record(journal::Outcome {
                        message_id: id,
                        status: MessageStatus::Failed,
                        error: Some(reason),
                        versions: vec![],
                        deliveries: vec![],
                    })
                    .done()
                    .await;
                continue;
            };
            // Parsed again for their ordering keys (HL7 v2 only).
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
                return false;
            }
        }
        true
    }

    /// Runs the messages operators queue for reprocessing
    /// ([`Journal::reprocess`], from the API or from `weft messages
    /// reprocess` beside the runtime), and those another node accepted and
    /// can no longer run ([`Journal::take_over`]): looks at once when woken
    /// ([`Pipeline::wake_reprocess`]), else every second, until `stop`.
    async fn reprocess_loop(self: Arc<Self>, stop: CancellationToken) {
        /// Messages taken off the queue at a time.
        const BATCH: usize = 64;
        loop {
            let journal = self.journal.clone();
            let taken = tokio::task::spawn_blocking(move || journal.take_reprocess(BATCH)).await;
            let more = match taken {
                Ok(Ok(messages)) if !messages.is_empty() => {
                    let n = messages.len();
                    tracing::info!(count = n, "reprocessing messages an operator queued");
                    if !self.requeue(messages).await {
                        return;
                    }
                    n == BATCH
                }
                Ok(Ok(_)) => false,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the reprocessing queue could not be read");
                    false
                }
                Err(_) => false,
            };
            // With nodes sharing the journal: messages a stopped node
            // accepted and never ran.
            let journal = self.journal.clone();
            let more = match tokio::task::spawn_blocking(move || journal.take_over(BATCH)).await {
                Ok(Ok(messages)) if !messages.is_empty() => {
                    let n = messages.len();
                    tracing::warn!(
                        count = n,
                        "taking over messages another node accepted and can no longer run"
                    );
                    if !self.requeue(messages).await {
                        return;
                    }
                    more || n == BATCH
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "other nodes' unfinished messages could not be read");
                    more
                }
                _ => more,
            };
            if more {
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.reprocess_wanted.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Makes the pipeline look for messages queued for reprocessing now
    /// rather than at its next poll.
    pub fn wake_reprocess(&self) {
        self.reprocess_wanted.notify_one();
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
        self.destinations
            .ordering_keys(&route.destinations, message)
    }

    /// The live destinations' names.
    pub fn destination_names(&self) -> Vec<String> {
        self.destinations.names()
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<dyn Journal> {
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

    /// The configured alerts and their states.
    pub fn alerts(&self) -> &Arc<crate::alerts::Alerts> {
        &self.alerts
    }

    /// Makes these destinations look for due deliveries now.
    pub fn wake(&self, destinations: &[String]) {
        self.destinations.wake(destinations);
    }

    /// Makes every destination look for due deliveries now (after an
    /// operator queued some again) rather than at its next poll.
    pub fn wake_dispatchers(&self) {
        self.destinations.wake_all();
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
        self.destinations.apply(next)
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
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
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
            let destinations = self.destinations.clone();
            let pending: u64 = tokio::task::spawn_blocking(move || destinations.pending())
                .await
                .unwrap_or(0);
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop_housekeeping.cancel();
        self.housekeeping.close();
        self.destinations.stop(deadline).await;
        let _ = tokio::time::timeout_at(deadline, self.housekeeping.wait()).await;
        // Sources still waiting for a delivery are told it is pending.
        self.trackers
            .fail_all("the runtime stopped; delivery is pending in the journal");
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
