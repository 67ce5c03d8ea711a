//! Property: a message built from random values and random delimiters
//! serializes and parses back to the same message, and every value reads
//! back as it was written.

use proptest::prelude::*;
use weft_hl7::{Delimiters, Message};

fn delimiters() -> impl Strategy<Value = Delimiters> {
    let pool: Vec<char> = "|^~\\&#!@$%*+/:;=?_".chars().collect();
    (Just(pool), any::<bool>()).prop_flat_map(|(pool, trunc)| {
        Just(pool).prop_shuffle().prop_map(move |p| Delimiters {
            field: p[0],
            component: p[1],
            repetition: p[2],
            escape: p[3],
            subcomponent: p[4],
            truncation: trunc.then_some(p[5]),
        })
    })
}

fn segment_id() -> impl Strategy<Value = String> {
    "[A-Z][A-Z0-9]{2}".prop_filter("not MSH", |s| s != "MSH")
}

/// Values may hold any delimiter, CR/LF, escape-looking text and non-ASCII.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .,'-]{0,12}",
        "[|^~\\\\&#!@$%*+/:;=?_\r\na-z\u{e9}\u{4e2d}]{0,10}",
        Just("\\H\\".to_string()),
    ]
}

type Edit = (usize, usize, usize, usize, String);

fn message() -> impl Strategy<Value = (Delimiters, Vec<(String, Vec<Edit>)>)> {
    (
        delimiters(),
        prop::collection::vec(
            (
                segment_id(),
                prop::collection::vec((1usize..8, 1usize..3, 1usize..4, 1usize..3, value()), 0..6),
            ),
            0..5,
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_serialize_round_trip((d, segments) in message()) {
        let mut m = Message::new(d);
        m.set("MSH-9.1", "ADT").unwrap();
        m.set("MSH-10", "c^1").unwrap();
        let mut expected = Vec::new();
        for (occurrence, (id, edits)) in segments.iter().enumerate() {
            m.push_segment_fields(id, &[]);
            let occ = m.segments_named(id).count();
            let _ = occurrence;
            for (f, r, c, s, v) in edits {
                let path = format!("{id}[{occ}]-{f}({r}).{c}.{s}");
                m.set(&path, v).unwrap();
                expected.push((path, v.clone()));
            }
        }
        let bytes = m.to_bytes();
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &m);
        prop_assert_eq!(parsed.to_bytes(), bytes);
        // The last write to each path wins; every such value reads back.
        let mut last = std::collections::HashMap::new();
        for (p, v) in expected { last.insert(p, v); }
        for (p, v) in last {
            let got = parsed.get(&p).unwrap().unwrap_or_default();
            prop_assert_eq!(got, v, "at {}", p);
        }
        prop_assert_eq!(parsed.get("MSH-10").unwrap(), Some("c^1".to_string()));
    }
}
