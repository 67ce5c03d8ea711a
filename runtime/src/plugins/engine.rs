//! The wasmtime engine every plugin runs on, and the loading of plugin
//! files into it.
//!
//! Plugins run on code from Cranelift, the optimizing compiler. Beside it
//! sits a second engine with Winch, the baseline compiler (about six times
//! less compile work, code about half as fast), so that a hot reload can
//! serve a new version at once and move it to optimized code as soon as
//! that is compiled ([`Tier`]). Both engines have the same limits: epoch
//! deadlines, fuel, memory caps.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::cache::{ComponentCache, Origin};
use super::compiler::{self, CompileIn};
use super::contract::{self, WIT_PACKAGE, WIT_VERSION};
use super::grants;
use super::host::{Grants, HostState};
use super::linked::Pre;
use super::plugin::{Identity, Plugin, PluginSpec};
use super::signature::manifest::{Manifest, ManifestError};
use super::tables;

/// How often the engine's epoch advances: the resolution of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The native stack a plugin call runs on (wasm frames and the host
/// functions it calls): wasmtime's default wasm stack limit (512 KiB) plus
/// room for the host.
const ASYNC_STACK_SIZE: usize = 2 << 20;
/// Bytes of a call's stack kept resident between calls (the rest is given
/// back), so a typical call takes no page faults on its stack.
const ASYNC_STACK_KEEP_RESIDENT: usize = 128 << 10;

/// How often (in epoch ticks) a running engine checks whether swap was
/// turned on after it started.
const SWAP_CHECK_TICKS: u64 = 10_000;

/// True when a swap device or file is active (`/proc/swaps` lists one), or
/// when that cannot be known (`/proc/swaps` unreadable, as under systemd's
/// `ProcSubset=pid`): memory is then reset the way that is safe with swap.
pub fn swap_active() -> bool {
    swap_listed(std::fs::read_to_string("/proc/swaps"))
}

/// [`swap_active`] on the contents of `/proc/swaps` (or why it could not
/// be read).
fn swap_listed(swaps: std::io::Result<String>) -> bool {
    match swaps {
        Ok(s) => s.lines().skip(1).any(|l| !l.trim().is_empty()),
        Err(_) => true,
    }
}

/// Which compiler made a loaded version's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Winch, the baseline compiler: quick to compile, slower to run. A
    /// hot reload serves a new version with it first.
    Baseline,
    /// Cranelift, the optimizing compiler: what every version runs on once
    /// it is compiled (and what the compile cache holds).
    Optimized,
}

impl Tier {
    /// Its name in the admin API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Baseline => "baseline",
            Tier::Optimized => "optimized",
        }
    }
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Count fuel in every plugin (needed when any plugin sets a fuel
    /// limit; costs some speed for all).
    pub fuel: bool,
    /// How many plugin instances may exist at once (the pool's size).
    pub max_instances: u32,
    /// Where compiled plugins are kept across restarts; `None` compiles on
    /// every start.
    pub cache_dir: Option<PathBuf>,
    /// Bytes of each linear memory slot kept resident (reset in place)
    /// when an instance ends, so the next instance takes no page faults
    /// there. `None` chooses: 1 MiB where Linux's `PAGEMAP_SCAN` lets only
    /// the touched pages be reset (kernel 6.7+), else 0, because zeroing
    /// untouched memory costs more than the page faults it saves.
    pub memory_keep_resident: Option<usize>,
    /// How many pool slots an ended instance may leave warm (memory kept
    /// resident, mapped for its module) before a new module reuses one of
    /// them rather than a never-used slot. Each plugin reuses its own warm
    /// slots first, so this does not slow a steady set of plugins; it bounds
    /// what versions replaced by hot reloads leave behind (wasmtime's
    /// default of 100 let every new version warm fresh slots: in
    /// `benches/reload.rs`, 200 swaps under traffic grew memory by ~30%
    /// with 100, ~18% with 8).
    pub max_unused_warm_slots: u32,
    /// Reset memory slots with Linux's `PAGEMAP_SCAN` (only the pages an
    /// instance wrote). `None` chooses: where the kernel has it and no swap
    /// is active. With swap, a page an instance wrote may be swapped out when
    /// its slot is reset; the scan looks only at pages in memory, so such a
    /// page would keep its contents for the next instance in the slot (a
    /// previous message's data). `Some(true)` forces it (for tests).
    pub pagemap_scan: Option<bool>,
    /// Where plugins are compiled: in this process (the default), or in a
    /// child process of this executable, as the CLI does (see
    /// [`super::compiler`]).
    pub compile_in: CompileIn,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fuel: false,
            max_instances: 64,
            cache_dir: None,
            memory_keep_resident: None,
            max_unused_warm_slots: 8,
            pagemap_scan: None,
            compile_in: CompileIn::ThisProcess,
        }
    }
}

