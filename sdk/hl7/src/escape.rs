//! HL7 escape sequences: decoded on read, encoded on write.
//!
//! Decoded: `\F\ \S\ \T\ \R\ \E\ \P\` (the delimiters) and `\Xhh..\` (hex
//! bytes, read as UTF-8 when valid, else ISO 8859-1). Every other sequence
//! (`\H\`, `\N\`, `\.br\`, `\Cxxyy\`, `\Mxxyyzz\`, `\Zxx\`, …) is formatting
//! or charset switching that plain text cannot express, so it is kept
//! verbatim, escape characters included.

use std::borrow::Cow;

use crate::Delimiters;

/// Decodes the escape sequences of one primitive value.
pub fn decode<'a>(raw: &'a str, d: &Delimiters) -> Cow<'a, str> {
    if !raw.contains(d.escape) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find(d.escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + d.escape.len_utf8()..];
        let Some(end) = after.find(d.escape) else {
            // An escape character with no closing one: keep it as text.
            out.push_str(&rest[start..]);
            return Cow::Owned(out);
        };
        let body = &after[..end];
        match decode_sequence(body, d) {
            Some(text) => out.push_str(&text),
            None => {
                out.push(d.escape);
                out.push_str(body);
                out.push(d.escape);
            }
        }
        rest = &after[end + d.escape.len_utf8()..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn decode_sequence(body: &str, d: &Delimiters) -> Option<String> {
    let single = |c: char| Some(c.to_string());
    match body {
        "F" => single(d.field),
        "S" => single(d.component),
        "T" => single(d.subcomponent),
        "R" => single(d.repetition),
        "E" => single(d.escape),
        "P" => d.truncation.map(|c| c.to_string()),
        _ => {
            let hex = body.strip_prefix('X')?;
            if hex.is_empty() || hex.len() % 2 != 0 {
                return None;
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            Some(match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
            })
        }
    }
}

/// Encodes a primitive value so that it can be placed in a message: every
/// delimiter and the escape character become their escape sequences, and
/// CR/LF become `\X0D\`/`\X0A\` so that a value can never end a segment.
pub fn encode<'a>(text: &'a str, d: &Delimiters) -> Cow<'a, str> {
    if !text
        .chars()
        .any(|c| d.is_special(c) || c == '\r' || c == '\n')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        let seq = if c == d.field {
            "F"
        } else if c == d.component {
            "S"
        } else if c == d.subcomponent {
            "T"
        } else if c == d.repetition {
            "R"
        } else if c == d.escape {
            "E"
        } else if Some(c) == d.truncation {
            "P"
        } else if c == '\r' {
            "X0D"
        } else if c == '\n' {
            "X0A"
        } else {
            out.push(c);
            continue;
        };
        out.push(d.escape);
        out.push_str(seq);
        out.push(d.escape);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Delimiters {
        Delimiters::default()
    }

    #[test]
    fn decodes_delimiter_sequences() {
        assert_eq!(decode(r"A\T\E \F\ \S\ \R\ \E\", &d()), "A&E | ^ ~ \\");
    }

    #[test]
    fn decodes_hex() {
        assert_eq!(decode(r"caf\XC3A9\", &d()), "café");
        assert_eq!(decode(r"\X41\", &d()), "A");
        // Not UTF-8: read as ISO 8859-1.
        assert_eq!(decode(r"\XE9\", &d()), "é");
    }

    #[test]
    fn keeps_formatting_sequences() {
        for s in [r"line\.br\next", r"\H\bold\N\", r"\C2842\x", r"\Zabc\"] {
            assert_eq!(decode(s, &d()), s);
        }
    }

    #[test]
    fn keeps_unterminated_escape() {
        assert_eq!(decode(r"a\b", &d()), r"a\b");
    }

    #[test]
    fn encode_then_decode() {
        let text = "O'Brien|A^B~C\\D&E\r\nend";
        let enc = encode(text, &d());
        assert_eq!(enc, r"O'Brien\F\A\S\B\R\C\E\D\T\E\X0D\\X0A\end");
        assert_eq!(decode(&enc, &d()), text);
    }

    #[test]
    fn custom_escape_character() {
        let d = Delimiters::from_msh('!', "@*#$").unwrap();
        assert_eq!(decode("a#F#b", &d), "a!b");
        assert_eq!(encode("a!b@c", &d), "a#F#b#S#c");
    }
}
