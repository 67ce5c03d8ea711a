//! Alerts: the conditions of `[alerts.NAME]`, evaluated every
//! [`INTERVAL`] from the journal's backlog and the recent activity
//! ([`crate::activity`]). Each fires once when its condition starts and
//! once when it clears, never in between. An event is logged (warn when
//! firing), kept for `GET /alerts` and the console, and, when the alert
//! names `notify` destinations, recorded in the journal as a message from
//! the built-in source [`SOURCE`] with one JSON delivery per destination:
//! the delivery machinery retries it like any other output, so an event is
//! not lost while a webhook's receiver is down.
//!
//! An alert without a `destination` (or `route`) watches each one on its
//! own: `dead` with no destination fires for `lab` and, separately, for
//! `fhir`. Silence is counted from the last message, or from the start of
//! `weft run` when none came since.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::activity::{Activity, Subject, activity};
use crate::config::{AlertConfig, AlertKind, Config};
use crate::journal::time::iso;
use crate::journal::{self, MessageStatus, NewDelivery, NewMessage, Outcome, now_ms};
use crate::pipeline::Pipeline;

/// The source alert events are recorded under (not a name a config can
/// give a source).
pub const SOURCE: &str = "weft:alerts";

/// How often the conditions are evaluated.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// The events kept for the console, newest last.
const HISTORY: usize = 200;

/// Deliveries counted per destination and state at each evaluation, at
/// most (a deeper backlog reads as this many).
const BACKLOG_CAP: u64 = 100_000;

/// Whether an event starts or ends an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The condition began (and held as long as the alert asks).
    Firing,
    /// The condition ended.
    Cleared,
}

/// One alert starting or ending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The alert's name in `weft.toml`.
    pub alert: String,
    /// Its kind (`silence`, `dead`, `pending`, `failing`, `rejects`).
    pub kind: &'static str,
    /// What it is about: `source NAME`, `destination NAME` or `route NAME`.
    pub subject: String,
    /// Firing or cleared.
    pub state: State,
    /// What was seen, for people; names and counts, never message content.
    pub summary: String,
    /// When the condition began (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub since: String,
    /// When this event happened (same form).
    pub at: String,
}

/// An alert firing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Active {
    /// The alert's name.
    pub alert: String,
    /// Its kind.
    pub kind: &'static str,
    /// What it is about.
    pub subject: String,
    /// What was seen when it fired.
    pub summary: String,
    /// Since when (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub since: String,
}

/// One (alert, subject) pair's state.
#[derive(Debug, Default)]
struct Instance {
    /// Since when the condition has held (ms).
    holding_since: Option<i64>,
    /// The summary it fired with, while firing.
    fired: Option<String>,
}

/// What the alerts read at one evaluation besides the activity.
pub trait Backlog {
    /// Pending and dead deliveries at `destination`; `None` when the
    /// journal could not say (the alert keeps its state).
    fn backlog(&self, destination: &str) -> Option<(u64, u64)>;
}

/// The configured alerts and their states.
pub struct Alerts {
    config: Mutex<Setup>,
    instances: Mutex<BTreeMap<(String, String), Instance>>,
    history: Mutex<VecDeque<Event>>,
    /// When watching began (ms): silence is counted from here when no
    /// message came since.
    started: i64,
}

#[derive(Debug, Default, Clone)]
struct Setup {
    alerts: BTreeMap<String, AlertConfig>,
    destinations: Vec<String>,
    routes: Vec<String>,
}

impl Setup {
    fn of(config: &Config) -> Setup {
        Setup {
            alerts: config.alerts.clone(),
            destinations: config.destinations.keys().cloned().collect(),
            routes: config.routes.keys().cloned().collect(),
        }
    }
}

/// What one alert's condition is for one subject at one evaluation.
struct Reading {
    /// What it is about.
    subject: String,
    /// Whether the condition holds.
    holds: bool,
    /// How long it must hold before the alert fires.
    hold_for: Duration,
    /// Since when it has held, if the reading itself knows (silence,
    /// failing); else since the first evaluation that saw it.
    since: Option<i64>,
    /// What is seen (when it holds) or how it ended (when it does not).
    summary: String,
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        format!("{s} s")
    } else {
        format!("{} min", s / 60)
    }
}

impl Alerts {
    /// The alerts of `config`, none firing, watching from now.
    pub fn new(config: &Config) -> Alerts {
        Alerts {
            config: Mutex::new(Setup::of(config)),
            instances: Mutex::new(BTreeMap::new()),
            history: Mutex::new(VecDeque::new()),
            started: now_ms(),
        }
    }

