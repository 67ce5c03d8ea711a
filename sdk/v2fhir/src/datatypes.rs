//! HL7 v2 data types to FHIR data types: CX and EI to Identifier, XPN and
//! XCN to HumanName, XAD to Address, XTN to ContactPoint, CWE to
//! CodeableConcept, NM + CWE units to Quantity.

use weft_sdk::hl7::Element;
use weft_sdk::serde_json::{Map, Number, Value, json};
use weft_sdk::{Error, Result, lookup};

use crate::codes;

/// The decoded text of component `c` of a repetition, trimmed.
pub fn comp(r: &Element<'_>, c: usize) -> String {
    r.part(c).value().trim().to_string()
}

/// The decoded text of sub-component `s` of component `c`, trimmed.
pub fn sub(r: &Element<'_>, c: usize, s: usize) -> String {
    r.part(c).part(s).value().trim().to_string()
}

/// The components of one repetition, split once (reading many components
/// of a CWE or XPN with [`comp`] would split it again for each).
pub struct Parts<'a>(Vec<Element<'a>>);

impl<'a> Parts<'a> {
    /// Splits `r` into its components.
    pub fn of(r: &Element<'a>) -> Parts<'a> {
        Parts(r.parts().collect())
    }

    /// The decoded, trimmed text of component `c` (from 1).
    pub fn text(&self, c: usize) -> String {
        self.get(c)
            .map(|e| e.value().trim().to_string())
            .unwrap_or_default()
    }

    /// The decoded, trimmed text of sub-component `s` of component `c`.
    pub fn sub(&self, c: usize, s: usize) -> String {
        self.get(c)
            .map(|e| e.part(s).value().trim().to_string())
            .unwrap_or_default()
    }

    /// Component `c` (from 1).
    pub fn get(&self, c: usize) -> Option<&Element<'a>> {
        c.checked_sub(1).and_then(|i| self.0.get(i))
    }
}

/// Inserts `value` under `key` when it is not empty.
pub fn put_str(obj: &mut Map<String, Value>, key: &str, value: String) {
    if !value.is_empty() {
        obj.insert(key.to_string(), Value::String(value));
    }
}

/// Inserts `value` under `key` when there is one.
pub fn put(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        obj.insert(key.to_string(), v);
    }
}

/// Inserts the array under `key` when it is not empty.
pub fn put_list(obj: &mut Map<String, Value>, key: &str, values: Vec<Value>) {
    if !values.is_empty() {
        obj.insert(key.to_string(), Value::Array(values));
    }
}

/// A Period of `start` and `end` (dates or dateTimes); `None` when neither
/// is known.
pub fn period(start: Option<String>, end: Option<String>) -> Option<Value> {
    if start.is_none() && end.is_none() {
        return None;
    }
    let mut p = Map::new();
    put(&mut p, "start", start.map(Value::String));
    put(&mut p, "end", end.map(Value::String));
    Some(Value::Object(p))
}

/// The identifier system for an assigning authority (HD: namespace id,
/// universal id, universal id type): the site's lookup table
/// `assigning_authority` on the namespace, then on the universal id; an ISO
/// universal id as `urn:oid:`; else `urn:weft:assigning-authority:<namespace>`.
/// An authority with neither part is taken as `fallback` (the sending
/// facility, MSH-4).
pub fn authority_system(
    namespace: &str,
    universal: &str,
    universal_type: &str,
    fallback: &str,
) -> Option<String> {
    let namespace = if namespace.is_empty() && universal.is_empty() {
        fallback
    } else {
        namespace
    };
    if !namespace.is_empty()
        && let Some(system) = lookup("assigning_authority", namespace)
    {
        return Some(system);
    }
    if !universal.is_empty() {
        if let Some(system) = lookup("assigning_authority", universal) {
            return Some(system);
        }
        if universal_type.eq_ignore_ascii_case("ISO") {
            return Some(format!("urn:oid:{universal}"));
        }
        if universal_type.eq_ignore_ascii_case("URI") {
            return Some(universal.to_string());
        }
    }
    (!namespace.is_empty()).then(|| {
        format!(
            "urn:weft:assigning-authority:{}",
            crate::ids::query_encode(namespace)
        )
    })
}

fn identifier_value(value: String, system: Option<String>, type_code: &str) -> Value {
    let mut id = Map::new();
    if !type_code.is_empty() {
        id.insert(
            "type".into(),
            json!({"coding": [{"system": codes::v2_table("0203"), "code": type_code}]}),
        );
    }
    if let Some(system) = system {
        id.insert("system".into(), Value::String(system));
    }
    id.insert("value".into(), Value::String(value));
    Value::Object(id)
}

