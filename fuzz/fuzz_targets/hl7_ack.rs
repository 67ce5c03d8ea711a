//! The ACK builder on any message (or none): the ACK parses, is bounded
//! whatever the original holds (each echoed value at most `MAX_ECHO`
//! bytes), and names the original's control id only when it echoes it
//! whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_hl7::{AckCode, AckError, AckOptions, ErrorCode, Message, Severity, build_ack};

fuzz_target!(|data: &[u8]| {
    let original = Message::parse(data).ok();
    let error = AckError {
        location: None,
        code: ErrorCode::InternalError,
        severity: Severity::Error,
        text: "PID-7: not a date".into(),
    };
    let options = AckOptions {
        control_id: "ACK1".into(),
        timestamp: "20261130120000".into(),
    };
    for code in [AckCode::Accept, AckCode::Error, AckCode::Reject] {
        let ack = build_ack(original.as_ref(), code, Some(&error), &options).to_bytes();
        assert!(ack.len() <= 8 * 1024, "an ACK of {} bytes", ack.len());
        let parsed = Message::parse(&ack).expect("the ACK parses");
        let msa2 = parsed.get("MSA-2").ok().flatten().unwrap_or_default();
        if let Some(m) = &original {
            let control = m.get("MSH-10").ok().flatten().unwrap_or_default();
            assert!(
                msa2.is_empty() || msa2 == control,
                "MSA-2 names the original"
            );
        } else {
            assert!(msa2.is_empty(), "no control id is made up");
        }
    }
});