/// A plugin file that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("plugin {plugin}: cannot read {path}: {source}")]
    Read {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid component, or did not compile.
    #[error("plugin {plugin}: {path} is not a loadable WebAssembly component: {reason}")]
    Compile {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Built against a contract version this runtime does not link.
    #[error(
        "plugin {plugin}: built against {WIT_PACKAGE}@{found}, but this runtime links {WIT_PACKAGE}@{WIT_VERSION} (compatible: {}); rebuild the plugin with a matching weft-sdk",
        contract::linked_lines()
    )]
    IncompatibleContract {
        /// Plugin name.
        plugin: String,
        /// The version the plugin names.
        found: String,
    },
    /// The component does not export the transformer world.
    #[error("plugin {plugin}: not a Weft plugin (no {WIT_PACKAGE}/transform export): {reason}")]
    NotAPlugin {
        /// Plugin name.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// It imports something the sandbox does not offer.
    #[error("plugin {plugin}: asks for capabilities the sandbox does not grant: {reason}")]
    Link {
        /// Plugin name.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// Its signature does not satisfy the site's trust policy.
    #[error("plugin {plugin}: {reason}")]
    Signature {
        /// Plugin name.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// Its manifest (`weft-manifest`) cannot be read.
    #[error("plugin {plugin}: {reason}")]
    Manifest {
        /// Plugin name.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// It asks for what the site does not grant, and `[trust]
    /// strict_grants` is on.
    #[error("plugin {plugin}: refused by [trust] strict_grants: {}", findings.join("; "))]
    Grants {
        /// Plugin name.
        plugin: String,
        /// What it asks for that is not granted.
        findings: Vec<String>,
    },
    /// A lookup table could not be loaded.
    #[error("plugin {plugin}: {source}")]
    Table {
        /// Plugin name.
        plugin: String,
        /// Why.
        source: tables::TableError,
    },
}

/// The settings that decide a plugin's compiled code (and so whether an
/// engine accepts code compiled elsewhere): the compiler, the component
/// model, epoch deadlines, fuel, the async stack. How instances are
/// allocated is not among them: a compiler process builds its engine from
/// this alone.
pub fn compile_config(fuel: bool, strategy: wasmtime::Strategy) -> Config {
    let mut config = Config::new();
    config
        .strategy(strategy)
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(fuel)
        .async_stack_size(ASYNC_STACK_SIZE);
    config
}

/// One compiler's engine and the linker that gives plugins the host.
struct Backend {
    engine: Engine,
    linker: Linker<HostState>,
    strategy: wasmtime::Strategy,
}

impl Backend {
    fn new(
        options: &EngineOptions,
        strategy: wasmtime::Strategy,
        pool: &PoolingAllocationConfig,
    ) -> wasmtime::Result<Backend> {
        let mut config = compile_config(options.fuel, strategy);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool.clone()));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        // Async WASI: a plugin waiting in a host call (a clock poll) waits
        // in a future its deadline can drop.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        super::linked::add_to_linker(&mut linker)?;
        Ok(Backend {
            engine,
            linker,
            strategy,
        })
    }
}

/// The shared engine: compiles, caches and links plugins.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<HostState>,
    /// The baseline compiler's engine; `None` where Winch is not available
    /// for this configuration (every version is then compiled optimized).
    baseline: Option<Backend>,
    cache: Option<ComponentCache>,
    fuel: bool,
    ticker_stop: Arc<AtomicBool>,
    pagemap_scan: bool,
    compile_in: CompileIn,
}

