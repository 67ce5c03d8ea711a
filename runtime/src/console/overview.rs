//! The overview: every source, route, plugin and destination with its
//! counts, the last hour's throughput, what stands out, the alerts firing.
//! Refreshes itself every 10 seconds.

use std::sync::atomic::Ordering;

use maud::html;

use super::view::{self, ago, chart, count};
use super::{Console, Viewer};
use crate::activity::{Subject, activity};
use crate::config::{DestinationKind, SourceKind};
use crate::httpd::Reply;
use crate::journal::{JournalError, now_ms};

/// Deliveries counted per destination and state, at most.
const CAP: u64 = 100_000;

/// A destination with this many deliveries waiting is backing up.
const BACKING_UP: u64 = 100;

/// The minutes the overview sums and charts.
const HOUR: usize = 60;

pub(super) fn page(console: &Console, viewer: &Viewer) -> Result<Reply, JournalError> {
    let now = now_ms();
    let config = console
        .reloader
        .as_ref()
        .map(|r| r.config())
        .unwrap_or_default();
    let journal = console.journal();
    let a = activity();
    let stats = &console.pipeline.stats;
    let n = |x: &std::sync::atomic::AtomicU64| x.load(Ordering::Relaxed);
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    let alerts = console.pipeline.alerts().active();

    let mut received = vec![0; HOUR];
    for name in config.sources.keys() {
        for (t, v) in received
            .iter_mut()
            .zip(a.recent(Subject::Source, name, HOUR, now).good)
        {
            *t += v;
        }
    }
    let mut delivered = vec![0; HOUR];
    let mut destinations = Vec::new();
    for (name, d) in &config.destinations {
        let r = a.recent(Subject::Destination, name, HOUR, now);
        for (t, v) in delivered.iter_mut().zip(&r.good) {
            *t += v;
        }
        let (pending, dead) = journal.backlog(name, CAP)?;
        let kind = match &d.kind {
            DestinationKind::File(_) => "file",
            DestinationKind::Http(_) => "http",
            DestinationKind::Mllp(_) => "mllp",
        };
        destinations.push((name, kind, r, pending, dead));
    }

    let body = html! {
        @if !alerts.is_empty() {
            h2 { "Alerts firing" }
            @for al in &alerts {
                div.alert {
                    strong { (al.alert) } " (" (al.kind) ", " (al.subject) "): " (al.summary)
                    span.muted { " since " (al.since) " UTC" }
                }
            }
        }
        table {
            tr {
                th.n { "Received" } th.n { "Transformed" } th.n { "Rejected" } th.n { "Failed" }
                th.n { "Delivered" } th.n { "Dead" } th.n { "Retries" } th.n { "Queued for plugins" }
            }
            tr {
                td.n { (n(&stats.received)) } td.n { (n(&stats.transformed)) }
                td.n { (n(&stats.rejected)) } td.n { (n(&stats.failed)) }
                td.n { (n(&stats.delivered)) } td.n { (n(&stats.delivery_failed)) }
                td.n { (n(&stats.delivery_retries)) } td.n { (console.pipeline.queued()) }
            }
        }
        p.muted { "Since this weft run started. Refreshes every 10 s." }
        h2 { "Throughput, the last hour (per minute)" }
        (chart(&[("received", "in", received), ("delivered", "out", delivered)]))

        h2 { "Destinations" }
        table {
            tr {
                th { "Destination" } th { "Kind" } th.n { "Delivered (1 h)" } th.n { "Failed attempts (1 h)" }
                th.n { "Pending" } th.n { "Dead" } th { "State" }
            }
            @for (name, kind, r, pending, dead) in &destinations {
                @let down = r.failing_since.is_some();
                @let class = if down || *dead > 0 { "bad" } else if *pending >= BACKING_UP { "warn" } else { "" };
                tr class=(class) {
                    td { (name) }
                    td { (kind) }
                    td.n { (sum(&r.good)) }
                    td.n { (sum(&r.bad)) }
                    td.n { (count(*pending, CAP)) }
                    td.n { (count(*dead, CAP)) }
                    td {
                        @if let Some(since) = r.failing_since {
                            span.bad { "failing since " (ago(since, now)) }
                            @if *dead > 0 || *pending >= BACKING_UP { "; " }
                        }
                        @if *dead > 0 {
                            span.bad { "dead deliveries" }
                            @if *pending >= BACKING_UP { "; " }
                        }
                        @if *pending >= BACKING_UP { "backing up" }
                        @if !down && *dead == 0 && *pending < BACKING_UP { span.ok { "ok" } }
                    }
                }
            }
        }

        h2 { "Sources" }
        table {
            tr { th { "Source" } th { "Kind" } th { "Listens on" } th.n { "Received (1 h)" } th.n { "Refused (1 h)" } th { "Last message" } }
            @for (name, s) in &config.sources {
                @let r = a.recent(Subject::Source, name, HOUR, now);
                @let (kind, listen) = match &s.kind {
                    SourceKind::Mllp(m) => ("mllp", m.listen.to_string()),
                    SourceKind::Http(h) => ("http", h.listen.to_string()),
                };
                @let silent = alerts.iter().any(|al| al.subject == format!("source {name}"));
                tr class=(if silent { "bad" } else { "" }) {
                    td { (name) } td { (kind) } td.mono { (listen) }
                    td.n { (sum(&r.good)) } td.n { (sum(&r.bad)) }
                    td { @match r.last_good { Some(t) => (ago(t, now)), None => span.muted { "none since the start" } } }
                }
            }
        }

        h2 { "Routes" }
        table {
            tr { th { "Route" } th { "Plugins" } th { "Destinations" } th.n { "Transformed (1 h)" } th.n { "Rejected or failed (1 h)" } }
            @for name in &config.route_order {
                @if let Some(route) = config.routes.get(name) {
                    @let r = a.recent(Subject::Route, name, HOUR, now);
                    tr class=(if sum(&r.bad) > 0 { "warn" } else { "" }) {
                        td { (name) }
                        td { (route.plugins.join(" → ")) }
                        td { (route.destinations.join(", ")) }
                        td.n { (sum(&r.good)) }
                        td.n {
                            @if sum(&r.bad) > 0 {
                                a href=(format!("/console/messages?route={name}&status=rejected")) { (sum(&r.bad)) }
                            } @else { "0" }
                        }
                    }
                }
            }
        }

        h2 { "Plugins" }
        table {
            tr { th { "Plugin" } th.n { "Calls (1 h)" } th.n { "Errors (1 h)" } th.n { "p50" } th.n { "p99" } }
            @for name in config.plugins.keys() {
                @let r = a.recent(Subject::Plugin, name, HOUR, now);
                tr class=(if sum(&r.bad) > 0 { "warn" } else { "" }) {
                    td { a href="/console/plugins" { (name) } }
                    td.n { (sum(&r.good) + sum(&r.bad)) }
                    td.n { (sum(&r.bad)) }
                    @match a.latency(name) {
                        Some((p50, p99, _)) => { td.n { (format!("{:.2} ms", p50.as_secs_f64() * 1e3)) } td.n { (format!("{:.2} ms", p99.as_secs_f64() * 1e3)) } }
                        None => { td.n.muted { "-" } td.n.muted { "-" } }
                    }
                }
            }
        }
    };
    let mut reply = view::page(viewer, "Overview", "/console", body);
    reply.headers_mut().insert(
        http::HeaderName::from_static("refresh"),
        http::HeaderValue::from_static("10"),
    );
    Ok(reply)
}
