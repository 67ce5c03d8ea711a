//! `weft run`: start every source, route and destination of a configuration
//! and run until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use weft::config::SourceKind;
use weft::pipeline::Pipeline;
use weft::sources;

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
}

/// Runs until a signal, then shuts down cleanly.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    if config.sources.is_empty() {
        bail!("{}: no sources: nothing to listen on", config.source);
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
        let engine = super::engine_for(&config.runtime, fuel)?;
        let pipeline = Pipeline::start(&config, &engine, workers)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.source))?;
        let shutdown = CancellationToken::new();
        let mut listeners = tokio::task::JoinSet::new();
        for (name, source) in &config.sources {
            let (listen, what) = match &source.kind {
                SourceKind::Mllp(m) => (m.listen, "MLLP".to_string()),
                SourceKind::Http(h) => (h.listen, format!("HTTP (POST {}, GET /health)", h.path)),
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("source {name}: cannot listen on {listen}"))?;
            tracing::info!(
                "{what} source {name} listening on {} (ack {}, route {})",
                listener.local_addr()?,
                source.ack,
                source.route.as_deref().unwrap_or("by match rules")
            );
            let (src, pl, sd) = (source.clone(), pipeline.clone(), shutdown.clone());
            match &source.kind {
                SourceKind::Mllp(m) => {
                    listeners.spawn(sources::mllp::serve(listener, src, m.clone(), pl, sd))
                }
                SourceKind::Http(h) => {
                    listeners.spawn(sources::http::serve(listener, src, h.clone(), pl, sd))
                }
            };
        }
        if let Some(admin) = &config.admin {
            let listener = tokio::net::TcpListener::bind(admin.listen)
                .await
                .with_context(|| format!("admin API: cannot listen on {}", admin.listen))?;
            tracing::info!(
                "admin API listening on {} (GET /status, /messages; POST /messages/resend, /messages/purge)",
                listener.local_addr()?
            );
            listeners.spawn(weft::admin::serve(
                listener,
                pipeline.clone(),
                shutdown.clone(),
            ));
        }
        tracing::info!(workers, "weft running; SIGINT or SIGTERM stops it");
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections; finishing messages in flight");
        shutdown.cancel();
        // Connections finish the messages they started. One still waiting
        // after the grace period (an after-delivery ACK for a destination
        // that is down) is answered once the pipeline below gives up.
        let listeners_done = tokio::time::timeout(grace, async {
            while listeners.join_next().await.is_some() {}
        })
        .await
        .is_ok();
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

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
