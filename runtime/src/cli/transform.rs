//! `weft transform`: one message through one plugin or one route, in the
//! real sandbox.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use weft::plugins::{CallError, Message, PluginSpec, text};
use weft::routing::Chain;

/// What a message runs through: one plugin with its settings, tables and
/// limits, or a route of a configuration (shared by `weft transform` and
/// `weft test`).
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The plugin component (.wasm) to run.
    #[arg(
        long,
        short = 'p',
        conflicts_with = "route",
        required_unless_present = "route"
    )]
    pub plugin: Option<PathBuf>,
    /// Run the message through this route of the configuration instead.
    #[arg(long, short = 'r')]
    pub route: Option<String>,
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// A plugin setting, KEY=VALUE (with --plugin).
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "plugin")]
    settings: Vec<String>,
    /// A lookup table from a CSV file, TABLE=FILE (with --plugin).
    #[arg(long = "lookup", value_name = "TABLE=FILE", requires = "plugin")]
    lookups: Vec<String>,
    /// Wall-clock deadline per message, in ms (with --plugin).
    #[arg(long, default_value_t = 100, requires = "plugin")]
    deadline_ms: u64,
    /// Memory cap, in MiB (with --plugin).
    #[arg(long, default_value_t = 64, requires = "plugin")]
    memory_mib: usize,
    /// Fuel budget per message (with --plugin; off by default).
    #[arg(long, requires = "plugin")]
    fuel: Option<u64>,
    /// Cap on the total size of the outputs, in MiB (with --plugin).
    #[arg(long, default_value_t = 16, requires = "plugin")]
    max_output_mib: usize,
}

/// Arguments of `weft transform`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 outputs printed, 1 usage/config/load error, \
3 rejected, 4 retry asked, 5 plugin failed or crashed, 6 limit hit \
(deadline, memory, fuel, stack, output size)."
)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// Content type of the input (default: guessed: HL7 v2 or JSON).
    #[arg(long)]
    content_type: Option<String>,
    /// Pretty-print JSON outputs.
    #[arg(long)]
    pretty: bool,
    /// The message file, or - for standard input.
    #[arg(default_value = "-")]
    input: String,
}

fn key_value(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{what} {s:?} is not KEY=VALUE"),
    }
}

/// Runs the transformation and prints the outputs.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let body = super::read_input(&args.input)?;
    let content_type = args
        .content_type
        .clone()
        .unwrap_or_else(|| weft::plugins::samples::guess_content_type(&body).to_string());

    let (chain, _engine) = match args.target.chain()? {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(exit_code(&e)));
        }
    };

    let msg = Message {
        id: new_message_id(),
        content_type,
        body,
        headers: vec![("source".into(), "cli".into())],
    };
    match chain.run(msg) {
        Ok(result) => {
            let mut out = std::io::stdout().lock();
            for (i, o) in result.outputs.iter().enumerate() {
                eprintln!(
                    "output {}: destination={} content-type={} bytes={}",
                    i + 1,
                    // Plugin text: escaped, so it cannot drive the terminal.
                    text::escape(o.destination.as_deref().unwrap_or("*")),
                    text::escape(&o.message.content_type),
                    o.message.body.len()
                );
                let pretty = args.pretty && o.message.content_type.contains("json");
                match serde_json::from_slice::<serde_json::Value>(&o.message.body) {
                    Ok(v) if pretty => writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?,
                    _ => {
                        out.write_all(&o.message.body)?;
                        if !o.message.body.ends_with(b"\n") {
                            writeln!(out)?;
                        }
                    }
                }
            }
            if result.outputs.is_empty() {
                eprintln!("no outputs (the message was filtered out)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(exit_code(&e)))
        }
    }
}

impl Target {
    /// The chain it names, loaded, each plugin's `init` run (its refusal
    /// is the inner error), and the engine it runs on.
    pub fn chain(&self) -> anyhow::Result<Result<(Chain, weft::plugins::PluginEngine), CallError>> {
        match (&self.plugin, &self.route) {
            (Some(path), _) => {
                let mut spec = PluginSpec {
                    name: path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "plugin".into()),
                    path: path.clone(),
                    ..Default::default()
                };
                spec.limits.deadline = Duration::from_millis(self.deadline_ms);
                spec.limits.memory_bytes = self.memory_mib.saturating_mul(1024 * 1024);
                spec.limits.fuel = self.fuel;
                spec.limits.max_output_bytes = self.max_output_mib.saturating_mul(1024 * 1024);
                for s in &self.settings {
                    let (k, v) = key_value(s, "--set")?;
                    spec.config.insert(k, v);
                }
                for s in &self.lookups {
                    let (k, v) = key_value(s, "--lookup")?;
                    spec.lookups.insert(k, PathBuf::from(v));
                }
                let engine = super::engine_for(&Default::default(), self.fuel.is_some())?;
                let plugin = engine.load(&spec)?;
                // Its init, as a load would run it: bad settings say so here.
                if let Err(e) = plugin.probe() {
                    return Ok(Err(e));
                }
                Ok(Ok((Chain::new(vec![Arc::new(plugin)]), engine)))
            }
            (None, Some(route)) => {
                let config = self.config.load()?;
                let Some(r) = config.routes.get(route) else {
                    bail!(
                        "{}: no route named {route:?} (routes: {})",
                        config.source,
                        config.routes.keys().cloned().collect::<Vec<_>>().join(", ")
                    );
                };
                let fuel = config.plugins.values().any(|p| p.limits.fuel.is_some());
                let engine = super::engine_for(&config.runtime, fuel)?;
                let mut plugins = Vec::new();
                for name in &r.plugins {
                    let spec = &config.plugins[name];
                    let plugin = engine.load(spec)?;
                    if let Err(e) = plugin.probe() {
                        return Ok(Err(e));
                    }
                    plugins.push(Arc::new(plugin));
                }
                Ok(Ok((
                    Chain::new(plugins).of_route(route, &r.destinations),
                    engine,
                )))
            }
            (None, None) => bail!("give --plugin or --route"),
        }
    }
}

/// The exit code that says what stopped the plugin.
pub(super) fn exit_code(e: &CallError) -> u8 {
    match e {
        CallError::Reject { .. } => super::EXIT_REJECT,
        CallError::Retry { .. } => super::EXIT_RETRY,
        CallError::Failed { .. } => super::EXIT_FAILED,
        CallError::Limit { .. } => super::EXIT_LIMIT,
        CallError::Init { .. } => super::EXIT_ERROR,
    }
}

pub(super) fn new_message_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cli-{nanos:x}-{:x}", std::process::id())
}
