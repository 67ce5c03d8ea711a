//! What happened lately, in memory: per source, route and destination, the
//! last event and per-minute counts for the last 24 hours. Alerts are
//! evaluated from it and the console draws its charts from it; it is kept
//! whether or not metrics are (`WEFT_METRICS=off` does not blind alerts).
//! Names only, never a value from a message.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};

use crate::journal::now_ms;

/// The minutes a track remembers.
pub const MINUTES: usize = 24 * 60;

/// What a track is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A source: messages recorded; bad: refused.
    Source,
    /// A route: messages transformed; bad: rejected or failed.
    Route,
    /// A destination: deliveries made; bad: failed attempts.
    Destination,
    /// A plugin: messages it transformed; bad: rejected, failed or over a
    /// limit. Its call times are kept too ([`Activity::latency`]).
    Plugin,
}

/// The call times a plugin's track keeps, the latest ones.
pub const LATENCY_SAMPLES: usize = 1024;

/// Counts per minute, for the last [`MINUTES`] minutes.
#[derive(Debug, Clone)]
struct Minutes {
    /// (minute since the epoch, count); a slot holding an older minute
    /// counts zero.
    slots: Vec<(i64, u64)>,
}

impl Default for Minutes {
    fn default() -> Self {
        Minutes {
            slots: vec![(i64::MIN, 0); MINUTES],
        }
    }
}

impl Minutes {
    fn add(&mut self, minute: i64) {
        let slot = &mut self.slots[minute.rem_euclid(MINUTES as i64) as usize];
        if slot.0 == minute {
            slot.1 += 1;
        } else {
            *slot = (minute, 1);
        }
    }

    fn at(&self, minute: i64) -> u64 {
        let slot = self.slots[minute.rem_euclid(MINUTES as i64) as usize];
        if slot.0 == minute { slot.1 } else { 0 }
    }
}

#[derive(Debug, Default)]
struct Track {
    /// When the last good event was (ms), if any since start.
    last_good: Option<i64>,
    /// Since when every event has been bad (ms): set by the first bad event
    /// after a good one, cleared by a good one.
    failing_since: Option<i64>,
    good: Minutes,
    bad: Minutes,
    /// The last [`LATENCY_SAMPLES`] call times, in microseconds (plugins).
    took_us: std::collections::VecDeque<u64>,
}

impl Track {
    fn event(&mut self, good: bool, at: i64) {
        let minute = at.div_euclid(60_000);
        if good {
            self.good.add(minute);
            self.last_good = Some(at);
            self.failing_since = None;
        } else {
            self.bad.add(minute);
            if self.failing_since.is_none() {
                self.failing_since = Some(at);
            }
        }
    }
}

/// One track, shared: each has its own lock.
type Shared = Arc<Mutex<Track>>;

/// Everything remembered, by subject and name.
#[derive(Debug, Default)]
pub struct Activity {
    /// By subject, then name: looked up by `&str`, no allocation on the
    /// message path once a track exists.
    tracks: RwLock<HashMap<Subject, HashMap<String, Shared>>>,
}

/// The process's activity.
pub fn activity() -> &'static Activity {
    static ACTIVITY: LazyLock<Activity> = LazyLock::new(Activity::default);
    &ACTIVITY
}

/// One track as read: the last good event, since when it has been failing,
/// and the counts of the last `n` minutes, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recent {
    /// When the last good event was (ms).
    pub last_good: Option<i64>,
    /// Since when every event has been bad (ms).
    pub failing_since: Option<i64>,
    /// Good events per minute, oldest first, the current minute last.
    pub good: Vec<u64>,
    /// Bad events per minute, likewise.
    pub bad: Vec<u64>,
}

