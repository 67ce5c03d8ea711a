//! The FHIR input: one resource or a Bundle of them, with references
//! between them resolved (`urn:uuid:` fullUrls, `Type/id`, absolute URLs,
//! `#contained`, conditional `Type?identifier=system|value`, logical
//! references by identifier).

use weft_sdk::serde_json::Value;
use weft_sdk::{CONTENT_TYPE_FHIR_JSON, CONTENT_TYPE_JSON, Error, Message, Result};

/// The most entries a Bundle may hold: each reference is looked up among
/// them, so the cap bounds the work per message.
pub const MAX_ENTRIES: usize = 5_000;

/// One resource of the input, with how it came.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The entry's `fullUrl` (a Bundle entry), if any.
    pub full_url: Option<&'a str>,
    /// The resource.
    pub resource: &'a Value,
    /// `request.method` of a transaction or batch entry (`POST`, `PUT` …).
    pub method: Option<&'a str>,
}

impl Entry<'_> {
    /// The resource's type.
    pub fn kind(&self) -> &str {
        kind(self.resource)
    }
}

/// The resource type of `v`, or `""`.
pub fn kind(v: &Value) -> &str {
    v.get("resourceType").and_then(Value::as_str).unwrap_or("")
}

/// The resources of one message.
#[derive(Debug)]
pub struct Resources<'a> {
    root: &'a Value,
    entries: Vec<Entry<'a>>,
}

/// Parses the message body as FHIR JSON: `application/fhir+json` or
/// `application/json`, an object with a `resourceType`.
pub fn parse(msg: &Message) -> Result<Value> {
    let media = msg
        .content_type()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != CONTENT_TYPE_FHIR_JSON && media != CONTENT_TYPE_JSON {
        return Err(Error::reject(format!(
            "the message is {media}, not FHIR JSON ({CONTENT_TYPE_FHIR_JSON})"
        )));
    }
    let v: Value = weft_sdk::serde_json::from_slice(msg.body())
        .map_err(|e| Error::reject(format!("the body is not JSON: {e}")))?;
    if kind(&v).is_empty() {
        return Err(Error::reject(
            "the JSON has no resourceType: it is not a FHIR resource",
        ));
    }
    Ok(v)
}

impl<'a> Resources<'a> {
    /// The resources of `root`: a Bundle's entries (each with its
    /// resource), or `root` itself.
    pub fn new(root: &'a Value) -> Result<Resources<'a>> {
        if kind(root) != "Bundle" {
            return Ok(Resources {
                root,
                entries: vec![Entry {
                    full_url: None,
                    resource: root,
                    method: None,
                }],
            });
        }
        let list = match root.get("entry") {
            None => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => return Err(Error::reject("Bundle.entry is not a list")),
        };
        if list.len() > MAX_ENTRIES {
            return Err(Error::reject(format!(
                "Bundle.entry holds {} entries, more than {MAX_ENTRIES}",
                list.len()
            )));
        }
        let mut entries = Vec::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let Some(resource) = e.get("resource").filter(|r| r.is_object()) else {
                continue;
            };
            if kind(resource).is_empty() {
                return Err(Error::reject(format!(
                    "Bundle.entry[{i}].resource has no resourceType"
                )));
            }
            entries.push(Entry {
                full_url: e.get("fullUrl").and_then(Value::as_str),
                resource,
                method: e
                    .get("request")
                    .and_then(|r| r.get("method"))
                    .and_then(Value::as_str),
            });
        }
        Ok(Resources { root, entries })
    }

    /// The type of the input itself (`Bundle`, `ServiceRequest` …).
    pub fn root_kind(&self) -> &str {
        kind(self.root)
    }

