//! Command-line parsing and dispatch; each subcommand is one file.

mod admin;
mod api;
mod audit;
mod backup;
mod check;
mod dev;
mod doctor;
mod key;
mod messages;
mod new;
mod nodes;
mod plugin;
mod plugins;
mod replay;
mod run;
mod send;
mod test;
mod transform;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code: an error before any message was processed (usage, config,
/// plugin load).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: a plugin rejected the message.
pub const EXIT_REJECT: u8 = 3;
/// Exit code: a plugin asked for a retry.
pub const EXIT_RETRY: u8 = 4;
/// Exit code: a plugin failed or crashed.
pub const EXIT_FAILED: u8 = 5;
/// Exit code: a plugin hit a limit (deadline, memory, fuel, stack, output).
pub const EXIT_LIMIT: u8 = 6;

/// Weft: healthcare integration at the edge, with sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). Debug output may hold
    /// patient data.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// How log lines are written to stderr: text for people, json for
    /// machines (one object per line; the lines about one message carry
    /// its id, source and route in `span`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one message through one plugin, or through a configured route, in
    /// the real sandbox, and print the outputs.
    Transform(transform::Args),
    /// Run golden cases (a folder each: an input, and the expected outputs
    /// or the reason it must be rejected) through one plugin or one route.
    Test(test::Args),
    /// Make a plugin crate from a template: the plugin, its unit tests and
    /// golden cases, a sample, a weft.toml, a README.
    New(new::Args),
    /// Run journaled messages through a candidate plugin or configuration
    /// and compare with the outputs recorded then; nothing is delivered.
    Replay(replay::Args),
    /// The edit loop of a plugin: on every save, build it, run its golden
    /// cases, and hot-reload it into a running weft (started if need be).
    Dev(dev::Args),
    /// Check a configuration and load every plugin it names.
    Check(check::Args),
    /// Start every source, route and destination of a configuration.
    Run(run::Args),
    /// Send HL7 v2 messages over MLLP and print each ACK.
    Send(send::Args),
    /// Look into the journal: list messages, show one.
    Messages(messages::Args),
    /// Show the plugin versions a running weft serves (its admin API);
    /// --reload asks for a reload first.
    Plugins(plugins::Args),
    /// Sign plugins, check signatures, and inspect plugins: keygen, sign,
    /// verify, inspect.
    Plugin(plugin::Args),
    /// Manage the admin API's tokens.
    Admin(admin::Args),
    /// The audit trail: who saw which message, who did what; verify it.
    Audit(audit::Args),
    /// The nodes sharing a PostgreSQL journal: heartbeat, version, plugins,
    /// claims held, and the plugins they do not agree on.
    Nodes(nodes::Args),
    /// Write a consistent archive of the journal and the site's files
    /// (config, plugins, lookups, trust list, token hashes) while `weft
    /// run` serves.
    Backup(backup::BackupArgs),
    /// Check a backup archive whole, then rebuild a data directory from it.
    Restore(backup::RestoreArgs),
    /// A checklist of what Weft depends on, a verdict each: config,
    /// plugins and their samples, journal integrity and backlog, disk,
    /// certificates, permissions, senders' clocks, ports, the last reload.
    /// Exit 0 healthy, 1 warnings, 2 broken.
    Doctor(doctor::Args),
    /// The key that encrypts the journal's patient data at rest: generate
    /// one, rotate to a new one while serving.
    Key(key::Args),
    /// Internal: compiles one plugin (the component on standard input, its
    /// code on standard output) for the process that started it.
    #[command(name = "compile-plugin", hide = true)]
    CompilePlugin(CompileArgs),
}

/// `weft compile-plugin`'s arguments (see `weft::plugins::compiler`).
#[derive(Debug, clap::Args)]
struct CompileArgs {
    /// `cranelift` or `winch`.
    #[arg(long)]
    compiler: String,
    /// Count fuel in the compiled code.
    #[arg(long)]
    fuel: bool,
}

/// The configuration the Debian package installs, found when neither
/// `--config`, `WEFT_CONFIG` nor `./weft.toml` names one.
pub const INSTALLED_CONFIG: &str = "/etc/weft/weft.toml";

