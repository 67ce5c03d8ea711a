//! HL7 v2 data types to FHIR data types: CX, XPN, XAD, XTN, CWE, DTM.

use weft_sdk::hl7::Element;
use weft_sdk::hl7::datetime::DateTime;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result, log, lookup};

/// The decoded text of component `c` of a repetition, trimmed.
pub fn comp(r: &Element<'_>, c: usize) -> String {
    r.part(c).value().trim().to_string()
}

/// The decoded text of sub-component `s` of component `c`, trimmed.
pub fn sub(r: &Element<'_>, c: usize, s: usize) -> String {
    r.part(c).part(s).value().trim().to_string()
}

fn put(obj: &mut Map<String, Value>, key: &str, value: String) {
    if !value.is_empty() {
        obj.insert(key.to_string(), Value::String(value));
    }
}

/// The identifier system for an assigning authority (CX.4): the site's
/// lookup table `assigning_authority` first, then an ISO OID in CX.4.2/4.3,
/// then a URN made from the namespace id. An identifier without CX.4 is
/// taken as assigned by `fallback` (the sending facility, MSH-4).
pub fn identifier_system(r: &Element<'_>, fallback: &str) -> Option<String> {
    let mut namespace = sub(r, 4, 1);
    if namespace.is_empty() && sub(r, 4, 2).is_empty() {
        namespace = fallback.to_string();
    }
    let universal = sub(r, 4, 2);
    let universal_type = sub(r, 4, 3);
    if !namespace.is_empty()
        && let Some(system) = lookup("assigning_authority", &namespace)
    {
        return Some(system);
    }
    if !universal.is_empty() {
        if let Some(system) = lookup("assigning_authority", &universal) {
            return Some(system);
        }
        if universal_type.eq_ignore_ascii_case("ISO") {
            return Some(format!("urn:oid:{universal}"));
        }
    }
    (!namespace.is_empty()).then(|| {
        format!(
            "urn:weft:assigning-authority:{}",
            crate::ids::query_encode(&namespace)
        )
    })
}

/// CX to Identifier; `None` when CX.1 is empty. `fallback` is the
/// assigning authority of an identifier without CX.4.
pub fn identifier(r: &Element<'_>, fallback: &str) -> Option<Value> {
    let value = comp(r, 1);
    if value.is_empty() {
        return None;
    }
    let mut id = Map::new();
    let type_code = comp(r, 5);
    if !type_code.is_empty() {
        id.insert(
            "type".into(),
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": type_code}]}),
        );
    }
    if let Some(system) = identifier_system(r, fallback) {
        id.insert("system".into(), Value::String(system));
    }
    id.insert("value".into(), Value::String(value));
    Some(Value::Object(id))
}

