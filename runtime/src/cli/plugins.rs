//! `weft plugins`: the plugin versions a running `weft run` serves, asked
//! of its admin API: each one's sha256, since when it is live, the versions
//! it replaced and its last refusal; `--reload` asks for a reload first;
//! `promote NAME` makes a plugin's candidate version the live one.

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
