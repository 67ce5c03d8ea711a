//! The HL7 v2 parser on any bytes: never a panic; what parses serializes to
//! text that parses again to the same text (serialization is a fixed
//! point), and every field of every segment can be read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_hl7::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else { return };
    let once = m.to_bytes();
    let again = Message::parse(&once).expect("a serialized message parses again");
    assert_eq!(again.to_bytes(), once, "serializing is a fixed point");
    assert_eq!(again.segments().len(), m.segments().len());
    for s in m.segments() {
        for n in 0..=s.field_count() {
            let _ = m.field(s, n).raw();
        }
    }
    for path in [
        "MSH-9",
        "MSH-9.2",
        "MSH-10",
        "PID-3.1",
        "PID-5.1.1",
        "OBX-5",
        "PV1-3.1",
    ] {
        let _ = m.get(path);
    }
});
