//! The plugin host: sandboxed WebAssembly components that transform
//! messages.
//!
//! - [`engine::PluginEngine`]: the wasmtime engine (component model, pooling
//!   allocator, epoch interruption) shared by every plugin, with an optimizing
//!   and a baseline compiler.
//! - [`plugin::Plugin`]: one loaded plugin version, pre-instantiated; every
//!   call runs on a fresh instance, so nothing survives between messages.
//! - [`host`]: what a plugin may ask of the runtime (log, its config, its
//!   lookup tables) and nothing else: no files, no environment, no sockets.
//! - [`compiler`]: where plugins are compiled (in a child process, for
//!   the CLI: the compilers' memory never joins the runtime's).
//! - [`samples`]: the sample messages a version must pass before it serves.
//! - [`trust`] and [`grants`]: whose code a site runs (signatures, the trust
//!   list) and what it lets each plugin have (its manifest against
//!   `weft.toml`).

pub mod cache;
pub mod compiler;
pub mod contract;
pub mod engine;
pub mod executor;
pub mod grants;
pub mod host;
pub mod linked;
pub mod plugin;
pub mod samples;
/// Plugin signatures (the `weft-signature` crate).
pub use weft_signature as signature;
/// Lookup tables (the `weft-tables` crate).
pub use weft_tables as tables;
pub mod text;
/// The trust list and signature policy (the `weft-signature` crate).
pub use weft_signature::trust;

pub use engine::{EngineOptions, PluginEngine, Tier};
pub use plugin::{CallError, Limits, Message, Output, Plugin, PluginSpec};

/// The host side of the current contract (`weft:plugin@0.2.0`), generated
/// by wasmtime from `wit/`; [`linked`] also links 0.1.
pub use linked::v0_2::*;
