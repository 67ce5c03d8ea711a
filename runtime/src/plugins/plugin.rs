//! One loaded plugin version, and a call of it on one message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap};

use super::engine::EPOCH_TICK;
use super::host::{Grants, HostState};
use super::linked::Pre;
pub use super::weft::plugin::types::{Message, Output, PluginError};
use super::{executor, text};

pub use weft_config::{HEADER_WEIGHT, Limits, OUTPUT_WEIGHT, PluginSpec};

/// Longest reason (reject, retry, failure) kept from a plugin; longer ones
/// are cut, with a marker saying how much was cut.
pub const MAX_REASON_BYTES: usize = 1024;

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
    /// The number of outputs: how many it produced and the cap.
    Outputs {
        /// Outputs produced.
        produced: usize,
        /// The cap.
        cap: usize,
    },
    /// The number of headers on its outputs: how many and the cap.
    Headers {
        /// Headers produced.
        produced: usize,
        /// The cap.
        cap: usize,
    },
    /// More data than the output cap handed to the host in one call (an
    /// output list whose items share memory, a huge log record): the copy
    /// was stopped before the host made it.
    HostCopy(usize),
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
    /// The plugin's `init` refused the version (its settings or tables).
    #[error("plugin {plugin} refused its settings in init: {reason}")]
    Init {
        /// Plugin name.
        plugin: String,
        /// Its reason.
        reason: String,
    },
}

impl Limit {
    /// Its name, one word (for metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Limit::Deadline(_) => "deadline",
            Limit::Memory(_) => "memory",
            Limit::Fuel(_) => "fuel",
            Limit::Stack => "stack",
            Limit::OutputSize { .. } => "output_size",
            Limit::Outputs { .. } => "outputs",
            Limit::Headers { .. } => "headers",
            Limit::HostCopy(_) => "host_copy",
        }
    }
}

