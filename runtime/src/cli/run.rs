//! `weft run`: start every source, route and destination of a configuration
//! and run until SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use weft::admin::guard::Guard;
use weft::admin::tokens::{self, TokenStore};
use weft::pipeline::Pipeline;
use weft::reload::Reloader;
use weft::sources::set::Sources;

/// Arguments of `weft run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    /// Plugin worker threads (default: runtime.workers, else one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// At shutdown, how long work in flight may take (default:
    /// runtime.shutdown_grace_s, else 30).
    #[arg(long)]
    shutdown_grace_s: Option<u64>,
    /// Do not watch plugin files, lookup tables and the config file; reload
    /// only on SIGHUP or the admin API.
    #[arg(long)]
    no_watch: bool,
}

/// The admin API's listener, TLS side and guard; on a first run (no token
/// file), the token file with one `operate` token, written for the
/// command line to `data_dir/admin.token`.
async fn admin_api(
    admin: &weft::config::AdminConfig,
    runtime: &weft::config::RuntimeConfig,
) -> anyhow::Result<(
    tokio::net::TcpListener,
    Option<Arc<weft::tls::TlsListener>>,
    Arc<Guard>,
)> {
    if let Some(local) = tokens::first_run(&admin.tokens, &runtime.data_dir)? {
        tracing::info!(
            tokens = %admin.tokens.display(),
            token = %local.display(),
            "admin API: first run: made a token file with one operate token named local; the token itself is in the second file (mode 0600), which `weft plugins` reads; add others with `weft admin token add`"
        );
    }
    let store = TokenStore::open(&admin.tokens).context("admin API")?;
    let tls =
        weft::tls::TlsListener::new("admin API", admin.tls.as_ref()).context("admin API: TLS")?;
    let guard = Arc::new(Guard::new(store, admin.listen, tls.is_some(), &admin.hosts));
    let listener = tokio::net::TcpListener::bind(admin.listen)
        .await
        .with_context(|| format!("admin API: cannot listen on {}", admin.listen))?;
    tracing::info!(
        "admin API listening on {} ({}; GET /status, /metrics, /alerts, /plugins, /messages; POST /reload, /messages/resend, /messages/reprocess, /messages/purge; a bearer token on every request; the console at /console)",
        listener.local_addr()?,
        if tls.is_some() { "https" } else { "http" },
    );
    Ok((listener, tls, guard))
}

/// How long watched files must be quiet before a reload.
const WATCH_QUIET: Duration = Duration::from_millis(50);

