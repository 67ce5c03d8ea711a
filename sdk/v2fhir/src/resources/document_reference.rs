//! TXA + OBX (the document's content) to DocumentReference: a clinical
//! document of an MDM message, its text joined from TX/FT/ST lines or its
//! encapsulated data (ED) with the MIME type it was sent with.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::Bundle;
use crate::codes;
use crate::context::Context;
use crate::datatypes::{Parts, codeable, entity_identifier, put, put_list, system_value};
use crate::resources::encounter::EncounterRef;
use crate::resources::patient::PatientRef;
use crate::resources::practitioner;

/// The largest document this mapper puts into a Bundle, decoded: 16 MiB
/// (the runtime caps messages well below what would reach it; the cap
/// keeps a hostile ED from growing the output past the plugin's memory).
pub const MAX_CONTENT: usize = 16 << 20;

/// The HL7 v3 Confidentiality code system (DocumentReference.securityLabel).
const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

/// Maps the document: TXA with the OBX segments of the message. TXA-2
/// (document type) is required; the match is TXA-12 (unique document
/// number), else an identity derived from the patient and the message.
/// `trigger` is MSH-9.2 (T01 … T11): T11 (cancel) makes the document
/// `entered-in-error`; T08/T10 (edit, replace) of an authenticated
/// document make it `amended`. `orders` are references to the orders the
/// document answers (the message's ORC/OBR, mapped by the caller).
#[allow(clippy::too_many_arguments)]
pub fn map(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    txa: &Segment,
    obx: &[&Segment],
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
    orders: Vec<Value>,
    trigger: &str,
) -> Result<String> {
    let kind =
        codeable(&ctx.field(txa, 2).repetition(1), &codes::v2_table("0270")).ok_or_else(|| {
            Error::reject(format!(
                "{} (document type) is empty: a document needs its type",
                ctx.name(txa, 2)
            ))
        })?;
    let mut d = Map::new();
    d.insert("resourceType".into(), "DocumentReference".into());
    let master = entity_identifier(&ctx.field(txa, 12).repetition(1), ctx.facility(), "");
    let identity = master.as_ref().and_then(system_value);
    if let Some(m) = &master {
        d.insert("masterIdentifier".into(), m.clone());
        d.insert("identifier".into(), json!([m]));
    }
    let availability = ctx.text(txa, 19);
    let status = if trigger == "T11" || availability == "CA" {
        "entered-in-error"
    } else if availability == "OB" {
        "superseded"
    } else {
        "current"
    };
    d.insert("status".into(), status.into());
    let completion = codes::required(
        &ctx.name(txa, 17),
        "document completion status",
        "document_status",
        &ctx.text(txa, 17),
        codes::document_status,
    )?;
    let doc_status = match completion.as_deref() {
        Some("final") if matches!(trigger, "T08" | "T10") => Some("amended".to_string()),
        _ if status == "entered-in-error" => Some("entered-in-error".to_string()),
        other => other.map(str::to_string),
    };
    put(&mut d, "docStatus", doc_status.map(Value::String));
    d.insert("type".into(), kind.clone());
    d.insert("subject".into(), patient.reference());
    let date = ctx.instant_value(
        &ctx.name(txa, 6),
        ctx.field(txa, 6).repetition(1).part(1).value().trim(),
    )?;
    let date = match date {
        Some(d) => Some(d),
        None => ctx.instant_value(
            &ctx.name(txa, 4),
            ctx.field(txa, 4).repetition(1).part(1).value().trim(),
        )?,
    };
    put(&mut d, "date", date.clone().map(Value::String));
    let mut authors = practitioner::map_all(ctx, bundle, ctx.field(txa, 9));
    if authors.is_empty() {
        authors = practitioner::map_all(ctx, bundle, ctx.field(txa, 5));
    }
    put_list(&mut d, "author", authors);
    put(
        &mut d,
        "authenticator",
        practitioner::map(ctx, bundle, &ctx.field(txa, 10).repetition(1)),
    );
    let parent = entity_identifier(&ctx.field(txa, 13).repetition(1), ctx.facility(), "");
    if let Some(p) = parent {
        d.insert(
            "relatesTo".into(),
            json!([{ "code": "replaces", "target": { "identifier": p } }]),
        );
    }
    let label = match ctx.text(txa, 18).as_str() {
        "V" => Some(("V", "very restricted")),
        "R" => Some(("R", "restricted")),
        "U" => Some(("N", "normal")),
        _ => None,
    };
    if let Some((code, display)) = label {
        d.insert(
            "securityLabel".into(),
            json!([{ "coding": [{ "system": CONFIDENTIALITY, "code": code, "display": display }] }]),
        );
    }
    let title = {
        let file = ctx.text(txa, 16);
        if file.is_empty() {
            kind["text"].as_str().unwrap_or_default().to_string()
        } else {
            file
        }
    };
    let mut attachments = content(ctx, obx)?;
    if attachments.is_empty() {
        // A notification without the content (T01, T03, T05, T07, T09,
        // T11): the document is known, its content is elsewhere.
        attachments.push(Map::new());
    }
    let content: Vec<Value> = attachments
        .into_iter()
        .map(|mut a| {
            if !title.is_empty() {
                a.insert("title".into(), Value::String(title.clone()));
            }
            put(&mut a, "creation", date.clone().map(Value::String));
            json!({ "attachment": a })
        })
        .collect();
    d.insert("content".into(), Value::Array(content));
    let mut context = Map::new();
    if let Some(e) = encounter {
        context.insert("encounter".into(), json!([e.reference()]));
    }
    let mut related = orders;
    if related.is_empty() {
        related = [(14, "PLAC"), (15, "FILL")]
            .into_iter()
            .filter_map(|(n, t)| {
                entity_identifier(&ctx.field(txa, n).repetition(1), ctx.facility(), t)
            })
            .map(|id| json!({ "identifier": id }))
            .collect();
    }
    put_list(&mut context, "related", related);
    if !context.is_empty() {
        d.insert("context".into(), Value::Object(context));
    }
    Ok(match identity {
        Some((system, value)) => bundle.put("DocumentReference", &system, &value, Value::Object(d)),
        None => {
            let key = patient.key(&format!(
                "document|{}|{}|{}",
                ctx.facility(),
                ctx.header.control_id,
                crate::datatypes::code_key(&kind)
            ));
            bundle.put_derived("DocumentReference", &key, d)
        }
    })
}

