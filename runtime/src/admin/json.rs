//! The admin API's bodies as types, shared by the server (`reload.rs` and
//! `admin/mod.rs` build them) and its clients (`weft plugins` reads them):
//! one definition, so neither side can name a key the other does not.

use serde::{Deserialize, Serialize};

use crate::journal::query::{DeliveryRow, Detail, Summary};
use crate::journal::time::iso;
use crate::journal::{DeliveryState, MessageStatus};

/// What one reload did (`POST /reload`, and `last_reload` in
/// `GET /plugins`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Plugins now running a new version.
    pub swapped: Vec<Swap>,
    /// Plugins whose new version was refused.
    pub refused: Vec<PluginRefusal>,
    /// The config file changed and was applied.
    pub config_applied: bool,
    /// The config file changed and was refused: why.
    pub config_refused: Option<String>,
    /// Sections that changed but apply only at the next start.
    pub needs_restart: Vec<String>,
    /// What else changed (sources, destinations, routes), a line each.
    pub changes: Vec<String>,
    /// How long the reload took.
    pub elapsed_ms: u64,
    /// When it ran (ISO 8601), in `last_reload` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A plugin that now runs a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    /// The plugin's name.
    pub plugin: String,
    /// The sha256 of the version it replaced (`None`: a new plugin).
    pub from: Option<String>,
    /// The sha256 of the version now live.
    pub to: String,
}

/// A plugin version that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRefusal {
    /// The plugin's name.
    pub plugin: String,
    /// Why (the check or load error).
    pub reason: String,
}

/// The plugin versions a running weft serves (`GET /plugins`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginsStatus {
    /// Each plugin, by name.
    pub plugins: Vec<PluginStatus>,
    /// The config file.
    pub config: ConfigStatus,
    /// Reloads since the start.
    pub reloads: u64,
    /// The last reload, if any.
    pub last_reload: Option<ReloadReport>,
}

/// One plugin's live version and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStatus {
    /// Its name.
    pub name: String,
    /// Its file.
    pub path: String,
    /// The sha256 of the live version.
    pub sha256: String,
    /// The version the live version's manifest declares (`None`: it has
    /// no manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Which code runs: baseline or optimized.
    pub code: String,
    /// Who signed the live version, as the trust list sees it: `signed by
    /// NAME (key ID)`, `unsigned`, or a key the list does not have.
    #[serde(default)]
    pub signature: String,
    /// Where the live version's manifest and the site's grants disagree
    /// (a table it needs and is not granted, a setting it does not read,
    /// a limit below its need).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_warnings: Vec<String>,
    /// Since when this version serves (ISO 8601).
    pub live_since: String,
    /// Versions swapped in since the start.
    pub swaps: u64,
    /// The versions it replaced, newest first.
    pub replaced: Vec<ReplacedVersion>,
    /// The last version refused, if any.
    pub last_refusal: Option<RefusedChange>,
    /// Its candidate version's shadow runs on live traffic, when it has a
    /// candidate (`[plugins.NAME] candidate`); the candidate itself is
    /// listed as the plugin `NAME@candidate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<crate::shadow::Summary>,
}

/// A version that served and was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacedVersion {
    /// Its sha256.
    pub sha256: String,
    /// When it went live (ISO 8601).
    pub live_since: String,
    /// When it was replaced (ISO 8601).
    pub replaced_at: String,
}

/// A refused change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedChange {
    /// When (ISO 8601).
    pub at: String,
    /// The sha256 of what was refused, when it could be read.
    pub sha256: Option<String>,
    /// Why.
    pub reason: String,
}

/// The config file and its last refused change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The file watched (`None`: the embedded default).
    pub path: Option<String>,
    /// Its last refused change, if any.
    pub last_refusal: Option<RefusedChange>,
}

/// `GET /messages`: a page of messages, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageList {
    /// The page.
    pub messages: Vec<MessageSummary>,
    /// Whether the page is full (there may be another).
    pub more: bool,
}

/// What every view of a message starts with: no patient data, no
/// reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageHead {
    /// The message id.
    pub id: String,
    /// When it arrived (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub received_at: String,
    /// The source it came in on.
    pub source: String,
    /// MSH-9.
    #[serde(rename = "type")]
    pub message_type: String,
    /// MSH-10.
    pub control_id: String,
    /// Where it stands.
    pub status: MessageStatus,
}

