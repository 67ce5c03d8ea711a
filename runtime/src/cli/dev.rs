//! `weft dev PLUGIN_DIR --config weft.toml`: the edit loop of a plugin
//! author. On every save under the crate's `src/`, `cases/` or
//! `Cargo.toml` it rebuilds the component for `wasm32-wasip2`, runs the
//! golden cases in the sandbox with the plugin's settings and tables from
//! the configuration, and, when they pass, puts the build in place of the
//! configured plugin file and has the running `weft run` reload it (the
//! same check-and-swap as any hot reload; one is started when none
//! answers). After each save, one screen: the build's time, the cases, how
//! the first case's output changed since the last build, what went live.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use weft::journal::RecordedOutput;
use weft::plugins::{Output, PluginSpec};
use weft::routing::Chain;

use super::api::{Api, ApiArgs};

/// Arguments of `weft dev`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin crate's folder (what `weft new` made).
    dir: PathBuf,
    /// The configuration whose plugin it replaces (default: ./weft.toml).
    #[command(flatten)]
    config: super::ConfigArg,
    #[command(flatten)]
    api: ApiArgs,
    /// The plugin's name in the configuration (default: the crate's name).
    #[arg(long)]
    plugin: Option<String>,
    /// Never start a `weft run` (by default one is started when none
    /// answers on the configuration's admin address).
    #[arg(long)]
    no_run: bool,
    /// Build, test and load once, then exit (no watching).
    #[arg(long)]
    once: bool,
}

/// The longest wait for a started `weft run` to answer.
const START_WAIT: Duration = Duration::from_secs(30);
/// Saves closer together than this are one change.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// The crate's package name, from its `Cargo.toml`.
fn package_name(dir: &Path) -> anyhow::Result<String> {
    let file = dir.join("Cargo.toml");
    let bytes = super::test::read_capped(&file)?;
    let text =
        std::str::from_utf8(&bytes).with_context(|| format!("{}: not UTF-8", file.display()))?;
    let table: toml::Table =
        toml::from_str(text).with_context(|| format!("{}: not TOML", file.display()))?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(String::from)
        .with_context(|| format!("{}: no [package] name", file.display()))
}

/// A build: the component, or the compiler's complaints.
struct Built {
    seconds: f64,
    wasm: Result<PathBuf, Vec<String>>,
    /// Warnings, compactly.
    warnings: Vec<String>,
}