impl CallError {
    /// What came of the message, one word (for metrics): `rejected`,
    /// `limit` or `failed`.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::Reject { .. } => "rejected",
            CallError::Limit { .. } => "limit",
            _ => "failed",
        }
    }

    /// The error without the plugin's own words, which may quote patient
    /// data: what the log shows above debug level.
    pub fn summary(&self) -> String {
        match self {
            CallError::Reject { plugin, .. } => format!("plugin {plugin} rejected the message"),
            CallError::Retry { plugin, .. } => format!("plugin {plugin} asked to retry"),
            CallError::Failed { plugin, .. } => format!("plugin {plugin} failed"),
            CallError::Limit { .. } => self.to_string(),
            // Settings, not a message: the plugin's words carry no patient
            // data (the contract asks it not to quote a secret setting).
            CallError::Init { .. } => self.to_string(),
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
        Limit::Outputs { produced, cap } => {
            format!("{produced} outputs, over the cap of {cap}")
        }
        Limit::Headers { produced, cap } => {
            format!("{produced} output headers, over the cap of {cap}")
        }
        Limit::HostCopy(cap) => {
            format!("passed the host more than {cap} bytes in one call (the output cap)")
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
    pre: Pre,
    grants: Arc<Grants>,
    fuel_enabled: bool,
    tier: super::engine::Tier,
    identity: Identity,
    record: crate::journal::PluginUse,
}

/// What a loaded version is: its bytes' digest, who signed it, and what it
/// declares.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The sha256 of its component, hex.
    pub sha256: String,
    /// Who signed it.
    pub provenance: super::trust::Provenance,
    /// Its manifest, if it has one.
    pub manifest: Option<Arc<super::signature::manifest::Manifest>>,
    /// Where its manifest and the site's grants disagree (warnings: with
    /// `strict_grants` such a version is not loaded).
    pub findings: Vec<String>,
}

impl Plugin {
    pub(crate) fn new(
        spec: PluginSpec,
        identity: Identity,
        pre: Pre,
        grants: Arc<Grants>,
        fuel_enabled: bool,
        tier: super::engine::Tier,
    ) -> Plugin {
        use super::trust::Provenance;
        let (signer, key) = match &identity.provenance {
            Provenance::Unsigned => (None, None),
            Provenance::Signed { signer, key_id } => (Some(signer.clone()), Some(key_id.clone())),
            Provenance::UnknownKey { key_id, .. } => (None, Some(key_id.clone())),
        };
        let record = crate::journal::PluginUse {
            plugin: spec.name.clone(),
            sha256: identity.sha256.clone(),
            declared_version: identity.manifest.as_ref().map(|m| m.version.clone()),
            signer,
            key,
        };
        Plugin {
            spec,
            pre,
            grants,
            fuel_enabled,
            tier,
            identity,
            record,
        }
    }

    /// Its manifest, if it declares one.
    pub fn manifest(&self) -> Option<&super::signature::manifest::Manifest> {
        self.identity.manifest.as_deref()
    }

    /// Where its manifest and the site's grants disagree
    /// ([`super::grants`]).
    pub fn grant_findings(&self) -> &[String] {
        &self.identity.findings
    }

    /// What the journal records of a message going through this version:
    /// name, sha256, declared version, signer.
    pub fn record(&self) -> &crate::journal::PluginUse {
        &self.record
    }

    /// Who signed it, as the site's trust list sees it.
    pub fn provenance(&self) -> &super::trust::Provenance {
        &self.identity.provenance
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
        &self.identity.sha256
    }

    /// Its configuration.
    pub fn spec(&self) -> &PluginSpec {
        &self.spec
    }

    /// Instantiates the plugin once, within its limits, and calls its
    /// `init` (plugins built against the 0.1 contract have none): what a
    /// new version must pass before it goes live. A component whose
    /// start-up traps, outgrows its memory or overruns its deadline fails
    /// here, not on a message; so does one whose `init` refuses its
    /// settings ([`CallError::Init`], with the plugin's reason).
    pub fn probe(&self) -> Result<(), CallError> {
        let deadline = Instant::now() + self.spec.limits.deadline;
        let mut store = self.store("init", deadline);
        let result = executor::block_on(async {
            tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), async {
                let instance = self.pre.instantiate(&mut store).await?;
                store.set_epoch_deadline(ticks_until(deadline));
                instance.init(&mut store).await
            })
            .await
        });
        store.data().flush_stdio();
        match result {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(CallError::Init {
                plugin: self.name().to_string(),
                reason: text::reason(&reason),
            }),
            Ok(Err(e)) => Err(self.trap_error(&store, e)),
            Err(_) => Err(self.limit(Limit::Deadline(self.spec.limits.deadline))),
        }
    }

    /// Runs the plugin on one message, in a fresh instance that is dropped
    /// afterwards, within the plugin's limits.
    pub fn call(&self, msg: &Message) -> Result<Vec<Output>, CallError> {
        self.call_until(msg, Instant::now() + self.spec.limits.deadline)
    }

    /// [`Plugin::call`] with the time it may take ending at `deadline`
    /// (rather than one deadline from now): a route gives a plugin one
    /// deadline per message, however many calls the message takes.
    pub fn call_until(&self, msg: &Message, deadline: Instant) -> Result<Vec<Output>, CallError> {
        self.call_tallied(msg, deadline).map(|(outputs, _)| outputs)
    }

    /// [`Plugin::call_until`], with the outputs' tally (counted once, for
    /// the call's caps), so a route can add it to the message's.
    pub(crate) fn call_tallied(
        &self,
        msg: &Message,
        deadline: Instant,
    ) -> Result<(Vec<Output>, Tally), CallError> {
        executor::block_on(self.run(msg, deadline)).0
    }

    /// [`Plugin::call`], also telling where the time went.
    pub fn call_timed(&self, msg: &Message) -> (Result<Vec<Output>, CallError>, CallTimings) {
        let (r, timings) =
            executor::block_on(self.run(msg, Instant::now() + self.spec.limits.deadline));
        (r.map(|(outputs, _)| outputs), timings)
    }

    /// A store for one call: the plugin's grants, memory cap, fuel, the
    /// most the host copies out of it in one call, and an epoch deadline.
    fn store(&self, message_id: &str, deadline: Instant) -> Store<HostState> {
        let limits = &self.spec.limits;
        let mut store = Store::new(
            self.pre.engine(),
            HostState::new(self.grants.clone(), message_id, limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        if self.fuel_enabled {
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        store.set_hostcall_fuel(hostcall_fuel(limits));
        store.set_epoch_deadline(ticks_until(deadline));
        store
    }

    /// One call, ending at `deadline` at the latest: instantiation, then the
    /// call with what is left of the deadline. A plugin working in guest code
    /// is stopped by the epoch deadline; one waiting in a host call (a WASI
    /// clock poll) by the timer, which drops the call where it waits.
    async fn run(
        &self,
        msg: &Message,
        deadline: Instant,
    ) -> (Result<(Vec<Output>, Tally), CallError>, CallTimings) {
        let t0 = Instant::now();
        let mut store = self.store(&msg.id, deadline);
        let t1 = Instant::now();
        let mut t2 = t1;
        let result = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), async {
            let instance = self.pre.instantiate(&mut store).await?;
            t2 = Instant::now();
            // Only what is left of the deadline: start-up work counts.
            store.set_epoch_deadline(ticks_until(deadline));
            instance.transform(&mut store, msg).await
        })
        .await;
        let t3 = Instant::now();
        store.data().flush_stdio();
        let outcome = match result {
            Ok(Ok(Ok(outputs))) => self.check_outputs(outputs),
            Ok(Ok(Err(e))) => Err(self.plugin_error(e)),
            Ok(Err(e)) => Err(self.trap_error(&store, e)),
            Err(_) => Err(self.limit(Limit::Deadline(self.spec.limits.deadline))),
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

    fn limit(&self, limit: Limit) -> CallError {
        CallError::Limit {
            plugin: self.name().to_string(),
            limit,
        }
    }

    /// Refuses outputs over the plugin's count, header and size caps.
    fn check_outputs(&self, outputs: Vec<Output>) -> Result<(Vec<Output>, Tally), CallError> {
        let tally = Tally::of(&outputs);
        tally.check(&self.spec.limits).map_err(|l| self.limit(l))?;
        Ok((outputs, tally))
    }

    fn plugin_error(&self, e: PluginError) -> CallError {
        let plugin = self.name().to_string();
        let e = match e {
            PluginError::Reject(r) => PluginError::Reject(text::reason(&r)),
            PluginError::Retry(r) => PluginError::Retry(text::reason(&r)),
            PluginError::Failed(r) => PluginError::Failed(text::reason(&r)),
        };
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
        if is_hostcall_fuel_exhausted(&e) {
            return limit(Limit::HostCopy(limits.max_output_bytes));
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
                reason: text::reason(&format!("{e:#}")),
            },
        }
    }
}

/// Counts and weighs a set of outputs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Outputs.
    pub outputs: usize,
    /// Headers, over all outputs.
    pub headers: usize,
    /// Weight in bytes (see [`Limits::max_output_bytes`]).
    pub bytes: usize,
}

