//! HL7 v2 by segment and field.

use weft_hl7::Message;

use crate::{Difference, shown};

/// Every difference between two HL7 v2 messages: segments matched by name
/// and occurrence (the second `OBX` with the second `OBX`), then fields by
/// position, compared as written, except the `volatile` fields (`MSH-7`,
/// `EVN-2`: segment and field, in every occurrence). Text that does not
/// parse as HL7 v2 is one difference saying so.
pub fn compare_hl7(expected: &str, actual: &str, volatile: &[String]) -> Vec<Difference> {
    let (e, a) = match (Message::parse_str(expected), Message::parse_str(actual)) {
        (Ok(e), Ok(a)) => (e, a),
        (e, a) => {
            return vec![Difference {
                path: "(the message)".into(),
                expected: Some(match e {
                    Ok(_) => "an HL7 v2 message".into(),
                    Err(err) => format!("not HL7 v2: {err}"),
                }),
                actual: Some(match a {
                    Ok(_) => "an HL7 v2 message".into(),
                    Err(err) => format!("not HL7 v2: {err}"),
                }),
            }];
        }
    };
    let mut out = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for s in e.segments().iter().chain(a.segments()) {
        if !ids.contains(&s.id()) {
            ids.push(s.id());
        }
    }
    for id in ids {
        let es: Vec<_> = e.segments_named(id).collect();
        let as_: Vec<_> = a.segments_named(id).collect();
        for i in 0..es.len().max(as_.len()) {
            let name = if es.len().max(as_.len()) > 1 {
                format!("{id}[{}]", i + 1)
            } else {
                id.to_string()
            };
            match (es.get(i), as_.get(i)) {
                (Some(es), Some(as_)) => {
                    for n in 1..=es.field_count().max(as_.field_count()) {
                        if volatile.iter().any(|v| *v == format!("{id}-{n}")) {
                            continue;
                        }
                        let ef = es.field(n, e.delimiters()).raw();
                        let af = as_.field(n, a.delimiters()).raw();
                        if ef != af {
                            out.push(Difference {
                                path: format!("{name}-{n}"),
                                expected: (!ef.is_empty()).then(|| shown(ef)),
                                actual: (!af.is_empty()).then(|| shown(af)),
                            });
                        }
                    }
                }
                (es, as_) => out.push(Difference {
                    path: name,
                    expected: es.map(|_| "the segment".to_string()),
                    actual: as_.map(|_| "the segment".to_string()),
                }),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\rPID|1||42^^^H^MR||Doe^Jane\rOBX|1|NM|x||5\rOBX|2|NM|y||6\r";

    #[test]
    fn volatile_fields_are_left_out() {
        let b = A
            .replace("|20240101|", "|20990101|")
            .replace("|1|P|", "|77|P|");
        assert_eq!(compare_hl7(A, &b, &[]).len(), 2);
        let v = ["MSH-7".to_string(), "MSH-10".to_string()];
        assert!(compare_hl7(A, &b, &v).is_empty());
        let c = b.replace("Doe^Jane", "Roe^Jane");
        assert_eq!(compare_hl7(A, &c, &v).len(), 1);
    }

    #[test]
    fn the_same_message_and_field_differences() {
        assert!(compare_hl7(A, A, &[]).is_empty());
        let b = A.replace("Doe^Jane", "Roe^Jane").replace("||6", "||7");
        let d = compare_hl7(A, &b, &[]);
        let shown: Vec<String> = d.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            shown,
            [
                "PID-5: expected Doe^Jane, got Roe^Jane",
                "OBX[2]-5: expected 6, got 7"
            ]
        );
    }

    #[test]
    fn segments_missing_or_added_and_fields_emptied() {
        let b = A
            .replace("OBX|2|NM|y||6\r", "")
            .replace("||42^^^H^MR", "||")
            + "ZZZ|1\r";
        let d = compare_hl7(A, &b, &[]);
        let paths: Vec<&str> = d.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(paths, ["PID-3", "OBX[2]", "ZZZ"]);
        assert_eq!(d[0].actual, None);
        assert_eq!(d[1].actual, None);
        assert_eq!(d[2].expected, None);
        let d = compare_hl7(A, "not hl7", &[]);
        assert_eq!(d[0].path, "(the message)");
    }
}
