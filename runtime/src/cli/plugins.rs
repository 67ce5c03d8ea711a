//! `weft plugins`: the plugin versions a running `weft run` serves, asked
//! of its admin API: each one's sha256, since when it is live, the versions
//! it replaced and its last refusal; `--reload` asks for a reload first.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::api::{Api, ApiArgs};

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
            failed = print_report(&report);
        }
    }
    let status = runtime.block_on(api.request("GET", "/plugins", None))?;
    if args.json {
        println!("{status:#}");
    } else {
        print_status(&status);
    }
    Ok(if failed {
        ExitCode::from(super::EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// Prints what a reload did; true if something was refused.
fn print_report(r: &Value) -> bool {
    let list = |k: &str| r[k].as_array().cloned().unwrap_or_default();
    for s in list("swapped") {
        println!(
            "reload: plugin {} now {} (was {})",
            text(&s["plugin"]),
            text(&s["to"]),
            text(&s["from"])
        );
    }
    for c in list("changes") {
        println!("reload: {}", text(&c));
    }
    if r["config_applied"].as_bool() == Some(true) {
        println!("reload: configuration applied");
    }
    for n in list("needs_restart") {
        println!(
            "reload: [{}] changed: takes effect at the next start",
            text(&n)
        );
    }
    let mut refused = false;
    for s in list("refused") {
        refused = true;
        println!(
            "reload: plugin {} refused: {}",
            text(&s["plugin"]),
            text(&s["reason"])
        );
    }
    if let Some(why) = r["config_refused"].as_str() {
        refused = true;
        println!("reload: configuration refused; the running one stays:\n{why}");
    }
    println!(
        "reload: done in {} ms",
        r["elapsed_ms"].as_u64().unwrap_or_default()
    );
    refused
}

fn print_status(s: &Value) {
    for p in s["plugins"].as_array().cloned().unwrap_or_default() {
        println!(
            "{}  sha256 {}  live since {}  ({} swaps, {} code)  {}",
            text(&p["name"]),
            text(&p["sha256"]),
            text(&p["live_since"]),
            p["swaps"].as_u64().unwrap_or_default(),
            text(&p["code"]),
            text(&p["path"]),
        );
        for r in p["replaced"].as_array().cloned().unwrap_or_default() {
            println!(
                "    replaced  {}  live {} .. {}",
                text(&r["sha256"]),
                text(&r["live_since"]),
                text(&r["replaced_at"])
            );
        }
        if p["last_refusal"].is_object() {
            let r = &p["last_refusal"];
            println!(
                "    refused   {}  at {}: {}",
                text(&r["sha256"]),
                text(&r["at"]),
                text(&r["reason"])
            );
        }
    }
    let c = &s["config"];
    if c["last_refusal"].is_object() {
        let r = &c["last_refusal"];
        println!(
            "config {}: last change refused at {}:\n{}",
            text(&c["path"]),
            text(&r["at"]),
            text(&r["reason"])
        );
    }
}
