//! The runtime's metrics, served as OpenMetrics text at `GET /metrics` on
//! the admin listener (`prometheus-client`).
//!
//! One set per process, like the log: the `weft` binary runs one runtime,
//! and every part of it (sources, workers, dispatchers, the reloader, the
//! TLS listeners, the admin API's door) counts into [`metrics()`]. Labels
//! are names from the configuration (source, route, plugin, destination,
//! listener) or words from a fixed list (an outcome, a limit, a reason):
//! never a value from a message.
//!
//! | Metric | Labels | What |
//! |---|---|---|
//! | `weft_source_received_total` | source | messages recorded |
//! | `weft_source_refused_total` | source, reason | messages answered with a refusal, by why |
//! | `weft_source_answer_seconds` | source | from a message read to its answer ready (the ACK's latency) |
//! | `weft_route_messages_total` | route, status | outcomes: transformed, rejected, failed |
//! | `weft_plugin_calls_total` | route, plugin, outcome | a plugin's work on one message: transformed, rejected, failed, limit |
//! | `weft_plugin_limit_hits_total` | route, plugin, limit | which limit stopped it |
//! | `weft_plugin_call_seconds` | route, plugin | its time on one message |
//! | `weft_destination_delivered_total` | destination | deliveries done |
//! | `weft_destination_retries_total` | destination | failed attempts to be tried again |
//! | `weft_destination_dead_total` | destination | deliveries given up on |
//! | `weft_destination_pending` | destination | deliveries waiting (read from the journal at each scrape) |
//! | `weft_destination_attempt_seconds` | destination | one attempt, sent to answered |
//! | `weft_journal_bytes` | | the journal's size on disk (at each scrape) |
//! | `weft_journal_commit_seconds` | | a message's wait for its commit at intake |
//! | `weft_reloads_total` | result | plugin versions swapped in or refused, configs applied |
//! | `weft_tls_handshake_failures_total` | listener | failed TLS handshakes |
//! | `weft_admin_refusals_total` | reason | admin requests refused at the door |

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A source.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// Its name.
    pub source: String,
}

/// A source and why it refused a message.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The source.
    pub source: String,
    /// Why, one word of a fixed list.
    pub reason: &'static str,
}

/// A route and a status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route.
    pub route: String,
    /// `transformed`, `rejected` or `failed`.
    pub status: &'static str,
}

/// A plugin in a route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// The route.
    pub route: String,
    /// The plugin.
    pub plugin: String,
}

/// A plugin in a route and a word (an outcome or a limit).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginOutcome {
    /// The route.
    pub route: String,
    /// The plugin.
    pub plugin: String,
    /// `transformed`, `rejected`, `failed` or `limit`.
    pub outcome: &'static str,
}

/// A plugin in a route and the limit that stopped it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLimit {
    /// The route.
    pub route: String,
    /// The plugin.
    pub plugin: String,
    /// `deadline`, `memory`, `fuel`, `stack`, `output_size`, `outputs`,
    /// `headers` or `host_copy`.
    pub limit: &'static str,
}

/// A destination.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabel {
    /// Its name.
    pub destination: String,
}

/// A listener (`source NAME`, `admin API`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    /// Its name.
    pub listener: String,
}

/// One word of a fixed list.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Word {
    /// What happened.
    pub result: &'static str,
}

/// One word of a fixed list: why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// Why.
    pub reason: &'static str,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// A family of timings.
fn timings<L: Clone + std::hash::Hash + Eq>() -> Timings<L> {
    Family::new_with_constructor(seconds)
}

/// Time buckets from 100 µs to about 105 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