impl Activity {
    /// The track of `name`, if it has one.
    fn find(&self, subject: Subject, name: &str) -> Option<Shared> {
        self.tracks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&subject)
            .and_then(|m| m.get(name))
            .cloned()
    }

    /// The track of `name`, made on its first event.
    fn track(&self, subject: Subject, name: &str) -> Shared {
        if let Some(t) = self.find(subject, name) {
            return t;
        }
        self.tracks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(subject)
            .or_default()
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Records one event at `at` (ms).
    pub fn record_at(&self, subject: Subject, name: &str, good: bool, at: i64) {
        let track = self.track(subject, name);
        let mut t = track.lock().unwrap_or_else(PoisonError::into_inner);
        t.event(good, at);
    }
    /// Records one event now.
    pub fn record(&self, subject: Subject, name: &str, good: bool) {
        self.record_at(subject, name, good, now_ms());
    }

    /// A message from `source` recorded.
    pub fn received(&self, source: &str) {
        self.record(Subject::Source, source, true);
    }

    /// A message through `route`: transformed (good) or not.
    pub fn routed(&self, route: &str, transformed: bool) {
        self.record(Subject::Route, route, transformed);
    }

    /// An attempt to `destination`: delivered (good) or failed.
    pub fn attempted(&self, destination: &str, delivered: bool) {
        self.record(Subject::Destination, destination, delivered);
    }

    /// One call of plugin `name`: its outcome and how long it took.
    pub fn plugin_call(&self, name: &str, transformed: bool, took: std::time::Duration) {
        let track = self.track(Subject::Plugin, name);
        let mut t = track.lock().unwrap_or_else(PoisonError::into_inner);
        t.event(transformed, now_ms());
        if t.took_us.len() == LATENCY_SAMPLES {
            t.took_us.pop_front();
        }
        t.took_us.push_back(took.as_micros() as u64);
    }

    /// The median and 99th percentile of a plugin's last calls (at most
    /// [`LATENCY_SAMPLES`]) and how many there were; `None` before its
    /// first call.
    pub fn latency(&self, name: &str) -> Option<(std::time::Duration, std::time::Duration, usize)> {
        let track = self.find(Subject::Plugin, name)?;
        let mut took: Vec<u64> = track
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .took_us
            .iter()
            .copied()
            .collect();
        if took.is_empty() {
            return None;
        }
        took.sort_unstable();
        let at = |q: f64| {
            let i = ((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1;
            std::time::Duration::from_micros(took[i])
        };
        Some((at(0.5), at(0.99), took.len()))
    }

    /// The track of `name` as of `now` (ms), with its last `n` minutes.
    pub fn recent(&self, subject: Subject, name: &str, n: usize, now: i64) -> Recent {
        let Some(track) = self.find(subject, name) else {
            return Recent {
                good: vec![0; n.min(MINUTES)],
                bad: vec![0; n.min(MINUTES)],
                ..Recent::default()
            };
        };
        let t = track.lock().unwrap_or_else(PoisonError::into_inner);
        let current = now.div_euclid(60_000);
        let n = n.min(MINUTES) as i64;
        let minutes = (current - n + 1)..=current;
        Recent {
            last_good: t.last_good,
            failing_since: t.failing_since,
            good: minutes.clone().map(|m| t.good.at(m)).collect(),
            bad: minutes.map(|m| t.bad.at(m)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_minute_and_forgets_after_a_day() {
        let a = Activity::default();
        let t0 = 1_000 * 60_000;
        a.record_at(Subject::Route, "adt", true, t0);
        a.record_at(Subject::Route, "adt", false, t0 + 1);
        a.record_at(Subject::Route, "adt", false, t0 + 60_000);
        let r = a.recent(Subject::Route, "adt", 3, t0 + 60_000);
        assert_eq!(r.good, [0, 1, 0]);
        assert_eq!(r.bad, [0, 1, 1]);
        assert_eq!(r.last_good, Some(t0));
        assert_eq!(r.failing_since, Some(t0 + 1));
        // A day later the slot is reused: yesterday's counts are gone.
        let later = t0 + MINUTES as i64 * 60_000;
        a.record_at(Subject::Route, "adt", true, later);
        let r = a.recent(Subject::Route, "adt", 2, later);
        assert_eq!((r.good, r.bad), (vec![0, 1], vec![0, 0]));
        assert_eq!(r.failing_since, None, "a good event ends a failing streak");
        // Unknown names read as nothing, and other subjects are apart.
        let none = a.recent(Subject::Destination, "adt", 2, later);
        assert_eq!((none.good, none.last_good), (vec![0, 0], None));
    }

    #[test]
    fn a_plugins_latency_is_read_from_its_last_calls() {
        let a = Activity::default();
        assert!(a.latency("p").is_none());
        for us in 1..=100u64 {
            a.plugin_call("p", us != 50, std::time::Duration::from_micros(us));
        }
        let (p50, p99, n) = a.latency("p").unwrap();
        assert_eq!((p50.as_micros(), p99.as_micros(), n), (50, 99, 100));
        // Only the latest calls count.
        for _ in 0..LATENCY_SAMPLES {
            a.plugin_call("p", true, std::time::Duration::from_micros(7));
        }
        assert_eq!(a.latency("p").unwrap().1.as_micros(), 7);
    }
}
