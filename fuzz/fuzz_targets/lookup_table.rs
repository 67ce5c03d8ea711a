//! The lookup table reader on any bytes: never a panic; a table it reads,
//! written back as CSV (every field quoted), reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_tables::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(table) = parse(data, "fuzz.csv") else {
        return;
    };
    let mut csv = String::new();
    for (k, v) in &table {
        // Quoted, quotes doubled: the CSV way to carry any text. A key
        // starting with `#` would read as a comment line, and trimming
        // would eat edge spaces, so neither can be in a table read back.
        csv.push_str(&format!(
            "\"{}\",\"{}\"\n",
            k.replace('"', "\"\""),
            v.replace('"', "\"\"")
        ));
    }
    let again = parse(csv.as_bytes(), "again.csv").expect("its own CSV reads back");
    assert_eq!(again, table);
});
