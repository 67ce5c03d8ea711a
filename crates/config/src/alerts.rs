//! `[alerts.NAME]`: conditions worth waking someone for, and who to tell.

use std::time::Duration;

use toml::de::DeTable;

use super::check::Checker;
use super::keys::{Key, any, only};

/// The keys of `[alerts.NAME]`, and which kinds take them.
pub(super) const KEYS: &[Key] = &[
    any("kind"),
    only(&["silence"], "source"),
    only(&["dead", "pending", "failing"], "destination"),
    only(&["rejects"], "route"),
    only(&["pending", "rejects"], "over"),
    only(&["silence", "pending", "failing"], "for_s"),
    only(&["rejects"], "within_s"),
    any("notify"),
];

/// The kinds of alert, for messages.
pub const ALERT_KINDS: &str = "silence, dead, pending, failing, rejects";

/// The longest `for_s` or `within_s`: a week.
pub const MAX_ALERT_WINDOW_S: u64 = 7 * 86_400;

/// The longest `within_s` of a `rejects` alert: a day (the runtime
/// counts rejects per minute for the last 24 hours).
pub const MAX_REJECTS_WINDOW_S: u64 = 86_400;

/// What an alert watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertKind {
    /// No message from `source` for `for_` (the sender stopped sending).
    Silence {
        /// The source's name.
        source: String,
    },
    /// Deliveries given up on (dead) waiting at a destination.
    Dead {
        /// The destination; `None`: each destination on its own.
        destination: Option<String>,
    },
    /// More than `over` deliveries pending at a destination for `for_`.
    Pending {
        /// The destination; `None`: each destination on its own.
        destination: Option<String>,
        /// The backlog that is too much.
        over: u64,
    },
    /// Every attempt to a destination failing for `for_` (down, or
    /// refusing everything).
    Failing {
        /// The destination; `None`: each destination on its own.
        destination: Option<String>,
    },
    /// More than `over` messages rejected or failed by a route's plugins
    /// within `within`.
    Rejects {
        /// The route; `None`: each route on its own.
        route: Option<String>,
        /// The count that is too many.
        over: u64,
        /// The window they are counted in.
        within: Duration,
    },
}

impl AlertKind {
    /// Its name in `weft.toml`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertKind::Silence { .. } => "silence",
            AlertKind::Dead { .. } => "dead",
            AlertKind::Pending { .. } => "pending",
            AlertKind::Failing { .. } => "failing",
            AlertKind::Rejects { .. } => "rejects",
        }
    }
}

/// One alert (`[alerts.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    /// Its name.
    pub name: String,
    /// What it watches.
    pub kind: AlertKind,
    /// How long the condition must hold before the alert fires (silence:
    /// how long without a message; failing: how long failing).
    pub for_: Duration,
    /// The destinations its events are delivered to (JSON: a webhook
    /// through an `http` destination, or any other kind); none: the log
    /// and the console only.
    pub notify: Vec<String>,
}

/// References from alerts to other sections, checked once the whole file
/// is read: (offset, key, section, name).
pub(super) type AlertRefs = Vec<(usize, String, &'static str, String)>;

impl Checker<'_> {
    pub(super) fn alert(
        &mut self,
        name: &str,
        at: usize,
        t: &DeTable<'_>,
        key: &str,
        refs: &mut AlertRefs,
    ) -> Option<AlertConfig> {
        let (kind, kind_at) = self.kind(at, t, key, ALERT_KINDS)?;
        if !matches!(
            kind.as_str(),
            "silence" | "dead" | "pending" | "failing" | "rejects"
        ) {
            self.error(
                kind_at,
                &format!("{key}.kind"),
                format!("unknown alert kind {kind:?} (expected one of: {ALERT_KINDS})"),
            );
            return None;
        }
        let mut subject = None;
        let mut over = None;
        let mut for_ = None;
        let mut within = Duration::from_secs(300);
        let mut notify = Vec::new();
        for entry in t.iter() {
            let (k, v) = entry;
            let kname = k.get_ref().as_ref();
            let ekey = format!("{key}.{kname}");
            if !self.known(KEYS, &kind, k, &ekey) {
                continue;
            }
            match kname {
                "kind" => {}
                "source" | "destination" | "route" => {
                    if let Some(s) = self.string(entry, &ekey) {
                        let section = match kname {
                            "source" => "sources",
                            "destination" => "destinations",
                            _ => "routes",
                        };
                        refs.push((v.span().start, ekey.clone(), section, s.clone()));
                        subject = Some(s);
                    }
                }
                "over" => over = self.integer(v, &ekey, 0, u64::from(u32::MAX)),
                "for_s" => {
                    for_ = self
                        .integer(v, &ekey, 1, MAX_ALERT_WINDOW_S)
                        .map(Duration::from_secs);
                }
                "within_s" => {
                    if let Some(n) = self.integer(v, &ekey, 60, MAX_REJECTS_WINDOW_S) {
                        within = Duration::from_secs(n);
                    }
                }
                "notify" => {
                    for (offset, d) in self.string_list(v, &ekey) {
                        refs.push((offset, ekey.clone(), "destinations", d.clone()));
                        notify.push(d);
                    }
                }
                _ => {} // not in the key table: reported by `known` above
            }
        }
        let mut missing = |what: &str| {
            self.error(at, &format!("{key}.{what}"), "required key is missing");
        };
        let kind = match kind.as_str() {
            "silence" => {
                let Some(source) = subject else {
                    missing("source");
                    return None;
                };
                if for_.is_none() {
                    missing("for_s");
                    return None;
                }
                AlertKind::Silence { source }
            }
            "dead" => AlertKind::Dead {
                destination: subject,
            },
            "pending" => {
                let Some(over) = over else {
                    missing("over");
                    return None;
                };
                AlertKind::Pending {
                    destination: subject,
                    over,
                }
            }
            "failing" => {
                if for_.is_none() {
                    missing("for_s");
                    return None;
                }
                AlertKind::Failing {
                    destination: subject,
                }
            }
            _ => {
                let Some(over) = over else {
                    missing("over");
                    return None;
                };
                AlertKind::Rejects {
                    route: subject,
                    over,
                    within,
                }
            }
        };
        Some(AlertConfig {
            name: name.to_string(),
            kind,
            for_: for_.unwrap_or_default(),
            notify,
        })
    }
}
