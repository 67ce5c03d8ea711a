//! Code systems and code maps: HL7 v2 coding-system names (table 0396) to
//! FHIR system URIs, and the v2 tables whose codes FHIR requires in its own
//! value sets (status, class, priority, …).
//!
//! Every built-in map can be extended or overridden by a site lookup table
//! of the plugin (named in each function's docs), so a site with local codes
//! adds a CSV row instead of a new plugin build.

use weft_sdk::hl7::Segment;
use weft_sdk::{Error, Result, log, lookup};

use crate::context::Context;

/// `http://terminology.hl7.org/CodeSystem/v2-NNNN` for HL7 table `table`.
pub fn v2_table(table: &str) -> String {
    format!("http://terminology.hl7.org/CodeSystem/v2-{table}")
}

/// LOINC.
pub const LOINC: &str = "http://loinc.org";
/// UCUM units.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// CVX vaccine codes.
pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
/// MVX manufacturer codes.
pub const MVX: &str = "http://hl7.org/fhir/sid/mvx";
/// HL7 v3 ActCode (Encounter.class).
pub const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// HL7 v3 ObservationInterpretation.
pub const V3_INTERPRETATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
/// HL7 v3 ParticipationType.
pub const V3_PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
/// Systems of codes whose coding system name is unknown: the name follows.
pub const UNKNOWN_SYSTEM_PREFIX: &str = "urn:weft:v2-coding-system:";

/// The coding systems HL7 (table 0396) and the V2-to-FHIR IG name: each
/// FHIR system URI with its v2 names, the preferred name first (the one
/// written when going from FHIR back to v2).
pub const CODING_SYSTEMS: &[(&str, &[&str])] = &[
    (LOINC, &["LN", "LOINC"]),
    (
        "http://snomed.info/sct",
        &["SCT", "SNM", "SNOMED", "SNOMEDCT", "SNOMED-CT"],
    ),
    ("http://hl7.org/fhir/sid/icd-10", &["I10", "ICD10"]),
    (
        "http://hl7.org/fhir/sid/icd-10-cm",
        &["I10C", "ICD10CM", "I10-CM"],
    ),
    (
        "http://hl7.org/fhir/sid/icd-9-cm",
        &["I9CM", "I9", "I9C", "ICD9", "ICD9CM"],
    ),
    (UCUM, &["UCUM"]),
    (CVX, &["CVX"]),
    (MVX, &["MVX"]),
    ("http://hl7.org/fhir/sid/ndc", &["NDC"]),
    (
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        &["RXNORM", "RXN"],
    ),
    ("http://www.ama-assn.org/go/cpt", &["C4", "CPT", "CPT4"]),
    ("http://ncithesaurus-stage.nci.nih.gov", &["NCIT"]),
    ("urn:oid:2.16.840.1.113883.6.238", &["CDCREC"]),
    ("urn:oid:2.16.840.1.114222.4.5.274", &["CDCPHINVS"]),
    ("http://nucc.org/provider-taxonomy", &["NUCC"]),
    ("urn:iso:std:iso:3166", &["ISO3166", "ISO3166_1"]),
];

/// The FHIR system URI for an HL7 v2 coding-system name (CWE.3, table
/// 0396). The plugin's `coding_system` lookup table is asked first; then the
/// names HL7 and the V2-to-FHIR IG define; then `HL7nnnn` / `99nnn` style
/// v2 table names. An unknown name is kept, as `urn:weft:v2-coding-system:NAME`,
/// so no code is dropped and a site can map it later.
pub fn system_uri(name: &str) -> String {
    let name = name.trim();
    if let Some(uri) = lookup("coding_system", name) {
        return uri;
    }
    let upper = name.to_ascii_uppercase();
    if let Some((uri, _)) = CODING_SYSTEMS
        .iter()
        .find(|(_, names)| names.contains(&upper.as_str()))
    {
        return (*uri).to_string();
    }
    // HL7nnnn, HL7 nnnn, HL70078 …: an HL7 table.
    if let Some(rest) = upper.strip_prefix("HL7") {
        let digits = rest.trim();
        if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return v2_table(digits);
        }
    }
    let mut uri = String::from(UNKNOWN_SYSTEM_PREFIX);
    uri.push_str(&crate::ids::query_encode(name));
    uri
}

/// A v2 code that FHIR requires from a closed value set: the site's lookup
/// table `table` first, then `builtin`. An empty code is `Ok(None)`; a code
/// neither knows is a reject naming `field` and the table to extend (the
/// code itself is not in the reason: it may be patient data).
pub fn required(
    field: &dyn std::fmt::Display,
    what: &str,
    table: &str,
    code: &str,
    builtin: fn(&str) -> Option<&'static str>,
) -> Result<Option<String>> {
    let code = code.trim();
    if code.is_empty() {
        return Ok(None);
    }
    if let Some(mapped) = lookup(table, code) {
        return Ok(Some(mapped));
    }
    match builtin(code) {
        Some(m) => Ok(Some(m.to_string())),
        None => {
            log::debug!("{field}: unmapped code {code:?}");
            Err(Error::reject(format!(
                "{field} ({what}) holds a code with no FHIR mapping (add it to the {table} lookup table)"
            )))
        }
    }
}

