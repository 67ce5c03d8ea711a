//! The manifest reader on any bytes (a plugin file is untrusted until
//! checked): never a panic, and a manifest it accepts, written out again,
//! reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_signature::manifest::{parse, read};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = read(data)
        && let Some(m) = info.manifest
    {
        let again = serde_json::to_vec(&m).expect("a manifest serializes");
        assert_eq!(parse(&again).expect("its own JSON reads back"), m);
    }
    // The section's data alone, as a plugin might hold it.
    if let Ok(m) = parse(data) {
        let again = serde_json::to_vec(&m).expect("a manifest serializes");
        assert_eq!(parse(&again).expect("its own JSON reads back"), m);
    }
});