impl From<&Summary> for MessageHead {
    fn from(s: &Summary) -> MessageHead {
        MessageHead {
            id: s.id.clone(),
            received_at: iso(s.received_at),
            source: s.source.clone(),
            message_type: s.message_type.clone(),
            control_id: s.control_id.clone(),
            status: s.status,
        }
    }
}

/// One message in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    /// Id, arrival, source, type, control id, status.
    #[serde(flatten)]
    pub head: MessageHead,
    /// Its deliveries, counted by state.
    pub deliveries: DeliveryCounts,
}

/// A message's deliveries, counted by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCounts {
    /// Done.
    pub delivered: u64,
    /// Not done yet.
    pub pending: u64,
    /// Given up on.
    pub dead: u64,
}

impl From<&Summary> for MessageSummary {
    fn from(s: &Summary) -> MessageSummary {
        MessageSummary {
            head: MessageHead::from(s),
            deliveries: DeliveryCounts {
                delivered: s.delivered,
                pending: s.pending,
                dead: s.dead,
            },
        }
    }
}

/// `GET /messages/{id}`: one message, its outcome and its deliveries.
/// Bodies are there only when asked for (`?body=true`, role `phi`);
/// reasons (`error`, `last_error`) only for the `phi` role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDetail {
    /// Id, arrival, source, type, control id, status.
    #[serde(flatten)]
    pub head: MessageHead,
    /// Its deliveries, one per output and destination.
    pub deliveries: Vec<DeliveryView>,
    /// The sender's address.
    pub remote: Option<String>,
    /// The subject of the sender's client certificate (mutual TLS).
    pub peer_subject: Option<String>,
    /// Media type of the input.
    pub content_type: String,
    /// MSH-3.
    pub sending_application: String,
    /// MSH-4.
    pub sending_facility: String,
    /// The route it took.
    pub route: String,
    /// Why it was rejected or failed (role `phi`).
    pub error: Option<String>,
    /// `plugin@sha256` of every plugin it went through.
    pub plugin_versions: Vec<String>,
    /// The same, with who signed each version.
    #[serde(default)]
    pub plugins: Vec<crate::journal::PluginUse>,
    /// The input as received (`?body=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Its run through the plugins: 1, then one more per reprocessing.
    #[serde(default = "first_run")]
    pub run: i64,
    /// The earlier runs' outcomes, oldest first.
    #[serde(default)]
    pub earlier: Vec<EarlierView>,
}

fn first_run() -> i64 {
    1
}

/// What an earlier run made of a message, before it was reprocessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierView {
    /// Its number.
    pub run: i64,
    /// Its outcome.
    pub status: MessageStatus,
    /// Why it was rejected or failed (role `phi`).
    pub error: Option<String>,
    /// `plugin@sha256` of every plugin it went through.
    pub plugin_versions: Vec<String>,
    /// When it was replaced (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub replaced_at: String,
}

/// One delivery of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    /// The delivery's id.
    pub id: i64,
    /// The destination.
    pub destination: String,
    /// The output's number among its message's outputs, from 1.
    pub output: i64,
    /// Media type.
    pub content_type: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: i64,
    /// The last failure (role `phi`).
    pub last_error: Option<String>,
    /// When it was delivered (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub delivered_at: Option<String>,
    /// When it is next tried, while pending (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub next_attempt_at: Option<String>,
    /// The output (`?body=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The run of the message that made it.
    #[serde(default = "first_run")]
    pub run: i64,
}

