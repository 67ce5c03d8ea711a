//! FHIR data types to HL7 v2 ones: Identifier to CX and EI, HumanName to
//! XPN, Address to XAD, ContactPoint to XTN, CodeableConcept to CWE,
//! dateTime to DTM, a Practitioner to XCN. Each is the inverse of its
//! counterpart in `weft_v2fhir::datatypes`.

use weft_sdk::serde_json::Value;
use weft_sdk::{Error, Result, lookup};

use crate::codes;
use crate::input::{Resources, kind, list, percent_decode, str_at};
use crate::write::Composite;

/// The prefix of identifier systems `weft_v2fhir` makes from a v2
/// assigning authority with no known URI.
pub const AUTHORITY_PREFIX: &str = "urn:weft:assigning-authority:";

/// The assigning authority (HD: namespace ^ universal id ^ type) for an
/// identifier system: the plugin's `authority` lookup table (system to
/// namespace id); a `urn:weft:assigning-authority:` system's namespace;
/// `urn:oid:` as an ISO universal id; any other URI as a URI universal id.
pub fn authority(system: &str) -> Composite {
    if system.is_empty() {
        return Composite::new();
    }
    if let Some(ns) = lookup("authority", system) {
        return Composite::text(ns);
    }
    if let Some(ns) = system.strip_prefix(AUTHORITY_PREFIX) {
        return Composite::text(percent_decode(ns));
    }
    if let Some(oid) = system.strip_prefix("urn:oid:") {
        return Composite::new().with(2, oid).with(3, "ISO");
    }
    Composite::new().with(2, system).with(3, "URI")
}

/// The v2-0203 type code of an Identifier (`MR`, `PLAC`, `FILL` …), or `""`.
pub fn identifier_type(id: &Value) -> &str {
    list(id.get("type").unwrap_or(&Value::Null), "coding")
        .iter()
        .map(|c| str_at(c, "code"))
        .find(|c| !c.is_empty())
        .unwrap_or("")
}

/// True for an identifier `weft_v2fhir` derived (a hash, not a number any
/// system issued): never sent.
pub fn is_derived(id: &Value) -> bool {
    str_at(id, "system") == weft_v2fhir::ids::DERIVED_SYSTEM
}

/// Identifier to CX (id ^^^ assigning authority ^ type); `None` without a
/// value or when derived.
pub fn cx(id: &Value) -> Option<Composite> {
    let value = str_at(id, "value");
    if value.is_empty() || is_derived(id) {
        return None;
    }
    Some(
        Composite::text(value)
            .with_inner(4, &authority(str_at(id, "system")))
            .with(5, identifier_type(id)),
    )
}

/// Identifier to EI (id ^ namespace ^ universal id ^ type); `None` without
/// a value or when derived.
pub fn ei(id: &Value) -> Option<Composite> {
    let value = str_at(id, "value");
    if value.is_empty() || is_derived(id) {
        return None;
    }
    let hd = authority(str_at(id, "system"));
    Some(
        Composite::text(value)
            .with(2, hd.get(1))
            .with(3, hd.get(2))
            .with(4, hd.get(3)),
    )
}

