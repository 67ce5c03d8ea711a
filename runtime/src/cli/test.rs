//! `weft test`: golden cases through one plugin or one route, in the real
//! sandbox. A case is a folder: `input.hl7` (or `input.json`, or
//! `input.*` of another kind), and what it must come to: `expected/` (the
//! outputs, in order of their file names; hidden files such as `.gitkeep`
//! left out, so an `expected/` holding only those means no outputs: the
//! message filtered out), or `reject.txt` / `failed.txt` (a text the reason
//! must contain). JSON is compared by structure (with
//! the volatile fields left out), HL7 v2 by segment and field, anything
//! else byte for byte; each difference is printed with its path and both
//! values. `--update` writes what the run made as the case's expectation,
//! after showing how it differs; `--junit FILE` writes JUnit XML.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use weft::plugins::{CallError, Message, Output};
use weft::routing::Chain;
use weft_golden::{CaseResult, Difference, Form};

/// Left out of every comparison: a FHIR resource's last update, an HL7 v2
/// message's time and control id (MSH-7, MSH-10: each message made gets
/// its own).
const DEFAULT_VOLATILE: [&str; 3] = ["meta.lastUpdated", "MSH-7", "MSH-10"];

/// The largest input or expected file read.
const MAX_FILE: u64 = 16 << 20;

/// Arguments of `weft test`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 every case passed, 1 a case failed or \
could not run, or usage/config/load error.")]
pub struct Args {
    #[command(flatten)]
    target: super::transform::Target,
    /// A field to ignore wherever it sits: in JSON dotted, without array
    /// indices (meta.lastUpdated); in HL7 v2 segment and field (EVN-2).
    /// Besides meta.lastUpdated, MSH-7, MSH-10 and the lines of a
    /// `volatile.txt` beside the cases.
    #[arg(long, value_name = "PATH")]
    volatile: Vec<String>,
    /// Write what this run made as each case's expectation (after showing
    /// how it differs).
    #[arg(long)]
    update: bool,
    /// Write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Case folders, or folders of case folders.
    #[arg(required = true)]
    cases: Vec<PathBuf>,
}

/// What a case expects.
enum Expect {
    /// These outputs: (file, its bytes).
    Outputs(Vec<(PathBuf, Vec<u8>)>),
    /// A reject whose reason contains this.
    Reject(String),
    /// A failure (or a limit, or a retry) whose reason contains this.
    Failed(String),
    /// Nothing written yet.
    Nothing,
}

/// One case folder.
struct Case {
    dir: PathBuf,
    name: String,
    input: PathBuf,
}

pub(super) fn read_capped(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE {
        bail!("{}: larger than {MAX_FILE} bytes", path.display());
    }
    Ok(bytes)
}

/// The input file of a case folder, if it is one.
fn input_of(dir: &Path) -> Option<PathBuf> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_stem().is_some_and(|s| s == "input"))
        .collect();
    inputs.sort();
    inputs.into_iter().next()
}

/// The cases under each path: the folder itself when it holds an input,
/// else each of its folders that does, by name.
fn cases(paths: &[PathBuf]) -> anyhow::Result<Vec<Case>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            bail!("{}: not a folder of cases", p.display());
        }
        if let Some(input) = input_of(p) {
            out.push(Case {
                name: p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
                dir: p.clone(),
                input,
            });
            continue;
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("reading {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.is_dir())
            .collect();
        dirs.sort();
        let before = out.len();
        for d in dirs {
            if let Some(input) = input_of(&d) {
                out.push(Case {
                    name: d
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    dir: d,
                    input,
                });
            }
        }
        if out.len() == before {
            bail!(
                "{}: no case here (a case is a folder with an input.hl7 or input.json)",
                p.display()
            );
        }
    }
    Ok(out)
}

/// The volatile fields: the defaults, `--volatile`, and each
/// `volatile.txt` beside the cases (one path a line, `#` comments).
fn volatile(args: &Args) -> anyhow::Result<Vec<String>> {
    volatile_with(&args.cases, &args.volatile)
}

