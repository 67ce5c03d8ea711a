//! The running destinations: a dispatcher per destination, started,
//! restarted and stopped as the configuration changes (the counterpart of
//! `sources/set.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::dispatch::{Dispatch, RetryLimits, dispatch_loop, wall_clock};
use crate::config::DestinationConfig;
use crate::journal::Journal;
use crate::pipeline::Stats;
use crate::pipeline::tracker::Trackers;

/// A destination as it runs: its dispatcher, and what the workers need of
/// it. A reload that changes or removes it stops the dispatcher (attempts
/// under way finish first); its pending deliveries stay in the journal.
struct LiveDestination {
    /// Its settings, to tell whether a reload changed them.
    config: DestinationConfig,
    /// Wakes its dispatcher (new deliveries committed, resend).
    wake: Arc<Notify>,
    /// Stops its dispatcher.
    stop: CancellationToken,
    /// Cancelled once its dispatcher has stopped.
    done: CancellationToken,
}

/// The live destinations and their dispatchers.
pub struct DestinationSet {
    live: ArcSwap<HashMap<String, Arc<LiveDestination>>>,
    /// Serialises changes.
    changing: Mutex<()>,
    dispatchers: TaskTracker,
    /// Stops every dispatcher.
    stop: CancellationToken,
    runtime: tokio::runtime::Handle,
    journal: Arc<dyn Journal>,
    stats: Arc<Stats>,
    trackers: Arc<Trackers>,
}

impl DestinationSet {
    /// An empty set whose dispatchers will run on `runtime`, deliver what
    /// `journal` holds, count in `stats` and settle `trackers`.
    pub fn new(
        runtime: tokio::runtime::Handle,
        journal: Arc<dyn Journal>,
        stats: Arc<Stats>,
        trackers: Arc<Trackers>,
    ) -> DestinationSet {
        DestinationSet {
            live: ArcSwap::from_pointee(HashMap::new()),
            changing: Mutex::new(()),
            dispatchers: TaskTracker::new(),
            stop: CancellationToken::new(),
            runtime,
            journal,
            stats,
            trackers,
        }
    }

    /// Brings the running destinations in line with `next`: a new one
    /// starts; a changed one restarts once the attempts its old settings
    /// have under way are done; a removed one stops, and its pending
    /// deliveries stay in the journal (delivered if it comes back; counted
    /// in the returned lines). Returns a line per change.
    pub fn apply(&self, next: &BTreeMap<String, DestinationConfig>) -> Vec<String> {
        let _one_at_a_time = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        let _rt = self.runtime.enter();
        let current = self.live.load_full();
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
                stop: self.stop.child_token(),
                done: CancellationToken::new(),
            });
            let dispatch = Dispatch {
                name: name.clone(),
                destination: Arc::from(super::build(dc)),
                concurrency: dc.concurrency,
                limits: RetryLimits {
                    max_attempts: dc.max_attempts,
                    max_age: dc.max_age,
                },
                wake: d.wake.clone(),
                clock: wall_clock(),
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
        self.live.store(Arc::new(live));
        changes
    }

    /// Makes every destination look for due deliveries now (after an
    /// operator queued some again) rather than at its next poll.
    pub fn wake_all(&self) {
        for d in self.live.load().values() {
            d.wake.notify_one();
        }
    }

    /// Makes these destinations look for due deliveries now (new ones were
    /// committed).
    pub fn wake<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        let live = self.live.load();
        for name in names {
            if let Some(d) = live.get(name) {
                d.wake.notify_one();
            }
        }
    }

    /// The ordering key of `message` for each of `destinations` that orders
    /// its deliveries by key: (destination, key).
    pub fn ordering_keys(
        &self,
        destinations: &[String],
        message: &weft_hl7::Message,
    ) -> Vec<(String, String)> {
        let live = self.live.load();
        destinations
            .iter()
            .filter_map(|d| {
                let path = live.get(d)?.config.ordering_key.as_ref()?;
                let key = message.element_at(path)?.non_empty()?.into_owned();
                Some((d.clone(), key))
            })
            .collect()
    }

    /// The live destinations' names.
    pub fn names(&self) -> Vec<String> {
        self.live.load().keys().cloned().collect()
    }

    /// Pending deliveries of the live destinations, all together.
    pub fn pending(&self) -> u64 {
        let live = self.live.load();
        self.journal
            .pending_counts()
            .unwrap_or_default()
            .iter()
            .filter(|(d, _)| live.contains_key(d))
            .map(|(_, n)| n)
            .sum()
    }

    /// Logs pending deliveries for destinations the configuration no
    /// longer has: they wait in the journal until it has them again.
    pub async fn report_orphans(&self) {
        let journal = self.journal.clone();
        let Ok(Ok(pending)) = tokio::task::spawn_blocking(move || journal.pending_counts()).await
        else {
            return;
        };
        let live = self.live.load();
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

    /// Stops every dispatcher and waits, until `deadline`, for the attempts
    /// under way to finish.
    pub async fn stop(&self, deadline: tokio::time::Instant) {
        self.stop.cancel();
        self.dispatchers.close();
        let _ = tokio::time::timeout_at(deadline, self.dispatchers.wait()).await;
    }
}
