//! Lookup tables: code crosswalks loaded from CSV files and granted to
//! plugins by name.

use std::collections::HashMap;
use std::path::Path;

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
    let name = path.display().to_string();
    let data = std::fs::read(path).map_err(|source| TableError::Io {
        path: name.clone(),
        source,
    })?;
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
    fn names_the_bad_line() {
        let e = parse(b"F,female\nM,male,extra\n", "sex.csv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sex.csv:2: expected two columns `key,value`, found 3"
        );
    }
}