impl MessageDetail {
    /// The view of `d`: bodies only `with_body`; reasons (a plugin's or a
    /// destination's words about the content) only with `reasons`.
    pub fn new(d: &Detail, with_body: bool, reasons: bool) -> MessageDetail {
        let text = |b: &[u8]| with_body.then(|| String::from_utf8_lossy(b).into_owned());
        let delivery = |x: &DeliveryRow| DeliveryView {
            id: x.id,
            destination: x.destination.clone(),
            output: x.n,
            content_type: x.content_type.clone(),
            state: x.state,
            attempts: x.attempts,
            last_error: x.last_error.clone().filter(|_| reasons),
            delivered_at: x.delivered_at.map(iso),
            next_attempt_at: (x.state == DeliveryState::Pending).then(|| iso(x.next_attempt_at)),
            body: text(&x.body),
            run: x.run,
        };
        MessageDetail {
            head: MessageHead::from(&d.summary),
            deliveries: d.deliveries.iter().map(delivery).collect(),
            remote: d.remote.clone(),
            peer_subject: d.peer_subject.clone(),
            content_type: d.content_type.clone(),
            sending_application: d.sender.0.clone(),
            sending_facility: d.sender.1.clone(),
            route: d.route.clone(),
            error: d.error.clone().filter(|_| reasons),
            plugin_versions: d.plugins.iter().map(|p| p.version()).collect(),
            plugins: d.plugins.clone(),
            body: text(&d.body),
            run: d.run,
            earlier: d
                .earlier
                .iter()
                .map(|e| EarlierView {
                    run: e.run,
                    status: e.status,
                    error: e.error.clone().filter(|_| reasons),
                    plugin_versions: e.plugins.iter().map(|p| p.version()).collect(),
                    replaced_at: iso(e.replaced_at),
                })
                .collect(),
        }
    }
}

/// The messages an operator action takes: named, or a search's result
/// confirmed by its count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// These messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    /// The messages this search finds (the parameters of `GET /messages`:
    /// status, source, type, control_id, route, patient, since, until).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<std::collections::BTreeMap<String, String>>,
    /// With `filter`: how many messages the operator was shown it finds.
    /// The action is done only if that is still the count (else 409, with
    /// the count now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<usize>,
}

/// `POST /messages/reprocess`: a [`Selection`].
pub type ReprocessRequest = Selection;

/// What `POST /messages/reprocess` queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReprocessReport {
    /// Messages queued to run through the plugins again.
    pub queued: usize,
    /// Their deliveries not yet made, replaced by the new run's.
    pub superseded: usize,
    /// Ids the journal does not have.
    pub unknown: Vec<String>,
    /// Messages still on their way through the plugins: left alone.
    pub in_progress: Vec<String>,
    /// Weft's own events (alerts), which are never reprocessed.
    #[serde(default)]
    pub own_events: Vec<String>,
}

/// `POST /messages/resend`: `{"ids": [...]}` or `{"dead": true}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendRequest {
    /// Every delivery of these messages, or of those a search finds.
    #[serde(flatten)]
    pub select: Selection,
    /// Every delivery given up on.
    #[serde(default)]
    pub dead: bool,
}

/// What `POST /messages/resend` queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendReport {
    /// Deliveries queued again.
    pub queued: usize,
    /// The ids named that have no outputs to send (unknown, or rejected or
    /// failed); absent for `{"dead": true}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_outputs: Option<Vec<String>>,
}

/// `POST /messages/purge`: `{"before": "2026-11-01"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeRequest {
    /// Settled messages received before this (a date, or a date and time,
    /// UTC) are deleted.
    pub before: String,
}

