//! Paths (`PID-3(2).1.1`) read and written on any message: the input is a
//! path, a 0 byte, a value, a 0 byte and the message. Never a panic; an
//! edited message still serializes to text that parses, and reads back the
//! value that was set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_hl7::{Message, Path, TextEncoding};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let (Some(path), Some(value), Some(message)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let (Ok(path), Ok(value)) = (std::str::from_utf8(path), std::str::from_utf8(value)) else {
        return;
    };
    let parsed = Path::parse(path);
    let Ok(mut m) = Message::parse(message) else {
        return;
    };
    if let Ok(p) = &parsed {
        let _ = m.element_at(p);
    }
    let _ = m.get(path);
    if m.set(path, value).is_ok() {
        let text = m.to_bytes();
        let again = Message::parse(&text).expect("an edited message parses again");
        // A message read as ISO 8859-1 is written back in it: a character
        // it lacks cannot come back.
        let representable =
            m.encoding() == TextEncoding::Utf8 || value.chars().all(|c| (c as u32) < 256);
        if !value.is_empty() && representable {
            assert_eq!(
                again.get(path).ok().flatten().as_deref(),
                Some(value),
                "what was set is what is read back"
            );
        }
    }
    let _ = m.set_raw(path, value);
    let _ = Message::parse(&m.to_bytes());
});