/// HumanName to XPN (family ^ given ^ further given ^ suffix ^ prefix ^^
/// name type); `None` when it holds no name part.
pub fn xpn(name: &Value) -> Option<Composite> {
    let given: Vec<&str> = list(name, "given")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let first = |key: &str| {
        list(name, key)
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let c = Composite::new()
        .with_sub(1, 1, str_at(name, "family"))
        .with(2, given.first().copied().unwrap_or(""))
        .with(3, given.get(1..).map(|g| g.join(" ")).unwrap_or_default())
        .with(4, first("suffix"))
        .with(5, first("prefix"));
    if c.is_empty() {
        return None;
    }
    Some(c.with(7, codes::name_type(str_at(name, "use")).unwrap_or("")))
}

/// Address to XAD (street ^ other designation ^ city ^ state ^ zip ^
/// country ^ type ^^ county); `None` when empty.
pub fn xad(address: &Value) -> Option<Composite> {
    let lines: Vec<&str> = list(address, "line")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let c = Composite::new()
        .with_sub(1, 1, lines.first().copied().unwrap_or(""))
        .with(2, lines.get(1..).map(|l| l.join(", ")).unwrap_or_default())
        .with(3, str_at(address, "city"))
        .with(4, str_at(address, "state"))
        .with(5, str_at(address, "postalCode"))
        .with(6, str_at(address, "country"))
        .with(9, str_at(address, "district"));
    if c.is_empty() {
        return None;
    }
    let t = codes::address_type(str_at(address, "use"), str_at(address, "type"));
    Some(c.with(7, t.unwrap_or("")))
}

/// ContactPoint to XTN (number ^ use ^ equipment ^ email), and whether it
/// is a work contact (PID-14 rather than PID-13); `None` without a value.
pub fn xtn(cp: &Value) -> Option<(Composite, bool)> {
    let value = str_at(cp, "value");
    if value.is_empty() {
        return None;
    }
    let use_ = str_at(cp, "use");
    let c = match str_at(cp, "system") {
        "email" => Composite::new()
            .with(2, "NET")
            .with(3, "Internet")
            .with(4, value),
        system => {
            let equipment = match (system, use_) {
                ("fax", _) => "FX",
                ("pager", _) => "BP",
                (_, "mobile") => "CP",
                _ => "PH",
            };
            let use_code = match use_ {
                "work" => "WPN",
                "temp" => "EMR",
                _ => "PRN",
            };
            Composite::text(value).with(2, use_code).with(3, equipment)
        }
    };
    Some((c, use_ == "work"))
}

/// CodeableConcept to CWE (code ^ text ^ system ^ alternate code ^
/// alternate text ^ alternate system ^^^ original text): its first two
/// codings, and its text as CWE.9 when it differs from the first display
/// (as CWE.2 when there is no coding). `None` when empty.
pub fn cwe(cc: &Value) -> Option<Composite> {
    cwe_in(cc, "")
}

/// [`cwe`] for a field whose codes are from `default_system` when CWE.3 is
/// empty (a v2 table, say): a coding of that system is written without
/// CWE.3, as `weft_v2fhir::datatypes::codeable` reads it.
pub fn cwe_in(cc: &Value, default_system: &str) -> Option<Composite> {
    let codings: Vec<&Value> = list(cc, "coding")
        .iter()
        .filter(|c| !str_at(c, "code").is_empty())
        .take(2)
        .collect();
    let text = str_at(cc, "text");
    let mut c = Composite::new();
    for (i, coding) in codings.iter().enumerate() {
        let base = i * 3;
        c.set(base + 1, str_at(coding, "code"));
        c.set(base + 2, str_at(coding, "display"));
        let system = str_at(coding, "system");
        if system != default_system {
            c.set(base + 3, codes::coding_system_name(system));
        }
    }
    if codings.is_empty() {
        c.set(2, text);
    } else if !text.is_empty() && text != c.get(2) {
        c.set(9, text);
    }
    (!c.is_empty()).then_some(c)
}

/// A FHIR `date`, `dateTime` or `instant` to a v2 DT/DTM
/// (`YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]`); `field` names the element
/// in the reject when the text is not a FHIR date.
pub fn dtm(field: &str, text: &str) -> Result<String> {
    let bad = || {
        Error::reject(format!(
            "{field} is not a FHIR date or dateTime (YYYY-MM-DDThh:mm:ss+zz:zz)"
        ))
    };
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut out = String::with_capacity(24);
    let parts: Vec<&str> = date.split('-').collect();
    let widths = [4, 2, 2];
    if parts.is_empty() || parts.len() > 3 {
        return Err(bad());
    }
    for (p, w) in parts.iter().zip(widths) {
        if p.len() != w || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        out.push_str(p);
    }
    let Some(time) = time else {
        return Ok(out);
    };
    if parts.len() != 3 {
        return Err(bad());
    }
    let zone_at = time.find(['Z', '+', '-']).ok_or_else(bad)?;
    let (clock, zone) = time.split_at(zone_at);
    let (hms, fraction) = match clock.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (clock, None),
    };
    let hms: Vec<&str> = hms.split(':').collect();
    if hms.len() != 3
        || hms
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    out.extend(hms);
    if let Some(f) = fraction {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        out.push('.');
        out.push_str(&f[..f.len().min(4)]);
    }
    if zone == "Z" {
        out.push_str("+0000");
    } else {
        let z: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if z.len() != 4 || !z.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        out.push_str(&zone[..1]);
        out.push_str(&z);
    }
    Ok(out)
}

