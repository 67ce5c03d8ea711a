//! The WebAssembly components of Weft's plugins, built by this crate's
//! build script (`cargo build --target wasm32-wasip2 --profile plugin`)
//! whenever a plugin, the SDK or the WIT contract changes, so that plain
//! `cargo test` has them: the runtime's integration tests and benches load
//! them from the paths here. This is wasmtime's `test-programs/artifacts`
//! habit.
//!
//! The components land where `./scripts/run.sh` puts them
//! (`target/wasm32-wasip2/plugin/`), which the embedded default
//! `weft.toml` names.

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
include!("plugins.rs");

/// The component built from the plugin crate `name` (`adt-to-fhir`), or
/// `None` when this crate does not build it.
pub fn component(name: &str) -> Option<&'static Path> {
    COMPONENTS
        .iter()
        .find(|(crate_name, _)| *crate_name == name)
        .map(|(_, path)| Path::new(*path))
}

/// The shipped plugin `name` signed with the local build's project key
/// (`target/signed/`, what the embedded default `weft.toml` names), or
/// `None` when it is not a shipped plugin.
pub fn signed(name: &str) -> Option<&'static Path> {
    SIGNED
        .iter()
        .find(|(crate_name, _)| *crate_name == name)
        .map(|(_, path)| Path::new(*path))
}

/// The trust list entry of the key the shipped plugins are signed with
/// (`target/plugin-key/weft-project.pub`): a trust list of one key.
pub fn project_trust_list() -> &'static Path {
    Path::new(PROJECT_TRUST_LIST)
}

/// Every component built: (crate name, path).
pub fn all() -> impl Iterator<Item = (&'static str, &'static Path)> {
    COMPONENTS.iter().map(|(n, p)| (*n, Path::new(*p)))
}

/// A second version of `site-normalize` (the test plugin
/// `weft-test-site-normalize-b`: the same code, its outputs ending in a
/// `ZWV|B` segment), for hot-reload and signing tests.
pub fn site_normalize_variant() -> &'static Path {
    component("weft-test-site-normalize-b").expect("the build script builds every TEST_ONLY plugin")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_component_is_built() {
        for (name, path) in super::all() {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
            // A component, not a core module: the layer field of the
            // preamble is 1.
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
            assert_eq!(&bytes[6..8], &[1, 0], "{name} is a component");
        }
        assert!(super::site_normalize_variant().is_file());
        for name in super::SHIPPED {
            let signed = std::fs::read(super::signed(name).unwrap()).unwrap();
            let v = weft_signature::verify(&signed).unwrap().unwrap();
            assert_eq!(v.claimed_signer, "weft-project", "{name}");
        }
        let list = std::fs::read_to_string(super::project_trust_list()).unwrap();
        assert!(list.starts_with("[keys.\"weft-project\"]"), "{list}");
        assert!(super::component("adt-to-fhir").is_some());
        assert!(super::component("no-such-plugin").is_none());
    }
}