    /// Takes a reloaded configuration: an alert whose settings did not
    /// change keeps its state; a changed or removed one starts over (a
    /// removed alert that was firing is not cleared by an event: it is
    /// gone).
    pub fn apply(&self, config: &Config) {
        let next = Setup::of(config);
        let mut setup = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(alert, _), _| setup.alerts.get(alert) == next.alerts.get(alert));
        *setup = next;
    }

    /// The alerts firing now.
    pub fn active(&self) -> Vec<Active> {
        let setup = self
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|((alert, subject), i)| {
                let summary = i.fired.clone()?;
                Some(Active {
                    alert: alert.clone(),
                    kind: setup.alerts.get(alert).map_or("", |a| a.kind.as_str()),
                    subject: subject.clone(),
                    summary,
                    since: iso(i.holding_since.unwrap_or(self.started)),
                })
            })
            .collect()
    }

    /// The last events, oldest first.
    pub fn history(&self) -> Vec<Event> {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The configured alerts, by name.
    pub fn configured(&self) -> BTreeMap<String, AlertConfig> {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .alerts
            .clone()
    }

    /// Evaluates every alert at `now` (ms): the events of those that start
    /// or end, each with the destinations to notify.
    pub fn evaluate(
        &self,
        now: i64,
        backlog: &dyn Backlog,
        activity: &Activity,
    ) -> Vec<(Event, Vec<String>)> {
        let setup = self
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut events = Vec::new();
        let mut instances = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (name, alert) in &setup.alerts {
            for reading in self.read(alert, &setup, now, backlog, activity) {
                let Some(reading) = reading else { continue };
                let key = (name.clone(), reading.subject.clone());
                let instance = instances.entry(key).or_default();
                let event = |state, summary: String, since: i64| Event {
                    alert: name.clone(),
                    kind: alert.kind.as_str(),
                    subject: reading.subject.clone(),
                    state,
                    summary,
                    since: iso(since),
                    at: iso(now),
                };
                if reading.holds {
                    let since = *instance
                        .holding_since
                        .get_or_insert(reading.since.unwrap_or(now));
                    let held = Duration::from_millis((now - since).max(0) as u64);
                    if instance.fired.is_none() && held >= reading.hold_for {
                        instance.fired = Some(reading.summary.clone());
                        events.push((
                            event(State::Firing, reading.summary.clone(), since),
                            alert.notify.clone(),
                        ));
                    }
                } else {
                    let since = instance.holding_since.take();
                    if instance.fired.take().is_some() {
                        events.push((
                            event(
                                State::Cleared,
                                reading.summary.clone(),
                                since.unwrap_or(now),
                            ),
                            alert.notify.clone(),
                        ));
                    }
                }
            }
        }
        drop(instances);
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        for (e, _) in &events {
            history.push_back(e.clone());
            if history.len() > HISTORY {
                history.pop_front();
            }
        }
        events
    }

    /// One alert's readings, one per subject it watches; `None` where the
    /// journal could not say.
    fn read(
        &self,
        alert: &AlertConfig,
        setup: &Setup,
        now: i64,
        backlog: &dyn Backlog,
        activity: &Activity,
    ) -> Vec<Option<Reading>> {
        let each = |one: &Option<String>, all: &[String]| -> Vec<String> {
            match one {
                Some(n) => vec![n.clone()],
                None => all.to_vec(),
            }
        };
        let for_ = alert.for_;
        match &alert.kind {
            AlertKind::Silence { source } => {
                let last = activity
                    .recent(Subject::Source, source, 0, now)
                    .last_good
                    .unwrap_or(self.started)
                    .max(self.started);
                let quiet = Duration::from_millis((now - last).max(0) as u64);
                vec![Some(Reading {
                    subject: format!("source {source}"),
                    holds: quiet >= for_,
                    hold_for: Duration::ZERO,
                    since: Some(last),
                    summary: if quiet >= for_ {
                        format!("no message from source {source} for {}", minutes(quiet))
                    } else {
                        format!("source {source} is sending again")
                    },
                })]
            }
            AlertKind::Dead { destination } => each(destination, &setup.destinations)
                .into_iter()
                .map(|d| {
                    let (_, dead) = backlog.backlog(&d)?;
                    Some(Reading {
                        subject: format!("destination {d}"),
                        holds: dead > 0,
                        hold_for: for_,
                        since: None,
                        summary: if dead > 0 {
                            format!("{dead} deliveries to destination {d} given up on (dead)")
                        } else {
                            format!("no dead deliveries left at destination {d}")
                        },
                    })
                })
                .collect(),
            AlertKind::Pending { destination, over } => each(destination, &setup.destinations)
                .into_iter()
                .map(|d| {
                    let (pending, _) = backlog.backlog(&d)?;
                    Some(Reading {
                        subject: format!("destination {d}"),
                        holds: pending > *over,
                        hold_for: for_,
                        since: None,
                        summary: if pending > *over {
                            format!(
                                "{pending} deliveries pending at destination {d} (more than {over})"
                            )
                        } else {
                            format!("{pending} deliveries pending at destination {d}")
                        },
                    })
                })
                .collect(),
            AlertKind::Failing { destination } => each(destination, &setup.destinations)
                .into_iter()
                .map(|d| {
                    let since = activity
                        .recent(Subject::Destination, &d, 0, now)
                        .failing_since;
                    let failing = since
                        .map(|t| Duration::from_millis((now - t).max(0) as u64))
                        .filter(|f| *f >= for_);
                    Some(Reading {
                        subject: format!("destination {d}"),
                        holds: failing.is_some(),
                        hold_for: Duration::ZERO,
                        since,
                        summary: match failing {
                            Some(f) => format!(
                                "every attempt to destination {d} has failed for {}",
                                minutes(f)
                            ),
                            None => format!("destination {d} is delivering again"),
                        },
                    })
                })
                .collect(),
            AlertKind::Rejects {
                route,
                over,
                within,
            } => each(route, &setup.routes)
                .into_iter()
                .map(|r| {
                    let n = within.as_secs().div_ceil(60) as usize;
                    let bad: u64 = activity.recent(Subject::Route, &r, n, now).bad.iter().sum();
                    Some(Reading {
                        subject: format!("route {r}"),
                        holds: bad > *over,
                        hold_for: Duration::ZERO,
                        since: None,
                        summary: format!(
                            "{bad} messages rejected or failed on route {r} in the last {}{}",
                            minutes(*within),
                            if bad > *over {
                                format!(" (more than {over})")
                            } else {
                                String::new()
                            }
                        ),
                    })
                })
                .collect(),
        }
    }
}

