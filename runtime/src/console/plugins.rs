//! The plugins: each one's live version, signer, since when, code tier,
//! reloads and last refusal, and its calls, errors and call times.

use maud::html;

use super::view;
use super::{Console, Viewer};
use crate::activity::{Subject, activity};
use crate::httpd::Reply;
use crate::journal::{JournalError, now_ms};

/// The minutes the error and call counts cover.
const DAY: usize = 24 * 60;

pub(super) fn page(console: &Console, viewer: &Viewer) -> Result<Reply, JournalError> {
    let now = now_ms();
    let a = activity();
    let Some(reloader) = &console.reloader else {
        return Ok(view::page(
            viewer,
            "Plugins",
            "/console/plugins",
            html! { p.muted { "No plugin registry." } },
        ));
    };
    let status = reloader.status();
    let ms = |d: std::time::Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let body = html! {
        table id="plugins" {
            tr {
                th { "Plugin" } th { "Live version (sha256)" } th { "Signed" } th { "Since (UTC)" } th { "Code" }
                th.n { "Swaps" } th.n { "Calls (24 h)" } th.n { "Errors (24 h)" } th.n { "p50" } th.n { "p99" }
            }
            @for p in &status.plugins {
                @let r = a.recent(Subject::Plugin, &p.name, DAY, now);
                @let (good, bad) = (r.good.iter().sum::<u64>(), r.bad.iter().sum::<u64>());
                tr class=(if p.last_refusal.is_some() || bad > 0 { "warn" } else { "" }) {
                    td { (p.name) @if let Some(v) = &p.version { br; span.muted { "version " (v) } } }
                    td.mono { (p.sha256) }
                    td { (p.signature) }
                    td { (p.live_since) }
                    td { (p.code) }
                    td.n { (p.swaps) }
                    td.n { (good + bad) }
                    td.n { (bad) }
                    @match a.latency(&p.name) {
                        Some((p50, p99, _)) => { td.n { (ms(p50)) } td.n { (ms(p99)) } }
                        None => { td.n.muted { "-" } td.n.muted { "-" } }
                    }
                }
            }
        }
        p.hint { "Call times: the last 1,024 calls of each plugin. Errors: rejected, failed or over a limit." }
        @for p in &status.plugins {
            @if !p.replaced.is_empty() || p.last_refusal.is_some() || !p.grant_warnings.is_empty() {
                h2 { (p.name) }
                @if let Some(r) = &p.last_refusal {
                    p.problem { "Last refused version (" (r.at) "): " (r.reason) }
                }
                @for w in &p.grant_warnings { p.alert { (w) } }
                @if !p.replaced.is_empty() {
                    table {
                        tr { th { "Replaced version (sha256)" } th { "Live from" } th { "Replaced at" } }
                        @for v in &p.replaced {
                            tr { td.mono { (v.sha256) } td { (v.live_since) } td { (v.replaced_at) } }
                        }
                    }
                }
            }
        }
        h2 { "Configuration" }
        p { (status.reloads) " reloads since the start."
            @if let Some(last) = &status.last_reload {
                " The last at " (last.at.clone().unwrap_or_default()) ": "
                (last.swapped.len()) " swapped, " (last.refused.len()) " refused"
                @if last.config_applied { ", config applied" }
                "."
            }
        }
        @if let Some(r) = &status.config.last_refusal {
            p.problem { "Last refused configuration (" (r.at) "): " (r.reason) }
        }
    };
    Ok(view::page(viewer, "Plugins", "/console/plugins", body))
}