impl PluginEngine {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(options: &EngineOptions) -> wasmtime::Result<PluginEngine> {
        let mut pool = PoolingAllocationConfig::default();
        // Measured (benches/plugin_call.rs): with PAGEMAP_SCAN and 1 MiB kept
        // resident, the host's share of a call drops from ~21 to ~11 µs.
        let available = PoolingAllocationConfig::is_pagemap_scan_available();
        let swap = swap_active();
        let scan = options.pagemap_scan.unwrap_or(available && !swap) && available;
        if available && swap && !scan {
            tracing::info!(
                "swap is active: plugin memory is reset without PAGEMAP_SCAN (a swapped-out page would escape it); a plugin call costs ~10 µs more"
            );
        }
        let keep_resident = options
            .memory_keep_resident
            .unwrap_or(if scan { 1 << 20 } else { 0 });
        let n = options.max_instances.max(1);
        pool.total_component_instances(n)
            .total_stacks(n)
            .async_stack_keep_resident(ASYNC_STACK_KEEP_RESIDENT)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .max_memory_size(1 << 32)
            .linear_memory_keep_resident(keep_resident)
            .table_keep_resident(16 * 1024)
            .max_unused_warm_slots(options.max_unused_warm_slots)
            .pagemap_scan(if scan {
                wasmtime::Enabled::Yes
            } else {
                wasmtime::Enabled::No
            });
        let Backend { engine, linker, .. } =
            Backend::new(options, wasmtime::Strategy::Cranelift, &pool)?;
        // Baseline code serves a version only until its optimized code is
        // ready: its pool keeps nothing warm, so what those instances
        // touched goes back to the system as they end.
        let mut transient = pool.clone();
        transient
            .linear_memory_keep_resident(0)
            .table_keep_resident(0)
            .async_stack_keep_resident(0)
            .max_unused_warm_slots(0);
        let baseline = match Backend::new(options, wasmtime::Strategy::Winch, &transient) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::debug!(error = %e, "no baseline compiler: new versions are compiled optimized");
                None
            }
        };

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let ticking: Vec<Engine> = std::iter::once(engine.clone())
            .chain(baseline.iter().map(|b| b.engine.clone()))
            .collect();
        std::thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                let mut ticks: u64 = 0;
                let mut warned = false;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for e in &ticking {
                        e.increment_epoch();
                    }
                    ticks += 1;
                    // Swap turned on after start: the engine cannot change
                    // how it resets memory while running.
                    if scan && !warned && ticks.is_multiple_of(SWAP_CHECK_TICKS) && swap_active() {
                        warned = true;
                        tracing::error!(
                            "swap was turned on after weft started, while plugin memory is reset with PAGEMAP_SCAN, which misses swapped-out pages: restart weft (it then resets memory without the scan), or turn swap off"
                        );
                    }
                }
            })?;
        Ok(PluginEngine {
            pagemap_scan: scan,
            engine,
            linker,
            baseline,
            cache: options.cache_dir.clone().map(ComponentCache::new),
            fuel: options.fuel,
            ticker_stop,
            compile_in: options.compile_in.clone(),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// True when memory slots are reset with `PAGEMAP_SCAN`.
    pub fn uses_pagemap_scan(&self) -> bool {
        self.pagemap_scan
    }

    /// True when fuel is counted.
    pub fn fuel_enabled(&self) -> bool {
        self.fuel
    }

    /// Loads a plugin: reads the file, checks its contract version, compiles
    /// it (or takes it from the cache), links it against the sandbox, and
    /// loads its lookup tables. Nothing here runs plugin code.
    pub fn load(&self, spec: &PluginSpec) -> Result<Plugin, LoadError> {
        self.load_tier(spec, Tier::Optimized)
    }

    /// True when new versions can be compiled by the baseline compiler.
    pub fn has_baseline(&self) -> bool {
        self.baseline.is_some()
    }

    /// [`load`](Self::load) with the compiler of `tier` (the optimizing
    /// one when there is no baseline compiler). Baseline code is not
    /// cached.
    pub fn load_tier(&self, spec: &PluginSpec, tier: Tier) -> Result<Plugin, LoadError> {
        let plugin = spec.name.clone();
        let path = spec.path.display().to_string();
        let bytes = std::fs::read(&spec.path).map_err(|source| LoadError::Read {
            plugin: plugin.clone(),
            path: path.clone(),
            source,
        })?;
        let sha256 = hex(&Sha256::digest(&bytes));
        // Whose code it is, before any of it is compiled. A file whose
        // sections do not even add up is no component at all: said so, as
        // the compiler would.
        if let Err(e @ super::signature::SignatureError::Malformed(_)) =
            super::signature::split(&bytes)
        {
            return Err(LoadError::Compile {
                plugin,
                path,
                reason: e.to_string(),
            });
        }
        let provenance = spec
            .signing
            .check(&bytes)
            .map_err(|reason| LoadError::Signature {
                plugin: plugin.clone(),
                reason,
            })?;
        if let super::trust::Provenance::UnknownKey { .. } = &provenance {
            tracing::warn!(plugin = %plugin, "{provenance}; loaded because nothing requires a trusted signer");
        }
        let (manifest, findings) = self.check_manifest(spec, &bytes, &path)?;
        // Optimized code already in the cache (a version coming back, a
        // rollback) is quicker to load than baseline code is to compile.
        let cached = self
            .cache
            .as_ref()
            .is_some_and(|c| c.has(&self.engine, &sha256));
        let (engine, linker, strategy, cache, tier) = match (&self.baseline, tier) {
            (Some(b), Tier::Baseline) if !cached => {
                (&b.engine, &b.linker, b.strategy, None, Tier::Baseline)
            }
            _ => (
                &self.engine,
                &self.linker,
                wasmtime::Strategy::Cranelift,
                self.cache.as_ref(),
                Tier::Optimized,
            ),
        };
        let compile_err = |reason: String| LoadError::Compile {
            plugin: plugin.clone(),
            path: path.clone(),
            reason,
        };
        let started = std::time::Instant::now();
        let compile =
            |bytes: &[u8]| compiler::compile(&self.compile_in, engine, strategy, self.fuel, bytes);
        let (component, origin) = match cache {
            Some(cache) => cache.load_or_compile(engine, &bytes, &sha256, compile),
            None => compile(&bytes).and_then(|code| {
                // SAFETY: `code` is `precompile_component`'s output for
                // this engine's settings, made just now by this process or
                // by its own compiler child over a pipe only they hold;
                // wasmtime checks its header and settings again.
                unsafe { wasmtime::component::Component::deserialize(engine, &code) }
                    .map(|c| (c, Origin::Compiled))
            }),
        }
        .map_err(|e| compile_err(format!("{e:#}")))?;

        let ty = component.component_type();
        let names: Vec<String> = ty
            .imports(engine)
            .map(|(n, _)| n.to_string())
            .chain(ty.exports(engine).map(|(n, _)| n.to_string()))
            .collect();
        let version = match contract::version_of(names.iter().map(String::as_str)) {
            Some(Ok(v)) if contract::linked(&v) => v,
            Some(Ok(v)) => {
                return Err(LoadError::IncompatibleContract {
                    plugin,
                    found: v.to_string(),
                });
            }
            Some(Err(text)) => {
                return Err(LoadError::IncompatibleContract {
                    plugin,
                    found: text,
                });
            }
            None => {
                return Err(LoadError::NotAPlugin {
                    plugin,
                    reason: "it neither imports nor exports any weft:plugin interface".into(),
                });
            }
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                plugin: plugin.clone(),
                reason: format!("{e:#}"),
            })?;
        let pre = Pre::new(pre, &version).map_err(|e| LoadError::NotAPlugin {
            plugin: plugin.clone(),
            reason: format!("{e:#}"),
        })?;

        let mut grants = Grants {
            plugin: plugin.clone(),
            config: spec.config.clone(),
            tables: Default::default(),
        };
        for (name, file) in &spec.lookups {
            let table = tables::load(file).map_err(|source| LoadError::Table {
                plugin: plugin.clone(),
                source,
            })?;
            grants.tables.insert(name.clone(), Arc::new(table));
        }
        tracing::info!(
            plugin = %plugin,
            sha256 = %sha256,
            compiled = matches!(origin, Origin::Compiled),
            tier = tier.as_str(),
            provenance = %provenance,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plugin loaded"
        );
        Ok(Plugin::new(
            spec.clone(),
            Identity {
                sha256,
                provenance,
                manifest,
                findings,
            },
            pre,
            Arc::new(grants),
            self.fuel,
            tier,
        ))
    }

    /// Reads the plugin's manifest and holds it against what the site
    /// grants: each finding a warning, or the plugin refused with all of
    /// them under `strict_grants` (which also needs a manifest to check).
    fn check_manifest(
        &self,
        spec: &PluginSpec,
        bytes: &[u8],
        path: &str,
    ) -> Result<(Option<Arc<Manifest>>, Vec<String>), LoadError> {
        let plugin = &spec.name;
        let manifest = match super::signature::manifest::read(bytes) {
            Ok(info) => info.manifest,
            Err(e @ ManifestError::Malformed(_)) => {
                return Err(LoadError::Compile {
                    plugin: plugin.clone(),
                    path: path.to_string(),
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                return Err(LoadError::Manifest {
                    plugin: plugin.clone(),
                    reason: e.to_string(),
                });
            }
        };
        let findings = match &manifest {
            Some(m) => grants::findings(m, spec),
            None if spec.strict_grants => vec![format!(
                "it declares no manifest ({}), so what it reads cannot be checked",
                super::signature::manifest::SECTION
            )],
            None => Vec::new(),
        };
        if spec.strict_grants && !findings.is_empty() {
            return Err(LoadError::Grants {
                plugin: plugin.clone(),
                findings,
            });
        }
        for finding in &findings {
            tracing::warn!(plugin = %plugin, "{finding}");
        }
        Ok((manifest.map(Arc::new), findings))
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Lower-case hex of `bytes` (sha256 digests in names and reports).
pub use weft_signature::hex;

#[cfg(test)]
mod tests {
    use super::swap_listed;

    #[test]
    fn swap_counts_as_active_when_it_cannot_be_known() {
        let header = "Filename\tType\tSize\tUsed\tPriority\n";
        assert!(!swap_listed(Ok(header.to_string())));
        assert!(swap_listed(Ok(format!(
            "{header}/swapfile\tfile\t1048572\t0\t-2\n"
        ))));
        // Hidden (systemd's ProcSubset=pid, a container): the safe side.
        assert!(swap_listed(Err(std::io::Error::from(
            std::io::ErrorKind::NotFound
        ))));
    }
}
