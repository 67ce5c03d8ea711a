//! One loaded plugin version, and a call of it on one message.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap};

use super::TransformerPre;
use super::engine::EPOCH_TICK;
use super::host::{Grants, HostState};
pub use super::weft::plugin::types::{Message, Output, PluginError};

/// Per-plugin limits. The defaults are safe for a mapping plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one message may take, instantiation included.
    pub deadline: Duration,
    /// Most linear memory the plugin may use.
    pub memory_bytes: usize,
    /// Fuel (instructions, roughly) per message; `None` for no fuel limit.
    pub fuel: Option<u64>,
    /// Most bytes all outputs of one message may hold together.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_millis(100),
            memory_bytes: 64 * 1024 * 1024,
            fuel: None,
            max_output_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What the configuration says about one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginSpec {
    /// Its name in the configuration.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// Its limits.
    pub limits: Limits,
    /// Settings it may read with `config`.
    pub config: HashMap<String, String>,
    /// Lookup tables it may read with `lookup`: name to CSV file.
    pub lookups: HashMap<String, PathBuf>,
    /// Sample messages a version must handle as expected before it serves.
    pub samples: Vec<super::samples::Sample>,
}

/// Which limit stopped a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// The wall-clock deadline.
    Deadline(Duration),
    /// The memory cap, in bytes.
    Memory(usize),
    /// The fuel budget.
    Fuel(u64),
    /// The call stack (unbounded recursion).
    Stack,
    /// The total output size: what it produced and the cap.
    OutputSize {
        /// Bytes produced.
        produced: usize,
        /// The cap.
        cap: usize,
    },
}

/// Why a call produced no outputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin rejected the input (never retried).
    #[error("plugin {plugin} rejected the message: {reason}")]
    Reject {
        /// Plugin name.
        plugin: String,
        /// Its reason.
        reason: String,
    },
    /// The plugin asked for a retry.
    #[error("plugin {plugin} asked to retry: {reason}")]
    Retry {
        /// Plugin name.
        plugin: String,
        /// Its reason.
        reason: String,
    },
    /// The plugin reported a failure, or crashed (a trap or a panic).
    #[error("plugin {plugin} failed: {reason}")]
    Failed {
        /// Plugin name.
        plugin: String,
        /// What happened.
        reason: String,
    },
    /// The plugin hit one of its limits and was stopped.
    #[error("plugin {plugin} stopped: {}", describe(limit))]
    Limit {
        /// Plugin name.
        plugin: String,
        /// Which limit.
        limit: Limit,
    },
}

impl CallError {
    /// The error without the plugin's own words, which may quote patient
    /// data: what the log shows above debug level.
    pub fn summary(&self) -> String {
        match self {
            CallError::Reject { plugin, .. } => format!("plugin {plugin} rejected the message"),
            CallError::Retry { plugin, .. } => format!("plugin {plugin} asked to retry"),
            CallError::Failed { plugin, .. } => format!("plugin {plugin} failed"),
            CallError::Limit { .. } => self.to_string(),
        }
    }
}

fn describe(limit: &Limit) -> String {
    match limit {
        Limit::Deadline(d) => format!("deadline of {} ms exceeded", d.as_millis()),
        Limit::Memory(cap) => format!("memory cap of {} MiB reached", cap / (1024 * 1024)),
        Limit::Fuel(f) => format!("fuel budget of {f} exhausted"),
        Limit::Stack => "call stack exhausted (unbounded recursion?)".to_string(),
        Limit::OutputSize { produced, cap } => {
            format!("outputs total {produced} bytes, over the cap of {cap} bytes")
        }
    }
}

/// Where the time of one call went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallTimings {
    /// Creating the store: host state, WASI context, limits.
    pub setup: Duration,
    /// Instantiating the pre-linked component in a pool slot.
    pub instantiate: Duration,
    /// The call: lowering the message, the plugin's own work, lifting the
    /// outputs.
    pub call: Duration,
    /// Classifying the outcome, logging stdio and dropping the store (which
    /// returns the slot to the pool and resets its memory).
    pub teardown: Duration,
}

/// One loaded plugin version, ready to run.
pub struct Plugin {
    spec: PluginSpec,
    sha256: String,
    pre: TransformerPre<HostState>,
    grants: Arc<Grants>,
    fuel_enabled: bool,
    tier: super::engine::Tier,
}

impl Plugin {
    pub(crate) fn new(
        spec: PluginSpec,
        sha256: String,
        pre: TransformerPre<HostState>,
        grants: Arc<Grants>,
        fuel_enabled: bool,
        tier: super::engine::Tier,
    ) -> Plugin {
        Plugin {
            spec,
            sha256,
            pre,
            grants,
            fuel_enabled,
            tier,
        }
    }

