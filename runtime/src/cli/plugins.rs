//! `weft plugins`: the plugin versions a running `weft run` serves, asked
//! of its admin API: each one's sha256, since when it is live, the versions
//! it replaced and its last refusal; `--reload` asks for a reload first;
//! `promote NAME` makes a plugin's candidate version the live one, and
//! `drop-candidate NAME` ends its shadow runs.

use std::process::ExitCode;

use anyhow::Context;

use super::api::{Api, ApiArgs};
use weft::admin::json::{PluginsStatus, ReloadReport};

/// Arguments of `weft plugins`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    #[command(flatten)]
    api: ApiArgs,
    /// Reload changed plugins, tables and configuration first, and print
    /// what the reload did.
    #[arg(long)]
    reload: bool,
    /// Print the admin API's JSON as it is.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make a plugin's candidate version (`[plugins.NAME] candidate`) the
    /// live one: its file is copied over the live file in one rename and
    /// the running weft reloads, through the same checks as any hot
    /// reload (a version its check samples refuse does not go live).
    Promote {
        /// The plugin.
        name: String,
    },
    /// Stop a plugin's shadow runs: the `candidate` and `candidate_share`
    /// lines of its table are taken out of the configuration file (the
    /// edited file must load and differ by that candidate alone, else it
    /// is left as it was), and the running weft reloads.
    DropCandidate {
        /// The plugin.
        name: String,
    },
}

/// `text` without the `candidate` and `candidate_share` keys of table
/// `[plugins.NAME]`, and how many lines went.
fn without_candidate(text: &str, name: &str) -> (String, usize) {
    let header = format!("[plugins.{name}]");
    let (mut out, mut dropped, mut inside) = (String::with_capacity(text.len()), 0, false);
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with('[') {
            inside = t.trim_end().split('#').next().map(str::trim_end) == Some(header.as_str());
        } else if inside {
            let key = t.split('=').next().map(str::trim);
            if t.contains('=') && matches!(key, Some("candidate" | "candidate_share")) {
                dropped += 1;
                continue;
            }
        }
        out.push_str(line);
    }
    (out, dropped)
}

/// Takes `name`'s candidate out of the configuration file.
fn drop_candidate(
    file: Option<std::path::PathBuf>,
    config: &weft::config::Config,
    name: &str,
) -> anyhow::Result<()> {
    let Some(file) = file else {
        anyhow::bail!("the embedded default has no candidates; give --config");
    };
    match config.plugins.get(name) {
        None => anyhow::bail!("{}: no plugin {name}", config.source),
        Some(s) if s.candidate.is_none() => {
            anyhow::bail!("{}: plugin {name} has no candidate", config.source)
        }
        Some(_) => {}
    }
    let text = String::from_utf8(super::test::read_capped(&file)?)
        .with_context(|| format!("{}: not UTF-8", file.display()))?;
    let (edited, dropped) = without_candidate(&text, name);
    let tmp = file.with_extension(format!("edit{}", std::process::id()));
    std::fs::write(&tmp, &edited).with_context(|| format!("writing {}", tmp.display()))?;
    // The edit must load, and change nothing but this candidate.
    let check = weft::config::load(&tmp);
    let same = check.as_ref().is_ok_and(|new| {
        let mut want = config.plugins.clone();
        want.remove(&format!("{name}{}", weft::config::CANDIDATE_SUFFIX));
        if let Some(s) = want.get_mut(name) {
            s.candidate = None;
            s.candidate_share = 0;
        }
        new.plugins == want && new.routes == config.routes
    });
    if !same || dropped == 0 {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!(
            "{}: the candidate of {name} is not on lines of its own in [plugins.{name}]; \
             take out its candidate line by hand, then `weft plugins --reload`",
            file.display()
        );
    }
    std::fs::rename(&tmp, &file).with_context(|| format!("replacing {}", file.display()))?;
    println!(
        "drop-candidate: {dropped} lines of [plugins.{name}] taken out of {}",
        file.display()
    );
    Ok(())
}

/// Copies `name`'s candidate over its live file (one rename).
fn promote(config: &weft::config::Config, name: &str) -> anyhow::Result<()> {
    let Some(spec) = config.plugins.get(name) else {
        anyhow::bail!("{}: no plugin {name}", config.source);
    };
    let Some(candidate) = &spec.candidate else {
        anyhow::bail!("{}: plugin {name} has no candidate", config.source);
    };
    let bytes = std::fs::read(candidate)
        .with_context(|| format!("reading the candidate {}", candidate.display()))?;
    let tmp = spec
        .path
        .with_extension(format!("promote{}", std::process::id()));
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &spec.path)
        .with_context(|| format!("replacing {}", spec.path.display()))?;
    println!(
        "promote: {} copied over {}",
        candidate.display(),
        spec.path.display()
    );
    Ok(())
}

