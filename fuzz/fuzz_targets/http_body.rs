//! What the HTTP source does with a body it has read (its size is capped
//! before, by hyper's `Limited`): refuse MLLP framing bytes
//! (`weft_mllp::check`), then parse and check the HL7 message and read the
//! header fields the journal and the ACK need (`weft_hl7::parse_and_check`),
//! or parse JSON and read its `resourceType`. Never a panic; an accepted
//! HL7 body carries no framing byte, has a message code and a control id,
//! and a NAK for it can always be built.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if weft_mllp::check(data).is_ok() {
        assert!(!data.iter().any(|b| *b == 0x0b || *b == 0x1c));
        match weft_hl7::parse_and_check(data) {
            Ok((m, h)) => {
                assert!(!h.message_code.is_empty(), "MSH-9.1 is required");
                assert!(!h.control_id.is_empty(), "MSH-10 is required");
                let _ = h.message_type();
                let _ = m.segments().len();
            }
            Err(e) => {
                let _ = e.ack_error();
            }
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = v.get("resourceType").and_then(serde_json::Value::as_str);
    }
});