/// Like [`required`] for an optional element: an unknown code is left out
/// with a warning (naming the field and table, not the code).
pub fn optional(
    field: &dyn std::fmt::Display,
    table: &str,
    code: &str,
    builtin: fn(&str) -> Option<&'static str>,
) -> Option<String> {
    let code = code.trim();
    if code.is_empty() {
        return None;
    }
    if let Some(mapped) = lookup(table, code) {
        return Some(mapped);
    }
    let m = builtin(code).map(str::to_string);
    if m.is_none() {
        log::warn!(
            "{field}: code has no entry in lookup table {table} nor a built-in mapping; left out"
        );
        log::debug!("{field}: unmapped code {code:?}");
    }
    m
}

/// A code through the site's lookup table `table`, else `builtin`; `None`
/// when neither knows it (the caller decides what that means).
pub fn lookup_or(
    table: &str,
    code: &str,
    builtin: fn(&str) -> Option<&'static str>,
) -> Option<String> {
    lookup(table, code).or_else(|| builtin(code).map(str::to_string))
}

/// Table 0001 administrative sex to FHIR administrative-gender.
pub fn gender(code: &str) -> Option<&'static str> {
    Some(match code {
        "F" => "female",
        "M" => "male",
        "O" | "A" | "N" => "other",
        "U" => "unknown",
        _ => return None,
    })
}

/// Table 0004 patient class to v3 ActCode (Encounter.class).
pub fn patient_class(code: &str) -> Option<&'static str> {
    Some(match code {
        "E" => "EMER",
        "I" | "B" => "IMP",
        "O" | "R" => "AMB",
        "P" => "PRENC",
        "N" => "NONAC",
        _ => return None,
    })
}

/// The display of a v3 ActCode used for Encounter.class.
pub fn act_code_display(code: &str) -> Option<&'static str> {
    Some(match code {
        "EMER" => "emergency",
        "IMP" => "inpatient encounter",
        "AMB" => "ambulatory",
        "PRENC" => "pre-admission",
        "NONAC" => "inpatient non-acute",
        "HH" => "home health",
        "VR" => "virtual",
        "OBSENC" => "observation encounter",
        "SS" => "short stay",
        "ACUTE" => "inpatient acute",
        "FLD" => "field",
        _ => return None,
    })
}

/// Table 0085 observation result status to ObservationStatus.
pub fn observation_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "C" => "corrected",
        "D" | "W" => "entered-in-error",
        "F" | "U" => "final",
        "I" | "O" => "registered",
        "P" | "R" | "S" => "preliminary",
        "X" | "N" => "cancelled",
        "A" => "amended",
        _ => return None,
    })
}

/// Table 0123 result status to DiagnosticReportStatus.
pub fn report_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "O" | "I" | "S" => "registered",
        "P" => "preliminary",
        "A" | "R" => "partial",
        "C" => "corrected",
        "M" => "amended",
        "F" => "final",
        "X" => "cancelled",
        "Y" | "Z" => "unknown",
        _ => return None,
    })
}

/// Table 0078 abnormal flags to v3 ObservationInterpretation codes: the
/// v2 codes the V2-to-FHIR IG maps one to one.
pub fn interpretation(code: &str) -> Option<&'static str> {
    const CODES: &[&str] = &[
        "<", ">", "A", "AA", "B", "D", "DET", "E", "EX", "H", "HH", "HX", "I", "IND", "L", "LL",
        "LX", "MS", "N", "ND", "NEG", "NR", "POS", "R", "RR", "S", "SDD", "SYN-R", "SYN-S", "U",
        "VS", "W", "WR",
    ];
    CODES.iter().find(|c| **c == code).copied()
}

/// Table 0038 order status (ORC-5) to RequestStatus.
pub fn order_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "A" | "IP" | "SC" => "active",
        "CA" | "DC" | "RP" => "revoked",
        "CM" => "completed",
        "ER" => "entered-in-error",
        "HD" => "on-hold",
        _ => return None,
    })
}

/// Table 0119 order control (ORC-1) to RequestStatus, used when ORC-5 is
/// empty.
pub fn order_control_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "NW" | "XO" | "SC" | "RP" | "RO" | "OK" | "SN" | "XX" | "RE" | "PA" | "NA" => "active",
        "CA" | "DC" | "OC" | "OD" | "CR" | "DR" => "revoked",
        "HD" | "OH" | "HR" => "on-hold",
        "CH" | "RL" | "OR" => "active",
        _ => return None,
    })
}

