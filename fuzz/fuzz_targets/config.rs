//! The config loader on any text (`weft.toml` is read at start, by `weft
//! check` and on every reload): never a panic, every error names the file
//! and a line and column inside the text, and a configuration it accepts
//! answers the questions the runtime then asks of it.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use weft_config::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Relative paths resolve to a directory that does not exist, so what
    // the text names is found missing, not read from the fuzzing machine.
    match parse(&text, "weft.toml", Path::new("/nonexistent/weft-fuzz")) {
        Ok(config) => {
            let _ = config.warnings();
            let _ = config.tls_files();
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refusal gives a reason");
            let lines = text.lines().count() + 1;
            for e in &errors.0 {
                assert_eq!(e.location.file, "weft.toml");
                assert!(
                    (1..=lines).contains(&e.location.line) && e.location.column >= 1,
                    "{e} is not a place in the text ({lines} lines)"
                );
            }
        }
    }
});
