//! Check samples: sample messages a plugin version must handle as expected
//! before it may serve (at start, in `weft check`, and before a hot reload
//! makes it live).
//!
//! ```toml
//! [[plugins.adt-to-fhir.samples]]
//! input = "samples/adt-a01.hl7"      # relative to the config file
//! expect = "transformed"             # transformed (default) | filtered | rejected
//! contains = ["\"resourceType\":\"Patient\""]   # optional: text the outputs must hold
//! ```

use super::plugin::{CallError, Message, Plugin};

pub use weft_config::{Expect, Sample};

/// The media type of a message read from a file: HL7 v2 (starts with
/// `MSH`), FHIR JSON (an object with `resourceType`), other JSON, or bytes.
pub fn guess_content_type(body: &[u8]) -> &'static str {
    let trimmed = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = trimmed
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let t = &trimmed[start..];
    if t.starts_with(b"MSH") {
        "application/hl7-v2"
    } else if t.starts_with(b"{") {
        if t.windows(14).any(|w| w == b"\"resourceType\"") {
            "application/fhir+json"
        } else {
            "application/json"
        }
    } else {
        "application/octet-stream"
    }
}

/// A version's checks before it serves (at start, on hot reload, in
/// `weft check`): one instantiation within its limits with the plugin's
/// `init` ([`Plugin::probe`]), then every sample of its spec; `Ok(n)` when
/// all `n` samples came out as expected, else what failed first and why.
/// The plugin's own words about a sample (which may quote it) go to the
/// debug log only; an `init` reason is about settings and is shown.
pub fn check(plugin: &Plugin) -> Result<usize, String> {
    plugin.probe().map_err(|e| match e {
        CallError::Init { .. } => e.to_string(),
        e => format!("does not instantiate: {}", e.summary()),
    })?;
    let samples = &plugin.spec().samples;
    for sample in samples {
        let name = sample.input.display();
        // Read as it is: the HL7 parser takes CR, LF and CRLF alike.
        let body =
            std::fs::read(&sample.input).map_err(|e| format!("sample {name}: cannot read: {e}"))?;
        let content_type = guess_content_type(&body);
        let msg = Message {
            id: format!("sample-{}", plugin.name()),
            content_type: content_type.to_string(),
            body,
            headers: vec![("source".into(), "check-sample".into())],
        };
        let got = match plugin.call(&msg) {
            Ok(outputs) if outputs.is_empty() => Ok(Expect::Filtered),
            Ok(outputs) => {
                if sample.expect == Expect::Transformed {
                    let text: Vec<String> = outputs
                        .iter()
                        .map(|o| String::from_utf8_lossy(&o.message.body).into_owned())
                        .collect();
                    if let Some(missing) = sample
                        .contains
                        .iter()
                        .find(|c| !text.iter().any(|t| t.contains(c.as_str())))
                    {
                        return Err(format!("sample {name}: no output contains {missing:?}"));
                    }
                }
                Ok(Expect::Transformed)
            }
            Err(e @ CallError::Reject { .. }) => {
                tracing::debug!(plugin = plugin.name(), sample = %name, error = %e, "sample rejected");
                Ok(Expect::Rejected)
            }
            Err(e) => Err(e),
        };
        match got {
            Ok(got) if got == sample.expect => {}
            Ok(got) => {
                return Err(format!(
                    "sample {name}: expected {}, got {}",
                    sample.expect.as_str(),
                    got.as_str()
                ));
            }
            Err(e) => {
                tracing::debug!(plugin = plugin.name(), sample = %name, error = %e, "sample failed");
                return Err(format!(
                    "sample {name}: expected {}, got: {}",
                    sample.expect.as_str(),
                    e.summary()
                ));
            }
        }
    }
    Ok(samples.len())
}
