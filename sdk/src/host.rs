//! The host's capabilities as plain functions: in WebAssembly they call the
//! runtime; natively they read the [`crate::testing`] host of the test.

/// This plugin's setting `key`, from its `config` table in `weft.toml`.
pub fn config(key: &str) -> Option<String> {
    imp::config(key)
}

/// Looks `key` up in the lookup table `table` granted to this plugin.
pub fn lookup(table: &str, key: &str) -> Option<String> {
    imp::lookup(table, key)
}

pub(crate) fn log(level: crate::log::Level, message: &str) {
    imp::log(level, message)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::__private::bindings::weft::plugin::host;
    use crate::log::Level;

    pub fn config(key: &str) -> Option<String> {
        host::config(key)
    }

    pub fn lookup(table: &str, key: &str) -> Option<String> {
        host::lookup(table, key)
    }

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use crate::log::Level;
    use crate::testing;

    pub fn config(key: &str) -> Option<String> {
        testing::with_current(|h| h.config_value(key)).flatten()
    }

    pub fn lookup(table: &str, key: &str) -> Option<String> {
        testing::with_current(|h| h.lookup_value(table, key)).flatten()
    }

    pub fn log(level: Level, message: &str) {
        if testing::with_current(|h| h.record_log(level, message)).is_none() {
            eprintln!("[{level:?}] {message}");
        }
    }
}
