//! Hot reload: brings the running plugins (and their lookup tables) in
//! line with the files on disk, without a restart and without losing or
//! failing a message.
//!
//! A reload is asked for by the file watcher ([`watch`]: plugin files,
//! lookup tables and the config file, debounced), by SIGHUP, or by the
//! admin API. Each plugin whose file, tables or settings changed is loaded
//! again off the hot path (read, contract check, compile or cache,
//! link, one trial instantiation); only when all of that passes is a new
//! routing built and swapped in atomically. A message a worker already
//! holds finishes on the versions it started with; the next one uses the
//! new ones. A version that fails is refused: the old one keeps serving,
//! and the refusal is in the log and in [`Reloader::status`].
//!
//! A config file that does not pass the checks of `weft check` (its plugins
//! loaded, their samples passed, new listen addresses bound) is refused
//! whole and the running config stays. Plugins, lookup tables, routes,
//! destinations and sources change live: a destination or source whose
//! settings changed restarts alone, a removed destination's pending
//! deliveries stay in the journal. Changes to `[runtime]` and `[admin]`
//! are reported as needing a restart.

mod plan;
mod status;
mod watch;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use self::status::Report;
pub use self::watch::watch;
use sha2::{Digest, Sha256};

use self::plan::{
    FILES_MARK, Fingerprint, Step, check, fingerprint, needs_restart, with_named_files,
};
use crate::admin::json;
use crate::config::Config;
use crate::journal::{now_ms, time};
use crate::pipeline::Pipeline;
use crate::plugins::engine::hex;
use crate::plugins::{Plugin, PluginEngine, PluginSpec, Tier};
use crate::routing::Routing;
use crate::sources::set::{Bound, Sources};

/// How many replaced versions each plugin remembers.
const HISTORY: usize = 20;

/// A version that was live and was replaced.
#[derive(Debug, Clone)]
struct Replaced {
    sha256: String,
    live_since: i64,
    replaced_at: i64,
}

/// One plugin as it runs now.
struct Live {
    plugin: Arc<Plugin>,
    fingerprint: Fingerprint,
    live_since: i64,
    replaced: Vec<Replaced>,
    last_refusal: Option<json::RefusedChange>,
    /// What was refused last, so that it is not tried again until it changes.
    refused: Option<Fingerprint>,
    /// How many times a new version (or new tables) went live.
    swaps: u64,
}

struct State {
    config: Config,
    config_text: Option<String>,
    config_refusal: Option<json::RefusedChange>,
    plugins: BTreeMap<String, Live>,
    reloads: u64,
    /// When the last reload ran, and what it did.
    last: Option<(i64, json::ReloadReport)>,
}

/// Keeps the running plugins in line with the files.
pub struct Reloader {
    engine: Arc<PluginEngine>,
    pipeline: Arc<Pipeline>,
    sources: Option<Arc<Sources>>,
    config_path: Option<PathBuf>,
    state: Mutex<State>,
    /// The admin API's TLS side, renewed when its certificate files change.
    admin_tls: Mutex<Option<Arc<crate::tls::TlsListener>>>,
    /// Itself, for the threads that move new versions to optimized code.
    me: std::sync::Weak<Reloader>,
}

/// Tells the journal which plugins this node runs now (`weft nodes`); a
/// journal that cannot be told is said, not fatal (the next heartbeat
/// tells it).
fn tell_journal(pipeline: &Pipeline, plugins: &BTreeMap<String, Live>) {
    let list: Vec<crate::journal::NodePlugin> = plugins
        .iter()
        .map(|(name, live)| crate::journal::NodePlugin {
            name: name.clone(),
            sha256: live.plugin.sha256().to_string(),
        })
        .collect();
    if let Err(e) = pipeline.journal().set_plugins(&list) {
        tracing::warn!(error = %e, "the journal was not told this node's plugins");
    }
}

