//! HL7 escape sequences on any text: decoding never panics, and what
//! `encode` writes decodes back to exactly the original text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_hl7::Delimiters;
use weft_hl7::escape::{decode, encode};

fuzz_target!(|text: &str| {
    let d = Delimiters::default();
    let _ = decode(text, &d);
    let encoded = encode(text, &d);
    assert!(
        !encoded.contains([
            '\r',
            '\n',
            d.field,
            d.component,
            d.repetition,
            d.subcomponent
        ]) || encoded.contains(d.escape),
        "an encoded value never carries a bare delimiter"
    );
    assert_eq!(decode(&encoded, &d), text, "decode(encode(x)) == x");
});
