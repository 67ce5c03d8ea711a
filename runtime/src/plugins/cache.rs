//! The on-disk cache of compiled plugins, so a restart does not recompile.
//!
//! A compiled component is native code: whoever can write this directory can
//! run code as the runtime. Keep it owned by the runtime's user, like the
//! binary itself. Entries are keyed by the component's sha256 and by the
//! engine's compatibility hash (wasmtime version and settings), so a changed
//! engine never loads a stale entry; an unreadable entry is recompiled.
//!
//! A process uses the cache only when the directory (or, before its first
//! write, its nearest existing parent) belongs to the user it runs as. An
//! administrator's `sudo weft check` beside the service therefore neither
//! runs native code that the service's user could have written (which would
//! hand that user root), nor leaves root-owned entries the service cannot
//! replace: it compiles in memory instead.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from the cache.
    Cache,
    /// Compiled now (and stored in the cache when there is one).
    Compiled,
}

impl ComponentCache {
    /// A cache in `dir`, created on first write.
    pub fn new(dir: impl Into<PathBuf>) -> ComponentCache {
        ComponentCache { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, engine: &wasmtime::Engine, sha256: &str) -> PathBuf {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        self.dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()))
    }

    /// True when the compiled form of the component with this sha256 is
    /// stored (it may still turn out unusable, and be recompiled).
    pub fn has(&self, engine: &wasmtime::Engine, sha256: &str) -> bool {
        self.owned_by_us() && self.entry(engine, sha256).is_file()
    }

    /// Loads the compiled form of `bytes` (whose sha256 is `sha256`), or
    /// compiles it with `compile` (which gives `precompile_component`'s
    /// output for `engine`, see [`super::compiler`]) and stores the result.
    pub fn load_or_compile(
        &self,
        engine: &wasmtime::Engine,
        bytes: &[u8],
        sha256: &str,
        compile: impl FnOnce(&[u8]) -> wasmtime::Result<Vec<u8>>,
    ) -> wasmtime::Result<(Component, Origin)> {
        if !self.owned_by_us() {
            tracing::debug!(dir = %self.dir.display(), "the compiled plugin cache belongs to another user; compiling without it");
            let compiled = compile(bytes)?;
            // SAFETY: produced just now for this engine, as below.
            let component = unsafe { Component::deserialize(engine, &compiled)? };
            return Ok((component, Origin::Compiled));
        }
        let path = self.entry(engine, sha256);
        if path.exists() {
            // SAFETY: the entry was written by `precompile_component` of an
            // engine with the same compatibility hash, into a directory only
            // the runtime writes (see the module docs). wasmtime checks the
            // header and refuses an incompatible file, which is recompiled.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Origin::Cache)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "compiled plugin cache entry unusable; recompiling")
                }
            }
        }
        let compiled = compile(bytes)?;
        // SAFETY: `compiled` was produced just now for this engine's
        // settings, in this process or by its own compiler child over a
        // pipe only they hold; wasmtime checks its header and settings.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        // Stored in the background: the write and its fsync are not on the
        // way to serving the new version (a hot reload waits for this
        // function). An entry cut short by a stop is only a `.tmp` file.
        let stored = std::thread::Builder::new()
            .name("weft-cache-write".into())
            .spawn(move || {
                if let Err(e) = write_atomically(&path, &compiled) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot write the compiled plugin cache");
                }
            });
        if let Err(e) = stored {
            tracing::warn!(error = %e, "cannot start the compiled plugin cache writer");
        }
        Ok((component, Origin::Compiled))
    }
}

impl ComponentCache {
    /// True when the cache directory, or the nearest of its parents that
    /// exists, belongs to the user this process runs as (see the module
    /// docs).
    pub fn owned_by_us(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let euid = unsafe { libc::geteuid() };
            let dir = std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone());
            dir.ancestors()
                .find_map(|d| std::fs::metadata(d).ok())
                .is_some_and(|m| m.uid() == euid)
        }
        #[cfg(not(unix))]
        {
            true
        }
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