/// Table 0038 order status (ORC-5) to MedicationRequest.status (which has
/// `cancelled` and `stopped` where ServiceRequest has `revoked`).
pub fn medication_order_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "A" | "IP" | "SC" => "active",
        "CA" => "cancelled",
        "DC" | "RP" => "stopped",
        "CM" => "completed",
        "ER" => "entered-in-error",
        "HD" => "on-hold",
        _ => return None,
    })
}

/// Table 0119 order control (ORC-1) to MedicationRequest.status, used
/// when ORC-5 is empty.
pub fn medication_order_control_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "CA" | "OC" | "CR" => "cancelled",
        "DC" | "OD" | "DR" => "stopped",
        _ => return order_control_status(code),
    })
}

/// The status of an RXA: `entered-in-error` when RXA-21 (action code) is
/// `D`; else RXA-20 (completion status, table 0322) through the
/// `completion_status` lookup table, then `builtin`; `completed` when
/// empty. An unknown RXA-20 is a reject naming it.
pub fn rxa_status(
    ctx: &Context<'_>,
    rxa: &Segment,
    builtin: fn(&str) -> Option<&'static str>,
) -> Result<String> {
    if ctx.text(rxa, 21) == "D" {
        return Ok("entered-in-error".to_string());
    }
    Ok(required(
        &ctx.name(rxa, 20),
        "completion status",
        "completion_status",
        &ctx.text(rxa, 20),
        builtin,
    )?
    .unwrap_or_else(|| "completed".to_string()))
}

/// Table 0322 completion status (RXA-20) to MedicationAdministration.status.
pub fn administration_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "CP" => "completed",
        "RE" | "NA" => "not-done",
        "PA" => "stopped",
        _ => return None,
    })
}

/// Table 0271 document completion status (TXA-17) to
/// DocumentReference.docStatus.
pub fn document_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "DI" | "DO" | "IP" | "IN" | "PA" => "preliminary",
        "AU" | "LA" => "final",
        _ => return None,
    })
}

/// Priority codes (TQ1-9 / OBR-5 / ORC-7.6, table 0485) to RequestPriority.
pub fn request_priority(code: &str) -> Option<&'static str> {
    Some(match code {
        "S" | "STAT" => "stat",
        "A" | "ASAP" => "asap",
        "R" | "ROUTINE" => "routine",
        "P" | "C" | "T" | "PRN" | "TM" | "TS" | "TD" | "UD" => "routine",
        "U" | "URGENT" => "urgent",
        _ => return None,
    })
}

/// Table 0127 allergen type (AL1-2) to AllergyIntolerance.category.
pub fn allergy_category(code: &str) -> Option<&'static str> {
    Some(match code {
        "DA" | "MA" | "MC" => "medication",
        "FA" => "food",
        "EA" | "AA" | "PA" | "LA" => "environment",
        _ => return None,
    })
}

/// Table 0128 allergy severity (AL1-4) to AllergyIntolerance.criticality.
pub fn allergy_criticality(code: &str) -> Option<&'static str> {
    Some(match code {
        "SV" => "high",
        "MO" | "MI" => "low",
        "U" => "unable-to-assess",
        _ => return None,
    })
}

/// Table 0322 completion status (RXA-20) to Immunization.status.
pub fn immunization_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "CP" | "PA" => "completed",
        "RE" | "NA" => "not-done",
        _ => return None,
    })
}

/// Table 0278 filler status (SCH-25) to AppointmentStatus.
pub fn appointment_status(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_lowercase().as_str() {
        "booked" | "started" | "overbook" | "confirmed" => "booked",
        "pending" | "waitlist" => "pending",
        "cancelled" | "deleted" | "blocked" => "cancelled",
        "complete" => "fulfilled",
        "noshow" => "noshow",
        "dc" => "cancelled",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coding_systems() {
        assert_eq!(system_uri("LN"), LOINC);
        assert_eq!(system_uri("HL70078"), v2_table("0078"));
        assert_eq!(system_uri("HL7 0163"), v2_table("0163"));
        assert_eq!(system_uri("I10"), "http://hl7.org/fhir/sid/icd-10");
        assert_eq!(system_uri("L"), "urn:weft:v2-coding-system:L");
        assert_eq!(system_uri("99 x"), "urn:weft:v2-coding-system:99%20x");
    }

    #[test]
    fn required_codes_reject_without_the_code() {
        let e = required(
            &"PV1-2",
            "patient class",
            "patient_class",
            "ZZ",
            patient_class,
        )
        .unwrap_err();
        assert!(e.reason().starts_with("PV1-2 (patient class)"), "{e}");
        assert!(!e.reason().contains("ZZ"));
        assert_eq!(
            required(&"PV1-2", "x", "patient_class", "I", patient_class).unwrap(),
            Some("IMP".into())
        );
        assert_eq!(
            required(&"PV1-2", "x", "t", " ", patient_class).unwrap(),
            None
        );
    }
}