    /// The resource types the input holds, each once, in order of first
    /// appearance: for a plugin that picks the mapping by what it holds.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = Vec::new();
        for e in &self.entries {
            if !kinds.contains(&e.kind()) {
                kinds.push(e.kind());
            }
        }
        kinds
    }

    /// Every entry, in order.
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// The entries holding a resource of type `kind`.
    pub fn of_kind<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s Entry<'a>> + 's {
        self.entries.iter().filter(move |e| e.kind() == kind)
    }

    /// The resource a Reference (`{"reference": …}` or `{"identifier": …}`)
    /// in resource `from` points at, if the input holds it.
    pub fn resolve(&self, from: &'a Value, reference: &'a Value) -> Option<&'a Value> {
        if let Some(r) = reference.get("reference").and_then(Value::as_str) {
            return self.resolve_str(from, r);
        }
        let id = reference.get("identifier")?;
        let wanted = reference.get("type").and_then(Value::as_str);
        self.entries
            .iter()
            .filter(|e| wanted.is_none_or(|w| e.kind() == w))
            .find(|e| has_identifier(e.resource, str_at(id, "system"), str_at(id, "value")))
            .map(|e| e.resource)
    }

    fn resolve_str(&self, from: &'a Value, r: &str) -> Option<&'a Value> {
        if let Some(local) = r.strip_prefix('#') {
            return from
                .get("contained")?
                .as_array()?
                .iter()
                .find(|c| str_at(c, "id") == local);
        }
        if let Some(e) = self.entries.iter().find(|e| e.full_url == Some(r)) {
            return Some(e.resource);
        }
        if let Some((kind_part, query)) = r.split_once('?') {
            let kind_name = kind_part.rsplit('/').next().unwrap_or(kind_part);
            let wanted = query
                .split('&')
                .find_map(|p| p.strip_prefix("identifier="))?;
            let wanted = percent_decode(wanted);
            let (system, value) = match wanted.split_once('|') {
                Some((s, v)) => (s.to_string(), v.to_string()),
                None => (String::new(), wanted),
            };
            return self
                .entries
                .iter()
                .filter(|e| e.kind() == kind_name)
                .find(|e| has_identifier(e.resource, &system, &value))
                .map(|e| e.resource);
        }
        // Type/id, or an absolute URL ending so (history tail dropped).
        let path = r.split("/_history/").next().unwrap_or(r);
        let mut tail = path.rsplit('/');
        let (id, kind_name) = (tail.next()?, tail.next()?);
        self.entries
            .iter()
            .find(|e| {
                e.kind() == kind_name
                    && (str_at(e.resource, "id") == id
                        || e.full_url.is_some_and(|u| {
                            u.ends_with(&format!("/{kind_name}/{id}"))
                                || u == format!("{kind_name}/{id}")
                        }))
            })
            .map(|e| e.resource)
    }
}

/// True when `resource` has an identifier with this `value` (and this
/// `system`, when one is given).
pub fn has_identifier(resource: &Value, system: &str, value: &str) -> bool {
    !value.is_empty()
        && list(resource, "identifier").iter().any(|i| {
            str_at(i, "value") == value && (system.is_empty() || str_at(i, "system") == system)
        })
}

/// The string at `key` of `v`, or `""`.
pub fn str_at<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The list at `key` of `v` (empty when absent or not a list).
pub fn list<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

/// Decodes `%XX` escapes (as in a search URL); a malformed escape is kept.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::serde_json::json;

    #[test]
    fn resolves_every_kind_of_reference() {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "p1",
                "identifier": [{"system": "urn:x", "value": "7|8"}]}, "request": {"method": "POST"}},
            {"fullUrl": "http://h/fhir/Encounter/e1", "resource": {"resourceType": "Encounter"}},
            {"resource": {"resourceType": "ServiceRequest", "contained": [{"resourceType": "Specimen", "id": "s"}]}},
        ]});
        let r = Resources::new(&bundle).unwrap();
        let sr = r.entries()[2].resource;
        let get = |reference: Value| {
            let v = Box::leak(Box::new(reference));
            r.resolve(sr, v).map(kind)
        };
        assert_eq!(get(json!({"reference": "urn:uuid:1"})), Some("Patient"));
        assert_eq!(get(json!({"reference": "Patient/p1"})), Some("Patient"));
        assert_eq!(
            get(json!({"reference": "Patient/p1/_history/2"})),
            Some("Patient")
        );
        assert_eq!(get(json!({"reference": "Encounter/e1"})), Some("Encounter"));
        assert_eq!(
            get(json!({"reference": "http://h/fhir/Encounter/e1"})),
            Some("Encounter")
        );
        assert_eq!(
            get(json!({"reference": "Patient?identifier=urn:x%7C7%7C8"})),
            Some("Patient")
        );
        assert_eq!(get(json!({"reference": "#s"})), Some("Specimen"));
        assert_eq!(
            get(json!({"identifier": {"system": "urn:x", "value": "7|8"}})),
            Some("Patient")
        );
        assert_eq!(get(json!({"reference": "Patient/other"})), None);
        assert_eq!(r.entries()[0].method, Some("POST"));
    }

    #[test]
    fn caps_the_entries() {
        let entries: Vec<Value> = (0..=MAX_ENTRIES)
            .map(|_| json!({"resource": {"resourceType": "Basic"}}))
            .collect();
        let bundle = json!({"resourceType": "Bundle", "entry": entries});
        let e = Resources::new(&bundle).unwrap_err();
        assert!(e.to_string().contains("more than 5000"), "{e}");
    }
}