/// The document's content from the OBX segments: the text of the TX, FT,
/// ST and CF lines joined into one `text/plain` attachment, and one
/// attachment per ED (its MIME type from ED.2/ED.3, its data from ED.5 as
/// ED.4 encodes it). An ED whose data is not what ED.4 says is a reject
/// naming the OBX.
fn content(ctx: &Context<'_>, obx: &[&Segment]) -> Result<Vec<Map<String, Value>>> {
    let mut lines = Vec::new();
    let mut attachments = Vec::new();
    let mut size = 0usize;
    // Counted before anything is kept or encoded: a document past the cap
    // is refused at the OBX that crosses it.
    let mut grow = |o: &Segment, n: usize| -> Result<()> {
        size = size.saturating_add(n);
        if size > MAX_CONTENT {
            return Err(Error::reject(format!(
                "{} makes the document larger than {} MiB",
                ctx.name(o, 5),
                MAX_CONTENT >> 20
            )));
        }
        Ok(())
    };
    for o in obx {
        match ctx.text(o, 2).as_str() {
            "TX" | "FT" | "ST" | "CF" | "" => {
                for line in text_lines(ctx, o) {
                    grow(o, line.len() + 1)?;
                    lines.push(line);
                }
            }
            "ED" => {
                let r = ctx.field(o, 5).repetition(1);
                let p = Parts::of(&r);
                let data = p.text(5);
                if data.is_empty() {
                    continue;
                }
                let bytes = decode_ed(&p.text(4), &data).ok_or_else(|| {
                    Error::reject(format!(
                        "{} (encapsulated data) is not what ED.4 (encoding) says it is",
                        ctx.name(o, 5)
                    ))
                })?;
                grow(o, bytes.len())?;
                let mut a = Map::new();
                a.insert(
                    "contentType".into(),
                    Value::String(mime_type(&p.text(2), &p.text(3))),
                );
                a.insert("data".into(), Value::String(STANDARD.encode(&bytes)));
                attachments.push(a);
            }
            _ => {}
        }
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if !lines.is_empty() {
        let text = lines.join("\n");
        let mut a = Map::new();
        a.insert("contentType".into(), "text/plain; charset=utf-8".into());
        a.insert(
            "data".into(),
            Value::String(STANDARD.encode(text.as_bytes())),
        );
        attachments.insert(0, a);
    }
    Ok(attachments)
}

/// The lines of a text OBX: each repetition of OBX-5 as plain text
/// ([`plain_text`]).
pub fn text_lines(ctx: &Context<'_>, obx: &Segment) -> Vec<String> {
    ctx.field(obx, 5)
        .repetitions()
        .map(|r| plain_text(&r.value(), ctx.hl7.delimiters().escape))
        .collect()
}

/// The text of a TX/FT value with FT's formatting escapes resolved:
/// `\.br\` and `\.sp\` as line breaks, the others (`\H\`, `\N\`, `\.in\`,
/// `\.ti\`, `\.fi\`, `\.nf\`, `\.ce\`, `\.sk\`) dropped. `escape` is the
/// message's escape character; delimiter escapes are decoded already.
pub fn plain_text(value: &str, escape: char) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find(escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + escape.len_utf8()..];
        let Some(end) = after.find(escape) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let body = &after[..end];
        match body {
            ".br" => out.push('\n'),
            b if b.starts_with(".sp") => out.push('\n'),
            "H" | "N" => {}
            b if b.starts_with('.') => {}
            // Not a formatting command: keep it as sent.
            b => {
                out.push(escape);
                out.push_str(b);
                out.push(escape);
            }
        }
        rest = &after[end + escape.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// ED.4 (table 0299: `Base64`, `Hex`, `A` for none) applied to the data;
/// `None` when the data is not what the encoding says.
fn decode_ed(encoding: &str, data: &str) -> Option<Vec<u8>> {
    match encoding.to_ascii_uppercase().as_str() {
        "BASE64" => {
            let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            STANDARD.decode(compact).ok()
        }
        "HEX" => {
            let compact: Vec<u8> = data.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            if !compact.len().is_multiple_of(2) {
                return None;
            }
            compact
                .chunks(2)
                .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
                .collect()
        }
        "A" | "" => Some(data.as_bytes().to_vec()),
        _ => None,
    }
}

/// The MIME type of an ED: ED.2 (type of data: a MIME top-level type, or
/// table 0191's TEXT, IM, AP, AU, …) and ED.3 (subtype).
fn mime_type(kind: &str, subtype: &str) -> String {
    let top = match kind.to_ascii_uppercase().as_str() {
        "APPLICATION" | "AP" => "application",
        "IMAGE" | "IM" => "image",
        "TEXT" | "TX" | "FT" => "text",
        "AUDIO" | "AU" => "audio",
        "VIDEO" => "video",
        "MULTIPART" | "MP" => "multipart",
        "MODEL" => "model",
        _ => "application",
    };
    let sub: String = subtype
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
        .collect();
    let sub = if sub.is_empty() {
        if top == "text" {
            "plain"
        } else {
            "octet-stream"
        }
        .to_string()
    } else {
        sub
    };
    format!("{top}/{sub}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_text_becomes_plain() {
        assert_eq!(
            plain_text(
                r"\H\IMPRESSION:\N\\.br\No acute disease.\.sp2\\.in+4\End",
                '\\'
            ),
            "IMPRESSION:\nNo acute disease.\nEnd"
        );
        assert_eq!(plain_text(r"a\Zx\b", '\\'), r"a\Zx\b");
        assert_eq!(
            plain_text(r"open \ never closed", '\\'),
            r"open \ never closed"
        );
    }

    #[test]
    fn encapsulated_data_is_checked() {
        assert_eq!(
            decode_ed("Base64", "aGVs\nbG8=").as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(decode_ed("Hex", "68 69").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_ed("A", "plain").as_deref(), Some(&b"plain"[..]));
        assert_eq!(decode_ed("Base64", "not base64!"), None);
        assert_eq!(decode_ed("Hex", "6"), None);
        assert_eq!(decode_ed("Rot13", "x"), None);
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_type("application", "pdf"), "application/pdf");
        assert_eq!(mime_type("AP", "PDF"), "application/pdf");
        assert_eq!(mime_type("IM", "jpeg"), "image/jpeg");
        assert_eq!(mime_type("TEXT", ""), "text/plain");
        assert_eq!(mime_type("", ""), "application/octet-stream");
        assert_eq!(mime_type("AP", "x/../y"), "application/x..y");
    }
}
