//! `weft check`: validate a configuration and load every plugin it names.

use std::process::ExitCode;

/// Arguments of `weft check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (default: $WEFT_CONFIG, else ./weft.toml, else
    /// /etc/weft/weft.toml, else the embedded default); or name it with
    /// --config, as the other commands do.
    #[arg(value_name = "CONFIG", conflicts_with = "config")]
    file: Option<std::path::PathBuf>,
    #[command(flatten)]
    config: super::ConfigArg,
}

/// Loads the config, then every plugin; reports every problem found.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = super::ConfigArg {
        config: args.file.or(args.config.config),
    }
    .load()?;
    let mut problems = Vec::new();
    for v in plugin_verdicts(&config)? {
        match v.result {
            Ok(summary) => println!("plugin {}: ok ({summary})", v.name),
            Err(problem) => problems.push(problem),
        }
        for finding in v.warnings {
            println!("plugin {}: warning: {finding}", v.name);
        }
    }
    for (name, route) in &config.routes {
        let plugins = if route.plugins.is_empty() {
            "(no plugins: passed through)".to_string()
        } else {
            route.plugins.join(" -> ")
        };
        println!(
            "route {name}: {plugins} => {}",
            route.destinations.join(", ")
        );
    }
    for (name, source) in &config.sources {
        let (kind, addr) = match &source.kind {
            weft::config::SourceKind::Mllp(m) => ("mllp", m.listen),
            weft::config::SourceKind::Http(h) => ("http", h.listen),
        };
        println!("source {name}: {kind} on {addr}, ack {}", source.ack);
    }
    if let Some(admin) = &config.admin {
        let scheme = if admin.tls.is_some() { "https" } else { "http" };
        if admin.tokens.exists() {
            match weft::admin::tokens::TokenFile::load(&admin.tokens) {
                Ok(f) => println!(
                    "admin API: {scheme} on {}, {} token{} in {}",
                    admin.listen,
                    f.tokens().len(),
                    if f.tokens().len() == 1 { "" } else { "s" },
                    admin.tokens.display()
                ),
                Err(e) => problems.push(format!("{}: admin.tokens: {e}", config.source)),
            }
        } else {
            println!(
                "admin API: {scheme} on {}; no token file yet ({}: the first `weft run` makes one)",
                admin.listen,
                admin.tokens.display()
            );
        }
    }
    journal(&config, &mut problems);
    for w in config.warnings() {
        eprintln!("warning: {}: {w}", config.source);
    }
    if problems.is_empty() {
        println!("{}: ok", config.source);
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        Ok(ExitCode::from(super::EXIT_ERROR))
    }
}

/// The journal: where it lives, and for PostgreSQL what the server says
/// (reached and logged into, its schema, this node's name already
/// running). A server that cannot be used is a problem.
fn journal(config: &weft::config::Config, problems: &mut Vec<String>) {
    let weft::config::JournalConfig::Postgres(pg) = &config.journal else {
        println!(
            "journal: SQLite in {}",
            config.runtime.data_dir.join("journal.db").display()
        );
        return;
    };
    let server = match weft::journal::postgres::Server::for_config(pg) {
        Ok(s) => s,
        Err(e) => {
            // The error names journal.tls itself.
            problems.push(format!("{}: {e}", config.source));
            return;
        }
    };
    match weft::journal::postgres::probe(&server, &pg.node) {
        Ok(p) => {
            println!(
                "journal: PostgreSQL {} at {}{}, {}; node {}, lease {} s",
                p.server_version,
                server.location(),
                if p.tls { " over TLS" } else { "" },
                p.schema_said(),
                pg.node,
                pg.lease.as_secs()
            );
            if let Some(ms) = p.same_name_running_ms {
                println!(
                    "journal: warning: a node named {} is running (heartbeat {:.0} s ago): \
                     if that is another machine, give this one its own journal.node",
                    pg.node,
                    ms as f64 / 1000.0
                );
            }
            if let Some(problem) = p.problem() {
                problems.push(format!("{}: journal.url: {problem}", config.source));
            }
        }
        Err(e) => problems.push(format!("{}: journal.url: {e}", config.source)),
    }
}

/// What loading one plugin of a configuration and mapping its samples
/// came to.
pub struct PluginVerdict {
    /// The plugin's name.
    pub name: String,
    /// Loaded and its samples mapped as expected: what was loaded
    /// (version, sha256, provenance, samples); else the problem, naming
    /// the config file, line and key.
    pub result: Result<String, String>,
    /// What its manifest's grants leave to note.
    pub warnings: Vec<String>,
}

/// Loads every plugin of `config` in the real engine and runs its samples.
pub fn plugin_verdicts(config: &weft::config::Config) -> anyhow::Result<Vec<PluginVerdict>> {
    let fuel = config.plugins.values().any(|p| p.limits.fuel.is_some());
    let engine = super::engine_for(&config.runtime, fuel)?;
    let mut verdicts = Vec::new();
    for (name, spec) in &config.plugins {
        let at = config
            .plugin_locations
            .get(name)
            .map(|l| l.to_string())
            .unwrap_or_else(|| config.source.clone());
        let mut warnings = Vec::new();
        let result = match engine.load(spec) {
            Ok(p) => {
                let version = p
                    .manifest()
                    .map(|m| format!("version {}; ", m.version))
                    .unwrap_or_else(|| "no manifest; ".into());
                warnings = p.grant_findings().to_vec();
                match weft::plugins::samples::check(&p) {
                    Ok(0) => Ok(format!(
                        "{version}sha256 {}; {}",
                        p.sha256(),
                        p.provenance()
                    )),
                    Ok(n) => Ok(format!(
                        "{version}sha256 {}; {}; {n} sample{} as expected",
                        p.sha256(),
                        p.provenance(),
                        if n == 1 { "" } else { "s" }
                    )),
                    Err(e) => Err(format!("{at}: plugins.{name}.samples: {e}")),
                }
            }
            Err(e) => Err(format!("{at}: plugins.{name}.path: {e}")),
        };
        verdicts.push(PluginVerdict {
            name: name.clone(),
            result,
            warnings,
        });
    }
    Ok(verdicts)
}
