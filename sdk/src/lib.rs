//! The Weft plugin SDK.
//!
//! A plugin is a struct that implements [`Plugin`] and is exported with
//! [`export!`]; that is all the WebAssembly glue it needs:
//!
//! ```
//! use weft_sdk::{Message, Output, Plugin, Result};
//!
//! struct Upper;
//!
//! impl Plugin for Upper {
//!     fn transform(msg: Message) -> Result<Vec<Output>> {
//!         let text = msg.text()?.to_uppercase();
//!         Ok(vec![Output::bytes("text/plain", text)])
//!     }
//! }
//!
//! weft_sdk::export!(Upper);
//! ```
//!
//! [`manifest!`] declares what the plugin maps, the tables and settings it
//! reads and the limits it needs; the runtime checks that against what a
//! site grants, and `weft plugin inspect` shows it.
//!
//! Inside the plugin, the host's capabilities are plain functions:
//! [`config`], [`lookup`] and the [`log`] macros. [`testing`] runs a plugin
//! natively in `cargo test`, with the configuration and lookup tables the
//! test gives, so mapping logic is tested without building WebAssembly.
//!
//! See `sdk/README.md` for the plugin author's guide.

// Lets generated code name this crate `weft_sdk` from inside it too.
extern crate self as weft_sdk;

#[cfg(any(test, all(target_arch = "wasm32", feature = "arena")))]
mod arena;
mod error;
mod host;
pub mod log;
pub mod manifest;
mod message;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use error::{Error, ErrorKind, Result};
pub use host::{config, lookup};
pub use manifest::Manifest;
pub use message::{CONTENT_TYPE_FHIR_JSON, CONTENT_TYPE_HL7V2, CONTENT_TYPE_JSON, Message, Output};
/// `serde_json`, re-exported for building FHIR resources.
pub use serde_json;
/// The HL7 v2 toolkit, re-exported so plugins need no extra dependency.
pub use weft_hl7 as hl7;

/// Every plugin's allocator: a bump arena that lives as long as the
/// instance, that is, one message (see `arena.rs`).
#[cfg(all(target_arch = "wasm32", feature = "arena"))]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

/// The version of the WIT contract (`weft:plugin`) this SDK builds against.
pub const WIT_VERSION: &str = "0.2.0";

/// A transformer plugin: one message in, zero or more outputs out.
///
/// The runtime makes a fresh instance for every message, so there is no
/// `self`: nothing survives from one message to the next.
pub trait Plugin {
    /// Checks the plugin's settings ([`config`]) and lookup tables
    /// ([`lookup`]) once, when the runtime loads this version (at start, on
    /// hot reload, in `weft check`), before it serves any message. Return
    /// an error naming the setting and what is wrong (never a secret
    /// value) and the version is refused with that reason, instead of
    /// failing every message; on hot reload the old version keeps serving.
    /// Nothing it keeps in memory reaches the messages. The default accepts
    /// everything.
    fn init() -> Result<()> {
        Ok(())
    }

    /// Transforms `msg`. Return no outputs to filter the message out; name a
    /// destination on an output ([`Output::to`]) to route it. Return
    /// [`Error::reject`] for input that can never map, [`Error::retry`] for a
    /// transient condition and [`Error::failed`] for a bug.
    fn transform(msg: Message) -> Result<Vec<Output>>;
}

/// Returns early from a plugin with a *reject* error built like `format!`.
///
/// ```
/// fn check(date: &str) -> weft_sdk::Result<()> {
///     // Name the field, never the value: reasons reach logs and ACKs.
///     if date.len() < 8 {
///         weft_sdk::reject!("PID-7 is not a valid HL7 date: {} digits", date.len());
///     }
///     Ok(())
/// }
/// assert!(check("2023").is_err());
/// ```
#[macro_export]
macro_rules! reject {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::reject(::std::format!($($arg)*)))
    };
}

/// Exports a [`Plugin`] as the component's `transform` function.
///
/// Call it once per plugin crate, at the top level. On native targets (unit
/// tests) it expands to nothing.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct WeftExport;
            impl $crate::__private::bindings::exports::weft::plugin::transform::Guest for WeftExport {
                fn init() -> ::core::result::Result<(), ::std::string::String> {
                    <$plugin as $crate::Plugin>::init().map_err(|e| ::std::string::ToString::to_string(&e))
                }

                fn transform(
                    msg: $crate::__private::bindings::weft::plugin::types::Message,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::__private::bindings::weft::plugin::types::Output>,
                    $crate::__private::bindings::weft::plugin::types::PluginError,
                > {
                    $crate::__private::run::<$plugin>(msg)
                }
            }
            $crate::__private::bindings::__export_transformer!(WeftExport with_types_in $crate::__private::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use wit_bindgen;

    #[cfg(target_arch = "wasm32")]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "transformer",
            path: "../wit",
            pub_export_macro: true,
            export_macro_name: "__export_transformer",
            default_bindings_module: "weft_sdk::__private::bindings",
            runtime_path: "weft_sdk::__private::wit_bindgen::rt",
        });
    }

    /// Runs a plugin on a message that crossed the component boundary.
    #[cfg(target_arch = "wasm32")]
    pub fn run<P: crate::Plugin>(
        msg: bindings::weft::plugin::types::Message,
    ) -> Result<
        Vec<bindings::weft::plugin::types::Output>,
        bindings::weft::plugin::types::PluginError,
    > {
        use bindings::weft::plugin::types as wit;
        let msg = crate::Message::from_parts(msg.id, msg.content_type, msg.body, msg.headers);
        match P::transform(msg) {
            Ok(outputs) => Ok(outputs
                .into_iter()
                .map(|o| {
                    let (destination, m) = o.into_parts();
                    let (id, content_type, body, headers) = m.into_parts();
                    wit::Output {
                        destination,
                        message: wit::Message {
                            id,
                            content_type,
                            body,
                            headers,
                        },
                    }
                })
                .collect()),
            Err(e) => Err(match e.kind() {
                crate::ErrorKind::Reject => wit::PluginError::Reject(e.to_string()),
                crate::ErrorKind::Retry => wit::PluginError::Retry(e.to_string()),
                crate::ErrorKind::Failed => wit::PluginError::Failed(e.to_string()),
            }),
        }
    }
}