/// The journal's backlog, read at one evaluation (each destination once).
struct JournalBacklog<'a> {
    journal: &'a dyn journal::Journal,
    seen: Mutex<BTreeMap<String, Option<(u64, u64)>>>,
}

impl Backlog for JournalBacklog<'_> {
    fn backlog(&self, destination: &str) -> Option<(u64, u64)> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        *seen.entry(destination.to_string()).or_insert_with(|| {
            self.journal
                .backlog(destination, BACKLOG_CAP)
                .inspect_err(
                    |e| tracing::warn!(destination, error = %e, "alerts: backlog not read"),
                )
                .ok()
        })
    }
}

/// The journal entry of an event with deliveries to `notify`: a message
/// from [`SOURCE`], settled at once.
fn entry(event: &Event, notify: &[String], now: i64) -> (NewMessage, Outcome) {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let id = uuid::Uuid::now_v7().to_string();
    let message = NewMessage {
        id: id.clone(),
        source: SOURCE.into(),
        remote: None,
        peer_subject: None,
        received_at: now,
        content_type: "application/json".into(),
        body: body.clone(),
        message_type: "ALERT".into(),
        control_id: format!(
            "{}:{}",
            event.alert,
            match event.state {
                State::Firing => "firing",
                State::Cleared => "cleared",
            }
        ),
        sending_application: "WEFT".into(),
        sending_facility: String::new(),
        route: SOURCE.into(),
        ordering_keys: Vec::new(),
        patient_ids: Vec::new(),
        dedup_since: None,
    };
    let outcome = Outcome {
        message_id: id,
        status: MessageStatus::Transformed,
        error: None,
        versions: Vec::new(),
        deliveries: notify
            .iter()
            .map(|d| NewDelivery {
                destination: d.clone(),
                n: 1,
                content_type: "application/json".into(),
                body: body.clone(),
                // An alert's events reach each destination in order.
                ordering_key: Some(format!("alert:{}", event.alert)),
            })
            .collect(),
    };
    (message, outcome)
}

