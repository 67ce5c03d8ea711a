//! `weft plugins`: the plugin versions a running `weft run` serves, asked
//! of its admin API: each one's sha256, since when it is live, the versions
//! it replaced and its last refusal; `--reload` asks for a reload first.

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
    if args.reload {
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