/// Asks the running weft and prints its answer.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let api = runtime.block_on(async { Api::new(&args.api, &config) })?;
    let mut failed = false;
    let promoting = match &args.command {
        Some(Command::Promote { name }) => {
            promote(&config, name)?;
            true
        }
        Some(Command::DropCandidate { name }) => {
            drop_candidate(args.config.file(), &config, name)?;
            true
        }
        None => false,
    };
    if args.reload || promoting {
        let report = runtime.block_on(api.request("POST", "/reload", None))?;
        if args.json {
            println!("{report:#}");
        } else {
            let report: ReloadReport =
                serde_json::from_value(report).context("reading the reload report")?;
            failed = print_report(&report);
        }
    }
    let status = runtime.block_on(api.request("GET", "/plugins", None))?;
    if args.json {
        println!("{status:#}");
    } else {
        let status: PluginsStatus =
            serde_json::from_value(status).context("reading the plugins' status")?;
        print_status(&status);
    }
    Ok(if failed {
        ExitCode::from(super::EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints what a reload did; true if something was refused.
fn print_report(r: &ReloadReport) -> bool {
    for s in &r.swapped {
        println!(
            "reload: plugin {} now {} (was {})",
            s.plugin,
            s.to,
            s.from.as_deref().unwrap_or("-")
        );
    }
    for c in &r.changes {
        println!("reload: {c}");
    }
    if r.config_applied {
        println!("reload: configuration applied");
    }
    for n in &r.needs_restart {
        println!("reload: [{n}] changed: takes effect at the next start");
    }
    for s in &r.refused {
        println!("reload: plugin {} refused: {}", s.plugin, s.reason);
    }
    if let Some(why) = &r.config_refused {
        println!("reload: configuration refused; the running one stays:\n{why}");
    }
    println!("reload: done in {} ms", r.elapsed_ms);
    !r.refused.is_empty() || r.config_refused.is_some()
}

fn print_status(s: &PluginsStatus) {
    for p in &s.plugins {
        println!(
            "{}{}  sha256 {}  live since {}  ({} swaps, {} code, {})  {}",
            p.name,
            p.version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default(),
            p.sha256,
            p.live_since,
            p.swaps,
            p.code,
            p.signature,
            p.path,
        );
        for w in &p.grant_warnings {
            println!("    warning   {w}");
        }
        for r in &p.replaced {
            println!(
                "    replaced  {}  live {} .. {}",
                r.sha256, r.live_since, r.replaced_at
            );
        }
        if let Some(r) = &p.last_refusal {
            println!(
                "    refused   {}  at {}: {}",
                r.sha256.as_deref().unwrap_or("-"),
                r.at,
                r.reason
            );
        }
        if let Some(c) = &p.candidate {
            let counts: Vec<String> = c.compared.iter().map(|(v, n)| format!("{v} {n}")).collect();
            println!(
                "    candidate {}  compared: {}; skipped {} (time {:.1}% of live)",
                c.sha256,
                if counts.is_empty() {
                    "none yet".to_string()
                } else {
                    counts.join(", ")
                },
                c.skipped,
                c.time_permille as f64 / 10.0
            );
            for (field, n) in &c.changed_fields {
                println!("    changed   {field} in {n} messages");
            }
            if !c.latest_differing.is_empty() {
                println!("    differing {}", c.latest_differing.join(" "));
            }
        }
    }
    if let Some(r) = &s.config.last_refusal {
        println!(
            "config {}: last change refused at {}:\n{}",
            s.config.path.as_deref().unwrap_or("-"),
            r.at,
            r.reason
        );
    }
}

#[cfg(test)]
mod tests {
    use super::without_candidate;

    #[test]
    fn only_the_candidate_lines_of_that_table_go() {
        let text = "[plugins.a]\npath = \"a.wasm\"\ncandidate = \"n.wasm\"  # trying\n\
                    candidate_share = 0.2\n[plugins.a.config]\ncandidate = \"kept: a setting\"\n\
                    [plugins.b] # other\ncandidate = \"m.wasm\"\n";
        let (out, n) = without_candidate(text, "a");
        assert_eq!(n, 2);
        assert_eq!(
            out,
            "[plugins.a]\npath = \"a.wasm\"\n[plugins.a.config]\ncandidate = \"kept: a setting\"\n\
             [plugins.b] # other\ncandidate = \"m.wasm\"\n"
        );
        let (out, n) = without_candidate(text, "b");
        assert_eq!(n, 1);
        assert!(!out.contains("m.wasm") && out.contains("n.wasm"));
        assert_eq!(without_candidate(text, "c").1, 0);
    }
}
