//! `weft replay`: journaled messages through a candidate plugin
//! (`--plugin NAME=FILE`) or a candidate configuration, compared with the
//! outputs recorded at the time; a report of what would change. Nothing is
//! delivered, the messages are read through read-only connections (one per
//! worker, beside a running `weft run` if there is one), and the only write
//! is the replay's entry in the audit trail, made before anything is read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use weft::journal::audit::Record;
use weft::journal::query::{Filter, MAX_BULK};
use weft::journal::{Attach, RecordedOutput, Use};
use weft::replay::{self, Options, Replayed, Verdict};

/// Arguments of `weft replay`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 replayed (whatever changed), 1 usage, config, \
load or journal error."
)]
pub struct Args {
    /// The live configuration: its journal (data_dir) and, unless
    /// --candidate-config, its plugins and routes.
    #[command(flatten)]
    config: super::ConfigArg,
    /// A candidate version of a plugin of the configuration,
    /// NAME=FILE.wasm (repeatable).
    #[arg(long = "plugin", value_name = "NAME=FILE")]
    plugins: Vec<String>,
    /// A candidate configuration: its plugins, settings, lookups and
    /// routes replace the live ones (its journal is not read).
    #[arg(long, value_name = "FILE")]
    candidate_config: Option<PathBuf>,
    #[command(flatten)]
    select: super::messages::Selection,
    /// At most this many messages, the newest first.
    #[arg(long, default_value_t = 10_000)]
    limit: usize,
    /// Write every changed message's outputs (recorded/ and candidate/)
    /// and differences here, one folder per message (patient data: 0700).
    #[arg(long, value_name = "DIR")]
    diff_dir: Option<PathBuf>,
    /// Show the values in the example differences (patient data); by
    /// default only the fields that changed are named.
    #[arg(long)]
    show_values: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// A JSON field to leave out of the comparison wherever it sits, as
    /// `weft test --volatile` (meta.lastUpdated always is).
    #[arg(long, value_name = "PATH")]
    volatile: Vec<String>,
}

