//! What a plugin instance may ask of the runtime, and the per-call state
//! behind it: its grants (config, lookup tables), a memory limiter, and WASI
//! with nothing granted.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::tables::Table;
use super::weft::plugin::host::{self, Level};

/// Most log records one call may write; further ones are counted, not kept.
const MAX_LOG_RECORDS: usize = 256;
/// Longest log record kept; longer ones are cut.
const MAX_LOG_LEN: usize = 4096;
/// Most random bytes one WASI call may ask for.
const MAX_RANDOM_BYTES: u64 = 64 * 1024;
/// Bytes of stdout and of stderr kept per call (for the debug log).
const STDIO_CAPACITY: usize = 64 * 1024;

/// What one plugin was granted in the configuration.
#[derive(Debug, Default)]
pub struct Grants {
    /// The plugin's name, used to tag its log records.
    pub plugin: String,
    /// Its `config` settings.
    pub config: HashMap<String, String>,
    /// Its lookup tables, by name.
    pub tables: HashMap<String, Arc<Table>>,
}

/// Stops linear memory from growing past the plugin's cap, and remembers
/// that it did, so the failure is reported as a limit rather than a crash.
#[derive(Debug)]
pub struct Limiter {
    /// The cap, in bytes.
    pub memory_cap: usize,
    /// Set when a growth beyond the cap was refused.
    pub memory_hit: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The state of one store: one message through one plugin.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    grants: Arc<Grants>,
    message_id: String,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    log_records: usize,
}

impl HostState {
    /// State for one call of the plugin with these grants.
    pub fn new(grants: Arc<Grants>, message_id: &str, memory_cap: usize) -> HostState {
        let stdout = MemoryOutputPipe::new(STDIO_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDIO_CAPACITY);
        // Nothing granted: no arguments, no environment, no preopened
        // directories, no network.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // Random bytes are made on the host before they are copied in:
            // a hash seed needs 16, not WASI's default of 64 MiB per call.
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_cap,
                memory_hit: false,
            },
            grants,
            message_id: message_id.to_string(),
            stdout,
            stderr,
            log_records: 0,
        }
    }

    /// Writes what the plugin printed to the log, at debug level: it may
    /// hold patient data.
    pub fn flush_stdio(&self) {
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            if !bytes.is_empty() {
                tracing::debug!(
                    plugin = %self.grants.plugin,
                    message_id = %self.message_id,
                    stream,
                    text = %super::text::escape(&String::from_utf8_lossy(&bytes)),
                    "plugin output"
                );
            }
        }
    }

    /// The last line the plugin wrote to stderr (a panic message, usually).
    pub fn stderr_tail(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::to_string)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl super::weft::plugin::types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        self.log_records += 1;
        if self.log_records > MAX_LOG_RECORDS {
            if self.log_records == MAX_LOG_RECORDS + 1 {
                tracing::warn!(plugin = %self.grants.plugin, message_id = %self.message_id, "plugin log limit reached; further records dropped");
            }
            return;
        }
        // Cut, then escaped: a newline cannot forge another log line.
        let message = super::text::escape(&super::text::cap(&message, MAX_LOG_LEN)).into_owned();
        let plugin = self.grants.plugin.as_str();
        let id = self.message_id.as_str();
        match level {
            Level::Trace => tracing::trace!(plugin, message_id = id, "{message}"),
            Level::Debug => tracing::debug!(plugin, message_id = id, "{message}"),
            Level::Info => tracing::info!(plugin, message_id = id, "{message}"),
            Level::Warn => tracing::warn!(plugin, message_id = id, "{message}"),
            Level::Error => tracing::error!(plugin, message_id = id, "{message}"),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.grants.config.get(&key).cloned()
    }

    fn lookup(&mut self, table: String, key: String) -> Option<String> {
        self.grants.tables.get(&table)?.get(&key).cloned()
    }
}

/// Plugins built against `weft:plugin@0.1.x` get the same host.
impl super::linked::v0_1::weft::plugin::host::Host for HostState {
    fn log(&mut self, level: super::linked::v0_1::weft::plugin::host::Level, message: String) {
        use super::linked::v0_1::weft::plugin::host::Level as Old;
        let level = match level {
            Old::Trace => Level::Trace,
            Old::Debug => Level::Debug,
            Old::Info => Level::Info,
            Old::Warn => Level::Warn,
            Old::Error => Level::Error,
        };
        host::Host::log(self, level, message)
    }

    fn config(&mut self, key: String) -> Option<String> {
        host::Host::config(self, key)
    }

    fn lookup(&mut self, table: String, key: String) -> Option<String> {
        host::Host::lookup(self, table, key)
    }
}
