//! JSON by structure.

use serde_json::Value;

use crate::{Difference, shown};

/// Every difference between two JSON values, by path; fields whose path
/// (array indices left out) ends with one of `volatile` are ignored.
pub fn compare_json(expected: &Value, actual: &Value, volatile: &[String]) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(
        expected,
        actual,
        &mut String::new(),
        &mut String::new(),
        volatile,
        &mut out,
    );
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => shown(&other.to_string()),
    }
}

/// Whether `bare` (a path without indices) is volatile: it ends with one
/// of the list at a key boundary.
fn is_volatile(bare: &str, volatile: &[String]) -> bool {
    volatile.iter().any(|v| {
        bare == v
            || bare
                .strip_suffix(v.as_str())
                .is_some_and(|head| head.ends_with('.'))
    })
}

/// `v` (at `bare`) with its volatile fields taken out; `None` when
/// nothing else is left.
fn without_volatile(v: &Value, bare: &str, volatile: &[String]) -> Option<Value> {
    if is_volatile(bare, volatile) {
        return None;
    }
    match v {
        Value::Object(o) => {
            let kept: serde_json::Map<String, Value> = o
                .iter()
                .filter_map(|(k, v)| {
                    without_volatile(v, &format!("{bare}.{k}"), volatile).map(|v| (k.clone(), v))
                })
                .collect();
            (!kept.is_empty() || o.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other.clone()),
    }
}

fn walk(
    e: &Value,
    a: &Value,
    path: &mut String,
    bare: &mut String,
    volatile: &[String],
    out: &mut Vec<Difference>,
) {
    if !bare.is_empty() && is_volatile(bare, volatile) {
        return;
    }
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            let mut keys: Vec<&String> = eo.keys().chain(ao.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (pl, bl) = (path.len(), bare.len());
                if !path.is_empty() {
                    path.push('.');
                    bare.push('.');
                }
                path.push_str(k);
                bare.push_str(k);
                match (eo.get(k), ao.get(k)) {
                    (Some(ev), Some(av)) => walk(ev, av, path, bare, volatile, out),
                    // A field on one side only, unless all it holds is
                    // volatile.
                    (ev, av) => {
                        let ev = ev.and_then(|v| without_volatile(v, bare, volatile));
                        let av = av.and_then(|v| without_volatile(v, bare, volatile));
                        if ev.is_some() || av.is_some() {
                            out.push(Difference {
                                path: path.clone(),
                                expected: ev.as_ref().map(text),
                                actual: av.as_ref().map(text),
                            });
                        }
                    }
                }
                path.truncate(pl);
                bare.truncate(bl);
            }
        }
        (Value::Array(ea), Value::Array(aa)) => {
            for i in 0..ea.len().max(aa.len()) {
                let pl = path.len();
                path.push_str(&format!("[{i}]"));
                match (ea.get(i), aa.get(i)) {
                    (Some(ev), Some(av)) => walk(ev, av, path, bare, volatile, out),
                    (ev, av) => out.push(Difference {
                        path: path.clone(),
                        expected: ev.map(text),
                        actual: av.map(text),
                    }),
                }
                path.truncate(pl);
            }
        }
        _ if e == a => {}
        _ => out.push(Difference {
            path: if path.is_empty() {
                "(the whole value)".into()
            } else {
                path.clone()
            },
            expected: Some(text(e)),
            actual: Some(text(a)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_and_each_difference_has_its_path() {
        let e = json!({"resourceType": "Bundle", "entry": [{"resource": {"name": [{"family": "Doe"}], "id": "1"}}]});
        let a = json!({"entry": [{"resource": {"id": "1", "name": [{"family": "Roe"}]}}], "resourceType": "Bundle"});
        let d = compare_json(&e, &e, &[]);
        assert!(d.is_empty());
        let d = compare_json(&e, &a, &[]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "entry[0].resource.name[0].family");
        assert_eq!(
            d[0].to_string(),
            "entry[0].resource.name[0].family: expected \"Doe\", got \"Roe\""
        );
    }

    #[test]
    fn missing_extra_and_volatile_fields() {
        let e = json!({"meta": {"lastUpdated": "2024-01-01"}, "a": 1, "list": [1, 2]});
        let a = json!({"meta": {"lastUpdated": "2026-12-01"}, "b": 2, "list": [1]});
        let d = compare_json(&e, &a, &["meta.lastUpdated".into()]);
        let paths: Vec<&str> = d.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(paths, ["a", "b", "list[1]"]);
        assert_eq!(d[0].actual, None);
        assert_eq!(d[1].expected, None);
        // Volatile wherever it sits, never by a partial key.
        let e = json!({"entry": [{"resource": {"meta": {"lastUpdated": "x"}, "xmeta": {"lastUpdated": "1"}}}]});
        let a = json!({"entry": [{"resource": {"meta": {"lastUpdated": "y"}, "xmeta": {"lastUpdated": "2"}}}]});
        let d = compare_json(&e, &a, &["meta.lastUpdated".into()]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "entry[0].resource.xmeta.lastUpdated");
        // A field on one side only that holds nothing but volatile fields.
        let e = json!({"r": {"meta": {"lastUpdated": "x"}, "id": "1"}});
        let a = json!({"r": {"id": "1"}});
        assert!(compare_json(&e, &a, &["meta.lastUpdated".into()]).is_empty());
        let e = json!({"r": {"meta": {"lastUpdated": "x", "versionId": "2"}, "id": "1"}});
        let d = compare_json(&e, &a, &["meta.lastUpdated".into()]);
        assert_eq!(
            d[0].to_string(),
            "r.meta: expected {\"versionId\":\"2\"}, got (absent)"
        );
    }

    #[test]
    fn types_and_the_whole_value() {
        let d = compare_json(&json!(1), &json!("1"), &[]);
        assert_eq!(d[0].path, "(the whole value)");
        assert_eq!(d[0].to_string(), "(the whole value): expected 1, got \"1\"");
    }
}