impl Tally {
    /// The tally of `outputs`.
    pub fn of(outputs: &[Output]) -> Tally {
        let mut t = Tally::default();
        for o in outputs {
            let m = &o.message;
            t.outputs += 1;
            t.headers += m.headers.len();
            let fields = o.destination.as_ref().map_or(0, String::len)
                + m.id.len()
                + m.content_type.len()
                + m.body.len();
            t.bytes = t.bytes.saturating_add(fields.max(OUTPUT_WEIGHT));
            for (k, v) in &m.headers {
                t.bytes = t
                    .bytes
                    .saturating_add((k.len() + v.len()).max(HEADER_WEIGHT));
            }
        }
        t
    }

    /// Adds another tally.
    pub fn add(&mut self, other: Tally) {
        self.outputs += other.outputs;
        self.headers += other.headers;
        self.bytes = self.bytes.saturating_add(other.bytes);
    }

    /// The first cap of `limits` this tally is over.
    pub fn check(&self, limits: &Limits) -> Result<(), Limit> {
        if self.outputs > limits.max_outputs {
            return Err(Limit::Outputs {
                produced: self.outputs,
                cap: limits.max_outputs,
            });
        }
        if self.headers > limits.max_headers {
            return Err(Limit::Headers {
                produced: self.headers,
                cap: limits.max_headers,
            });
        }
        if self.bytes > limits.max_output_bytes {
            return Err(Limit::OutputSize {
                produced: self.bytes,
                cap: limits.max_output_bytes,
            });
        }
        Ok(())
    }
}

/// The most the host copies out of the sandbox in one call: the output cap
/// and room for the result's own frame. Wasmtime counts what it allocates
/// while lifting a call's values (strings, lists, records) against it and
/// stops the copy when it runs out, so outputs that all point at the same
/// guest memory cannot make the host hold many copies of it.
fn hostcall_fuel(limits: &Limits) -> usize {
    limits.max_output_bytes.saturating_add(64 * 1024)
}

/// True when wasmtime stopped a copy out of the sandbox because the
/// call's hostcall fuel ran out. Wasmtime's error type for it is private;
/// its text is matched (a sandbox test fails if that text changes).
fn is_hostcall_fuel_exhausted(e: &wasmtime::Error) -> bool {
    e.chain().any(|c| {
        c.to_string()
            .contains("fuel allocated for hostcalls has been exhausted")
    })
}

/// Epoch ticks from now until `deadline` (at least one).
fn ticks_until(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    let tick = EPOCH_TICK.as_micros().max(1);
    // One extra tick: the current one may be almost over.
    (left.as_micros() / tick) as u64 + 1
}