    /// Which compiler made its code.
    pub fn tier(&self) -> super::engine::Tier {
        self.tier
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The sha256 of the component file: which version this is.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Its configuration.
    pub fn spec(&self) -> &PluginSpec {
        &self.spec
    }

    /// Instantiates the plugin once, within its limits, and drops the
    /// instance: what a new version must pass before it goes live (a
    /// component whose start-up traps or outgrows its memory fails here,
    /// not on a message).
    pub fn probe(&self) -> Result<(), CallError> {
        let limits = &self.spec.limits;
        let mut store = Store::new(
            self.pre.engine(),
            HostState::new(self.grants.clone(), "probe", limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        if self.fuel_enabled {
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        store.set_epoch_deadline(deadline_ticks(limits.deadline));
        let instance = self.pre.instantiate(&mut store);
        store.data().flush_stdio();
        match instance {
            Ok(_) => Ok(()),
            Err(e) => Err(self.trap_error(&store, e)),
        }
    }

    /// Runs the plugin on one message, in a fresh instance that is dropped
    /// afterwards, within the plugin's limits.
    pub fn call(&self, msg: &Message) -> Result<Vec<Output>, CallError> {
        self.call_timed(msg).0
    }

    /// [`Plugin::call`], also telling where the time went.
    pub fn call_timed(&self, msg: &Message) -> (Result<Vec<Output>, CallError>, CallTimings) {
        let t0 = Instant::now();
        let limits = &self.spec.limits;
        let engine = self.pre.engine();
        let mut store = Store::new(
            engine,
            HostState::new(self.grants.clone(), &msg.id, limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        let ticks = deadline_ticks(limits.deadline);
        if self.fuel_enabled {
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        store.set_epoch_deadline(ticks);
        let t1 = Instant::now();
        let instance = self.pre.instantiate(&mut store);
        let t2 = Instant::now();
        let result = instance.and_then(|instance| {
            store.set_epoch_deadline(ticks);
            instance
                .weft_plugin_transform()
                .call_transform(&mut store, msg)
        });
        let t3 = Instant::now();
        store.data().flush_stdio();
        let outcome = match result {
            Ok(Ok(outputs)) => self.check_output_size(outputs),
            Ok(Err(e)) => Err(self.plugin_error(e)),
            Err(e) => Err(self.trap_error(&store, e)),
        };
        drop(store);
        let t4 = Instant::now();
        let timings = CallTimings {
            setup: t1 - t0,
            instantiate: t2 - t1,
            call: t3 - t2,
            teardown: t4 - t3,
        };
        (outcome, timings)
    }

    fn check_output_size(&self, outputs: Vec<Output>) -> Result<Vec<Output>, CallError> {
        let cap = self.spec.limits.max_output_bytes;
        let produced: usize = outputs
            .iter()
            .map(|o| {
                o.message.body.len()
                    + o.message.content_type.len()
                    + o.message
                        .headers
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            })
            .sum();
        if produced > cap {
            return Err(CallError::Limit {
                plugin: self.name().to_string(),
                limit: Limit::OutputSize { produced, cap },
            });
        }
        Ok(outputs)
    }

    fn plugin_error(&self, e: PluginError) -> CallError {
        let plugin = self.name().to_string();
        match e {
            PluginError::Reject(reason) => CallError::Reject { plugin, reason },
            PluginError::Retry(reason) => CallError::Retry { plugin, reason },
            PluginError::Failed(reason) => CallError::Failed { plugin, reason },
        }
    }

    fn trap_error(&self, store: &Store<HostState>, e: wasmtime::Error) -> CallError {
        let plugin = self.name().to_string();
        let limits = &self.spec.limits;
        let limit = |limit| CallError::Limit {
            plugin: plugin.clone(),
            limit,
        };
        if store.data().limiter.memory_hit {
            return limit(Limit::Memory(limits.memory_bytes));
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => limit(Limit::Deadline(limits.deadline)),
            Some(Trap::OutOfFuel) => limit(Limit::Fuel(limits.fuel.unwrap_or(u64::MAX))),
            Some(Trap::StackOverflow) => limit(Limit::Stack),
            Some(Trap::UnreachableCodeReached) => CallError::Failed {
                plugin,
                // A Rust plugin that panics aborts with `unreachable`. Its
                // panic message may hold patient data: it goes to the debug
                // log with the rest of stderr, not here.
                reason: "plugin crashed (panic or abort; its stderr is in the debug log)"
                    .to_string(),
            },
            Some(Trap::MemoryOutOfBounds) => CallError::Failed {
                plugin,
                // Rust keeps large stack frames in linear memory below its
                // data: a runaway recursion ends here rather than in
                // `StackOverflow`.
                reason: "plugin trapped: out-of-bounds memory access (a stack overflow in linear memory, or a memory bug)".to_string(),
            },
            Some(trap) => CallError::Failed {
                plugin,
                reason: format!("plugin trapped: {trap}"),
            },
            None => CallError::Failed {
                plugin,
                reason: format!("{e:#}"),
            },
        }
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_micros().max(1);
    // One extra tick: the current one may be almost over.
    (deadline.as_micros() / tick) as u64 + 1
}
