//! `weft plugins`: the plugin versions a running `weft run` serves, asked
//! of its admin API: each one's sha256, since when it is live, the versions
//! it replaced and its last refusal; `--reload` asks for a reload first.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Arguments of `weft plugins`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    /// The admin API's address (default: `[admin] listen` of the configuration).
    #[arg(long)]
    admin: Option<SocketAddr>,
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
    let addr = match args.admin {
        Some(a) => a,
        None => {
            let config = args.config.load()?;
            match config.admin {
                Some(a) => a.listen,
                None => bail!(
                    "{}: no [admin] section: `weft plugins` asks the running weft through its admin API (or give --admin HOST:PORT)",
                    config.source
                ),
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut failed = false;
    if args.reload {
        let report = runtime.block_on(request(addr, "POST", "/reload"))?;
        if args.json {
            println!("{report:#}");
        } else {
            failed = print_report(&report);
        }
    }
    let status = runtime.block_on(request(addr, "GET", "/plugins"))?;
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

async fn request(addr: SocketAddr, method: &str, path: &str) -> anyhow::Result<Value> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .context("building the request")?;
    let resp = client
        .request(req)
        .await
        .with_context(|| format!("admin API at {addr}: is `weft run` running?"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .with_context(|| format!("admin API at {addr}: reading the answer"))?
        .to_bytes();
    let value: Value = serde_json::from_slice(&body)
        .with_context(|| format!("admin API at {addr}: {method} {path}: not JSON ({status})"))?;
    if !status.is_success() {
        bail!(
            "admin API at {addr}: {method} {path}: {status}: {}",
            value["error"].as_str().unwrap_or_default()
        );
    }
    Ok(value)
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
