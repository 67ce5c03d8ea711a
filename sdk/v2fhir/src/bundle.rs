//! The FHIR `transaction` Bundle a mapping produces: every entry a
//! conditional request keyed on the resource's identifier, with a
//! deterministic `urn:uuid:` fullUrl, each identity at most once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Output, log};

use crate::ids::{self, DERIVED_SYSTEM, query_encode};

/// A transaction Bundle under construction.
#[derive(Default)]
pub struct Bundle {
    entries: Vec<Value>,
    /// fullUrl → index in `entries`.
    urls: HashMap<String, usize>,
}

/// A resource's identity in the Bundle.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The identifier system searched on.
    pub system: String,
    /// The identifier value searched on.
    pub value: String,
}

impl Bundle {
    /// An empty Bundle.
    pub fn new() -> Bundle {
        Bundle::default()
    }

    /// The fullUrl a resource of `kind` with identifier `system|value` gets.
    pub fn url_for(kind: &str, system: &str, value: &str) -> String {
        ids::urn_uuid(kind, &format!("{system}|{value}"))
    }

    /// Adds `resource` (of type `kind`, which must hold the identifier
    /// `system|value`) as `PUT kind?identifier=system|value`: created when the
    /// server has no match, updated when it has one. Returns its fullUrl. A
    /// second resource with the same identity is not added again (the first
    /// wins): a transaction may not hold the same conditional request twice.
    pub fn put(&mut self, kind: &str, system: &str, value: &str, resource: Value) -> String {
        let url = Bundle::url_for(kind, system, value);
        self.put_at(url, kind, system, value, resource)
    }

    fn put_at(
        &mut self,
        url: String,
        kind: &str,
        system: &str,
        value: &str,
        resource: Value,
    ) -> String {
        self.add(
            url.clone(),
            resource,
            conditional("PUT", kind, system, value),
        );
        url
    }

    /// Adds an entry unless one with this fullUrl is already there. A
    /// different resource under the same identity is not added either (a
    /// transaction may not update one resource twice): that is said in the
    /// log, without the data.
    fn add(&mut self, url: String, resource: Value, request: Value) {
        match self.urls.entry(url) {
            Entry::Vacant(slot) => {
                let full_url = slot.key().clone();
                slot.insert(self.entries.len());
                self.entries.push(entry(full_url, resource, request));
            }
            Entry::Occupied(slot) => {
                let differs = self
                    .entries
                    .get(*slot.get())
                    .is_some_and(|e| e["resource"] != resource);
                if differs {
                    log::warn!(
                        "{}: two different resources with the same identity in one message; the first is kept",
                        resource["resourceType"].as_str().unwrap_or("resource")
                    );
                }
            }
        }
    }

    /// Adds a resource whose segment carries no identifier of its own: it
    /// gets one derived from `key` (which must hold the patient's identity
    /// and the segment's distinguishing fields) under [`DERIVED_SYSTEM`],
    /// and is put like [`Bundle::put`].
    pub fn put_derived(
        &mut self,
        kind: &str,
        key: &str,
        mut resource: Map<String, Value>,
    ) -> String {
        let (value, url) = ids::derived(kind, key);
        let id = json!({"system": DERIVED_SYSTEM, "value": value});
        match resource.get_mut("identifier").and_then(Value::as_array_mut) {
            Some(list) => list.push(id),
            None => {
                resource.insert("identifier".into(), Value::Array(vec![id]));
            }
        }
        self.put_at(url, kind, DERIVED_SYSTEM, &value, Value::Object(resource))
    }

    /// Adds `resource` (of type `kind`, holding the identifier
    /// `system|value`) as a conditional create (`POST kind` with
    /// `ifNoneExist: identifier=system|value`): created when the server has
    /// none, left as it is when it has one (references to the fullUrl then
    /// point at that one). For a resource a message refers to but does not
    /// own: an account a charge is posted to, say. Returns its fullUrl; the
    /// same identity is added once, as with [`Bundle::put`].
    pub fn ensure(&mut self, kind: &str, system: &str, value: &str, resource: Value) -> String {
        let url = Bundle::url_for(kind, system, value);
        let request = json!({
            "method": "POST",
            "url": kind,
            "ifNoneExist": format!("identifier={}|{}", query_encode(system), query_encode(value)),
        });
        self.add(url.clone(), resource, request);
        url
    }

