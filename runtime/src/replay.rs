//! Replay: journaled messages run again through candidate plugins and
//! compared with the outputs recorded at the time. Nothing is delivered
//! and the journal is only read (each worker opens it read-only), so a
//! replay runs beside a live `weft run`.
//!
//! Each message takes the candidate routing's route of the same name (else
//! the first whose patterns take its type) and gets one [`Verdict`]; the
//! outputs are compared as `weft test` compares them (JSON by structure,
//! HL7 v2 by segment and field, volatile fields left out).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use weft_golden::{Difference, Form};

use crate::journal::{Journal, JournalError, MessageStatus, Recorded, RecordedOutput};
use crate::plugins::engine::LoadError;
use crate::plugins::{CallError, Message, PluginEngine};
use crate::routing::{Routing, RoutingError};

/// A candidate that cannot be made ready.
#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    /// A plugin would not load.
    #[error("candidate plugin {0}: {1}")]
    Load(String, #[source] LoadError),
    /// A plugin's init refused its settings.
    #[error("candidate plugin {0} refused to start: {1}")]
    Refused(String, #[source] CallError),
    /// The routes cannot be built.
    #[error("the candidate's routes: {0}")]
    Routes(#[from] RoutingError),
}

/// Every plugin of `config` loaded on `engine` (each one's init run) and
/// its routes built: a candidate ready to replay through.
pub fn routing(
    config: &weft_config::Config,
    engine: &PluginEngine,
) -> Result<Routing, CandidateError> {
    let mut plugins = std::collections::BTreeMap::new();
    for (name, spec) in &config.plugins {
        let plugin = engine
            .load(spec)
            .map_err(|e| CandidateError::Load(name.clone(), e))?;
        plugin
            .probe()
            .map_err(|e| CandidateError::Refused(name.clone(), e))?;
        plugins.insert(name.clone(), Arc::new(plugin));
    }
    Ok(Routing::build(config, &plugins)?)
}

/// What the candidate made of one message, against the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The same outputs.
    Identical,
    /// Other outputs: each difference.
    Changed(Vec<Difference>),
    /// Transformed before, rejected now: the reason.
    NewlyRejected(String),
    /// Transformed (or rejected) before, failed now: the reason.
    NewlyFailed(String),
    /// Rejected or failed before, transformed now.
    NewlyMapped,
    /// Rejected before and now.
    StillRejected,
    /// Failed before and now.
    StillFailed,
    /// No route of the candidate takes it.
    NoRoute,
    /// Not through the plugins yet when it was read: nothing to compare.
    NotProcessed,
    /// The id is no longer in the journal (purged since it was selected).
    Gone,
}

impl Verdict {
    /// The verdicts in report order: each one's name, and what a report
    /// says of it (or nothing).
    pub const KINDS: [(&'static str, &'static str); 10] = [
        ("identical", ""),
        ("changed", ""),
        ("newly rejected", "transformed then"),
        ("newly failed", ""),
        ("newly mapped", "rejected or failed then"),
        ("still rejected", ""),
        ("still failed", ""),
        ("no route", "no route of the candidate takes them"),
        ("not processed", "not through the plugins yet"),
        ("gone", "purged since selected"),
    ];

    /// Its name in a report.
    pub fn name(&self) -> &'static str {
        Verdict::KINDS[self.index()].0
    }

    /// Its place in [`Verdict::KINDS`].
    pub fn index(&self) -> usize {
        match self {
            Verdict::Identical => 0,
            Verdict::Changed(_) => 1,
            Verdict::NewlyRejected(_) => 2,
            Verdict::NewlyFailed(_) => 3,
            Verdict::NewlyMapped => 4,
            Verdict::StillRejected => 5,
            Verdict::StillFailed => 6,
            Verdict::NoRoute => 7,
            Verdict::NotProcessed => 8,
            Verdict::Gone => 9,
        }
    }
}

/// One message replayed.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The message id.
    pub id: String,
    /// The route it took then.
    pub route: String,
    /// What came of it.
    pub verdict: Verdict,
    /// The outputs recorded then.
    pub recorded: Vec<RecordedOutput>,
    /// The candidate's outputs (none when it ended in an error).
    pub candidate: Vec<RecordedOutput>,
}

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads, each with its own read-only journal connection.
    pub workers: usize,
    /// JSON fields left out of the comparison wherever they sit.
    pub volatile: Vec<String>,
}

/// Opens one worker's read-only journal.
pub type Opener<'a> = &'a (dyn Fn() -> Result<Arc<dyn Journal>, JournalError> + Sync);

