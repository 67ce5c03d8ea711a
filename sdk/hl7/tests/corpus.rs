//! Every corpus message parses and round-trips; every malformed one is refused.

use std::path::PathBuf;

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_corpus_message_parses_and_round_trips() {
    let messages = corpus("hl7v2/fhir-converter");
    assert!(
        messages.len() >= 80,
        "corpus has {} messages",
        messages.len()
    );
    for (name, bytes) in messages {
        let m = weft_hl7::Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.to_bytes(), bytes, "{name} does not round-trip");
        let h = m.header().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!h.control_id.is_empty(), "{name}");
        // Reading every field of every segment never panics.
        for seg in m.segments() {
            for n in 1..=seg.field_count() {
                let f = m.field(seg, n);
                for rep in f.repetitions() {
                    for c in rep.parts() {
                        let _ = c.value();
                    }
                }
            }
        }
    }
}

#[test]
fn every_malformed_message_is_refused() {
    let messages = corpus("malformed");
    assert!(messages.len() >= 10);
    for (name, bytes) in messages {
        let result = weft_hl7::parse_and_check(&bytes);
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        // The refusal can always be turned into an ERR segment.
        let e = err.ack_error();
        assert!(!e.text.is_empty(), "{name}");
        println!("{name}: {err}");
    }
}
