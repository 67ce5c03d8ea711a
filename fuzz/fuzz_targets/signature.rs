//! The signature reader on any bytes (a plugin file is untrusted until
//! checked): never a panic; a file it splits keeps its signed part as a
//! prefix; and any file with a WebAssembly header, once signed, verifies as
//! its signer's and still splits back to its unsigned part.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_signature::{public_key, sign, split, verify};

fuzz_target!(|data: &[u8]| {
    let _ = verify(data);
    if let Ok((signed, section)) = split(data) {
        assert!(data.starts_with(signed));
        if let Ok(again) = sign(data, "fuzz", &[7; 32]) {
            let v = verify(&again)
                .expect("a fresh signature verifies")
                .expect("signed");
            assert_eq!(v.key, public_key(&[7; 32]));
            assert_eq!(split(&again).map(|(s, _)| s), Ok(signed));
        }
        let _ = section;
    }
});
