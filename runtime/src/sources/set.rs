//! The running sources: one listener per source, started at launch, and
//! started, restarted or stopped one at a time when a reload changes them.
//!
//! A reload first binds every new address ([`Sources::prepare`]), so a
//! configuration whose listener cannot be bound is refused before anything
//! changes; then [`Sources::apply`] swaps listeners. A stopped listener's
//! open connections finish the messages they started, on the settings they
//! started with.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{SourceConfig, SourceKind};
use crate::pipeline::Pipeline;

/// How long a restart at an unchanged address waits for the old listener
/// to let the port go.
const REBIND_WAIT: Duration = Duration::from_secs(5);

struct Running {
    config: SourceConfig,
    stop: CancellationToken,
    local: SocketAddr,
    /// Its TLS side, which a renewed certificate is handed to in place.
    tls: Option<Arc<crate::tls::TlsListener>>,
}

/// A source's TLS settings.
fn server_tls(source: &SourceConfig) -> Option<&crate::tls::ServerTls> {
    match &source.kind {
        SourceKind::Mllp(m) => m.tls.as_ref(),
        SourceKind::Http(h) => h.tls.as_ref(),
    }
}

/// `source` with its TLS files' digest set to `fingerprint`: to tell a
/// renewed certificate (same settings, new file contents) from a change.
fn with_fingerprint(source: &SourceConfig, fingerprint: &str) -> SourceConfig {
    let mut s = source.clone();
    let tls = match &mut s.kind {
        SourceKind::Mllp(m) => m.tls.as_mut(),
        SourceKind::Http(h) => h.tls.as_mut(),
    };
    if let Some(t) = tls {
        t.fingerprint = fingerprint.to_string();
    }
    s
}

/// Every source's listener.
pub struct Sources {
    pipeline: Arc<Pipeline>,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    running: Mutex<BTreeMap<String, Running>>,
}

/// Listeners bound ahead of a change: for sources that are new or listen
/// on a new address.
#[derive(Debug, Default)]
pub struct Bound(BTreeMap<String, std::net::TcpListener>);

/// The address a source listens on.
pub fn listen_addr(source: &SourceConfig) -> SocketAddr {
    match &source.kind {
        SourceKind::Mllp(m) => m.listen,
        SourceKind::Http(h) => h.listen,
    }
}

fn bind(source: &SourceConfig) -> Result<std::net::TcpListener, String> {
    let addr = listen_addr(source);
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("source {}: cannot listen on {addr}: {e}", source.name))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("source {}: {e}", source.name))?;
    Ok(listener)
}

impl Sources {
    /// No sources yet; they all stop when `shutdown` is cancelled. Must be
    /// called inside a tokio runtime.
    pub fn new(pipeline: Arc<Pipeline>, shutdown: CancellationToken) -> Arc<Sources> {
        Arc::new(Sources {
            pipeline,
            runtime: tokio::runtime::Handle::current(),
            shutdown,
            tasks: TaskTracker::new(),
            running: Mutex::new(BTreeMap::new()),
        })
    }