/// Evaluates the alerts every [`INTERVAL`] until `stop`: logs each event,
/// and records those with destinations to notify in the journal (retried
/// while it cannot write) before waking those destinations.
pub async fn alert_loop(pipeline: Arc<Pipeline>, stop: CancellationToken) {
    let alerts = pipeline.alerts().clone();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(INTERVAL) => {}
        }
        let journal = pipeline.journal().clone();
        let watch = alerts.clone();
        let events = tokio::task::spawn_blocking(move || {
            let backlog = JournalBacklog {
                journal: &*journal,
                seen: Mutex::new(BTreeMap::new()),
            };
            watch.evaluate(now_ms(), &backlog, activity())
        })
        .await
        .unwrap_or_default();
        for (event, notify) in events {
            match event.state {
                State::Firing => tracing::warn!(
                    alert = %event.alert,
                    kind = event.kind,
                    subject = %event.subject,
                    "alert firing: {}",
                    event.summary
                ),
                State::Cleared => tracing::info!(
                    alert = %event.alert,
                    kind = event.kind,
                    subject = %event.subject,
                    "alert cleared: {}",
                    event.summary
                ),
            }
            if notify.is_empty() {
                continue;
            }
            let (message, outcome) = entry(&event, &notify, now_ms());
            let journal = pipeline.journal().clone();
            let recorded =
                journal::commit_until_done("the alert event", &message.id.clone(), || {
                    journal.append_settled(message.clone(), outcome.clone())
                })
                .await;
            match recorded {
                Ok(()) => pipeline.wake(&notify),
                Err(e) => {
                    tracing::error!(alert = %event.alert, error = %e, "alert event not recorded")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Fixed(RefCell<BTreeMap<String, (u64, u64)>>);

    impl Backlog for Fixed {
        fn backlog(&self, destination: &str) -> Option<(u64, u64)> {
            self.0.borrow().get(destination).copied()
        }
    }

    fn config(alerts: &str) -> Config {
        let text = format!(
            "[sources.in]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\n\
             [destinations.lab]\nkind = \"file\"\ndir = \"o\"\n\
             [destinations.fhir]\nkind = \"file\"\ndir = \"p\"\n\
             [routes.adt]\ndestinations = [\"lab\"]\n{alerts}"
        );
        crate::config::parse(&text, "t.toml", std::path::Path::new("/tmp")).unwrap()
    }

    fn states(events: &[(Event, Vec<String>)]) -> Vec<(String, String, State)> {
        events
            .iter()
            .map(|(e, _)| (e.alert.clone(), e.subject.clone(), e.state))
            .collect()
    }

    #[test]
    fn each_alert_fires_once_when_its_condition_starts_and_once_when_it_ends() {
        let c = config(
            "[alerts.quiet]\nkind = \"silence\"\nsource = \"in\"\nfor_s = 60\nnotify = [\"fhir\"]\n\
             [alerts.backlog]\nkind = \"pending\"\nover = 10\nfor_s = 30\n\
             [alerts.dead]\nkind = \"dead\"\n\
             [alerts.down]\nkind = \"failing\"\ndestination = \"lab\"\nfor_s = 120\n\
             [alerts.bad]\nkind = \"rejects\"\nover = 2\nwithin_s = 120\n",
        );
        let alerts = Alerts::new(&c);
        let t0 = alerts.started;
        let activity = Activity::default();
        let backlog = Fixed(RefCell::new(BTreeMap::from([
            ("lab".to_string(), (0, 0)),
            ("fhir".to_string(), (0, 0)),
        ])));
        let at = |s: i64| t0 + s * 1000;
        assert!(alerts.evaluate(at(1), &backlog, &activity).is_empty());

        // Silence: a minute without a message from the start.
        let e = alerts.evaluate(at(60), &backlog, &activity);
        assert_eq!(
            states(&e),
            [("quiet".into(), "source in".into(), State::Firing)]
        );
        assert_eq!(e[0].1, ["fhir"], "its notify destinations");
        assert!(
            e[0].0
                .summary
                .contains("no message from source in for 60 s")
        );
        // Firing once: nothing more while it holds.
        assert!(alerts.evaluate(at(90), &backlog, &activity).is_empty());
        activity.record_at(Subject::Source, "in", true, at(91));
        let e = alerts.evaluate(at(92), &backlog, &activity);
        assert_eq!(
            states(&e),
            [("quiet".into(), "source in".into(), State::Cleared)]
        );

        // Pending over 10 at lab must hold 30 s; dead fires at once, for
        // each destination on its own.
        backlog.0.borrow_mut().insert("lab".into(), (11, 1));
        let e = alerts.evaluate(at(100), &backlog, &activity);
        assert_eq!(
            states(&e),
            [("dead".into(), "destination lab".into(), State::Firing)]
        );
        assert!(alerts.evaluate(at(120), &backlog, &activity).is_empty());
        let e = alerts.evaluate(at(130), &backlog, &activity);
        assert_eq!(
            states(&e),
            [("backlog".into(), "destination lab".into(), State::Firing)]
        );
        assert_eq!(alerts.active().len(), 2);
        // A backlog that cannot be read changes nothing.
        backlog.0.borrow_mut().remove("lab");
        assert!(alerts.evaluate(at(131), &backlog, &activity).is_empty());
        backlog.0.borrow_mut().insert("lab".into(), (3, 0));
        let e = alerts.evaluate(at(132), &backlog, &activity);
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|(e, _)| e.state == State::Cleared));

        // Failing: every attempt to lab failed for two minutes. (The
        // source keeps sending meanwhile.)
        for s in [150, 210, 270, 330] {
            activity.record_at(Subject::Source, "in", true, at(s));
        }
        activity.record_at(Subject::Destination, "lab", false, at(200));
        activity.record_at(Subject::Destination, "lab", false, at(250));
        assert!(alerts.evaluate(at(300), &backlog, &activity).is_empty());
        let e = alerts.evaluate(at(320), &backlog, &activity);
        assert_eq!(
            states(&e),
            [("down".into(), "destination lab".into(), State::Firing)]
        );
        activity.record_at(Subject::Destination, "lab", true, at(321));
        assert_eq!(
            alerts.evaluate(at(322), &backlog, &activity)[0].0.state,
            State::Cleared
        );

        // Rejects: more than 2 within two minutes on route adt.
        for s in [330, 331, 332] {
            activity.record_at(Subject::Route, "adt", false, at(s));
        }
        let e = alerts.evaluate(at(333), &backlog, &activity);
        assert_eq!(
            states(&e),
            [("bad".into(), "route adt".into(), State::Firing)]
        );
        assert!(
            e[0].0
                .summary
                .starts_with("3 messages rejected or failed on route adt")
        );
        // Three minutes on, they are out of the window.
        let e = alerts.evaluate(at(333 + 180), &backlog, &activity);
        assert_eq!(e.len(), 2, "{e:?}"); // the rejects clear; silence fires again
        assert!(
            e.iter()
                .any(|(e, _)| e.alert == "bad" && e.state == State::Cleared)
        );
        assert_eq!(alerts.history().len(), 11);
    }

    #[test]
    fn a_reload_keeps_unchanged_alerts_and_forgets_changed_ones() {
        let one = "[alerts.dead]\nkind = \"dead\"\ndestination = \"lab\"\n";
        let alerts = Alerts::new(&config(one));
        let backlog = Fixed(RefCell::new(BTreeMap::from([("lab".to_string(), (0, 4))])));
        let activity = Activity::default();
        assert_eq!(
            alerts.evaluate(alerts.started, &backlog, &activity).len(),
            1
        );
        alerts.apply(&config(one));
        assert_eq!(
            alerts.active().len(),
            1,
            "unchanged: still firing, not again"
        );
        assert!(
            alerts
                .evaluate(alerts.started, &backlog, &activity)
                .is_empty()
        );
        alerts.apply(&config("[alerts.dead]\nkind = \"dead\"\n"));
        assert!(alerts.active().is_empty());
        let e = alerts.evaluate(alerts.started, &backlog, &activity);
        assert_eq!(e.len(), 1, "changed: evaluated afresh");
    }

    #[test]
    fn an_event_is_recorded_as_json_naming_no_patient() {
        let event = Event {
            alert: "down".into(),
            kind: "failing",
            subject: "destination lab".into(),
            state: State::Firing,
            summary: "every attempt to destination lab has failed for 10 min".into(),
            since: "2026-12-01 01:00:00".into(),
            at: "2026-12-01 01:10:00".into(),
        };
        let (m, o) = entry(&event, &["pager".into(), "files".into()], 5);
        assert_eq!(m.source, SOURCE);
        assert_eq!(m.control_id, "down:firing");
        let json: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(json["state"], "firing");
        assert_eq!(json["subject"], "destination lab");
        assert_eq!(o.deliveries.len(), 2);
        assert_eq!(o.deliveries[0].ordering_key.as_deref(), Some("alert:down"));
    }
}