/// Builds the crate for wasm32-wasip2 (release), reading cargo's JSON
/// messages for the component's path and keeping of its rendered
/// diagnostics only the headline and location lines.
fn build(dir: &Path, package: &str) -> anyhow::Result<Built> {
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format",
            "json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .output()
        .context("running cargo")?;
    let seconds = started.elapsed().as_secs_f64();
    let crate_name = package.replace('-', "_");
    let mut wasm = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] == "compiler-artifact" && v["target"]["name"] == crate_name.as_str() {
            wasm = v["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from);
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let mut last: Option<bool> = None;
    for line in stderr.lines() {
        let t = line.trim_start();
        if t.starts_with("error") {
            errors.push(line.to_string());
            last = Some(true);
        } else if t.starts_with("warning") && !t.starts_with("warning: build failed") {
            warnings.push(line.to_string());
            last = Some(false);
        } else if t.starts_with("-->") {
            match last.take() {
                Some(true) => errors.push(format!("    {t}")),
                Some(false) => warnings.push(format!("    {t}")),
                None => {}
            }
        }
    }
    let wasm = match (out.status.success(), wasm) {
        (true, Some(w)) => Ok(w),
        (true, None) => Err(vec![format!(
            "cargo built no component for {package} (is it a cdylib?)"
        )]),
        (false, _) => Err(if errors.is_empty() {
            vec![format!("cargo failed ({})", out.status)]
        } else {
            errors
        }),
    };
    Ok(Built {
        seconds,
        wasm,
        warnings,
    })
}

/// Replaces `dest` with `bytes` in one rename (a running weft may be
/// reading it).
fn put(dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = dest.with_extension(format!("dev{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dest).with_context(|| format!("replacing {}", dest.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The running weft: its API, and the child process when this command
/// started it.
struct Live {
    api: Api,
    runtime: tokio::runtime::Runtime,
    child: Option<Child>,
}

impl Live {
    /// `method path`, once more if the first try meets a connection the
    /// server closed while idle.
    fn ask(&self, method: &str, path: &str) -> anyhow::Result<serde_json::Value> {
        self.runtime
            .block_on(self.api.request(method, path, None))
            .or_else(|_| self.runtime.block_on(self.api.request(method, path, None)))
    }

    /// Reloads, and says which version of `plugin` serves.
    fn reload(&self, plugin: &str, built_sha: &str) -> String {
        if let Err(e) = self.ask("POST", "/reload") {
            return format!("reload failed: {e:#}");
        }
        let status = match self.ask("GET", "/plugins") {
            Ok(s) => s,
            Err(e) => return format!("reloaded; the plugins' status is not readable: {e:#}"),
        };
        let Some(p) = status["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == plugin)
        else {
            return format!("the running weft has no plugin {plugin} (restart it on this config)");
        };
        let live = p["sha256"].as_str().unwrap_or_default();
        if live == built_sha {
            format!(
                "plugin {plugin} now {} (this build)",
                &live[..live.len().min(12)]
            )
        } else {
            format!(
                "this build was refused; {} still serves: {}",
                &live[..live.len().min(12)],
                p["last_refusal"]["reason"]
                    .as_str()
                    .unwrap_or("(no reason given)")
            )
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // As Ctrl-C would: a clean stop, then the process is gone.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The running weft of `config`, started when none answers (unless told
/// not to, or `--once`); `None` when the configuration has no admin API.
fn live(args: &Args, config: &weft::config::Config) -> anyhow::Result<Option<Live>> {
    if config.admin.is_none() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // The token file appears at a first start: the API is made anew each
    // time it is asked.
    let answering = |rt: &tokio::runtime::Runtime| -> Option<Api> {
        let api = rt.block_on(async { Api::new(&args.api, config) }).ok()?;
        rt.block_on(api.request("GET", "/status", None)).ok()?;
        Some(api)
    };
    if let Some(api) = answering(&runtime) {
        return Ok(Some(Live {
            api,
            runtime,
            child: None,
        }));
    }
    if args.no_run || args.once {
        return Ok(None);
    }
    let Some(file) = args.config.file() else {
        bail!("weft dev starts weft run on a configuration file: give --config");
    };
    let log_path = args.dir.join("target/weft-dev-run.log");
    std::fs::create_dir_all(args.dir.join("target")).context("creating target/")?;
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut child = Command::new(std::env::current_exe().context("finding this weft")?)
        .arg("run")
        .arg("--config")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("the log file")?)
        .stderr(log)
        .spawn()
        .context("starting weft run")?;
    println!(
        "started weft run on {} (its log: {})",
        file.display(),
        log_path.display()
    );
    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Some(api) = answering(&runtime) {
            return Ok(Some(Live {
                api,
                runtime,
                child: Some(child),
            }));
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("weft run stopped ({status}): see {}", log_path.display());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "weft run did not answer within {START_WAIT:?}: see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the last build made of the first case, to show what a save changed.
type Sample = Option<(String, Vec<Output>)>;

/// One save's work; prints its screen.
struct Session<'a> {
    args: &'a Args,
    spec: PluginSpec,
    package: String,
    engine: weft::plugins::PluginEngine,
    live: Option<Live>,
    last_sample: Sample,
}

impl Session<'_> {
    /// One save: a build (or the one given), the cases, the reload.
    fn cycle(&mut self, done: Option<Built>) -> anyhow::Result<()> {
        let now = chrono_like_now();
        println!("── {now} {} ──", self.spec.name);
        let built = match done {
            Some(b) => b,
            None => build(&self.args.dir, &self.package)?,
        };
        let wasm = match built.wasm {
            Ok(w) => w,
            Err(errors) => {
                println!("build    FAILED in {:.1} s", built.seconds);
                for e in errors.iter().take(20) {
                    println!("  {e}");
                }
                return Ok(());
            }
        };
        let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
        println!(
            "build    ok in {:.1} s ({}, {} KiB{})",
            built.seconds,
            wasm.display(),
            bytes.len() / 1024,
            if built.warnings.is_empty() {
                String::new()
            } else {
                format!(", {} warning lines", built.warnings.len())
            }
        );
        for w in built.warnings.iter().take(6) {
            println!("  {w}");
        }

        // The golden cases, through this build with the configured
        // settings and tables.
        let mut spec = self.spec.clone();
        spec.path = wasm.clone();
        let plugin = match self.engine.load(&spec) {
            Ok(p) => p,
            Err(e) => {
                println!("load     FAILED: {e}");
                return Ok(());
            }
        };
        if let Err(e) = plugin.probe() {
            println!("load     REFUSED by its init: {e}");
            return Ok(());
        }
        let chain = Chain::new(vec![std::sync::Arc::new(plugin)]);
        let cases_dir = self.args.dir.join("cases");
        let mut passed = true;
        if cases_dir.is_dir() {
            let dirs = [cases_dir];
            let volatile = super::test::volatile_of(&dirs)?;
            let ran = super::test::run_cases(&chain, &dirs, &volatile)?;
            let failed: Vec<_> = ran.iter().filter(|r| r.failure.is_some()).collect();
            println!(
                "cases    {} passed, {} failed",
                ran.len() - failed.len(),
                failed.len()
            );
            for r in failed.iter().take(5) {
                let first = r
                    .failure
                    .as_deref()
                    .and_then(|f| f.lines().next())
                    .unwrap_or("");
                println!("  FAILED {}: {first}", r.name);
            }
            passed = failed.is_empty();
            self.show_sample(&ran);
        } else {
            println!("cases    none (no cases/ folder)");
        }

        if !passed {
            println!("live     not loaded: a case failed");
            return Ok(());
        }
        put(&self.spec.path, &bytes)?;
        match &self.live {
            Some(l) => println!(
                "live     {}",
                l.reload(&self.spec.name, &sha256_hex(&bytes))
            ),
            None => println!(
                "live     written to {} (a weft run on this config loads it by itself)",
                self.spec.path.display()
            ),
        }
        Ok(())
    }

    /// How the first case's output differs from the last build's.
    fn show_sample(&mut self, ran: &[super::test::Ran]) {
        let Some(first) = ran.first() else { return };
        let outputs = match &first.result {
            Some(Ok(o)) => o.clone(),
            _ => Vec::new(),
        };
        let line = match &self.last_sample {
            None => "first build".to_string(),
            Some((name, before)) if *name == first.name => {
                let was: Vec<_> = before.iter().map(RecordedOutput::from).collect();
                let now: Vec<_> = outputs.iter().map(RecordedOutput::from).collect();
                let ds = weft::replay::compare(&was, &now, &["meta.lastUpdated".to_string()]);
                if ds.is_empty() {
                    "unchanged since the last build".to_string()
                } else {
                    let shown: Vec<String> = ds.iter().take(5).map(|d| d.to_string()).collect();
                    format!(
                        "{} differences since the last build: {}{}",
                        ds.len(),
                        shown.join("; "),
                        if ds.len() > 5 { "; …" } else { "" }
                    )
                }
            }
            Some(_) => "another first case than the last build's".to_string(),
        };
        println!("sample   {}: {line}", first.name);
        self.last_sample = Some((first.name.clone(), outputs));
    }
}

/// The wall-clock time of day, UTC, for the screen's header.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// Runs the loop.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let package = package_name(&args.dir)?;
    // The first build before the configuration is read: a new crate's own
    // weft.toml names the component cargo is about to make.
    let first = build(&args.dir, &package)?;
    let config = args.config.load()?;
    let name = args.plugin.clone().unwrap_or_else(|| package.clone());
    let Some(spec) = config.plugins.get(&name).cloned() else {
        bail!(
            "{}: no [plugins.{name}] (add the lines `weft new` printed, or name it with --plugin)",
            config.source
        );
    };
    if spec.signing.require_signed || spec.signing.signer.is_some() {
        bail!(
            "{}: plugin {name} must be signed ([trust] require_signed or a signer); \
             weft dev loads unsigned builds: use a development configuration",
            config.source
        );
    }
    let fuel = spec.limits.fuel.is_some();
    let engine = super::engine_for(&config.runtime, fuel)?;
    let live = live(&args, &config)?;
    let mut session = Session {
        args: &args,
        spec,
        package,
        engine,
        live,
        last_sample: None,
    };
    let first = session.cycle(Some(first));
    if args.once {
        first?;
        return Ok(ExitCode::SUCCESS);
    }
    // A save's error (a case file unreadable, the plugin file not
    // writable) is shown, and the next save tries again.
    if let Err(e) = first {
        println!("error    {e:#}");
    }

    // A save, or Ctrl-C (SIGINT) or SIGTERM: then the weft run this
    // command started is stopped too.
    let (tx, rx) = mpsc::channel::<bool>();
    let stop = tx.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        let _ = stop.send(false);
    });
    let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        if let Ok(e) = e
            && !matches!(e.kind, notify::EventKind::Access(_))
        {
            let _ = tx.send(true);
        }
    })
    .context("watching the crate")?;
    use notify::Watcher;
    for (path, mode) in [
        ("src", notify::RecursiveMode::Recursive),
        ("cases", notify::RecursiveMode::Recursive),
        ("Cargo.toml", notify::RecursiveMode::NonRecursive),
    ] {
        let p = args.dir.join(path);
        if p.exists() {
            watcher
                .watch(&p, mode)
                .with_context(|| format!("watching {}", p.display()))?;
        }
    }
    println!("watching src/, cases/ and Cargo.toml (Ctrl-C to stop)");
    while let Ok(true) = rx.recv() {
        // A save is often several events: wait for the quiet.
        let mut stopping = false;
        while let Ok(save) = rx.recv_timeout(DEBOUNCE) {
            stopping |= !save;
        }
        if stopping {
            break;
        }
        if let Err(e) = session.cycle(None) {
            println!("error    {e:#}");
        }
        println!("watching src/, cases/ and Cargo.toml (Ctrl-C to stop)");
    }
    if session.live.as_ref().is_some_and(|l| l.child.is_some()) {
        println!("stopping the weft run this command started");
    }
    Ok(ExitCode::SUCCESS)
}
