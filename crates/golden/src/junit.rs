//! JUnit XML, the report a site's CI reads.

/// One case's result.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The case's name (its folder).
    pub name: String,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// Why it failed; `None`: it passed.
    pub failure: Option<String>,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot hold at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The results of `suite` as a JUnit XML document.
pub fn junit(suite: &str, cases: &[CaseResult]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let time: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">\n",
        cases.len(),
        escape(suite),
        cases.len()
    );
    for c in cases {
        let name = escape(&c.name);
        match &c.failure {
            None => out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{name}\" time=\"{:.3}\"/>\n",
                escape(suite),
                c.seconds
            )),
            Some(f) => {
                let first = f.lines().next().unwrap_or_default();
                out.push_str(&format!(
                    "    <testcase classname=\"{}\" name=\"{name}\" time=\"{:.3}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    escape(suite),
                    c.seconds,
                    escape(first),
                    escape(f)
                ));
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_and_failures_escaped() {
        let xml = junit(
            "adt <route>",
            &[
                CaseResult {
                    name: "a01".into(),
                    seconds: 0.01,
                    failure: None,
                },
                CaseResult {
                    name: "a08 & co".into(),
                    seconds: 0.02,
                    failure: Some("PID-5: expected \"Doe\", got <Roe>\nmore\u{1}".into()),
                },
            ],
        );
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("name=\"adt &lt;route&gt;\""));
        assert!(
            xml.contains("<testcase classname=\"adt &lt;route&gt;\" name=\"a01\" time=\"0.010\"/>")
        );
        assert!(xml.contains("name=\"a08 &amp; co\""));
        assert!(xml.contains("message=\"PID-5: expected &quot;Doe&quot;, got &lt;Roe&gt;\""));
        assert!(xml.contains("more\u{FFFD}</failure>"));
    }
}