/// The candidate configuration: the live one (or --candidate-config) with
/// each --plugin's file in place.
fn candidate(args: &Args, live: &weft::config::Config) -> anyhow::Result<weft::config::Config> {
    let mut config = match &args.candidate_config {
        Some(path) => weft::config::load(path)
            .map_err(|e| anyhow::anyhow!("invalid candidate configuration:\n{e}"))?,
        None => live.clone(),
    };
    for s in &args.plugins {
        let Some((name, file)) = s
            .split_once('=')
            .filter(|(n, f)| !n.is_empty() && !f.is_empty())
        else {
            bail!("--plugin {s:?} is not NAME=FILE");
        };
        let Some(spec) = config.plugins.get_mut(name) else {
            bail!(
                "--plugin {name}: no plugin of that name in {} (plugins: {})",
                config.source,
                config
                    .plugins
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        spec.path = PathBuf::from(file);
    }
    if args.plugins.is_empty() && args.candidate_config.is_none() {
        bail!("give a candidate: --plugin NAME=FILE, or --candidate-config FILE");
    }
    Ok(config)
}

/// The counts, and the fields that changed most.
#[derive(Default)]
struct Report {
    counts: [u64; Verdict::KINDS.len()],
    by_route: HashMap<String, u64>,
    /// Field → (messages it changed in, an example: message id and the
    /// difference).
    fields: HashMap<String, (u64, String, weft_golden::Difference)>,
    /// An example of each new reject or failure reason.
    reasons: Vec<(String, String)>,
    written: u64,
}

impl Report {
    fn add(&mut self, r: &Replayed) {
        self.counts[r.verdict.index()] += 1;
        *self.by_route.entry(r.route.clone()).or_default() += 1;
        match &r.verdict {
            Verdict::Changed(differences) => {
                let mut seen = std::collections::HashSet::new();
                for d in differences {
                    let field = replay::field_of(&d.path);
                    if seen.insert(field.clone()) {
                        let e = self
                            .fields
                            .entry(field)
                            .or_insert_with(|| (0, r.id.clone(), d.clone()));
                        e.0 += 1;
                    }
                }
            }
            Verdict::NewlyRejected(why) | Verdict::NewlyFailed(why)
                if self.reasons.len() < 5 && !self.reasons.iter().any(|(_, w)| w == why) =>
            {
                self.reasons.push((r.id.clone(), why.clone()));
            }
            _ => {}
        }
    }
}

/// Writes one changed message's outputs and differences under `dir`.
fn write_pair(dir: &Path, r: &Replayed) -> anyhow::Result<()> {
    // The id is the runtime's (a UUID), but it is read from a file: only
    // a plain name becomes a folder.
    if r.id.is_empty() || !r.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Ok(());
    }
    let base = dir.join(&r.id);
    let write_all = |sub: &str, outputs: &[RecordedOutput]| -> anyhow::Result<()> {
        let d = base.join(sub);
        weft::private::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
        for (i, o) in outputs.iter().enumerate() {
            let ext = if o.content_type.contains("json") {
                "json"
            } else if o.content_type.contains("hl7") {
                "hl7"
            } else {
                "bin"
            };
            let f = d.join(format!("{:02}.{ext}", i + 1));
            weft::private::write(&f, &o.body)
                .with_context(|| format!("writing {}", f.display()))?;
        }
        Ok(())
    };
    write_all("recorded", &r.recorded)?;
    write_all("candidate", &r.candidate)?;
    let text = match &r.verdict {
        Verdict::Changed(ds) => ds.iter().map(|d| format!("{d}\n")).collect::<String>(),
        other => format!("{}\n", other.name()),
    };
    let f = base.join("differences.txt");
    weft::private::write(&f, text.as_bytes()).with_context(|| format!("writing {}", f.display()))
}

/// Runs the replay and prints the report.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.limit == 0 || args.limit > MAX_BULK {
        bail!("--limit: from 1 to {MAX_BULK}");
    }
    let live = args.config.load()?;
    let config = candidate(&args, &live)?;
    let fuel = config.plugins.values().any(|p| p.limits.fuel.is_some());
    let engine = super::engine_for(&config.runtime, fuel)?;
    let routing = replay::routing(&config, &engine)?;
    let filter: Filter = args.select.clone().filter()?;
    let described = format!("{}, the newest {} at most", filter.describe(), args.limit);

    // The selection and the audit entry through the journal as the other
    // commands attach to it; the bodies through read-only connections.
    let ids = {
        let journal = weft::journal::for_config(&live, Use::Attach(Attach::Existing))?;
        let ids = journal.select(&filter, args.limit)?;
        let result = format!(
            "replayed {} selected by {described}{}",
            ids.len(),
            args.diff_dir
                .as_ref()
                .map(|d| format!("; diffs written to {}", d.display()))
                .unwrap_or_default()
        );
        journal
            .audit_append(&Record::cli("messages.replay", ids.clone(), result))
            .context("cannot record this replay in the audit trail; nothing is replayed")?;
        journal.close();
        ids
    };
    if let Some(dir) = &args.diff_dir {
        weft::private::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let mut volatile = vec!["meta.lastUpdated".to_string()];
    volatile.extend(args.volatile.iter().cloned());
    let options = Options { workers, volatile };

    let started = Instant::now();
    let mut report = Report::default();
    let mut write_error = None;
    let open = || weft::journal::for_config(&live, Use::ReadOnly);
    replay::replay(&open, &ids, &routing, &options, |r| {
        report.add(&r);
        if let Some(dir) = &args.diff_dir
            && write_error.is_none()
            && matches!(
                r.verdict,
                Verdict::Changed(_)
                    | Verdict::NewlyMapped
                    | Verdict::NewlyRejected(_)
                    | Verdict::NewlyFailed(_)
            )
        {
            match write_pair(dir, &r) {
                Ok(()) => report.written += 1,
                Err(e) => write_error = Some(e),
            }
        }
    })?;
    if let Some(e) = write_error {
        return Err(e.context("--diff-dir"));
    }
    let took = started.elapsed().as_secs_f64();
    print_report(&args, &report, ids.len(), &described, took, workers);
    Ok(ExitCode::SUCCESS)
}

fn print_report(
    args: &Args,
    report: &Report,
    total: usize,
    described: &str,
    took: f64,
    workers: usize,
) {
    let mut routes: Vec<_> = report.by_route.iter().collect();
    routes.sort();
    let routes: Vec<String> = routes
        .iter()
        .filter(|(r, _)| !r.is_empty())
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    println!(
        "replayed {total} messages ({described}; routes: {}) in {took:.2} s: {:.0} msg/s on {workers} workers",
        if routes.is_empty() {
            "none".to_string()
        } else {
            routes.join(", ")
        },
        total as f64 / took.max(1e-9)
    );
    for (i, (name, note)) in Verdict::KINDS.iter().enumerate() {
        let n = report.counts[i];
        // The last three are worth a line only when they happened.
        if n == 0 && i >= 7 {
            continue;
        }
        let note = if note.is_empty() {
            String::new()
        } else {
            format!("  ({note})")
        };
        println!("  {name:<15} {n:>7}{note}");
    }
    if !report.fields.is_empty() {
        println!("fields that changed, by the messages they changed in:");
        let mut fields: Vec<_> = report.fields.iter().collect();
        fields.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        for (field, (n, id, example)) in fields.iter().take(20) {
            println!("  {n:>7}  {field}");
            if args.show_values {
                println!("           e.g. {id}: {example}");
            } else {
                println!("           e.g. {id}: {}", example.path);
            }
        }
        if fields.len() > 20 {
            println!("  ... and {} more fields", fields.len() - 20);
        }
    }
    for (id, why) in &report.reasons {
        println!("  newly: {id}: {why}");
    }
    if let Some(dir) = &args.diff_dir {
        println!("{} messages written to {}", report.written, dir.display());
    }
}
