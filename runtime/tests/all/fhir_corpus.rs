//! Every corpus HL7 v2 message through every shipped mapping plugin in the
//! real sandbox: each maps to a FHIR R4 Bundle that two independent
//! validators accept (the R4 JSON schema and FHIR.js, run with Node by
//! `tests/fhir-validator/validate.js`), or is rejected with a reason that
//! names the segment and field; nothing panics, nothing maps to an empty
//! Bundle. Where Microsoft's FHIR-Converter's output for the message is in
//! the corpus, the clinically meaningful fields are compared and a table of
//! agreements and differences is printed (`cargo test --release --test
//! fhir_corpus -- --nocapture` shows it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::fhir_compare::{self, Verdict};
use crate::common::mappings;
use weft::plugins::{CallError, EngineOptions, Message, PluginEngine};

fn message(body: Vec<u8>) -> Message {
    Message {
        id: "corpus".into(),
        content_type: "application/hl7-v2".into(),
        body,
        headers: Vec::new(),
    }
}

/// Runs the two validators over `dir`; their report, and whether all passed.
fn validate(dir: &Path) -> (bool, String) {
    let script = crate::common::repo().join("tests/fhir-validator/validate.js");
    assert!(
        crate::common::repo()
            .join("tests/fhir-validator/node_modules")
            .is_dir(),
        "tests/fhir-validator/node_modules is missing: ./scripts/test.sh installs it (npm ci)"
    );
    let out = Command::new("node")
        .arg(&script)
        .arg(dir)
        .output()
        .expect("node runs (./scripts/test.sh installs Node.js when missing)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn clip(set: &std::collections::BTreeSet<String>) -> String {
    let s = set.iter().cloned().collect::<Vec<_>>().join(", ");
    if s.chars().count() > 70 {
        s.chars().take(67).collect::<String>() + "..."
    } else {
        s
    }
}

#[test]
fn corpus_maps_to_valid_fhir_or_is_rejected_precisely() {
    let repo = crate::common::repo();
    let engine = PluginEngine::new(&EngineOptions::default()).unwrap();
    let plugins = mappings::load_all(&engine, &repo);
    let out = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut mapped: Vec<(String, &str, PathBuf)> = Vec::new();
    let mut rejected: Vec<(String, &str, String)> = Vec::new();
    let mut unrouted = Vec::new();
    let mut us_core_seen = 0;

    for file in crate::common::corpus_files("hl7v2/fhir-converter") {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&file).unwrap();
        let mtype = mappings::message_type(&body);
        let routed = mappings::plugin_for(&mtype);
        if routed.is_none() {
            unrouted.push(format!("{stem} ({mtype})"));
        }
        let msg = message(body);
        for (name, plugin) in &plugins {
            match plugin.call(&msg) {
                Ok(outputs) => {
                    if Some(*name) != routed {
                        failures.push(format!(
                            "{stem}: {name} mapped a {mtype}, which is not routed to it"
                        ));
                        continue;
                    }
                    if outputs.len() != 1 {
                        failures.push(format!("{stem}: {name} gave {} outputs", outputs.len()));
                        continue;
                    }
                    let o = &outputs[0].message;
                    let bundle: serde_json::Value = match serde_json::from_slice(&o.body) {
                        Ok(v) => v,
                        Err(e) => {
                            failures.push(format!("{stem}: {name} output is not JSON: {e}"));
                            continue;
                        }
                    };
                    let entries = bundle["entry"].as_array().map_or(0, Vec::len);
                    if bundle["resourceType"] != "Bundle"
                        || bundle["type"] != "transaction"
                        || entries == 0
                    {
                        failures.push(format!(
                            "{stem}: {name} output is not a non-empty transaction Bundle"
                        ));
                    }
                    assert_eq!(o.content_type, "application/fhir+json");
                    for problem in us_core_problems(&bundle) {
                        failures.push(format!("{stem}: {name}: {problem}"));
                    }
                    us_core_seen += bundle.to_string().matches("us-core-").count();
                    let path = out.path().join(format!("{stem}.json"));
                    std::fs::write(&path, &o.body).unwrap();
                    mapped.push((stem.clone(), name, path));
                }
                Err(CallError::Reject { reason, .. }) => {
                    if !mappings::precise(&reason) {
                        failures.push(format!(
                            "{stem}: {name} rejected without naming a field: {reason}"
                        ));
                    }
                    if Some(*name) == routed {
                        rejected.push((stem.clone(), name, reason));
                    }
                }
                Err(e) => failures.push(format!("{stem}: {name}: {e}")),
            }
        }
    }
    for file in crate::common::corpus_files("malformed") {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let msg = message(std::fs::read(&file).unwrap());
        for (name, plugin) in &plugins {
            match plugin.call(&msg) {
                Err(CallError::Reject { .. }) => {}
                other => failures.push(format!(
                    "malformed/{stem}: {name}: not a reject: {:?}",
                    other.map(|o| o.len())
                )),
            }
        }
    }

    println!("\nMapped ({}):", mapped.len());
    for (stem, name, _) in &mapped {
        println!("  {stem:<40} {name}");
    }
    println!(
        "Rejected by the plugin they are routed to ({}):",
        rejected.len()
    );
    for (stem, name, reason) in &rejected {
        println!("  {stem:<40} {name}: {reason}");
    }
    println!(
        "No shipped mapping for the type ({}): {}",
        unrouted.len(),
        unrouted.join(", ")
    );

    // The shipped samples too (the check samples of the default config):
    // each must map through the plugin it is routed to, and is validated
    // with the corpus (an OUL or a REF whose corpus messages are rejected
    // is validated this way).
    let mut samples = 0;
    for entry in std::fs::read_dir(repo.join("samples")).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().and_then(|e| e.to_str()) != Some("hl7") {
            continue;
        }
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&file).unwrap();
        let mtype = mappings::message_type(&body);
        let Some(name) = mappings::plugin_for(&mtype) else {
            failures.push(format!("sample {stem}: {mtype} is not routed to a mapping"));
            continue;
        };
        let Some((_, plugin)) = plugins.iter().find(|(n, _)| *n == name) else {
            failures.push(format!("sample {stem}: {name} is not loaded"));
            continue;
        };
        match plugin.call(&message(body)) {
            Ok(outputs) if outputs.len() == 1 => {
                let path = out.path().join(format!("sample-{stem}.json"));
                std::fs::write(&path, &outputs[0].message.body).unwrap();
                samples += 1;
            }
            Ok(outputs) => failures.push(format!("sample {stem}: {} outputs", outputs.len())),
            Err(e) => failures.push(format!("sample {stem}: {name}: {e}")),
        }
    }
    println!("Samples mapped for validation: {samples}");
    assert!(samples >= 13, "only {samples} samples mapped");

    let (valid, report) = validate(out.path());
    let invalid: Vec<&str> = report.lines().filter(|l| !l.starts_with("ok ")).collect();
    println!(
        "\nFHIR R4 validation (R4 JSON schema + FHIR.js):\n{}",
        invalid.join("\n")
    );
    if !valid {
        failures.push("some Bundles are not valid FHIR R4 (see the report above)".into());
    }

    // Agreement with Microsoft's FHIR-Converter.
    let mut by_field: BTreeMap<&str, [usize; 6]> = BTreeMap::new();
    let (mut agree, mut total) = (0, 0);
    println!("\nAgreement with Microsoft FHIR-Converter (clinically meaningful fields):");
    println!(
        "  {:<28} {:<26} {:<11} ours | theirs",
        "message", "field", "verdict"
    );
    for (stem, _, path) in &mapped {
        let expected = repo.join(format!(
            "tests/corpus/fhir-expected/fhir-converter/{stem}.json"
        ));
        let Ok(text) = std::fs::read_to_string(&expected) else {
            continue;
        };
        let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ours: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for row in fhir_compare::compare(&ours, &theirs) {
            let e = by_field.entry(row.field).or_default();
            e[row.verdict as usize] += 1;
            total += 1;
            if row.verdict == Verdict::Agree {
                agree += 1;
                println!("  {stem:<28} {:<26} agree", row.field);
            } else {
                println!(
                    "  {stem:<28} {:<26} {:<11} {} | {}",
                    row.field,
                    format!("{:?}", row.verdict),
                    clip(&row.ours),
                    clip(&row.theirs)
                );
            }
        }
    }
    println!(
        "\nBy field (fewer: all our values are theirs, they have more; more: the reverse):\n  {:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "field", "agree", "differ", "ours", "theirs", "fewer", "more"
    );
    for (field, c) in &by_field {
        println!(
            "  {field:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
            c[0], c[1], c[2], c[3], c[4], c[5]
        );
    }
    let rate = if total == 0 {
        0.0
    } else {
        agree as f64 * 100.0 / total as f64
    };
    println!("Overall: {agree} of {total} field comparisons agree ({rate:.1}%)");

    println!("US Core race/ethnicity extensions checked: {us_core_seen}");
    assert!(
        us_core_seen >= 50,
        "the corpus' PID-10/22 make US Core extensions"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        mapped.len() >= 40,
        "only {} corpus messages mapped",
        mapped.len()
    );
    assert!(total >= 200, "only {total} field comparisons made");
    // A guard against a mapping change that loses agreement: the count of
    // exact agreements may not fall, nor the rate below 61%. (Comparing a
    // new field can lower the rate without anything getting worse: the
    // converter makes an Account of every PID-18 and a ChargeItem of every
    // FT1 in any message, Weft only from the billing feed (BAR, DFT): 74
    // comparisons only the converter has, billing-to-fhir's README says
    // why. On the fields compared before the billing ones, 652 of 991
    // agree, 65.8%.)
    assert!(agree >= 690, "only {agree} comparisons agree");
    assert!(rate >= 61.0, "agreement fell to {rate:.1}%");
}