/// Every metric the runtime keeps; each is recorded through a method
/// below.
pub struct Metrics {
    registry: Registry,
    /// Off with `WEFT_METRICS=off` (to measure what metrics cost): nothing
    /// is recorded, and `GET /metrics` shows only the declared zeros.
    enabled: bool,
    source_received: Family<SourceLabel, Counter>,
    source_refused: Family<RefusalLabels, Counter>,
    source_answer: Timings<SourceLabel>,
    route_messages: Family<RouteLabels, Counter>,
    plugin_calls: Family<PluginOutcome, Counter>,
    plugin_limit_hits: Family<PluginLimit, Counter>,
    plugin_call: Timings<PluginLabels>,
    delivered: Family<DestinationLabel, Counter>,
    retries: Family<DestinationLabel, Counter>,
    dead: Family<DestinationLabel, Counter>,
    pending: Family<DestinationLabel, Gauge>,
    attempt: Timings<DestinationLabel>,
    journal_bytes: Gauge,
    journal_commit: Histogram,
    reloads: Family<Word, Counter>,
    tls_handshake_failures: Family<ListenerLabel, Counter>,
    admin_refusals: Family<Reason, Counter>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("weft"),
            enabled: std::env::var("WEFT_METRICS").map_or(true, |v| v != "off"),
            source_received: Family::default(),
            source_refused: Family::default(),
            source_answer: timings(),
            route_messages: Family::default(),
            plugin_calls: Family::default(),
            plugin_limit_hits: Family::default(),
            plugin_call: timings(),
            delivered: Family::default(),
            retries: Family::default(),
            dead: Family::default(),
            pending: Family::default(),
            attempt: timings(),
            journal_bytes: Gauge::default(),
            journal_commit: seconds(),
            reloads: Family::default(),
            tls_handshake_failures: Family::default(),
            admin_refusals: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "source_received",
            "Messages recorded, per source",
            m.source_received.clone(),
        );
        r.register(
            "source_refused",
            "Messages a source answered with a refusal, per reason",
            m.source_refused.clone(),
        );
        r.register(
            "source_answer_seconds",
            "From a message read to its answer ready (the ACK's latency)",
            m.source_answer.clone(),
        );
        r.register(
            "route_messages",
            "Messages through a route, per outcome",
            m.route_messages.clone(),
        );
        r.register(
            "plugin_calls",
            "A plugin's work on one message, per outcome",
            m.plugin_calls.clone(),
        );
        r.register(
            "plugin_limit_hits",
            "Messages a plugin's limit stopped, per limit",
            m.plugin_limit_hits.clone(),
        );
        r.register(
            "plugin_call_seconds",
            "A plugin's time on one message",
            m.plugin_call.clone(),
        );
        r.register(
            "destination_delivered",
            "Deliveries done",
            m.delivered.clone(),
        );
        r.register(
            "destination_retries",
            "Failed delivery attempts that will be tried again",
            m.retries.clone(),
        );
        r.register(
            "destination_dead",
            "Deliveries given up on (dead letters)",
            m.dead.clone(),
        );
        r.register(
            "destination_pending",
            "Deliveries waiting",
            m.pending.clone(),
        );
        r.register(
            "destination_attempt_seconds",
            "One delivery attempt, sent to answered",
            m.attempt.clone(),
        );
        r.register(
            "journal_bytes",
            "The journal's size on disk",
            m.journal_bytes.clone(),
        );
        r.register(
            "journal_commit_seconds",
            "A message's wait for its commit at intake",
            m.journal_commit.clone(),
        );
        r.register(
            "reloads",
            "Plugin versions swapped in or refused, and configurations applied",
            m.reloads.clone(),
        );
        r.register(
            "tls_handshake_failures",
            "Failed TLS handshakes, per listener",
            m.tls_handshake_failures.clone(),
        );
        r.register(
            "admin_refusals",
            "Admin API requests refused at the door, per reason",
            m.admin_refusals.clone(),
        );
        m
    }

    /// The OpenMetrics text of every metric ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Makes the series of every source, route, plugin and destination of
    /// `config` (at zero), so that each exists from the start: a query for
    /// a source that has sent nothing (`increase(...[30m]) == 0`, the EHR
    /// that stopped sending) needs the series to be there.
    pub fn declare(&self, config: &crate::config::Config) {
        for source in config.sources.keys() {
            let source = SourceLabel {
                source: source.clone(),
            };
            let _ = self.source_received.get_or_create(&source);
            let _ = self.source_answer.get_or_create(&source);
        }
        for (name, route) in &config.routes {
            for status in ["transformed", "rejected", "failed"] {
                let _ = self.route_messages.get_or_create(&RouteLabels {
                    route: name.clone(),
                    status,
                });
            }
            for plugin in &route.plugins {
                let _ = self.plugin_call.get_or_create(&PluginLabels {
                    route: name.clone(),
                    plugin: plugin.clone(),
                });
                for outcome in ["transformed", "rejected", "failed", "limit"] {
                    let _ = self.plugin_calls.get_or_create(&PluginOutcome {
                        route: name.clone(),
                        plugin: plugin.clone(),
                        outcome,
                    });
                }
            }
        }
        for destination in config.destinations.keys() {
            let d = DestinationLabel {
                destination: destination.clone(),
            };
            for family in [&self.delivered, &self.retries, &self.dead] {
                let _ = family.get_or_create(&d);
            }
            let _ = self.pending.get_or_create(&d);
            let _ = self.attempt.get_or_create(&d);
        }
    }

    /// A message `source` recorded, after `commit` waiting for its commit.
    pub fn received(&self, source: &str, commit: Duration) {
        if !self.enabled {
            return;
        }
        self.journal_commit.observe(commit.as_secs_f64());
        self.source_received
            .get_or_create(&SourceLabel {
                source: source.to_string(),
            })
            .inc();
    }

    /// A message `source` refused, for `reason` (one word).
    pub fn refused(&self, source: &str, reason: &'static str) {
        if !self.enabled {
            return;
        }
        self.source_refused
            .get_or_create(&RefusalLabels {
                source: source.to_string(),
                reason,
            })
            .inc();
    }

    /// A message `source` answered, `took` after reading it.
    pub fn answered(&self, source: &str, took: Duration) {
        if !self.enabled {
            return;
        }
        self.source_answer
            .get_or_create(&SourceLabel {
                source: source.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// A message through `route` came to `status` (`transformed`,
    /// `rejected`, `failed`).
    pub fn routed(&self, route: &str, status: &'static str) {
        if !self.enabled {
            return;
        }
        self.route_messages
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                status,
            })
            .inc();
    }

    /// One plugin's work on one message.
    pub fn plugin(
        &self,
        route: &str,
        plugin: &str,
        took: Duration,
        outcome: &'static str,
        limit: Option<&'static str>,
    ) {
        if !self.enabled {
            return;
        }
        let labels = PluginLabels {
            route: route.to_string(),
            plugin: plugin.to_string(),
        };
        self.plugin_call
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        let PluginLabels { route, plugin } = labels;
        if let Some(limit) = limit {
            self.plugin_limit_hits
                .get_or_create(&PluginLimit {
                    route: route.clone(),
                    plugin: plugin.clone(),
                    limit,
                })
                .inc();
        }
        self.plugin_calls
            .get_or_create(&PluginOutcome {
                route,
                plugin,
                outcome,
            })
            .inc();
    }

    /// One delivery attempt to `destination`, `took` from sending to its
    /// answer.
    pub fn attempted(&self, destination: &str, took: Duration) {
        if !self.enabled {
            return;
        }
        self.attempt
            .get_or_create(&DestinationLabel {
                destination: destination.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// A delivery to `destination` done.
    pub fn delivered(&self, destination: &str) {
        self.count(&self.delivered, destination);
    }

    /// A failed attempt to `destination`, to be tried again.
    pub fn retried(&self, destination: &str) {
        self.count(&self.retries, destination);
    }

    /// A delivery to `destination` given up on.
    pub fn dead(&self, destination: &str) {
        self.count(&self.dead, destination);
    }

    fn count(&self, family: &Family<DestinationLabel, Counter>, destination: &str) {
        if !self.enabled {
            return;
        }
        family
            .get_or_create(&DestinationLabel {
                destination: destination.to_string(),
            })
            .inc();
    }

    /// `n` plugin versions or configs came to `result` in a reload.
    pub fn reloaded(&self, result: &'static str, n: usize) {
        if !self.enabled || n == 0 {
            return;
        }
        self.reloads
            .get_or_create(&Word { result })
            .inc_by(n as u64);
    }

    /// A failed TLS handshake on `listener`.
    pub fn handshake_failed(&self, listener: &str) {
        if !self.enabled {
            return;
        }
        self.tls_handshake_failures
            .get_or_create(&ListenerLabel {
                listener: listener.to_string(),
            })
            .inc();
    }

    /// An admin request refused at the door, for `reason`.
    pub fn admin_refused(&self, reason: &'static str) {
        if !self.enabled {
            return;
        }
        self.admin_refusals.get_or_create(&Reason { reason }).inc();
    }

    /// What is read at each scrape: the pending deliveries of each live
    /// destination (one missing from `pending` has none), and the
    /// journal's size; `None` when it could not be read (the last value
    /// stays).
    pub fn scraped(
        &self,
        destinations: &[String],
        pending: Option<&[(String, u64)]>,
        journal_bytes: Option<u64>,
    ) {
        if let Some(bytes) = journal_bytes {
            self.journal_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let Some(pending) = pending else { return };
        for d in destinations {
            let n = pending
                .iter()
                .find(|(name, _)| name == d)
                .map_or(0, |p| p.1);
            self.pending
                .get_or_create(&DestinationLabel {
                    destination: d.clone(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}
