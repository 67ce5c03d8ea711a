//! Text a plugin controls, made safe for the places it reaches: the log,
//! ACKs, HTTP answers and the journal. Control characters are escaped (a
//! newline in a log record cannot forge another record) and reasons are cut
//! to a bounded length.

use std::borrow::Cow;
use std::fmt::Write;

use super::plugin::MAX_REASON_BYTES;

/// True for characters that can change how a log line or an HL7 segment
/// reads: C0 and C1 controls, DEL, Unicode line and paragraph separators,
/// and bidirectional overrides.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character escaped (`\n`, `\r`, `\t`,
/// `\u{1c}`, ...); borrowed when there is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` cut to at most `max` bytes (on a character boundary), with a
/// marker saying how many bytes were cut.
pub fn cap(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!(
        "{}… [{} more bytes cut]",
        &text[..cut],
        text.len() - cut
    ))
}

/// A plugin's reason (reject, retry, failure) as Weft keeps it: at most
/// [`MAX_REASON_BYTES`] of it, control characters escaped.
pub fn reason(text: &str) -> String {
    // Cut first, so escaping a hostile reason costs at most its cap.
    escape(&cap(text, MAX_REASON_BYTES)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_controls_are_escaped() {
        assert_eq!(escape("plain text"), "plain text");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\nINFO weft::pipeline: forged\r\x1c\x0b\x1b[31m"),
            "a\\nINFO weft::pipeline: forged\\r\\u{1c}\\u{b}\\u{1b}[31m"
        );
        assert_eq!(escape("x\u{2028}y\u{202e}z"), "x\\u{2028}y\\u{202e}z");
        assert_eq!(escape("Müller ✓"), "Müller ✓");
    }

    #[test]
    fn long_reasons_are_cut_with_a_marker() {
        let long = "é".repeat(2000);
        let r = reason(&long);
        assert!(r.len() < MAX_REASON_BYTES + 40, "{}", r.len());
        assert!(r.ends_with("more bytes cut]"), "{r}");
        assert_eq!(reason("short"), "short");
    }
}
