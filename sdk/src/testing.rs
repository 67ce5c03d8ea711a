//! Run a plugin natively inside `cargo test`, with the settings and lookup
//! tables the test gives, and see what it logged.
//!
//! ```
//! use weft_sdk::{Message, Output, Plugin, Result, testing::TestHost};
//!
//! struct Tag;
//! impl Plugin for Tag {
//!     fn transform(msg: Message) -> Result<Vec<Output>> {
//!         let site = weft_sdk::config("site").unwrap_or_default();
//!         let code = weft_sdk::lookup("codes", "M").unwrap_or_default();
//!         weft_sdk::log::info!("tagging for {site}");
//!         Ok(vec![Output::bytes("text/plain", format!("{site}:{code}"))])
//!     }
//! }
//!
//! let host = TestHost::new().config("site", "north").lookup("codes", "M", "male");
//! let out = host.run::<Tag>(Message::new("text/plain", "x")).unwrap();
//! assert_eq!(out[0].message().body(), b"north:male");
//! assert_eq!(host.logs()[0].1, "tagging for north");
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::log::Level;
use crate::{Error, Message, Output, Plugin, Result};

/// A stand-in for the runtime: settings, lookup tables and a log.
#[derive(Debug, Default, Clone)]
pub struct TestHost {
    state: Rc<State>,
}

#[derive(Debug, Default, Clone)]
struct State {
    config: HashMap<String, String>,
    lookups: HashMap<String, HashMap<String, String>>,
    logs: RefCell<Vec<(Level, String)>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<State>>> = const { RefCell::new(None) };
}

pub(crate) struct HostRef<'a>(&'a State);

impl HostRef<'_> {
    pub(crate) fn config_value(&self, key: &str) -> Option<String> {
        self.0.config.get(key).cloned()
    }

    pub(crate) fn lookup_value(&self, table: &str, key: &str) -> Option<String> {
        self.0.lookups.get(table)?.get(key).cloned()
    }

    pub(crate) fn record_log(&self, level: Level, message: &str) {
        self.0.logs.borrow_mut().push((level, message.to_string()));
    }
}

/// Calls `f` with the host of the running test, if a plugin runs under one.
pub(crate) fn with_current<R>(f: impl FnOnce(HostRef<'_>) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(|s| f(HostRef(s))))
}

impl TestHost {
    /// A host with no settings and no lookup tables.
    pub fn new() -> TestHost {
        TestHost::default()
    }

    fn state_mut(&mut self) -> &mut State {
        Rc::make_mut(&mut self.state)
    }

    /// Sets a config value, as `[plugins.NAME.config]` does in `weft.toml`.
    pub fn config(mut self, key: &str, value: &str) -> TestHost {
        self.state_mut()
            .config
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Adds one entry to a lookup table.
    pub fn lookup(mut self, table: &str, key: &str, value: &str) -> TestHost {
        self.state_mut()
            .lookups
            .entry(table.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Adds a lookup table from CSV text in the runtime's format: one
    /// `key,value` row per line, no header, `#` starts a comment line.
    pub fn lookup_csv(mut self, table: &str, csv: &str) -> TestHost {
        let entries = self
            .state_mut()
            .lookups
            .entry(table.to_string())
            .or_default();
        for line in csv.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once(',') {
                entries.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        self
    }

    /// Adds a lookup table from a CSV file (see [`TestHost::lookup_csv`]),
    /// as `[plugins.NAME.lookups]` does. Panics, naming the file, when it
    /// cannot be read.
    pub fn lookup_csv_file(self, table: &str, path: impl AsRef<std::path::Path>) -> TestHost {
        let path = path.as_ref();
        let csv = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("lookup table {table}: {}: {e}", path.display()));
        self.lookup_csv(table, &csv)
    }

    /// Runs plugin `P` on `msg` with this host's settings and tables.
    pub fn run<P: Plugin>(&self, msg: Message) -> Result<Vec<Output>> {
        self.within(|| P::transform(msg))
    }

    /// Runs plugin `P`'s [`Plugin::init`] with this host's settings and
    /// tables, as the runtime does when it loads a version: `Err` is the
    /// reason the version would be refused.
    pub fn init<P: Plugin>(&self) -> Result<()> {
        self.within(P::init)
    }

    /// Runs `f` as the plugin, with this host, a panic turned into a
    /// failure as the sandbox would.
    fn within<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let previous = CURRENT.with(|c| c.replace(Some(self.state.clone())));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        CURRENT.with(|c| *c.borrow_mut() = previous);
        match result {
            Ok(r) => r,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_string());
                Err(Error::failed(format!("plugin panicked: {text}")))
            }
        }
    }

    /// Runs plugin `P`, which must answer with exactly one JSON output
    /// (a FHIR Bundle, say); returns it parsed. Panics, with the plugin's
    /// error, otherwise.
    pub fn one_json<P: Plugin>(&self, msg: Message) -> serde_json::Value {
        let out = self
            .run::<P>(msg)
            .unwrap_or_else(|e| panic!("the plugin did not transform the message: {e}"));
        assert_eq!(out.len(), 1, "expected one output, got {}", out.len());
        out[0]
            .message()
            .json()
            .unwrap_or_else(|e| panic!("the output is not JSON: {e}"))
    }

    /// Runs plugin `P`, which must *reject* `msg`; returns its reason.
    /// Panics if it transformed the message or failed in another way.
    pub fn reject_reason<P: Plugin>(&self, msg: Message) -> String {
        match self.run::<P>(msg) {
            Err(e) if e.kind() == crate::ErrorKind::Reject => e.reason().to_string(),
            Err(e) => panic!("expected a reject, got {e}"),
            Ok(out) => panic!("expected a reject, got {} outputs", out.len()),
        }
    }

    /// Everything the plugin logged, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.state.logs.borrow().clone()
    }
}
