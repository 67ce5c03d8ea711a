//! Lookup tables: code crosswalks loaded from CSV files and granted to
//! plugins by name (`[plugins.NAME.lookups]` in `weft.toml`). A table is
//! read whole when a plugin version loads; the largest file read is
//! [`MAX_FILE`].

use std::collections::HashMap;
use std::path::Path;

/// The largest table file read (a national code system crosswalk of a
/// million rows fits several times over).
pub const MAX_FILE: u64 = 256 << 20;

/// One lookup table: key to value.
pub type Table = HashMap<String, String>;

/// A CSV file that is not a lookup table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be read.
    #[error("cannot read lookup table {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE`].
    #[error("lookup table {path}: {size} bytes, more than a lookup table can be ({MAX_FILE})")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
    },
    /// A row is not `key,value`.
    #[error("{path}:{line}: expected two columns `key,value`, found {found}")]
    Row {
        /// The file.
        path: String,
        /// Line number, from 1.
        line: u64,
        /// How many columns the row has.
        found: usize,
    },
    /// The CSV itself is malformed.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: String,
        /// Why.
        source: csv::Error,
    },
}

/// Loads a table from a CSV file: one `key,value` row per line, no header,
/// lines starting with `#` are comments, surrounding spaces are trimmed, and
/// a later row for the same key wins.
pub fn load(path: &Path) -> Result<Table, TableError> {
    use std::io::Read;
    let name = path.display().to_string();
    let io = |source| TableError::Io {
        path: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > MAX_FILE {
        return Err(TableError::TooLarge { path: name, size });
    }
    // Read no more than the cap, even from a file that grows meanwhile.
    let mut data = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut data).map_err(io)?;
    if data.len() as u64 > MAX_FILE {
        return Err(TableError::TooLarge {
            path: name,
            size: data.len() as u64,
        });
    }
    parse(&data, &name)
}

/// Parses CSV text as a table; `name` is used in errors.
pub fn parse(data: &[u8], name: &str) -> Result<Table, TableError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let mut table = Table::new();
    for record in reader.records() {
        let record = record.map_err(|source| TableError::Csv {
            path: name.to_string(),
            source,
        })?;
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        if record.len() != 2 {
            return Err(TableError::Row {
                path: name.to_string(),
                line: record.position().map_or(0, |p| p.line()),
                found: record.len(),
            });
        }
        table.insert(record[0].to_string(), record[1].to_string());
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_comments() {
        let t = parse(
            b"# sex codes\nF, female\nM,male\n\n\"A,B\",quoted\n",
            "t.csv",
        )
        .unwrap();
        assert_eq!(t.get("F").map(String::as_str), Some("female"));
        assert_eq!(t.get("A,B").map(String::as_str), Some("quoted"));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_file_past_the_cap_is_refused_before_it_is_read() {
        let dir = std::env::temp_dir().join(format!("weft-tables-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.csv");
        let f = std::fs::File::create(&path).unwrap();
        // Sparse: the size without the bytes.
        f.set_len(MAX_FILE + 1).unwrap();
        let e = load(&path).unwrap_err();
        assert!(matches!(e, TableError::TooLarge { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_the_bad_line() {
        let e = parse(b"F,female\nM,male,extra\n", "sex.csv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sex.csv:2: expected two columns `key,value`, found 3"
        );
    }
}
