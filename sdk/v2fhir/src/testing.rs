//! Testing a mapping plugin natively, in `cargo test`: run it on HL7 v2
//! text with the settings and lookup tables a site would give it, and look
//! inside the transaction Bundle it makes, or at its reject reason.
//!
//! ```
//! use weft_sdk::{Message, Output, Plugin, Result};
//! use weft_v2fhir::testing::Mapping;
//!
//! struct Patients;
//! impl Plugin for Patients {
//!     fn transform(msg: Message) -> Result<Vec<Output>> {
//!         weft_v2fhir::transaction(&msg, "patients", &["ADT^A04"], |_, _, _| Ok(()))
//!     }
//! }
//!
//! const A04: &str = "MSH|^~\\&|HIS|HOSP|WEFT|EDGE|20240102030405||ADT^A04|C1|P|2.5.1\r\
//!                    PID|1||123^^^HOSP^MR||Doe^Jane||19800101|F";
//!
//! let mapping = Mapping::<Patients>::new().lookup("assigning_authority", "HOSP", "urn:oid:1.2.3");
//! let bundle = mapping.bundle(A04);
//! assert_eq!(bundle.first("Patient")["gender"], "female");
//! assert_eq!(bundle.kinds(), ["Patient"]);
//!
//! let why = mapping.reject(&A04.replace("ADT^A04", "ADT^A08"));
//! assert!(why.starts_with("MSH-9 ADT^A08 is not mapped by patients"), "{why}");
//! ```

use std::marker::PhantomData;
use std::ops::Deref;
use std::path::Path;

use weft_sdk::serde_json::Value;
use weft_sdk::testing::TestHost;
use weft_sdk::{Message, Plugin};

/// A mapping plugin `P` and the host it runs under.
pub struct Mapping<P> {
    host: TestHost,
    plugin: PhantomData<fn() -> P>,
}

impl<P: Plugin> Default for Mapping<P> {
    fn default() -> Self {
        Mapping::new()
    }
}

impl<P: Plugin> Mapping<P> {
    /// `P` under a host with `default_utc_offset = "+00:00"` (HL7 times
    /// without an offset are read as UTC) and no lookup tables.
    pub fn new() -> Mapping<P> {
        Mapping::on(TestHost::new().config("default_utc_offset", "+00:00"))
    }

    /// `P` under `host`, as it is.
    pub fn on(host: TestHost) -> Mapping<P> {
        Mapping {
            host,
            plugin: PhantomData,
        }
    }

    /// Sets a setting, as `[plugins.NAME.config]` does.
    pub fn config(self, key: &str, value: &str) -> Mapping<P> {
        Mapping::on(self.host.config(key, value))
    }

    /// Adds one entry to a lookup table.
    pub fn lookup(self, table: &str, key: &str, value: &str) -> Mapping<P> {
        Mapping::on(self.host.lookup(table, key, value))
    }

    /// Adds a lookup table from a CSV file, as `[plugins.NAME.lookups]`
    /// does. Panics, naming the file, when it cannot be read.
    pub fn lookup_file(self, table: &str, path: impl AsRef<Path>) -> Mapping<P> {
        Mapping::on(self.host.lookup_csv_file(table, path))
    }

    /// The transaction Bundle `P` makes of `hl7` (segments separated by
    /// `\r` or newlines). Panics, with the plugin's reason, when it makes
    /// anything else.
    pub fn bundle(&self, hl7: &str) -> Mapped {
        let value = self.host.one_json::<P>(Message::from_hl7(hl7));
        assert_eq!(
            value["resourceType"], "Bundle",
            "the output is not a Bundle"
        );
        Mapped(value)
    }

    /// The reason `P` rejects `hl7` with. Panics when it does not reject.
    pub fn reject(&self, hl7: &str) -> String {
        self.host.reject_reason::<P>(Message::from_hl7(hl7))
    }

    /// The host, for its log ([`TestHost::logs`]).
    pub fn host(&self) -> &TestHost {
        &self.host
    }
}

/// A Bundle a mapping made; reads as the JSON value it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped(Value);

impl Mapped {
    /// The first resource of type `kind`. Panics, naming the types the
    /// Bundle holds, when there is none.
    pub fn first(&self, kind: &str) -> &Value {
        self.all(kind).into_iter().next().unwrap_or_else(|| {
            panic!(
                "the Bundle holds no {kind} (it holds {})",
                self.kinds().join(", ")
            )
        })
    }

    /// Every resource of type `kind`, in entry order.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.entries()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == kind)
            .collect()
    }

    /// The fullUrl of the first resource of type `kind` (what references
    /// to it hold). Panics when there is none.
    pub fn url_of(&self, kind: &str) -> &str {
        self.entries()
            .find(|e| e["resource"]["resourceType"] == kind)
            .and_then(|e| e["fullUrl"].as_str())
            .unwrap_or_else(|| panic!("the Bundle holds no {kind} with a fullUrl"))
    }

    /// The resource types in the Bundle, each once, in entry order.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = Vec::new();
        for k in self
            .entries()
            .filter_map(|e| e["resource"]["resourceType"].as_str())
        {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds
    }

    /// The Bundle's entries.
    pub fn entries(&self) -> impl Iterator<Item = &Value> {
        self.0["entry"].as_array().into_iter().flatten()
    }

    /// The Bundle as JSON.
    pub fn into_value(self) -> Value {
        self.0
    }
}

impl Deref for Mapped {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0
    }
}
