//! The Weft runtime: receives healthcare messages, runs them through
//! sandboxed WebAssembly plugins, and delivers the results.
//!
//! This library is what the `weft` binary is made of; it is public so that
//! tests and benchmarks use the same code.

pub mod activity;
pub mod admin;
pub mod alerts;
pub mod backup;
/// The configuration, `weft.toml` (the `weft-config` crate).
pub use weft_config as config;
pub mod conncap;
pub mod console;
pub mod destinations;
pub mod httpd;
pub mod journal;
pub mod metrics;
/// MLLP framing (the `weft-mllp` crate).
pub use weft_mllp as mllp;
pub mod peerlog;
pub mod pipeline;
pub mod plugins;
pub mod private;
pub mod reload;
pub mod replay;
pub mod routing;
pub mod shadow;
pub mod sources;
pub mod tls;
pub mod workqueue;