    /// Binds and starts every source (at launch); the first that cannot
    /// listen is an error naming it.
    pub fn start_all(&self, sources: &BTreeMap<String, SourceConfig>) -> Result<(), String> {
        let bound = sources
            .values()
            .map(|s| Ok((s.name.clone(), bind(s)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        for (name, listener) in bound {
            self.spawn(&sources[&name], listener)?;
        }
        Ok(())
    }

    /// Where each source listens now.
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        self.running
            .lock()
            .map(|r| r.iter().map(|(n, s)| (n.clone(), s.local)).collect())
            .unwrap_or_default()
    }

    /// Binds the listeners `next` needs that the running sources do not
    /// hold: sources that are new or whose address changed. An error (the
    /// address is taken, say) names the source; nothing has changed then.
    pub fn prepare(&self, next: &BTreeMap<String, SourceConfig>) -> Result<Bound, String> {
        let running = self
            .running
            .lock()
            .map_err(|_| "source registry poisoned")?;
        let mut bound = BTreeMap::new();
        for (name, source) in next {
            let same_addr = running.get(name).is_some_and(|r| {
                let (old, new) = (listen_addr(&r.config), listen_addr(source));
                old == new || (new.port() != 0 && r.local == new)
            });
            if !same_addr {
                bound.insert(name.clone(), bind(source)?);
            }
        }
        Ok(Bound(bound))
    }

    /// Brings the running sources in line with `next`: removed ones stop,
    /// changed ones restart (on the listener [`prepare`](Self::prepare)
    /// bound, or at an unchanged address once the old listener has let the
    /// port go), new ones start. Returns a line per change, for the log and
    /// the reload report.
    pub fn apply(&self, next: &BTreeMap<String, SourceConfig>, mut bound: Bound) -> Vec<String> {
        let mut changes = Vec::new();
        let Ok(mut running) = self.running.lock() else {
            return changes;
        };
        let removed: Vec<String> = running
            .keys()
            .filter(|n| !next.contains_key(*n))
            .cloned()
            .collect();
        for name in removed {
            if let Some(r) = running.remove(&name) {
                r.stop.cancel();
                tracing::info!(source = %name, "source removed: listener on {} closed", r.local);
                changes.push(format!("source {name} removed (was on {})", r.local));
            }
        }
        for (name, source) in next {
            let old = running.get_mut(name);
            if old.as_ref().is_some_and(|r| r.config == *source) {
                continue;
            }
            // Only the certificate files' contents changed: the listener
            // serves them to new connections; open ones keep theirs.
            if let Some(r) = old
                && let (Some(tls), Some(old_tls), Some(new_tls)) =
                    (&r.tls, server_tls(&r.config), server_tls(source))
                && with_fingerprint(source, &old_tls.fingerprint) == r.config
            {
                match tls.renew(new_tls) {
                    Ok(()) => {
                        tracing::info!(source = %name, "certificate renewed: new connections get it, open ones keep theirs");
                        changes.push(format!("source {name}: certificate renewed"));
                        r.config = source.clone();
                    }
                    Err(e) => {
                        tracing::error!(source = %name, error = %e, "renewed certificate refused; the old one keeps serving");
                    }
                }
                continue;
            }
            let old = running.get(name);
            let was = old.map(|r| r.local);
            if let Some(r) = running.remove(name) {
                r.stop.cancel();
            }
            let listener = match bound.0.remove(name) {
                Some(l) => Ok(l),
                None => rebind(source),
            };
            drop(running);
            let started = listener.and_then(|l| self.spawn(source, l));
            running = match self.running.lock() {
                Ok(r) => r,
                Err(_) => return changes,
            };
            match (started, was) {
                (Ok(()), None) => changes.push(format!("source {name} added")),
                (Ok(()), Some(was)) => {
                    changes.push(format!("source {name} restarted (was on {was})"))
                }
                (Err(e), _) => {
                    tracing::error!("{e}; the source is stopped until the next reload");
                    changes.push(format!("{e}; the source is stopped"));
                }
            }
        }
        changes
    }

    /// Starts serving one source on `listener`.
    fn spawn(&self, source: &SourceConfig, listener: std::net::TcpListener) -> Result<(), String> {
        let _rt = self.runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| format!("source {}: {e}", source.name))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("source {}: {e}", source.name))?;
        let (what, route) = match &source.kind {
            SourceKind::Mllp(_) => ("MLLP".to_string(), &source.route),
            SourceKind::Http(h) => (
                format!("HTTP (POST {}, GET /health)", h.path),
                &source.route,
            ),
        };
        tracing::info!(
            "{what} source {} listening on {local} (ack {}, route {})",
            source.name,
            source.ack,
            route.as_deref().unwrap_or("by match rules")
        );
        let tls =
            crate::tls::TlsListener::new(&format!("source {}", source.name), server_tls(source))
                .map_err(|e| format!("source {}: TLS settings refused: {e}", source.name))?;
        let stop = self.shutdown.child_token();
        let (src, pl, sd, t) = (
            source.clone(),
            self.pipeline.clone(),
            stop.clone(),
            tls.clone(),
        );
        match &source.kind {
            SourceKind::Mllp(m) => {
                self.tasks
                    .spawn(super::mllp::serve(listener, src, m.clone(), t, pl, sd))
            }
            SourceKind::Http(h) => {
                self.tasks
                    .spawn(super::http::serve(listener, src, h.clone(), t, pl, sd))
            }
        };
        if let Ok(mut r) = self.running.lock() {
            r.insert(
                source.name.clone(),
                Running {
                    config: source.clone(),
                    stop,
                    local,
                    tls,
                },
            );
        }
        Ok(())
    }

    /// Waits until every listener has stopped and its connections have
    /// finished (after the shutdown token is cancelled); false if `grace`
    /// ran out first.
    pub async fn wait(&self, grace: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

/// Binds an address a stopped listener is letting go of.
fn rebind(source: &SourceConfig) -> Result<std::net::TcpListener, String> {
    let deadline = Instant::now() + REBIND_WAIT;
    loop {
        match bind(source) {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