fn volatile_with(dirs: &[PathBuf], extra: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = DEFAULT_VOLATILE.iter().map(|s| s.to_string()).collect();
    out.extend(extra.iter().cloned());
    for p in dirs {
        let file = p.join("volatile.txt");
        if file.is_file() {
            let text = String::from_utf8(read_capped(&file)?)
                .with_context(|| format!("{}: not UTF-8", file.display()))?;
            out.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
    }
    Ok(out)
}

fn expectation(case: &Case) -> anyhow::Result<Expect> {
    let text = |name: &str| -> anyhow::Result<Option<String>> {
        let p = case.dir.join(name);
        if !p.is_file() {
            return Ok(None);
        }
        Ok(Some(
            String::from_utf8_lossy(&read_capped(&p)?)
                .trim()
                .to_string(),
        ))
    };
    if let Some(r) = text("reject.txt")? {
        return Ok(Expect::Reject(r));
    }
    if let Some(r) = text("failed.txt")? {
        return Ok(Expect::Failed(r));
    }
    let dir = case.dir.join("expected");
    if !dir.is_dir() {
        return Ok(Expect::Nothing);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !name_of(p).starts_with('.'))
        .collect();
    files.sort();
    let mut outputs = Vec::new();
    for f in files {
        let bytes = read_capped(&f)?;
        outputs.push((f, bytes));
    }
    Ok(Expect::Outputs(outputs))
}

/// The content type of an input, from its extension, else its bytes.
fn content_type(input: &Path, body: &[u8]) -> String {
    match input.extension().and_then(|e| e.to_str()) {
        Some("hl7") => "application/hl7-v2".into(),
        Some("json") => "application/fhir+json".into(),
        _ => weft::plugins::samples::guess_content_type(body).to_string(),
    }
}

/// The form an expected file is compared in: by its extension, else by
/// the actual output.
fn form(file: &Path, actual: &Output) -> Form {
    match file.extension().and_then(|e| e.to_str()) {
        Some("json") => Form::Json,
        Some("hl7") => Form::Hl7,
        _ => Form::of(&actual.message.content_type, &actual.message.body),
    }
}

/// How a run of a case differs from its expectation: each line, none when
/// it passed.
fn judge(
    expect: &Expect,
    result: &Result<Vec<Output>, CallError>,
    volatile: &[String],
) -> Vec<String> {
    match (expect, result) {
        (Expect::Nothing, _) => {
            vec!["no expectation yet: add expected/, reject.txt or failed.txt (or run with --update)".into()]
        }
        (Expect::Reject(want), Err(e)) if matches!(e, CallError::Reject { .. }) => {
            reason_holds(want, e)
        }
        (Expect::Failed(want), Err(e)) if !matches!(e, CallError::Reject { .. }) => {
            reason_holds(want, e)
        }
        (Expect::Reject(_), other) => {
            vec![format!(
                "expected the message rejected; it {}",
                describe(other)
            )]
        }
        (Expect::Failed(_), other) => {
            vec![format!(
                "expected the message failed; it {}",
                describe(other)
            )]
        }
        (Expect::Outputs(_), Err(e)) => vec![format!("expected outputs; {e}")],
        (Expect::Outputs(files), Ok(outputs)) => {
            let mut lines = Vec::new();
            if files.len() != outputs.len() {
                lines.push(format!(
                    "expected {} outputs, got {}",
                    files.len(),
                    outputs.len()
                ));
            }
            for (i, ((file, bytes), actual)) in files.iter().zip(outputs).enumerate() {
                let differences: Vec<Difference> =
                    weft_golden::compare(form(file, actual), bytes, &actual.message.body, volatile);
                for d in differences {
                    lines.push(format!("output {} ({}): {d}", i + 1, name_of(file)));
                }
            }
            lines
        }
    }
}

/// Nothing when the reason of `e` contains `want`; else why not.
fn reason_holds(want: &str, e: &CallError) -> Vec<String> {
    let reason = e.to_string();
    if reason.contains(want) {
        Vec::new()
    } else {
        vec![format!("the reason does not contain {want:?}: {reason}")]
    }
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn describe(r: &Result<Vec<Output>, CallError>) -> String {
    match r {
        Ok(o) => format!("was transformed into {} outputs", o.len()),
        Err(e) => format!("ended: {e}"),
    }
}

/// The file name an output is written under by `--update`.
fn file_for(i: usize, o: &Output) -> String {
    let ct = o.message.content_type.to_ascii_lowercase();
    let ext = if ct.contains("json") {
        "json"
    } else if ct.contains("hl7") {
        "hl7"
    } else {
        "txt"
    };
    format!("{:02}.{ext}", i + 1)
}

/// Writes what this run made as the case's expectation.
fn update(dir: &Path, result: &Result<Vec<Output>, CallError>) -> anyhow::Result<()> {
    let expected = dir.join("expected");
    let remove = |p: PathBuf| -> anyhow::Result<()> {
        if p.is_dir() {
            std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        } else if p.is_file() {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
        Ok(())
    };
    remove(expected.clone())?;
    remove(dir.join("reject.txt"))?;
    remove(dir.join("failed.txt"))?;
    match result {
        Ok(outputs) => {
            std::fs::create_dir_all(&expected)
                .with_context(|| format!("creating {}", expected.display()))?;
            if outputs.is_empty() {
                // Filtered out: an empty expected/ that git keeps.
                let keep = expected.join(".gitkeep");
                std::fs::write(&keep, "").with_context(|| format!("writing {}", keep.display()))?;
            }
            for (i, o) in outputs.iter().enumerate() {
                // JSON pretty-printed, so the expectation reads well in a review.
                let body = match serde_json::from_slice::<serde_json::Value>(&o.message.body) {
                    Ok(v) if o.message.content_type.contains("json") => {
                        let mut t = serde_json::to_vec_pretty(&v)?;
                        t.push(b'\n');
                        t
                    }
                    _ => o.message.body.clone(),
                };
                let path = expected.join(file_for(i, o));
                std::fs::write(&path, body)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Err(e) => {
            let file = if matches!(e, CallError::Reject { .. }) {
                "reject.txt"
            } else {
                "failed.txt"
            };
            let path = dir.join(file);
            // The plugin's own words for a reject (not the plugin's name,
            // which differs between --plugin and --route).
            let reason = match e {
                CallError::Reject { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            std::fs::write(&path, format!("{reason}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

fn run_case(chain: &Chain, case: &Case) -> anyhow::Result<Result<Vec<Output>, CallError>> {
    let body = read_capped(&case.input)?;
    let msg = Message {
        id: super::transform::new_message_id(),
        content_type: content_type(&case.input, &body),
        body,
        headers: vec![("source".into(), "weft-test".into())],
    };
    Ok(chain.run(msg).map(|r| r.outputs))
}

/// One case run: its name and folder, how long it took, what failed (`None`:
/// it passed), and what the plugins made (`None`: it could not run).
pub(super) struct Ran {
    pub name: String,
    pub dir: PathBuf,
    pub seconds: f64,
    pub failure: Option<String>,
    pub result: Option<Result<Vec<Output>, CallError>>,
}

/// Runs every case under `dirs` through `chain`.
pub(super) fn run_cases(
    chain: &Chain,
    dirs: &[PathBuf],
    volatile: &[String],
) -> anyhow::Result<Vec<Ran>> {
    let mut out = Vec::new();
    for case in cases(dirs)? {
        let started = Instant::now();
        let (failure, result) =
            match expectation(&case).and_then(|e| Ok((e, run_case(chain, &case)?))) {
                Ok((expect, result)) => {
                    let lines = judge(&expect, &result, volatile);
                    ((!lines.is_empty()).then(|| lines.join("\n")), Some(result))
                }
                Err(e) => (Some(format!("{e:#}")), None),
            };
        out.push(Ran {
            name: case.name,
            dir: case.dir,
            seconds: started.elapsed().as_secs_f64(),
            failure,
            result,
        });
    }
    Ok(out)
}

/// The volatile fields of cases under `dirs`: the defaults and each
/// `volatile.txt` beside them.
pub(super) fn volatile_of(dirs: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    volatile_with(dirs, &[])
}

/// Runs every case.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let volatile = volatile(&args)?;
    let (chain, _engine) = match args.target.chain()? {
        Ok(c) => c,
        Err(e) => bail!("the plugin refused to start: {e}"),
    };
    let suite = args
        .target
        .route
        .clone()
        .or_else(|| {
            args.target
                .plugin
                .as_ref()
                .and_then(|p| p.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "weft".into());
    let ran = run_cases(&chain, &args.cases, &volatile)?;
    let mut results = Vec::new();
    for r in &ran {
        match &r.failure {
            None => println!("ok     {} ({:.1} ms)", r.name, r.seconds * 1e3),
            Some(why) => {
                println!("FAILED {} ({:.1} ms)", r.name, r.seconds * 1e3);
                for line in why.lines() {
                    println!("       {line}");
                }
            }
        }
        if args.update
            && r.failure.is_some()
            && let Some(result) = &r.result
        {
            update(&r.dir, result)?;
            println!("       updated {}", r.dir.display());
        }
        results.push(CaseResult {
            name: r.name.clone(),
            seconds: r.seconds,
            failure: r.failure.clone(),
        });
    }
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    println!(
        "{} cases: {} passed, {failed} failed{}",
        results.len(),
        results.len() - failed,
        if args.update && failed > 0 {
            " (expectations updated)"
        } else {
            ""
        }
    );
    if let Some(file) = &args.junit {
        std::fs::write(file, weft_golden::junit(&suite, &results))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(if failed == 0 || args.update {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_ERROR)
    })
}