/// Where the configuration comes from: `--config`, else `$WEFT_CONFIG`, else
/// `./weft.toml`, else `/etc/weft/weft.toml` (the package's), else the
/// default compiled into the binary.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The configuration file (default: $WEFT_CONFIG, else ./weft.toml, else
    /// /etc/weft/weft.toml, else the embedded default).
    #[arg(long, short = 'c', global = true)]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// The configuration file, if it is one (not the embedded default).
    pub fn file(&self) -> Option<PathBuf> {
        self.config
            .clone()
            .or_else(|| {
                std::env::var_os("WEFT_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| Some(PathBuf::from("weft.toml")).filter(|p| p.is_file()))
            .or_else(|| Some(PathBuf::from(INSTALLED_CONFIG)).filter(|p| p.is_file()))
    }

    /// Loads and checks the configuration.
    pub fn load(&self) -> anyhow::Result<weft::config::Config> {
        let loaded = match self.file() {
            Some(p) => weft::config::load(&p),
            None => weft::config::parse(
                weft::config::EMBEDDED_DEFAULT,
                "<embedded weft.toml>",
                std::path::Path::new("."),
            ),
        };
        loaded.map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &str) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::io::Read;
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {path}"))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per event.
    Json,
}

impl Cli {
    /// True for the commands a person watches at a terminal, whose own
    /// output is the point (`weft dev`, `test`, `replay`, `new`): their log
    /// shows warnings and errors unless `-v` asks for more.
    pub fn interactive(&self) -> bool {
        matches!(
            self.command,
            Command::Dev(_)
                | Command::Test(_)
                | Command::Replay(_)
                | Command::New(_)
                | Command::Doctor(_)
                | Command::CompilePlugin(_)
        )
    }
}

/// Sends logs to stderr; `RUST_LOG` overrides the level. `quiet`: warnings
/// and errors only, unless `-v`.
pub fn init_logging(verbose: u8, format: LogFormat, quiet: bool) {
    let default = match verbose {
        0 if quiet => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // The event's fields at the top level beside `message`; the
        // innermost span's fields (the message id, source, route) in
        // `span`, the whole stack in `spans`.
        LogFormat::Json => fmt.json().flatten_event(true).with_ansi(false).init(),
    }
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Transform(args) => transform::run(args),
        Command::Test(args) => test::run(args),
        Command::New(args) => new::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Dev(args) => dev::run(args),
        Command::Check(args) => check::run(args),
        Command::Run(args) => run::run(args),
        Command::Send(args) => send::run(args),
        Command::Messages(args) => messages::run(args),
        Command::Plugins(args) => plugins::run(args),
        Command::Plugin(args) => plugin::run(args),
        Command::Admin(args) => admin::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Nodes(args) => nodes::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Key(args) => key::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::CompilePlugin(args) => Ok(weft::plugins::compiler::child_main(
            &args.compiler,
            args.fuel,
        )),
    }
}

/// Where plugins are compiled: in a child process of this binary, unless
/// `WEFT_COMPILE_IN_PROCESS=1` asks for this process (for comparison, or
/// where starting processes is not allowed).
fn compile_in() -> weft::plugins::compiler::CompileIn {
    use weft::plugins::compiler::CompileIn;
    if std::env::var_os("WEFT_COMPILE_IN_PROCESS").is_some_and(|v| v == "1") {
        CompileIn::ThisProcess
    } else {
        CompileIn::child_of_this_executable()
    }
}

/// Builds the plugin engine for a configuration's runtime settings.
pub fn engine_for(
    runtime: &weft::config::RuntimeConfig,
    fuel: bool,
) -> anyhow::Result<weft::plugins::PluginEngine> {
    let options = weft::plugins::EngineOptions {
        fuel,
        cache_dir: runtime.cache_dir.clone(),
        compile_in: compile_in(),
        ..Default::default()
    };
    weft::plugins::PluginEngine::new(&options)
        .map_err(|e| anyhow::anyhow!("cannot start the plugin engine: {e:#}"))
}
