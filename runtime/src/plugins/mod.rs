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
//! - [`samples`]: the sample messages a version must pass before it serves.

pub mod cache;
pub mod contract;
pub mod engine;
pub mod executor;
pub mod host;
pub mod plugin;
pub mod samples;
pub mod tables;
pub mod text;

pub use engine::{EngineOptions, PluginEngine, Tier};
pub use plugin::{CallError, Limits, Message, Output, Plugin, PluginSpec};

wasmtime::component::bindgen!({
    world: "transformer",
    path: "../wit",
    // Calls into a plugin are async, so that a timer can stop one that waits
    // in a host call (see `executor`).
    exports: { default: async },
});
