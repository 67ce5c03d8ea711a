//! Terse paths that address a part of a message: `PID-5.1`, `PID-3(2).1`,
//! `OBX[3]-5`, `PID-11(2).1.2`.
//!
//! Grammar: `SEG[occurrence]-field(repetition).component.subcomponent`, every
//! number counted from 1. The segment occurrence and the repetition default
//! to 1. A path that stops before the sub-component addresses, for reading,
//! the first primitive below it (as HAPI's terser does): `PID-5` reads the
//! same value as `PID-5.1.1`.

use std::fmt;
use std::str::FromStr;

/// A parsed terse path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    /// Three-character segment id, e.g. `PID`.
    pub segment: String,
    /// Which occurrence of the segment, from 1.
    pub occurrence: usize,
    /// Field number, from 1 (`MSH-1` is the field separator).
    pub field: usize,
    /// Repetition of the field, from 1.
    pub repetition: usize,
    /// Component, from 1, when the path names one.
    pub component: Option<usize>,
    /// Sub-component, from 1, when the path names one.
    pub subcomponent: Option<usize>,
}

/// A path that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HL7 path {path:?}: {reason}")]
pub struct PathError {
    /// The text that was given.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Path {
    /// Parses a terse path.
    pub fn parse(text: &str) -> Result<Path, PathError> {
        let err = |reason| PathError {
            path: text.to_string(),
            reason,
        };
        let (seg_part, rest) = text
            .split_once('-')
            .ok_or_else(|| err("expected SEG-field, e.g. PID-5"))?;
        let (segment, occurrence) = match seg_part.split_once('[') {
            Some((seg, occ)) => {
                let occ = occ
                    .strip_suffix(']')
                    .ok_or_else(|| err("segment occurrence must be written [n]"))?;
                (
                    seg,
                    number(occ, MAX_OCCURRENCE).ok_or_else(|| err("bad segment occurrence"))?,
                )
            }
            None => (seg_part, 1),
        };
        if !crate::message::is_segment_id(segment) {
            return Err(err("segment id must be three upper-case letters or digits"));
        }
        let mut parts = rest.split('.');
        let field_part = parts.next().unwrap_or_default();
        let (field, repetition) = match field_part.split_once('(') {
            Some((f, r)) => {
                let r = r
                    .strip_suffix(')')
                    .ok_or_else(|| err("repetition must be written (n)"))?;
                (
                    number(f, MAX_FIELD).ok_or_else(|| err("bad field number"))?,
                    number(r, MAX_REPETITION).ok_or_else(|| err("bad repetition number"))?,
                )
            }
            None => (
                number(field_part, MAX_FIELD).ok_or_else(|| err("bad field number"))?,
                1,
            ),
        };
        let component = match parts.next() {
            Some(c) => Some(number(c, MAX_COMPONENT).ok_or_else(|| err("bad component number"))?),
            None => None,
        };
        let subcomponent = match parts.next() {
            Some(s) => {
                Some(number(s, MAX_COMPONENT).ok_or_else(|| err("bad sub-component number"))?)
            }
            None => None,
        };
        if parts.next().is_some() {
            return Err(err("too many parts after the field"));
        }
        Ok(Path {
            segment: segment.to_string(),
            occurrence,
            field,
            repetition,
            component,
            subcomponent,
        })
    }
}

/// The largest segment occurrence a path may name (a message has at most
/// as many segments as the runtime accepts).
pub const MAX_OCCURRENCE: usize = 50_000;
/// The largest field number a path may name.
pub const MAX_FIELD: usize = 10_000;
/// The largest repetition a path may name.
pub const MAX_REPETITION: usize = 10_000;
/// The largest component (or sub-component) a path may name.
///
/// These caps bound what setting a value can add to a message (each
/// missing field, repetition or component up to the one named is made
/// empty): a path such as `ZZZ-99999999` would otherwise make a hundred
/// million fields for one `set`.
pub const MAX_COMPONENT: usize = 1_000;

fn number(s: &str, max: usize) -> Option<usize> {
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| (1..=max).contains(&n))
}

impl FromStr for Path {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::parse(s)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.segment)?;
        if self.occurrence != 1 {
            write!(f, "[{}]", self.occurrence)?;
        }
        write!(f, "-{}", self.field)?;
        if self.repetition != 1 {
            write!(f, "({})", self.repetition)?;
        }
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        if let Some(s) = self.subcomponent {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        let p = Path::parse("PID-5.1").unwrap();
        assert_eq!((p.field, p.repetition, p.component), (5, 1, Some(1)));
        let p = Path::parse("PID-3(2).1").unwrap();
        assert_eq!((p.field, p.repetition, p.component), (3, 2, Some(1)));
        let p = Path::parse("OBX[3]-5").unwrap();
        assert_eq!((p.occurrence, p.field, p.component), (3, 5, None));
        let p = Path::parse("PID-11(2).1.2").unwrap();
        assert_eq!(p.subcomponent, Some(2));
        assert_eq!(p.to_string(), "PID-11(2).1.2");
        let p = Path::parse("OBX[50000]-10000(10000).1000.1000").unwrap();
        assert_eq!(
            (p.occurrence, p.field, p.repetition),
            (50_000, 10_000, 10_000)
        );
    }

    #[test]
    fn refuses_bad_paths() {
        for bad in [
            "PID",
            "PID-",
            "PID-0",
            "pid-5",
            "PI-5",
            "PID-5.",
            "PID-5.1.2.3",
            "OBX[0]-5",
            "OBX[3-5",
            "PID-3(2",
            "PID-x",
            // Past the caps: one set would make millions of empty fields.
            "PID-99999999",
            "PID-10001",
            "PID-3(10001)",
            "PID-5.1001",
            "PID-5.1.1001",
            "OBX[50001]-5",
            "PID-18446744073709551616",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
