//! Shadow runs: a candidate version of a plugin (`[plugins.NAME]
//! candidate`) runs on live traffic beside the live version, within a share
//! of the live version's time; its outputs are compared with the live ones
//! (as `weft replay` compares) and never delivered. The counts and the
//! latest differing message ids live here, per plugin, for `GET /plugins`;
//! they start over when the candidate's version changes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use crate::journal::{MessageStatus, RecordedOutput};
use crate::plugins::Message;
use crate::replay::Verdict;
use crate::routing::Chain;

/// How many differing message ids are kept.
const LATEST: usize = 20;
/// How many distinct changed fields are counted.
const FIELDS: usize = 100;

/// One plugin's shadow record.
#[derive(Debug)]
pub struct Stats {
    sha256: String,
    counts: [AtomicU64; Verdict::KINDS.len()],
    skipped: AtomicU64,
    live_ns: AtomicU64,
    shadow_ns: AtomicU64,
    latest: Mutex<VecDeque<String>>,
    /// Changed field (index-free path) → messages it changed in.
    fields: Mutex<HashMap<String, u64>>,
}

impl Stats {
    fn new(sha256: &str) -> Stats {
        Stats {
            sha256: sha256.to_string(),
            counts: Default::default(),
            skipped: AtomicU64::new(0),
            live_ns: AtomicU64::new(0),
            shadow_ns: AtomicU64::new(0),
            latest: Mutex::new(VecDeque::new()),
            fields: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one message's verdict: the fields it changed (the first
    /// [`FIELDS`] distinct ones, then only those), and its id among the
    /// [`LATEST`] differing ones.
    fn record(&self, id: String, verdict: &Verdict) {
        self.counts[verdict.index()].fetch_add(1, Ordering::Relaxed);
        if let Verdict::Changed(differences) = verdict {
            let mut fields = self.fields.lock().unwrap_or_else(PoisonError::into_inner);
            let mut seen = std::collections::HashSet::new();
            for d in differences {
                let field = crate::replay::field_of(&d.path);
                if seen.insert(field.clone())
                    && (fields.len() < FIELDS || fields.contains_key(&field))
                {
                    *fields.entry(field).or_default() += 1;
                }
            }
        }
        if !matches!(
            verdict,
            Verdict::Identical | Verdict::StillRejected | Verdict::StillFailed
        ) {
            let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
            latest.push_front(id);
            latest.truncate(LATEST);
        }
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Stats>>> {
    static R: OnceLock<Mutex<HashMap<String, Arc<Stats>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// The record of `plugin`'s candidate whose version is `sha256`: the one
/// kept, or a new one when the candidate changed.
pub fn stats(plugin: &str, sha256: &str) -> Arc<Stats> {
    let mut r = registry().lock().unwrap_or_else(PoisonError::into_inner);
    match r.get(plugin) {
        Some(s) if s.sha256 == sha256 => s.clone(),
        _ => {
            let s = Arc::new(Stats::new(sha256));
            r.insert(plugin.to_string(), s.clone());
            s
        }
    }
}

/// What `GET /plugins` shows of a candidate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The candidate's sha256.
    pub sha256: String,
    /// Messages compared, by verdict (`identical`, `changed`, …).
    pub compared: std::collections::BTreeMap<String, u64>,
    /// Messages not run through the candidate: its share was spent.
    pub skipped: u64,
    /// The latest messages whose candidate result differed, newest first.
    pub latest_differing: Vec<String>,
    /// The fields that changed most (paths without indices) and the
    /// messages each changed in, most first.
    pub changed_fields: Vec<(String, u64)>,
    /// The candidate's time so far per thousand of the live version's
    /// (at most its share, give or take one message).
    pub time_permille: u64,
}

/// The record of `plugin`'s candidate, if it has one.
pub fn summary(plugin: &str) -> Option<Summary> {
    let s = registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(plugin)
        .cloned()?;
    let live = s.live_ns.load(Ordering::Relaxed);
    Some(Summary {
        sha256: s.sha256.clone(),
        compared: Verdict::KINDS
            .iter()
            .zip(&s.counts)
            .map(|((n, _), c)| (n.to_string(), c.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
            .collect(),
        skipped: s.skipped.load(Ordering::Relaxed),
        latest_differing: s
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect(),
        changed_fields: {
            let fields = s.fields.lock().unwrap_or_else(PoisonError::into_inner);
            let mut v: Vec<(String, u64)> = fields.iter().map(|(f, n)| (f.clone(), *n)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(10);
            v
        },
        time_permille: if live == 0 {
            0
        } else {
            u64::try_from(u128::from(s.shadow_ns.load(Ordering::Relaxed)) * 1000 / u128::from(live))
                .unwrap_or(u64::MAX)
        },
    })
}

/// A route's shadow of one plugin: the route's chain with the candidate in
/// that plugin's place.
#[derive(Clone)]
pub struct Shadow {
    /// The plugin whose candidate it runs.
    pub plugin: String,
    /// Its share of the live time, in thousandths.
    pub share: u32,
    /// The chain with the candidate.
    pub chain: Chain,
    /// Its record.
    pub stats: Arc<Stats>,
}

impl Shadow {
    /// Whether the message about to run goes through the candidate too:
    /// the candidate's time so far is within its share of the live time.
    /// One that does not is counted as skipped.
    pub fn admit(&self) -> bool {
        let s = &self.stats;
        let live = s.live_ns.load(Ordering::Relaxed);
        let spent = s.shadow_ns.load(Ordering::Relaxed);
        let within = u128::from(spent) * 1000 <= u128::from(live) * u128::from(self.share);
        if !within {
            s.skipped.fetch_add(1, Ordering::Relaxed);
        }
        within
    }

    /// Counts the live version's time on one message of the route, run
    /// through the candidate or not.
    pub fn add_live(&self, live_ns: u64) {
        self.stats.live_ns.fetch_add(live_ns, Ordering::Relaxed);
    }

    /// Runs `input` (a message [`admit`](Shadow::admit)ted) through the
    /// candidate chain, and records how its result compares with the live
    /// one (`status`, `live`).
    pub fn run(&self, input: Message, status: MessageStatus, live: &[RecordedOutput]) {
        let s = &self.stats;
        let id = input.id.clone();
        let started = Instant::now();
        let result = self
            .chain
            .run(input)
            .map(|r| r.outputs.into_iter().map(RecordedOutput::from).collect());
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        s.shadow_ns.fetch_add(took, Ordering::Relaxed);
        let verdict =
            crate::replay::judge(status, live, &result, &["meta.lastUpdated".to_string()]);
        s.record(id, &verdict);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(paths: impl Iterator<Item = String>) -> Verdict {
        Verdict::Changed(
            paths
                .map(|path| weft_golden::Difference {
                    path,
                    expected: Some("a".into()),
                    actual: Some("b".into()),
                })
                .collect(),
        )
    }

    #[test]
    fn changed_fields_are_capped_and_the_counted_ones_keep_counting() {
        let s = Stats::new("x");
        // One message changing 150 distinct fields: the first 100 count.
        s.record("m1".into(), &changed((0..150).map(|i| format!("ZZZ-{i}"))));
        assert_eq!(s.fields.lock().unwrap().len(), FIELDS);
        // A field already counted counts again, once per message whatever
        // its repetitions; a new one is not taken in.
        s.record(
            "m2".into(),
            &changed(
                ["ZZZ[1]-0", "ZZZ[2]-0", "ZZZ-149"]
                    .map(String::from)
                    .into_iter(),
            ),
        );
        let fields = s.fields.lock().unwrap();
        assert_eq!(fields.len(), FIELDS);
        assert_eq!(fields["ZZZ-0"], 2);
        assert!(!fields.contains_key("ZZZ-149"));
    }

    #[test]
    fn the_latest_differing_ids_are_capped_newest_first() {
        let s = Stats::new("x");
        for i in 0..30 {
            s.record(format!("m{i:02}"), &Verdict::NewlyMapped);
            s.record(format!("same{i}"), &Verdict::Identical);
        }
        let latest = s.latest.lock().unwrap();
        assert_eq!(latest.len(), LATEST);
        assert_eq!(latest[0], "m29");
        assert_eq!(latest[LATEST - 1], "m10");
    }
}