/// Runs until a signal, then shuts down cleanly.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Read from its absolute path, as every reload reads it: a relative
    // `--config` would otherwise resolve the file's relative paths two ways,
    // and each reload would see data_dir, the admin API and file
    // destinations as changed.
    let config = super::ConfigArg {
        config: args
            .config
            .file()
            .map(|p| std::path::absolute(&p).unwrap_or(p)),
    }
    .load()?;
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    if config.sources.is_empty() {
        bail!("{}: no sources: nothing to listen on", config.source);
    }
    // Under systemd, the unit's StateDirectory= is the only place the
    // service may write (ProtectSystem=strict): a journal elsewhere would
    // fail at its first write, so say why now.
    if let Some(state) = std::env::var_os("STATE_DIRECTORY") {
        let states: Vec<std::path::PathBuf> = std::env::split_paths(&state).collect();
        if !states
            .iter()
            .any(|s| config.runtime.data_dir.starts_with(s))
        {
            tracing::warn!(
                data_dir = %config.runtime.data_dir.display(),
                "{}: runtime.data_dir is outside the service's StateDirectory ({}); \
                 the unit lets the service write only there",
                config.source,
                state.to_string_lossy()
            );
        }
    }
    let workers = args
        .workers
        .or(config.runtime.workers)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let grace = args
        .shutdown_grace_s
        .map(Duration::from_secs)
        .unwrap_or(config.runtime.shutdown_grace);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("weft-io")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // A write past the process's file-size limit must fail like a full
        // disk (the journal answers AE / 503 and recovers), not kill the
        // process: catching SIGXFSZ turns it into an EFBIG error.
        #[cfg(unix)]
        let _xfsz =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ));
        let fuel = config.plugins.values().any(|p| p.limits.fuel.is_some());
        let engine = Arc::new(super::engine_for(&config.runtime, fuel)?);
        let mut plugins = BTreeMap::new();
        for (name, spec) in &config.plugins {
            let plugin = engine
                .load(spec)
                .map_err(|e| anyhow::anyhow!("{}: {e}", config.source))?;
            weft::plugins::samples::check(&plugin)
                .map_err(|e| anyhow::anyhow!("{}: plugin {name}: {e}", config.source))?;
            plugins.insert(name.clone(), Arc::new(plugin));
        }
        let pipeline = Pipeline::start(&config, &plugins, workers)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.source))?;
        let config_file = args
            .config
            .file()
            .map(|p| std::path::absolute(&p).unwrap_or(p));
        let shutdown = CancellationToken::new();
        let sources = Sources::new(pipeline.clone(), shutdown.clone());
        sources
            .start_all(&config.sources)
            .map_err(anyhow::Error::msg)?;
        let reloader = Reloader::new(
            engine.clone(),
            pipeline.clone(),
            Some(sources.clone()),
            config.clone(),
            config_file,
            &plugins,
        );
        drop(plugins);
        let stop_watch = Arc::new(AtomicBool::new(false));
        let watcher = if args.no_watch {
            None
        } else {
            match weft::reload::watch(reloader.clone(), WATCH_QUIET, stop_watch.clone()) {
                Ok(handle) => {
                    tracing::info!(
                        "watching plugin files, lookup tables and the config file for changes"
                    );
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!("{e}; reload with SIGHUP or the admin API");
                    None
                }
            }
        };
        let mut listeners = tokio::task::JoinSet::new();
        if let Some(admin) = &config.admin {
            let (listener, tls, guard) = admin_api(admin, &config.runtime).await?;
            if let Some(tls) = &tls {
                reloader.set_admin_tls(tls.clone());
            }
            listeners.spawn(weft::admin::serve(
                listener,
                tls,
                admin.max_connections,
                guard,
                pipeline.clone(),
                Some(reloader.clone()),
                shutdown.clone(),
            ));
        }
        tracing::info!(
            workers,
            "weft running; SIGINT or SIGTERM stops it, SIGHUP reloads"
        );
        wait_for_signal(&reloader).await;
        stop_watch.store(true, Ordering::Relaxed);
        if let Some(w) = watcher {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        tracing::info!("shutting down: no new connections; finishing messages in flight");
        shutdown.cancel();
        // Connections finish the messages they started. One still waiting
        // after the grace period (an after-delivery ACK for a destination
        // that is down) is answered once the pipeline below gives up.
        let listeners_done = tokio::time::timeout(grace, async {
            while listeners.join_next().await.is_some() {}
        })
        .await
        .is_ok()
            && sources.wait(grace).await;
        let pending = pipeline.shutdown(grace).await;
        if !listeners_done
            && tokio::time::timeout(Duration::from_secs(10), async {
                while listeners.join_next().await.is_some() {}
            })
            .await
            .is_err()
        {
            listeners.abort_all();
        }
        if !listeners_done {
            sources.wait(Duration::from_secs(10)).await;
        }
        let s = &pipeline.stats;
        tracing::info!(
            received = s.received.load(Ordering::Relaxed),
            transformed = s.transformed.load(Ordering::Relaxed),
            rejected = s.rejected.load(Ordering::Relaxed),
            failed = s.failed.load(Ordering::Relaxed),
            delivered = s.delivered.load(Ordering::Relaxed),
            delivery_failed = s.delivery_failed.load(Ordering::Relaxed),
            "stopped"
        );
        for (destination, count) in pending {
            tracing::warn!(
                destination,
                count,
                "deliveries still pending; they are in the journal and resume at the next start"
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits for SIGINT or SIGTERM; reloads on each SIGHUP meanwhile.
async fn wait_for_signal(reloader: &Arc<Reloader>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    let r = reloader.clone();
                    let _ = tokio::task::spawn_blocking(move || r.reload()).await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reloader;
        let _ = tokio::signal::ctrl_c().await;
    }
}