/// Replays `ids` through `routing` on `options.workers` threads, handing
/// each result to `each` (on the calling thread, in the order they finish).
/// A journal that cannot be opened or read stops the replay with its
/// error.
pub fn replay(
    open: Opener<'_>,
    ids: &[String],
    routing: &Routing,
    options: &Options,
    mut each: impl FnMut(Replayed),
) -> Result<(), JournalError> {
    let next = AtomicUsize::new(0);
    let workers = options.workers.clamp(1, 256);
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Result<Replayed, JournalError>>(workers * 64);
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                let journal = match open() {
                    Ok(j) => j,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(i) else { break };
                    let result = journal
                        .recorded(id)
                        .map(|r| one(id, r, routing, &options.volatile));
                    let stop = result.is_err();
                    if tx.send(result).is_err() || stop {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for result in rx {
            match result {
                Ok(r) => each(r),
                Err(e) => {
                    // The others stop at their next message.
                    next.store(ids.len(), Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(())
    })
}

/// Replays one message as recorded (`None`: gone).
fn one(id: &str, recorded: Option<Recorded>, routing: &Routing, volatile: &[String]) -> Replayed {
    let Some(r) = recorded else {
        return Replayed {
            id: id.to_string(),
            route: String::new(),
            verdict: Verdict::Gone,
            recorded: Vec::new(),
            candidate: Vec::new(),
        };
    };
    let done = |verdict, candidate| Replayed {
        id: r.id.clone(),
        route: r.route.clone(),
        verdict,
        recorded: r.outputs.clone(),
        candidate,
    };
    if r.status == MessageStatus::Received {
        return done(Verdict::NotProcessed, Vec::new());
    }
    let Some(route) = routing
        .get(&r.route)
        .or_else(|| routing.route_for(None, &r.message_type))
    else {
        return done(Verdict::NoRoute, Vec::new());
    };
    let msg = Message {
        id: r.id.clone(),
        content_type: r.content_type.clone(),
        body: r.body.clone(),
        headers: crate::sources::message_headers(
            &r.source,
            r.remote.clone(),
            r.peer_subject.clone(),
        ),
    };
    let candidate = route.run(msg).map(|result| {
        result
            .outputs
            .into_iter()
            .map(RecordedOutput::from)
            .collect()
    });
    let verdict = judge(r.status, &r.outputs, &candidate, volatile);
    done(verdict, candidate.unwrap_or_default())
}

/// What a candidate's result is against what the live version made of the
/// same message (its status and outputs).
pub fn judge(
    was: MessageStatus,
    recorded: &[RecordedOutput],
    candidate: &Result<Vec<RecordedOutput>, CallError>,
    volatile: &[String],
) -> Verdict {
    let was_rejected = was == MessageStatus::Rejected;
    let was_failed = was == MessageStatus::Failed;
    match candidate {
        Ok(outputs) => {
            if was_rejected || was_failed {
                return Verdict::NewlyMapped;
            }
            let differences = compare(recorded, outputs, volatile);
            if differences.is_empty() {
                Verdict::Identical
            } else {
                Verdict::Changed(differences)
            }
        }
        Err(e) => {
            let rejected = matches!(e, CallError::Reject { .. });
            match (rejected, was_rejected, was_failed) {
                (true, true, _) => Verdict::StillRejected,
                (false, _, true) => Verdict::StillFailed,
                (true, _, _) => Verdict::NewlyRejected(e.to_string()),
                (false, _, _) => Verdict::NewlyFailed(e.to_string()),
            }
        }
    }
}

/// Every difference between the outputs recorded and the candidate's.
pub fn compare(
    recorded: &[RecordedOutput],
    candidate: &[RecordedOutput],
    volatile: &[String],
) -> Vec<Difference> {
    let mut out = Vec::new();
    if recorded.len() != candidate.len() {
        out.push(Difference {
            path: "(outputs)".into(),
            expected: Some(recorded.len().to_string()),
            actual: Some(candidate.len().to_string()),
        });
    }
    for (i, (was, now)) in recorded.iter().zip(candidate).enumerate() {
        // The usual case, and the cheap one: the very same bytes.
        if was.body == now.body {
            continue;
        }
        let form = Form::of(&was.content_type, &was.body);
        for mut d in weft_golden::compare(form, &was.body, &now.body, volatile) {
            if recorded.len() > 1 {
                d.path = format!("output {}: {}", i + 1, d.path);
            }
            out.push(d);
        }
    }
    out
}

/// A difference's path with its indices left out, so that the same field
/// of every entry counts as one: `entry[3].resource.name[0].family` →
/// `entry[].resource.name[].family`, `OBX[2]-5` → `OBX-5`.
pub fn field_of(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '[' {
            let mut inner = String::new();
            for d in chars.by_ref() {
                if d == ']' {
                    break;
                }
                inner.push(d);
            }
            if inner.chars().all(|d| d.is_ascii_digit()) {
                // An HL7 segment's occurrence goes; a JSON index stays as [].
                if chars.peek() != Some(&'-') {
                    out.push_str("[]");
                }
            } else {
                out.push('[');
                out.push_str(&inner);
                out.push(']');
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_lose_their_indices() {
        assert_eq!(
            field_of("entry[3].resource.name[0].family"),
            "entry[].resource.name[].family"
        );
        assert_eq!(field_of("OBX[2]-5"), "OBX-5");
        assert_eq!(field_of("PID-3"), "PID-3");
        assert_eq!(field_of("(outputs)"), "(outputs)");
        assert_eq!(field_of("output 2: meta[x]"), "output 2: meta[x]");
    }

    #[test]
    fn outputs_are_compared_in_their_form() {
        let json = |s: &str| RecordedOutput {
            content_type: "application/fhir+json".into(),
            body: s.as_bytes().to_vec(),
        };
        let a = [json(r#"{"a":1,"meta":{"lastUpdated":"x"}}"#)];
        let b = [json(r#"{"meta":{"lastUpdated":"y"},"a":1}"#)];
        let volatile = vec!["meta.lastUpdated".to_string()];
        assert!(compare(&a, &b, &volatile).is_empty());
        let c = [json(r#"{"a":2,"meta":{"lastUpdated":"z"}}"#)];
        let d = compare(&a, &c, &volatile);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].path, "a");
        let d = compare(&a, &[], &volatile);
        assert_eq!(d[0].path, "(outputs)");
    }
}