/// CX to Identifier; `None` when CX.1 is empty. `fallback` is the
/// assigning authority of an identifier without CX.4.
pub fn identifier(r: &Element<'_>, fallback: &str) -> Option<Value> {
    let p = Parts::of(r);
    let value = p.text(1);
    if value.is_empty() {
        return None;
    }
    let system = authority_system(&p.sub(4, 1), &p.sub(4, 2), &p.sub(4, 3), fallback);
    Some(identifier_value(value, system, &p.text(5)))
}

/// EI (entity identifier: id, namespace, universal id, type) to Identifier
/// with an optional v2-0203 type code (`PLAC`, `FILL`, …); `None` when EI.1
/// is empty.
pub fn entity_identifier(r: &Element<'_>, fallback: &str, type_code: &str) -> Option<Value> {
    let p = Parts::of(r);
    let value = p.text(1);
    if value.is_empty() {
        return None;
    }
    let system = authority_system(&p.text(2), &p.text(3), &p.text(4), fallback);
    Some(identifier_value(value, system, type_code))
}

/// The `system` and `value` of an Identifier built by this module.
pub fn system_value(id: &Value) -> Option<(String, String)> {
    Some((
        id.get("system")?.as_str()?.to_string(),
        id.get("value")?.as_str()?.to_string(),
    ))
}

fn name_use(code: &str) -> Option<&'static str> {
    match code {
        "L" | "C" | "R" | "P" => Some("official"),
        "D" | "A" | "T" => Some("usual"),
        "M" => Some("maiden"),
        "N" => Some("nickname"),
        "B" | "BAD" | "NB" => Some("old"),
        "S" => Some("anonymous"),
        _ => None,
    }
}

fn name_from(
    family: String,
    given: [String; 2],
    suffix: String,
    prefix: String,
    use_code: &str,
) -> Option<Value> {
    let mut n = Map::new();
    put_str(&mut n, "family", family);
    let given: Vec<Value> = given
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(Value::String)
        .collect();
    put_list(&mut n, "given", given);
    if !prefix.is_empty() {
        n.insert("prefix".into(), json!([prefix]));
    }
    if !suffix.is_empty() {
        n.insert("suffix".into(), json!([suffix]));
    }
    if n.is_empty() {
        return None;
    }
    if let Some(u) = name_use(use_code) {
        n.insert("use".into(), Value::String(u.into()));
    }
    Some(Value::Object(n))
}

/// XPN (family ^ given ^ middle ^ suffix ^ prefix ^ degree ^ type) to
/// HumanName; `None` when it holds no name part.
pub fn human_name(r: &Element<'_>) -> Option<Value> {
    let p = Parts::of(r);
    name_from(
        p.sub(1, 1),
        [p.text(2), p.text(3)],
        p.text(4),
        p.text(5),
        &p.text(7),
    )
}

/// The name of an XCN (id ^ family ^ given ^ middle ^ suffix ^ prefix ^
/// degree ^ … ^ name type code (XCN.10)) as HumanName.
pub fn xcn_name(r: &Element<'_>) -> Option<Value> {
    let p = Parts::of(r);
    name_from(
        p.sub(2, 1),
        [p.text(3), p.text(4)],
        p.text(5),
        p.text(6),
        &p.text(10),
    )
}

/// A one-line display of a HumanName built here: prefix, given, family.
pub fn name_display(name: &Value) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for key in ["prefix", "given"] {
        if let Some(a) = name.get(key).and_then(Value::as_array) {
            parts.extend(a.iter().filter_map(Value::as_str));
        }
    }
    if let Some(f) = name.get("family").and_then(Value::as_str) {
        parts.push(f);
    }
    parts.join(" ")
}