/// XPN to HumanName; `None` when it holds no name part.
pub fn human_name(r: &Element<'_>) -> Option<Value> {
    let mut n = Map::new();
    put(&mut n, "family", sub(r, 1, 1));
    let given: Vec<Value> = [comp(r, 2), comp(r, 3)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(Value::String)
        .collect();
    if !given.is_empty() {
        n.insert("given".into(), Value::Array(given));
    }
    for (c, key) in [(5, "prefix"), (4, "suffix")] {
        let v = comp(r, c);
        if !v.is_empty() {
            n.insert(key.into(), json!([v]));
        }
    }
    if n.is_empty() {
        return None;
    }
    let name_use = match comp(r, 7).as_str() {
        "L" | "C" | "R" | "P" => Some("official"),
        "D" | "A" | "T" => Some("usual"),
        "M" => Some("maiden"),
        "N" => Some("nickname"),
        "B" | "BAD" | "NB" => Some("old"),
        "S" => Some("anonymous"),
        _ => None,
    };
    if let Some(u) = name_use {
        n.insert("use".into(), Value::String(u.into()));
    }
    Some(Value::Object(n))
}

/// XAD to Address; `None` when it holds no address part.
pub fn address(r: &Element<'_>) -> Option<Value> {
    let mut a = Map::new();
    let lines: Vec<Value> = [sub(r, 1, 1), comp(r, 2)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(Value::String)
        .collect();
    if !lines.is_empty() {
        a.insert("line".into(), Value::Array(lines));
    }
    put(&mut a, "city", comp(r, 3));
    put(&mut a, "state", comp(r, 4));
    put(&mut a, "postalCode", comp(r, 5));
    put(&mut a, "country", comp(r, 6));
    put(&mut a, "district", comp(r, 9));
    if a.is_empty() {
        return None;
    }
    match comp(r, 7).as_str() {
        "H" | "P" => {
            a.insert("use".into(), "home".into());
        }
        "B" | "O" => {
            a.insert("use".into(), "work".into());
        }
        "C" => {
            a.insert("use".into(), "temp".into());
        }
        "BA" | "BDL" => {
            a.insert("use".into(), "old".into());
        }
        "M" => {
            a.insert("type".into(), "postal".into());
        }
        "SH" => {
            a.insert("type".into(), "physical".into());
        }
        _ => {}
    }
    Some(Value::Object(a))
}

/// XTN to ContactPoint; `default_use` applies when XTN.2 does not say.
pub fn contact_point(r: &Element<'_>, default_use: &str) -> Option<Value> {
    let equipment = comp(r, 3);
    let email = comp(r, 4);
    let mut c = Map::new();
    let system = match equipment.as_str() {
        "Internet" | "X.400" => "email",
        "FX" => "fax",
        "BP" => "pager",
        "PH" | "CP" | "MD" | "SAT" => "phone",
        _ if !email.is_empty() => "email",
        _ => "phone",
    };
    let value = if system == "email" {
        email
    } else {
        let number: String = [comp(r, 5), comp(r, 6), comp(r, 7)]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let number = if number.is_empty() {
            comp(r, 1)
        } else {
            number
        };
        let ext = comp(r, 8);
        if ext.is_empty() || number.is_empty() {
            number
        } else {
            format!("{number} ext. {ext}")
        }
    };
    if value.is_empty() {
        return None;
    }
    c.insert("system".into(), system.into());
    c.insert("value".into(), Value::String(value));
    let use_ = match (comp(r, 2).as_str(), equipment.as_str()) {
        (_, "CP") => "mobile",
        ("PRN" | "ORN" | "VHN", _) => "home",
        ("WPN", _) => "work",
        ("EMR", _) => "temp",
        _ => default_use,
    };
    c.insert("use".into(), use_.into());
    Some(Value::Object(c))
}

/// A coded value (CE/CWE) to CodeableConcept with the given system for its
/// code; `None` when both code and text are empty.
pub fn codeable(r: &Element<'_>, system: &str) -> Option<Value> {
    let code = comp(r, 1);
    let display = comp(r, 2);
    if code.is_empty() && display.is_empty() {
        return None;
    }
    let mut coding = Map::new();
    coding.insert("system".into(), system.into());
    put(&mut coding, "code", code);
    put(&mut coding, "display", display.clone());
    let mut cc = Map::new();
    cc.insert("coding".into(), Value::Array(vec![Value::Object(coding)]));
    put(&mut cc, "text", display);
    Some(Value::Object(cc))
}

/// An HL7 date/time field to FHIR `date`; an impossible date is a reject
/// naming the field.
pub fn date(field: &str, value: &str) -> Result<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    let dt = DateTime::parse(value).map_err(|e| {
        Error::reject(format!(
            "{field} {value:?} is not a valid HL7 date: {}",
            e.reason
        ))
    })?;
    Ok(Some(dt.fhir_date()))
}

/// An HL7 date/time field to FHIR `dateTime`, using `offset` when the value
/// has no UTC offset of its own.
pub fn date_time(field: &str, value: &str, offset: Option<i16>) -> Result<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    let dt = DateTime::parse(value).map_err(|e| {
        Error::reject(format!(
            "{field} {value:?} is not a valid HL7 date/time: {}",
            e.reason
        ))
    })?;
    Ok(Some(dt.fhir_datetime(offset)))
}

/// Maps a code through a lookup table; logs (without the code, which is
/// patient data) when there is no entry.
pub fn coded(field: &str, table: &str, code: &str) -> Option<String> {
    if code.is_empty() {
        return None;
    }
    let mapped = lookup(table, code);
    if mapped.is_none() {
        log::warn!("{field}: code has no entry in lookup table {table}; left out");
        log::debug!("{field}: unmapped code {code:?}");
    }
    mapped
}
