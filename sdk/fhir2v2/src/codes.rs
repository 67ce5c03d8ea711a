//! FHIR codes back to HL7 v2 tables: coding-system URIs to table 0396
//! names, and the FHIR value sets the v2 tables were mapped into. Each is
//! the inverse of the map in `weft_v2fhir::codes`, and each can be
//! overridden by a site lookup table (named in its docs).

use weft_sdk::lookup;
use weft_v2fhir::codes::{CODING_SYSTEMS, UNKNOWN_SYSTEM_PREFIX};

use crate::input::percent_decode;

/// The v2 coding-system name (CWE.3) for a FHIR system URI: the plugin's
/// `coding_system_name` lookup table; the names HL7 defines (preferred
/// name); `HLnnnn` for an HL7 v2 table URI; the name kept in a
/// `urn:weft:v2-coding-system:` URI; else the URI itself (no system is
/// dropped).
pub fn coding_system_name(uri: &str) -> String {
    if uri.is_empty() {
        return String::new();
    }
    if let Some(name) = lookup("coding_system_name", uri) {
        return name;
    }
    if let Some((_, names)) = CODING_SYSTEMS.iter().find(|(u, _)| *u == uri)
        && let Some(first) = names.first()
    {
        return (*first).to_string();
    }
    if let Some(table) = uri.strip_prefix("http://terminology.hl7.org/CodeSystem/v2-")
        && table.len() == 4
        && table.bytes().all(|b| b.is_ascii_digit())
    {
        return format!("HL7{table}");
    }
    if let Some(name) = uri.strip_prefix(UNKNOWN_SYSTEM_PREFIX) {
        return percent_decode(name);
    }
    uri.to_string()
}

/// Administrative gender to table 0001.
pub fn sex(gender: &str) -> Option<&'static str> {
    Some(match gender {
        "female" => "F",
        "male" => "M",
        "other" => "O",
        "unknown" => "U",
        _ => return None,
    })
}

/// Encounter.class (v3 ActCode) to table 0004 patient class.
pub fn patient_class(code: &str) -> Option<&'static str> {
    Some(match code {
        "EMER" => "E",
        "IMP" | "ACUTE" | "NONAC" => "I",
        "AMB" | "VR" | "HH" | "FLD" | "SS" | "OBSENC" => "O",
        "PRENC" => "P",
        _ => return None,
    })
}

/// ServiceRequest.status to ORC-1 (order control, table 0119) and ORC-5
/// (order status, table 0038; empty for a new order). `None` for a status
/// that is no order to send (`draft`, `unknown`).
pub fn order_control(status: &str) -> Option<(&'static str, &'static str)> {
    Some(match status {
        "active" => ("NW", ""),
        "on-hold" => ("HD", "HD"),
        "revoked" => ("CA", "CA"),
        "completed" => ("SC", "CM"),
        "entered-in-error" => ("CA", "ER"),
        _ => return None,
    })
}

/// RequestPriority to table 0485 (TQ1-9). `urgent` has no v2 code: it is
/// sent as `A` (as soon as possible).
pub fn priority(code: &str) -> Option<&'static str> {
    Some(match code {
        "stat" => "S",
        "asap" | "urgent" => "A",
        "routine" => "R",
        _ => return None,
    })
}

/// HumanName.use to table 0200 name type (XPN.7).
pub fn name_type(name_use: &str) -> Option<&'static str> {
    Some(match name_use {
        "official" => "L",
        "usual" => "D",
        "maiden" => "M",
        "nickname" => "N",
        "old" => "BAD",
        "anonymous" => "S",
        _ => return None,
    })
}

/// Address.use / Address.type to table 0190 address type (XAD.7).
pub fn address_type(use_: &str, type_: &str) -> Option<&'static str> {
    Some(match (use_, type_) {
        (_, "postal") => "M",
        (_, "physical") => "SH",
        ("home", _) => "H",
        ("work", _) => "B",
        ("temp", _) => "C",
        ("old", _) => "BA",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_v2fhir::codes as forward;

    #[test]
    fn inverse_maps_agree_with_the_forward_ones() {
        for (uri, names) in CODING_SYSTEMS {
            assert_eq!(forward::system_uri(&coding_system_name(uri)), *uri);
            assert!(!names.is_empty());
        }
        assert_eq!(coding_system_name(&forward::v2_table("0002")), "HL70002");
        assert_eq!(
            forward::system_uri(&coding_system_name(&forward::system_uri("99LOC"))),
            forward::system_uri("99LOC")
        );
        for g in ["female", "male", "other", "unknown"] {
            assert_eq!(forward::gender(sex(g).unwrap()), Some(g));
        }
        for c in ["EMER", "IMP", "AMB", "PRENC"] {
            assert_eq!(forward::patient_class(patient_class(c).unwrap()), Some(c));
        }
        for s in [
            "active",
            "on-hold",
            "revoked",
            "completed",
            "entered-in-error",
        ] {
            let (control, status) = order_control(s).unwrap();
            let back =
                forward::order_status(status).or_else(|| forward::order_control_status(control));
            assert_eq!(back, Some(s));
        }
        for p in ["stat", "asap", "routine"] {
            assert_eq!(forward::request_priority(priority(p).unwrap()), Some(p));
        }
    }
}