/// What `POST /messages/purge` deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// Messages deleted.
    pub messages: usize,
    /// Their deliveries.
    pub deliveries: usize,
    /// The cut-off (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub before: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shape_and_a_round_trip() {
        let report = ReloadReport {
            swapped: vec![Swap {
                plugin: "adt".into(),
                from: None,
                to: "ab12".into(),
            }],
            refused: vec![PluginRefusal {
                plugin: "oru".into(),
                reason: "does not instantiate".into(),
            }],
            config_applied: true,
            config_refused: None,
            needs_restart: vec!["runtime".into()],
            changes: vec!["destination d added".into()],
            elapsed_ms: 12,
            at: None,
        };
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"swapped":[{"plugin":"adt","from":null,"to":"ab12"}],"refused":[{"plugin":"oru","reason":"does not instantiate"}],"config_applied":true,"config_refused":null,"needs_restart":["runtime"],"changes":["destination d added"],"elapsed_ms":12}"#
        );
        let status = PluginsStatus {
            plugins: vec![PluginStatus {
                name: "adt".into(),
                path: "adt.wasm".into(),
                sha256: "ab12".into(),
                version: Some("1.2.0".into()),
                grant_warnings: vec![],
                code: "optimized".into(),
                signature: "signed by weft-project (key 0123456789abcdef)".into(),
                live_since: "2026-11-30T12:00:00Z".into(),
                swaps: 1,
                replaced: vec![ReplacedVersion {
                    sha256: "cd34".into(),
                    live_since: "2026-11-30T11:00:00Z".into(),
                    replaced_at: "2026-11-30T12:00:00Z".into(),
                }],
                last_refusal: None,
                candidate: None,
            }],
            config: ConfigStatus {
                path: Some("weft.toml".into()),
                last_refusal: Some(RefusedChange {
                    at: "2026-11-30T12:01:00Z".into(),
                    sha256: None,
                    reason: "weft.toml:3:1: runtime.x: unknown key".into(),
                }),
            },
            reloads: 2,
            last_reload: Some(ReloadReport {
                at: Some("2026-11-30T12:00:00Z".into()),
                ..report
            }),
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["last_reload"]["at"], "2026-11-30T12:00:00Z");
        assert_eq!(json["plugins"][0]["replaced"][0]["sha256"], "cd34");
        let back: PluginsStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
    }

    #[test]
    fn a_message_shows_bodies_and_reasons_only_when_allowed() {
        use crate::journal::query::{DeliveryRow, Detail, Summary};
        let detail = Detail {
            summary: Summary {
                id: "m1".into(),
                received_at: 0,
                source: "adt".into(),
                message_type: "ADT^A01".into(),
                control_id: "C1".into(),
                status: MessageStatus::Transformed,
                delivered: 0,
                pending: 1,
                dead: 0,
            },
            remote: Some("127.0.0.1:5000".into()),
            peer_subject: None,
            content_type: "application/hl7-v2".into(),
            sender: ("LAB".into(), "HOSP".into()),
            route: "adt".into(),
            error: Some("PID-7: not a date".into()),
            plugins: vec![crate::journal::PluginUse {
                plugin: "p".into(),
                sha256: "ab12".into(),
                declared_version: Some("1.2.0".into()),
                signer: Some("site-team".into()),
                key: Some("0123456789abcdef".into()),
            }],
            body: b"MSH|".to_vec(),
            deliveries: vec![DeliveryRow {
                id: 7,
                destination: "fhir".into(),
                n: 1,
                content_type: "application/fhir+json".into(),
                state: DeliveryState::Pending,
                attempts: 2,
                last_error: Some("503".into()),
                delivered_at: None,
                next_attempt_at: 60_000,
                body: b"{}".to_vec(),
                run: 1,
            }],
            run: 1,
            earlier: Vec::new(),
        };
        let read = serde_json::to_string(&MessageDetail::new(&detail, false, false)).unwrap();
        assert_eq!(
            read,
            r#"{"id":"m1","received_at":"1970-01-01 00:00:00","source":"adt","type":"ADT^A01","control_id":"C1","status":"transformed","deliveries":[{"id":7,"destination":"fhir","output":1,"content_type":"application/fhir+json","state":"pending","attempts":2,"last_error":null,"delivered_at":null,"next_attempt_at":"1970-01-01 00:01:00","run":1}],"remote":"127.0.0.1:5000","peer_subject":null,"content_type":"application/hl7-v2","sending_application":"LAB","sending_facility":"HOSP","route":"adt","error":null,"plugin_versions":["p@ab12"],"plugins":[{"plugin":"p","sha256":"ab12","version":"1.2.0","signer":"site-team","key":"0123456789abcdef"}],"run":1,"earlier":[]}"#
        );
        let phi = MessageDetail::new(&detail, true, true);
        assert_eq!(phi.body.as_deref(), Some("MSH|"));
        assert_eq!(phi.deliveries[0].body.as_deref(), Some("{}"));
        assert_eq!(phi.error.as_deref(), Some("PID-7: not a date"));
        let back: MessageDetail =
            serde_json::from_str(&serde_json::to_string(&phi).unwrap()).unwrap();
        assert_eq!(back, phi);
        let list = serde_json::to_value(MessageSummary::from(&detail.summary)).unwrap();
        assert_eq!(list["deliveries"]["pending"], 1);
        assert_eq!(list["type"], "ADT^A01");
    }
}