    /// Adds a conditional FHIRPath Patch (`PATCH kind?identifier=…`) with
    /// the operations of `parameters` (a `Parameters` resource).
    pub fn patch(&mut self, kind: &str, system: &str, value: &str, parameters: Value) {
        let url = ids::urn_uuid(&format!("{kind}/patch"), &format!("{system}|{value}"));
        self.add(url, parameters, conditional("PATCH", kind, system, value));
    }

    /// Appends `value` to the array `key` of the resource at `url` (a
    /// resource added earlier); does nothing when there is none.
    pub fn add_to(&mut self, url: &str, key: &str, value: Value) {
        let Some(resource) = self
            .urls
            .get(url)
            .and_then(|i| self.entries.get_mut(*i))
            .and_then(|e| e.get_mut("resource"))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        match resource.get_mut(key).and_then(Value::as_array_mut) {
            Some(list) => list.push(value),
            None => {
                resource.insert(key.to_string(), Value::Array(vec![value]));
            }
        }
    }

    /// Sets `key` of the resource at `url` (a resource added earlier) to
    /// `value`; does nothing when there is none.
    pub fn set(&mut self, url: &str, key: &str, value: Value) {
        if let Some(resource) = self
            .urls
            .get(url)
            .and_then(|i| self.entries.get_mut(*i))
            .and_then(|e| e.get_mut("resource"))
            .and_then(Value::as_object_mut)
        {
            resource.insert(key.to_string(), value);
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The Bundle as JSON.
    pub fn into_value(self) -> Value {
        let mut b = Map::new();
        b.insert("resourceType".into(), "Bundle".into());
        b.insert("type".into(), "transaction".into());
        b.insert("entry".into(), Value::Array(self.entries));
        Value::Object(b)
    }

    /// The Bundle as the plugin's output (`application/fhir+json`).
    pub fn into_output(self) -> Output {
        Output::fhir(&self.into_value())
    }
}

/// A conditional request on the resource of `kind` with this identifier.
fn conditional(method: &str, kind: &str, system: &str, value: &str) -> Value {
    json!({
        "method": method,
        "url": format!("{kind}?identifier={}|{}", query_encode(system), query_encode(value)),
    })
}

/// A Bundle entry. Built by moving the resource in: `json!` would copy it.
fn entry(full_url: String, resource: Value, request: Value) -> Value {
    let mut e = Map::new();
    e.insert("fullUrl".into(), Value::String(full_url));
    e.insert("resource".into(), resource);
    e.insert("request".into(), request);
    Value::Object(e)
}

/// A Reference to a Bundle entry's fullUrl.
pub fn reference(url: &str) -> Value {
    json!({"reference": url})
}

/// The resources of type `kind` in a Bundle (for tests and tools).
pub fn resources<'a>(bundle: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(move |r| r["resourceType"] == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_identity_once() {
        let mut b = Bundle::new();
        let a = b.put(
            "Practitioner",
            "urn:x",
            "1",
            json!({"resourceType": "Practitioner"}),
        );
        let a2 = b.put(
            "Practitioner",
            "urn:x",
            "1",
            json!({"resourceType": "Practitioner"}),
        );
        assert_eq!(a, a2);
        assert_eq!(b.len(), 1);
        let mut r = Map::new();
        r.insert("resourceType".into(), "Condition".into());
        b.put_derived("Condition", "k", r);
        let v = b.into_value();
        assert_eq!(
            v["entry"][1]["resource"]["identifier"][0]["system"],
            DERIVED_SYSTEM
        );
        assert!(
            v["entry"][1]["request"]["url"]
                .as_str()
                .unwrap()
                .starts_with("Condition?identifier=urn:weft:v2fhir:derived|")
        );
    }
}
