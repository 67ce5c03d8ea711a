//! Every corpus message, damaged one field at a time (emptied, or given a
//! value of the wrong shape), through the mapping plugin it is routed to
//! in the real sandbox: each answer is a transaction Bundle or a reject
//! naming a field; never a panic, a trap or a limit.

use crate::common::mappings;
use weft::plugins::{CallError, EngineOptions, Message, PluginEngine};

/// The values a damaged field gets: empty, and a value of the wrong shape
/// everywhere (separators, escapes, a long number, a bad date).
const DAMAGE: &[&str] = &["", "X^^Y&Z~\\E\\9", "99999999999999999999.5e-3^20241399"];

/// The highest field number damaged in each segment.
const MAX_FIELD: usize = 25;

#[test]
fn damaged_fields_are_mapped_or_rejected_never_crash() {
    let repo = crate::common::repo();
    let engine = PluginEngine::new(&EngineOptions::default()).unwrap();
    let plugins = mappings::load_all(&engine, &repo);
    let mut failures = Vec::new();
    let (mut calls, mut mapped, mut rejected) = (0usize, 0usize, 0usize);
    for file in crate::common::corpus_files("hl7v2/fhir-converter") {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        let Some(name) = mappings::plugin_for(&mappings::message_type(text.as_bytes())) else {
            continue;
        };
        let plugin = &plugins.iter().find(|(n, _)| *n == name).unwrap().1;
        let segments: Vec<&str> = text.split('\r').collect();
        for (si, seg) in segments.iter().enumerate() {
            // MSH is the receiver's business (tested elsewhere); the rest is
            // the mapping's.
            if si == 0 || seg.len() < 4 {
                continue;
            }
            let fields: Vec<&str> = seg.split('|').collect();
            for fi in 1..=MAX_FIELD.min(fields.len().saturating_sub(1)) {
                for damage in DAMAGE {
                    let mut f = fields.clone();
                    f[fi] = damage;
                    let mut segs = segments.clone();
                    let joined = f.join("|");
                    segs[si] = &joined;
                    let msg = Message {
                        id: "mutation".into(),
                        content_type: "application/hl7-v2".into(),
                        body: segs.join("\r").into_bytes(),
                        headers: Vec::new(),
                    };
                    calls += 1;
                    let place = format!("{stem} {}-{fi} = {damage:?}", &seg[..3]);
                    match plugin.call(&msg) {
                        Ok(out) => {
                            let ok = out.len() == 1
                                && serde_json::from_slice::<serde_json::Value>(
                                    &out[0].message.body,
                                )
                                .is_ok_and(|b| {
                                    b["type"] == "transaction"
                                        && b["entry"].as_array().is_some_and(|e| !e.is_empty())
                                });
                            if ok {
                                mapped += 1;
                            } else {
                                failures
                                    .push(format!("{place}: {name} gave no transaction Bundle"));
                            }
                        }
                        Err(CallError::Reject { reason, .. }) => {
                            rejected += 1;
                            if !mappings::precise(&reason) {
                                failures
                                    .push(format!("{place}: {name} rejected vaguely: {reason}"));
                            }
                        }
                        Err(e) => failures.push(format!("{place}: {name}: {e}")),
                    }
                }
            }
        }
    }
    println!("{calls} damaged messages: {mapped} mapped, {rejected} rejected");
    assert!(calls > 10_000, "only {calls} damaged messages");
    assert!(
        failures.is_empty(),
        "{} failures, first:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}
