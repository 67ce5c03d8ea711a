//! The contract versions this runtime links, each with its own bindings,
//! behind one type: `weft:plugin@0.2.0` (`wit/weft.wit`, with `init`) and
//! `weft:plugin@0.1.x` (`wit/0.1.0/`, frozen), so a plugin built against
//! 0.1 runs unchanged beside one built against 0.2.
//!
//! The data types are one set: 0.1's bindings reuse 0.2's `types` (the
//! records and variants did not change), so a message crosses into either
//! version without a copy.

use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store};

use super::contract::Version;
use super::host::HostState;
use super::plugin::{Message, Output, PluginError};

/// `weft:plugin@0.2.0`, the current contract, generated from `wit/`.
#[allow(missing_docs)]
pub mod v0_2 {
    wasmtime::component::bindgen!({
        world: "transformer",
        path: "../wit",
        // Calls into a plugin are async, so that a timer can stop one that
        // waits in a host call (see `executor`).
        exports: { default: async },
    });
}

/// `weft:plugin@0.1.0`, frozen, generated from `wit/0.1.0/`.
#[allow(missing_docs)]
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "transformer",
        path: "../wit/0.1.0",
        exports: { default: async },
        with: {
            "weft:plugin/types": super::v0_2::weft::plugin::types,
        },
    });
}

/// The contract lines this runtime links, newest first.
pub const LINES: &[Version] = &[
    Version {
        major: 0,
        minor: 2,
        patch: 0,
    },
    Version {
        major: 0,
        minor: 1,
        patch: 0,
    },
];

/// Gives plugins of every linked version the host.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_2::Transformer::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    v0_1::Transformer::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// A plugin pre-instantiated against the contract version it was built for.
#[derive(Clone)]
pub enum Pre {
    /// Built against 0.2.x.
    V0_2(v0_2::TransformerPre<HostState>),
    /// Built against 0.1.x: no `init`.
    V0_1(v0_1::TransformerPre<HostState>),
}

/// One instance of a plugin.
pub enum Instance {
    /// Built against 0.2.x.
    V0_2(v0_2::Transformer),
    /// Built against 0.1.x.
    V0_1(v0_1::Transformer),
}

impl Pre {
    /// Checks `pre` exports the transformer world of `version` (a line of
    /// [`LINES`]).
    pub fn new(pre: InstancePre<HostState>, version: &Version) -> wasmtime::Result<Pre> {
        if version.minor == 1 && version.major == 0 {
            Ok(Pre::V0_1(v0_1::TransformerPre::new(pre)?))
        } else {
            Ok(Pre::V0_2(v0_2::TransformerPre::new(pre)?))
        }
    }

    /// The engine it was compiled for.
    pub fn engine(&self) -> &Engine {
        match self {
            Pre::V0_2(p) => p.engine(),
            Pre::V0_1(p) => p.engine(),
        }
    }

    /// A fresh instance.
    pub async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::V0_2(p) => Instance::V0_2(p.instantiate_async(store).await?),
            Pre::V0_1(p) => Instance::V0_1(p.instantiate_async(store).await?),
        })
    }
}

impl Instance {
    /// The plugin's `init` (0.1 plugins have none: `Ok`).
    pub async fn init(&self, store: &mut Store<HostState>) -> wasmtime::Result<Result<(), String>> {
        match self {
            Instance::V0_2(i) => i.weft_plugin_transform().call_init(store).await,
            Instance::V0_1(_) => Ok(Ok(())),
        }
    }

    /// The plugin's `transform`.
    pub async fn transform(
        &self,
        store: &mut Store<HostState>,
        msg: &Message,
    ) -> wasmtime::Result<Result<Vec<Output>, PluginError>> {
        match self {
            Instance::V0_2(i) => i.weft_plugin_transform().call_transform(store, msg).await,
            Instance::V0_1(i) => i.weft_plugin_transform().call_transform(store, msg).await,
        }
    }
}