/// XAD to Address; `None` when it holds no address part. The street
/// (XAD.1: street ^ street name ^ dwelling number, as sub-components) is
/// one line, then the other designation (XAD.2) and the directions
/// (XAD.19).
pub fn address(r: &Element<'_>) -> Option<Value> {
    let p = Parts::of(r);
    let mut a = Map::new();
    let street: Vec<String> = (1..=3)
        .map(|n| p.sub(1, n))
        .filter(|s| !s.is_empty())
        .collect();
    let lines: Vec<Value> = [street.join(" "), p.text(2), p.text(19)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(Value::String)
        .collect();
    put_list(&mut a, "line", lines);
    put_str(&mut a, "city", p.text(3));
    put_str(&mut a, "state", p.text(4));
    put_str(&mut a, "postalCode", p.text(5));
    put_str(&mut a, "country", p.text(6));
    put_str(&mut a, "district", p.text(9));
    if a.is_empty() {
        return None;
    }
    let (key, value) = match p.text(7).as_str() {
        "H" | "P" => ("use", "home"),
        "B" | "O" => ("use", "work"),
        "C" => ("use", "temp"),
        "BA" | "BDL" => ("use", "old"),
        "M" => ("type", "postal"),
        "SH" => ("type", "physical"),
        _ => return Some(Value::Object(a)),
    };
    a.insert(key.into(), value.into());
    Some(Value::Object(a))
}

/// XTN to ContactPoint; `default_use` applies when XTN.2 does not say.
pub fn contact_point(r: &Element<'_>, default_use: &str) -> Option<Value> {
    let p = Parts::of(r);
    let equipment = p.text(3);
    let email = p.text(4);
    let system = match equipment.as_str() {
        "Internet" | "X.400" | "NET" => "email",
        "FX" => "fax",
        "BP" => "pager",
        "PH" | "CP" | "MD" | "SAT" => "phone",
        _ if !email.is_empty() => "email",
        _ => "phone",
    };
    let value = if system == "email" {
        if email.is_empty() { p.text(1) } else { email }
    } else {
        // The unformatted number (XTN.12) when sent, else country ^ area ^
        // local number ^ extension (XTN.5-8), else the old XTN.1.
        let unformatted = p.text(12);
        let number = [p.text(5), p.text(6), p.text(7)]
            .iter()
            .filter(|s| !s.is_empty())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let ext = p.text(8);
        if !unformatted.is_empty() {
            unformatted
        } else if number.is_empty() {
            p.text(1)
        } else if ext.is_empty() {
            number
        } else {
            format!("{number} ext. {ext}")
        }
    };
    if value.is_empty() {
        return None;
    }
    let use_ = match (p.text(2).as_str(), equipment.as_str()) {
        (_, "CP") => "mobile",
        ("PRN" | "ORN" | "VHN", _) => "home",
        ("WPN", _) => "work",
        ("EMR", _) => "temp",
        _ => default_use,
    };
    Some(json!({"system": system, "value": value, "use": use_}))
}

fn coding(code: String, display: String, system: &str) -> Option<Value> {
    if code.is_empty() {
        return None;
    }
    let mut c = Map::new();
    if !system.is_empty() {
        c.insert("system".into(), Value::String(system.to_string()));
    }
    c.insert("code".into(), Value::String(code));
    put_str(&mut c, "display", display);
    Some(Value::Object(c))
}

/// CWE/CE/CNE (code ^ text ^ system ^ alternate code ^ alternate text ^
/// alternate system ^ … ^ original text (CWE.9)) to CodeableConcept; each
/// coding's system from its coding-system name ([`codes::system_uri`]),
/// or `default_system` when the name is empty. `None` when the value holds
/// neither code nor text.
pub fn codeable(r: &Element<'_>, default_system: &str) -> Option<Value> {
    let p = Parts::of(r);
    let mut codings = Vec::new();
    for (c, d, s) in [(1, 2, 3), (4, 5, 6)] {
        let code = p.text(c);
        if code.is_empty() {
            continue;
        }
        let name = p.text(s);
        let system = if name.is_empty() {
            default_system.to_string()
        } else {
            codes::system_uri(&name)
        };
        codings.extend(coding(code, p.text(d), &system));
    }
    let text = [p.text(9), p.text(2), p.text(5)]
        .into_iter()
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    if codings.is_empty() && text.is_empty() {
        return None;
    }
    let mut cc = Map::new();
    put_list(&mut cc, "coding", codings);
    put_str(&mut cc, "text", text);
    Some(Value::Object(cc))
}

/// What identifies a CodeableConcept built by [`codeable`] in a derived key:
/// its first code, else its text.
pub fn code_key(cc: &Value) -> String {
    cc["coding"][0]["code"]
        .as_str()
        .or(cc["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A CodeableConcept of one code in `system` (a plain ID/IS field).
pub fn concept(code: &str, system: &str) -> Option<Value> {
    let code = code.trim();
    (!code.is_empty()).then(|| json!({"coding": [{"system": system, "code": code}]}))
}

/// An HL7 NM to a FHIR decimal (a JSON number); `field` names it in the
/// reject when it is not a number.
pub fn decimal(field: &dyn std::fmt::Display, text: &str) -> Result<Option<Number>> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    let ok = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && t.bytes().filter(|b| *b == b'.').count() <= 1
        && !t[1..].contains('-')
        && t.bytes().any(|b| b.is_ascii_digit());
    let bad = || Error::reject(format!("{field} is not a number (HL7 NM)"));
    if !ok {
        return Err(bad());
    }
    let f: f64 = t.parse().map_err(|_| bad())?;
    // Integers stay integers (no "5.0" for "5").
    if !t.contains('.')
        && let Ok(i) = t.parse::<i64>()
    {
        return Ok(Some(Number::from(i)));
    }
    Number::from_f64(f).map(Some).ok_or_else(bad)
}

/// A Quantity: `value` with units from a CWE (code ^ text ^ system); UCUM
/// units carry `system` and `code`.
pub fn quantity(value: Number, units: &Element<'_>) -> Value {
    let mut q = Map::new();
    q.insert("value".into(), Value::Number(value));
    let code = comp(units, 1);
    let text = comp(units, 2);
    let system = comp(units, 3);
    let unit = if text.is_empty() { code.clone() } else { text };
    put_str(&mut q, "unit", unit);
    let ucum = system.eq_ignore_ascii_case("UCUM")
        || (system.is_empty() && !code.is_empty() && looks_ucum(&code));
    if ucum && !code.is_empty() {
        q.insert("system".into(), codes::UCUM.into());
        q.insert("code".into(), Value::String(code));
    }
    Value::Object(q)
}

/// Units commonly sent without a coding system that are valid UCUM as
/// written.
fn looks_ucum(code: &str) -> bool {
    matches!(
        code,
        "%" | "mg"
            | "g"
            | "kg"
            | "mL"
            | "L"
            | "dL"
            | "mg/dL"
            | "g/dL"
            | "mmol/L"
            | "cm"
            | "mm"
            | "m"
            | "s"
            | "min"
            | "h"
            | "d"
            | "mm[Hg]"
            | "/min"
            | "[lb_av]"
            | "[in_i]"
            | "Cel"
            | "10*3/uL"
            | "10*6/uL"
            | "fL"
            | "pg"
            | "U/L"
            | "meq/L"
            | "ng/mL"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::hl7::Message;

    fn first(text: &str, f: impl Fn(&Element<'_>) -> Option<Value>) -> Option<Value> {
        let m = Message::parse_str(&format!(
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rZZZ|{text}"
        ))
        .unwrap();
        let seg = m.segment("ZZZ").unwrap();
        f(&m.field(seg, 1).repetition(1))
    }

    #[test]
    fn coded_values_keep_their_systems() {
        let cc = first("8867-4^Heart rate^LN^HR^Heart^L^^^Pulse", |r| {
            codeable(r, "")
        })
        .unwrap();
        assert_eq!(cc["coding"][0]["system"], codes::LOINC);
        assert_eq!(cc["coding"][1]["system"], "urn:weft:v2-coding-system:L");
        assert_eq!(cc["text"], "Pulse");
        let cc = first("F", |r| codeable(r, &codes::v2_table("0001"))).unwrap();
        assert_eq!(cc["coding"][0]["system"], codes::v2_table("0001"));
    }

    #[test]
    fn numbers() {
        assert_eq!(decimal(&"OBX-5", "+05").unwrap().unwrap().to_string(), "5");
        assert_eq!(
            decimal(&"OBX-5", "4.06").unwrap().unwrap().to_string(),
            "4.06"
        );
        assert_eq!(
            decimal(&"OBX-5", "-0.5").unwrap().unwrap().to_string(),
            "-0.5"
        );
        assert!(decimal(&"OBX-5", "1-2").is_err());
        assert!(
            decimal(&"OBX-5", "abc")
                .unwrap_err()
                .reason()
                .starts_with("OBX-5")
        );
        assert!(decimal(&"OBX-5", "").unwrap().is_none());
    }

    #[test]
    fn xcn_names() {
        let n = first("1234^Welby^Marcus^J^Jr^Dr", xcn_name).unwrap();
        assert_eq!(name_display(&n), "Dr Marcus J Welby");
        assert_eq!(n["suffix"][0], "Jr");
    }
}