/// The DTM of a FHIR date element `key` of `v` (named `path` in a reject);
/// `""` when absent.
pub fn dtm_at(v: &Value, key: &str, path: &str) -> Result<String> {
    match v.get(key).and_then(Value::as_str) {
        Some(t) => dtm(path, t),
        None => Ok(String::new()),
    }
}

/// A Reference to a Practitioner (or a PractitionerRole's practitioner)
/// as XCN (id ^ family ^ given ^ further given ^ suffix ^ prefix ^^^
/// assigning authority ^^^^ identifier type): from the resource when the
/// input holds it, else from the Reference's identifier and display.
pub fn xcn<'a>(res: &Resources<'a>, from: &'a Value, reference: &'a Value) -> Option<Composite> {
    let mut target = res.resolve(from, reference);
    if let Some(role) = target.filter(|t| kind(t) == "PractitionerRole")
        && let Some(p) = role.get("practitioner")
    {
        target = res.resolve(role, p);
    }
    let (id, name) = match target {
        Some(p) => (list(p, "identifier").first(), list(p, "name").first()),
        None => (reference.get("identifier"), None),
    };
    let mut c = Composite::new();
    if let Some(id) = id {
        c.set(1, str_at(id, "value"));
        let hd = authority(str_at(id, "system"));
        c = c.with_inner(9, &hd).with(13, identifier_type(id));
    }
    match name.and_then(xpn) {
        Some(n) => {
            c.set_sub(2, 1, n.get(1));
            for k in 2..=5 {
                c.set(k + 1, n.get(k));
            }
        }
        None => {
            c.set_sub(2, 1, str_at(reference, "display"));
        }
    }
    (!c.is_empty()).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::hl7::Delimiters;
    use weft_sdk::serde_json::json;

    fn enc(c: Option<Composite>) -> String {
        c.map(|c| c.encode(&Delimiters::default()))
            .unwrap_or_default()
    }

    #[test]
    fn data_types() {
        let id =
            json!({"system": "urn:oid:1.2.3", "value": "42", "type": {"coding": [{"code": "MR"}]}});
        assert_eq!(enc(cx(&id)), "42^^^&1.2.3&ISO^MR");
        let id = json!({"system": "urn:weft:assigning-authority:LAB%201", "value": "9"});
        assert_eq!(enc(ei(&id)), "9^LAB 1");
        let name = json!({"family": "Doe", "given": ["Jane", "Q", "R"], "prefix": ["Dr"], "use": "official"});
        assert_eq!(enc(xpn(&name)), "Doe^Jane^Q R^^Dr^^L");
        let cc = json!({"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}], "text": "Sugar"});
        assert_eq!(enc(cwe(&cc)), "2345-7^Glucose^LN^^^^^^Sugar");
        assert_eq!(enc(cwe(&json!({"text": "free"}))), "^free");
        assert_eq!(
            dtm("x", "2024-01-02T03:04:05.123+01:00").unwrap(),
            "20240102030405.123+0100"
        );
        assert_eq!(
            dtm("x", "2024-01-02T03:04:05Z").unwrap(),
            "20240102030405+0000"
        );
        assert_eq!(dtm("x", "2024-01").unwrap(), "202401");
        for bad in [
            "2024-1-02",
            "2024-01-02T03:04",
            "x",
            "2024-01-02T03:04:05+1",
            "2024-01T10:00:00Z",
        ] {
            assert!(dtm("ServiceRequest.authoredOn", bad).is_err(), "{bad}");
        }
        let (t, work) =
            xtn(&json!({"system": "phone", "value": "555 1234", "use": "work"})).unwrap();
        assert!(work);
        assert_eq!(t.encode(&Delimiters::default()), "555 1234^WPN^PH");
    }
}