impl Reloader {
    /// Takes over the plugins `Pipeline::start` was given (`plugins`, as
    /// loaded from `config`). `config_path` is the file to watch (`None`
    /// for the embedded default).
    pub fn new(
        engine: Arc<PluginEngine>,
        pipeline: Arc<Pipeline>,
        sources: Option<Arc<Sources>>,
        config: Config,
        config_path: Option<PathBuf>,
        plugins: &BTreeMap<String, Arc<Plugin>>,
    ) -> Arc<Reloader> {
        let now = now_ms();
        let live = plugins
            .iter()
            .map(|(name, p)| {
                let fingerprint = fingerprint(p.spec()).unwrap_or_else(|_| Fingerprint {
                    file: p.sha256().to_string(),
                    rest: String::new(),
                });
                (
                    name.clone(),
                    Live {
                        plugin: p.clone(),
                        fingerprint,
                        live_since: now,
                        replaced: Vec::new(),
                        last_refusal: None,
                        refused: None,
                        swaps: 0,
                    },
                )
            })
            .collect();
        tell_journal(&pipeline, &live);
        let config_text = config_path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| with_named_files(text, &config));
        Arc::new_cyclic(|me| Reloader {
            engine,
            pipeline,
            sources,
            config_path,
            admin_tls: Mutex::new(None),
            state: Mutex::new(State {
                config,
                config_text,
                config_refusal: None,
                plugins: live,
                reloads: 0,
                last: None,
            }),
            me: me.clone(),
        })
    }

    /// Hands over the admin API's TLS side, so a renewed certificate is
    /// served to its new connections without a restart.
    pub fn set_admin_tls(&self, tls: Arc<crate::tls::TlsListener>) {
        if let Ok(mut t) = self.admin_tls.lock() {
            *t = Some(tls);
        }
    }

    /// The configuration running now (waits for a reload under way).
    pub fn config(&self) -> crate::config::Config {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .config
            .clone()
    }

    /// Every file whose change calls for a reload: the config file, each
    /// plugin's component and lookup tables, and the TLS certificates, keys
    /// and CAs of sources and destinations, and the trust list.
    pub fn watched_files(&self) -> HashSet<PathBuf> {
        let Ok(st) = self.state.lock() else {
            return HashSet::new();
        };
        let mut files: HashSet<PathBuf> = self.config_path.iter().cloned().collect();
        for spec in st.config.plugins.values() {
            files.insert(absolute(&spec.path));
            files.extend(spec.lookups.values().map(|p| absolute(p)));
        }
        files.extend(plan::named_files(&st.config).iter().map(|p| absolute(p)));
        files
    }

    /// Brings plugins (and, when the config file changed and passes its
    /// checks, plugins and routes of the new config) in line with the
    /// files. Blocking: compiles. One reload runs at a time.
    pub fn reload(&self) -> Report {
        let started = Instant::now();
        let Ok(mut st) = self.state.lock() else {
            return Report::default();
        };
        st.reloads += 1;
        let mut report = Report::default();

        // The config file first: a changed one must pass every check, load
        // every plugin new to it (samples included) and bind every new
        // listen address, or nothing of it changes.
        let mut applied = None;
        if let Some((path, text)) = self.changed_config(&st) {
            let ready = crate::config::load(&path)
                .map_err(|e| e.to_string())
                .and_then(|config| {
                    let plan = self.plan(&st, &config)?;
                    let bound = match &self.sources {
                        Some(s) => s.prepare(&config.sources)?,
                        None => Bound::default(),
                    };
                    Ok((config, plan, bound))
                });
            match ready {
                Ok((config, plan, bound)) => {
                    report.needs_restart = needs_restart(&st.config, &config);
                    for section in &report.needs_restart {
                        tracing::warn!(
                            section,
                            "config change needs a restart to take effect (not applied live)"
                        );
                    }
                    applied = Some((config, text, plan, bound));
                }
                Err(reason) => {
                    tracing::error!("config change refused; the running config stays:\n{reason}");
                    st.config_refusal = Some(json::RefusedChange {
                        at: time::iso(now_ms()),
                        sha256: Some(hex(&Sha256::digest(text.as_bytes()))),
                        reason: reason.clone(),
                    });
                    // Not tried again until the file changes.
                    st.config_text = Some(text);
                    report.config_refused = Some(reason);
                }
            }
        }
        let (config, plan, bound) = match applied {
            Some((config, text, plan, bound)) => {
                // What the new config's own TLS files hold now.
                let text = text
                    .split_once(FILES_MARK)
                    .map_or(text.as_str(), |(t, _)| t)
                    .to_string();
                st.config_text = Some(with_named_files(text, &config));
                report.config_applied = true;
                crate::metrics::metrics().declare(&config);
                (config, plan, Some(bound))
            }
            None => {
                let config = st.config.clone();
                match self.plan(&st, &config) {
                    Ok(plan) => (config, plan, None),
                    // Only a plugin new to this config can fail hard, and
                    // the running config's plugins are all live.
                    Err(reason) => {
                        tracing::error!("reload failed: {reason}");
                        report.elapsed = started.elapsed();
                        return report;
                    }
                }
            }
        };

        // Apply: new live set, new routing, swapped in one store.
        let now = now_ms();
        let mut next: BTreeMap<String, Live> = BTreeMap::new();
        let mut old = std::mem::take(&mut st.plugins);
        for (name, step) in plan {
            let previous = old.remove(&name);
            match step {
                Step::Keep => {
                    if let Some(p) = previous {
                        next.insert(name, p);
                    }
                }
                Step::Swap(plugin, fingerprint) => {
                    let (mut replaced, last_refusal, from, swaps) = match previous {
                        Some(p) => {
                            let mut r = p.replaced;
                            r.push(Replaced {
                                sha256: p.plugin.sha256().to_string(),
                                live_since: p.live_since,
                                replaced_at: now,
                            });
                            (
                                r,
                                p.last_refusal,
                                Some(p.plugin.sha256().to_string()),
                                p.swaps + 1,
                            )
                        }
                        None => (Vec::new(), None, None, 0),
                    };
                    if replaced.len() > HISTORY {
                        replaced.drain(..replaced.len() - HISTORY);
                    }
                    report
                        .swapped
                        .push((name.clone(), from, plugin.sha256().to_string()));
                    next.insert(
                        name,
                        Live {
                            plugin,
                            fingerprint,
                            live_since: now,
                            replaced,
                            last_refusal,
                            refused: None,
                            swaps,
                        },
                    );
                }
                Step::Refuse(fp, reason) => {
                    report.refused.push((name.clone(), reason.clone()));
                    if let Some(mut p) = previous {
                        p.last_refusal = Some(json::RefusedChange {
                            at: time::iso(now),
                            sha256: fp.as_ref().map(|f| f.file.clone()),
                            reason,
                        });
                        p.refused = fp;
                        next.insert(name, p);
                    }
                }
            }
        }
        let plugins: BTreeMap<String, Arc<Plugin>> = next
            .iter()
            .map(|(n, l)| (n.clone(), l.plugin.clone()))
            .collect();
        match Routing::build(&config, &plugins) {
            Ok(routing) => {
                // Destinations before the routes that use them, sources
                // once the routes are there to take their messages.
                if report.config_applied {
                    report.changes = self.pipeline.apply_destinations(&config.destinations);
                    self.pipeline.alerts().apply(&config);
                }
                if !report.swapped.is_empty() || report.config_applied {
                    self.pipeline.swap_routing(routing);
                }
                if let (Some(sources), Some(bound)) = (&self.sources, bound) {
                    report.changes.extend(sources.apply(&config.sources, bound));
                }
                if report.config_applied {
                    report
                        .changes
                        .extend(self.renew_admin_tls(&st.config, &config));
                }
                st.plugins = next;
                st.config = config;
                tell_journal(&self.pipeline, &st.plugins);
            }
            Err(e) => {
                // Checked configs always build; keep everything as it was.
                tracing::error!(error = %e, "reload not applied");
                st.plugins = old.into_iter().chain(next).collect();
                report.swapped.clear();
                report.config_applied = false;
            }
        }
        report.elapsed = started.elapsed();
        let m = crate::metrics::metrics();
        m.reloaded("swapped", report.swapped.len());
        m.reloaded("refused", report.refused.len());
        m.reloaded("config_applied", usize::from(report.config_applied));
        m.reloaded(
            "config_refused",
            usize::from(report.config_refused.is_some()),
        );
        for (name, from, to) in &report.swapped {
            tracing::info!(
                plugin = %name,
                sha256 = %to,
                replaces = from.as_deref().unwrap_or("-"),
                elapsed_ms = report.elapsed.as_millis() as u64,
                "plugin version live"
            );
        }
        for (name, reason) in &report.refused {
            tracing::error!(plugin = %name, "new plugin version refused; the running one keeps serving: {reason}");
        }
        // Versions serving on baseline code move to optimized code as soon
        // as it is compiled, off this thread.
        let baseline: Vec<(String, Fingerprint, PluginSpec)> = st
            .plugins
            .iter()
            .filter(|(_, l)| l.plugin.tier() == Tier::Baseline)
            .map(|(n, l)| (n.clone(), l.fingerprint.clone(), l.plugin.spec().clone()))
            .collect();
        if !baseline.is_empty()
            && let Some(me) = self.me.upgrade()
        {
            let spawned = std::thread::Builder::new()
                .name("weft-tier-up".into())
                .spawn(move || {
                    for (name, fp, spec) in baseline {
                        me.tier_up(&name, &fp, &spec);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the optimizing compile; new versions stay on baseline code");
            }
        }
        st.last = Some((now_ms(), report.to_body()));
        drop(st);
        give_back_freed_memory();
        report
    }

    /// Serves the admin API's renewed certificate (same files, new
    /// contents) to its new connections: what changed, for the report.
    fn renew_admin_tls(&self, old: &Config, new: &Config) -> Option<String> {
        let (Some(old), Some(new)) = (
            old.admin.as_ref().and_then(|a| a.tls.as_ref()),
            new.admin.as_ref().and_then(|a| a.tls.as_ref()),
        ) else {
            return None;
        };
        if old.fingerprint == new.fingerprint || old.files() != new.files() {
            return None;
        }
        let listener = self.admin_tls.lock().ok()?.clone()?;
        match listener.renew(new) {
            Ok(()) => {
                tracing::info!("admin API: renewed certificate served to new connections");
                Some("admin API: certificate renewed".to_string())
            }
            Err(e) => {
                tracing::error!(error = %e, "admin API: renewed certificate refused; the old one stays");
                None
            }
        }
    }

    /// The config file's path and what it stands for now (its text and the
    /// contents of the TLS files the running config names), when that
    /// differs from what the running config was read from: a renewed
    /// certificate reloads the config as an edit of the file would, and
    /// the sources and destinations using it restart with it.
    fn changed_config(&self, st: &State) -> Option<(PathBuf, String)> {
        let path = self.config_path.as_ref()?;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = with_named_files(text, &st.config);
                (Some(&text) != st.config_text.as_ref()).then(|| (path.clone(), text))
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot read the config file; the running config stays");
                None
            }
        }
    }

    /// Compiles the live version of `name` (whose files and settings were
    /// `fp`) with the optimizing compiler and, if it is still the live one
    /// and passes the same checks, puts it in place of its baseline code:
    /// the same version, faster. Not a swap: no history, no new sha256.
    fn tier_up(&self, name: &str, fp: &Fingerprint, spec: &PluginSpec) {
        let started = Instant::now();
        let optimized = match self.engine.load(spec).map_err(|e| e.to_string()) {
            Ok(p) if p.sha256() == fp.file => check(&p).map(|()| p),
            Ok(_) => return, // The file changed since: the next reload sees it.
            Err(e) => Err(e),
        };
        let optimized = match optimized {
            Ok(p) => Arc::new(p),
            Err(reason) => {
                tracing::warn!(plugin = %name, "optimized compile failed; the version stays on baseline code: {reason}");
                return;
            }
        };
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let State {
            config, plugins, ..
        } = &mut *st;
        let Some(live) = plugins.get_mut(name) else {
            return;
        };
        if live.fingerprint != *fp || live.plugin.tier() != Tier::Baseline {
            return;
        }
        live.plugin = optimized;
        let set: BTreeMap<String, Arc<Plugin>> = plugins
            .iter()
            .map(|(n, l)| (n.clone(), l.plugin.clone()))
            .collect();
        match Routing::build(config, &set) {
            Ok(routing) => {
                self.pipeline.swap_routing(routing);
                tracing::info!(
                    plugin = %name,
                    sha256 = %fp.file,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "plugin version now on optimized code"
                );
            }
            Err(e) => tracing::error!(plugin = %name, error = %e, "optimized code not applied"),
        }
        drop(st);
        give_back_freed_memory();
    }
}

/// Compiling a version allocates a lot on the compiler's threads, and
/// glibc keeps what it frees in those threads' arenas: hand it back to the
/// system, so that memory stays flat however many versions come and go.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it is safe to
    // call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