/// What is wrong with the US Core race and ethnicity extensions of the
/// Patients in `bundle`, checked against the US Core 6 extension
/// definitions (no profile validator runs offline here): `text` exactly
/// once and not empty; `ombCategory` codes from the OMB categories (CDC
/// Race & Ethnicity, or UNK/ASKU of v3 NullFlavor), at most 6 for race and
/// 1 for ethnicity; `detailed` codes CDC-shaped (`nnnn-n`); no other part.
fn us_core_problems(bundle: &serde_json::Value) -> Vec<String> {
    use weft_v2fhir::resources::us_core::{
        CDCREC, ETHNICITY_URL, NULL_FLAVOR, OMB_ETHNICITY, OMB_RACE, RACE_URL,
    };
    let mut problems = Vec::new();
    let patients = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Patient");
    for p in patients {
        for ext in p["extension"].as_array().into_iter().flatten() {
            let (omb, max) = match ext["url"].as_str() {
                Some(RACE_URL) => (OMB_RACE, 6),
                Some(ETHNICITY_URL) => (OMB_ETHNICITY, 1),
                _ => continue,
            };
            let parts = ext["extension"].as_array().cloned().unwrap_or_default();
            let texts = parts.iter().filter(|x| x["url"] == "text").count();
            if texts != 1
                || parts.iter().any(|x| {
                    x["url"] == "text" && x["valueString"].as_str().is_none_or(str::is_empty)
                })
            {
                problems.push(format!("{}: text must appear once, not empty", ext["url"]));
            }
            let ombs: Vec<_> = parts.iter().filter(|x| x["url"] == "ombCategory").collect();
            if ombs.len() > max {
                problems.push(format!(
                    "{}: {} ombCategory, at most {max}",
                    ext["url"],
                    ombs.len()
                ));
            }
            for o in ombs {
                let c = &o["valueCoding"];
                let ok = (c["system"] == CDCREC && omb.iter().any(|(code, _)| c["code"] == *code))
                    || (c["system"] == NULL_FLAVOR && (c["code"] == "UNK" || c["code"] == "ASKU"));
                if !ok {
                    problems.push(format!(
                        "{}: ombCategory {c} not an OMB category",
                        ext["url"]
                    ));
                }
            }
            for x in &parts {
                match x["url"].as_str() {
                    Some("ombCategory" | "text") => {}
                    Some("detailed") => {
                        let code = x["valueCoding"]["code"].as_str().unwrap_or_default();
                        let shaped = code.len() == 6 && code.as_bytes()[4] == b'-';
                        if x["valueCoding"]["system"] != CDCREC || !shaped {
                            problems.push(format!(
                                "{}: detailed {} not a CDC code",
                                ext["url"], x["valueCoding"]
                            ));
                        }
                    }
                    other => problems.push(format!("{}: unknown part {other:?}", ext["url"])),
                }
            }
        }
    }
    problems
}
