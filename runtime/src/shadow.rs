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
use crate::plugins::{Message, Output};
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
    counts: [AtomicU64; Verdict::NAMES.len()],
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

/// Forgets `plugin`'s candidate record (its candidate is gone).
pub fn forget(plugin: &str) {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(plugin);
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
        compared: Verdict::NAMES
            .iter()
            .zip(&s.counts)
            .map(|(n, c)| (n.to_string(), c.load(Ordering::Relaxed)))
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
    /// Runs `input` through the candidate chain if its share allows, and
    /// records how its result compares with the live one (`status`,
    /// `outputs`) that took `live_ns`.
    pub fn run(&self, input: Message, status: MessageStatus, outputs: &[Output], live_ns: u64) {
        let s = &self.stats;
        let live = s.live_ns.fetch_add(live_ns, Ordering::Relaxed) + live_ns;
        let spent = s.shadow_ns.load(Ordering::Relaxed);
        if u128::from(spent) * 1000 > u128::from(live) * u128::from(self.share) {
            s.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let id = input.id.clone();
        let started = Instant::now();
        let result = self.chain.run(input).map(|r| {
            r.outputs
                .into_iter()
                .map(|o| RecordedOutput {
                    content_type: o.message.content_type,
                    body: o.message.body,
                })
                .collect::<Vec<_>>()
        });
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        s.shadow_ns.fetch_add(took, Ordering::Relaxed);
        let recorded: Vec<RecordedOutput> = outputs
            .iter()
            .map(|o| RecordedOutput {
                content_type: o.message.content_type.clone(),
                body: o.message.body.clone(),
            })
            .collect();
        let verdict = crate::replay::judge(
            status,
            &recorded,
            &result,
            &["meta.lastUpdated".to_string()],
        );
        s.counts[verdict.index()].fetch_add(1, Ordering::Relaxed);
        if let Verdict::Changed(differences) = &verdict {
            let mut fields = s.fields.lock().unwrap_or_else(PoisonError::into_inner);
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
            let mut latest = s.latest.lock().unwrap_or_else(PoisonError::into_inner);
            latest.push_front(id);
            latest.truncate(LATEST);
        }
    }
}
