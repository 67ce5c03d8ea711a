//! The delimiter set a message declares in MSH-1 and MSH-2.

use std::fmt;

/// The separators and escape character of one message.
///
/// HL7 v2 lets every message choose its own; the usual set is `|^~\&`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    /// Separates fields (MSH-1), usually `|`.
    pub field: char,
    /// Separates components, usually `^`.
    pub component: char,
    /// Separates repetitions of a field, usually `~`.
    pub repetition: char,
    /// Starts and ends an escape sequence, usually `\`.
    pub escape: char,
    /// Separates sub-components, usually `&`.
    pub subcomponent: char,
    /// The truncation character of v2.7 and later (`#`), when MSH-2 declares one.
    pub truncation: Option<char>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            field: '|',
            component: '^',
            repetition: '~',
            escape: '\\',
            subcomponent: '&',
            truncation: None,
        }
    }
}

/// Why a delimiter set is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelimiterError {
    /// A delimiter is a letter, a digit, a space or a segment terminator.
    #[error(
        "delimiter {0:?} is not allowed (letters, digits, space, CR and LF cannot be delimiters)"
    )]
    NotAllowed(char),
    /// The same character is declared twice.
    #[error("delimiter {0:?} is declared more than once")]
    Duplicate(char),
    /// MSH-2 holds fewer than four or more than five characters.
    #[error("MSH-2 must declare 4 or 5 encoding characters, found {0}")]
    WrongCount(usize),
}

impl Delimiters {
    /// Builds a delimiter set from MSH-1 and the text of MSH-2, checking it.
    pub fn from_msh(field: char, encoding: &str) -> Result<Self, DelimiterError> {
        let chars: Vec<char> = encoding.chars().collect();
        if !(4..=5).contains(&chars.len()) {
            return Err(DelimiterError::WrongCount(chars.len()));
        }
        let d = Delimiters {
            field,
            component: chars[0],
            repetition: chars[1],
            escape: chars[2],
            subcomponent: chars[3],
            truncation: chars.get(4).copied(),
        };
        d.validate()?;
        Ok(d)
    }

    /// Checks that every delimiter is allowed and that they are all distinct.
    pub fn validate(&self) -> Result<(), DelimiterError> {
        let all = self.all();
        for (i, &c) in all.iter().enumerate() {
            if c.is_alphanumeric() || c == ' ' || c == '\r' || c == '\n' {
                return Err(DelimiterError::NotAllowed(c));
            }
            if all[..i].contains(&c) {
                return Err(DelimiterError::Duplicate(c));
            }
        }
        Ok(())
    }

    /// The text of MSH-2 for this set, e.g. `^~\&`.
    pub fn encoding_characters(&self) -> String {
        let mut s = String::with_capacity(5);
        s.push(self.component);
        s.push(self.repetition);
        s.push(self.escape);
        s.push(self.subcomponent);
        if let Some(t) = self.truncation {
            s.push(t);
        }
        s
    }

    fn all(&self) -> Vec<char> {
        let mut v = vec![
            self.field,
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ];
        v.extend(self.truncation);
        v
    }

    /// True when `c` is one of the separators or the escape character.
    pub fn is_special(&self, c: char) -> bool {
        c == self.field
            || c == self.component
            || c == self.repetition
            || c == self.escape
            || c == self.subcomponent
            || Some(c) == self.truncation
    }
}

impl fmt::Display for Delimiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.field, self.encoding_characters())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_set() {
        let d = Delimiters::from_msh('|', "^~\\&").unwrap();
        assert_eq!(d, Delimiters::default());
        assert_eq!(d.to_string(), "|^~\\&");
    }

    #[test]
    fn truncation_character() {
        let d = Delimiters::from_msh('|', "^~\\&#").unwrap();
        assert_eq!(d.truncation, Some('#'));
    }

    #[test]
    fn refuses_bad_sets() {
        assert_eq!(
            Delimiters::from_msh('|', "^^^^"),
            Err(DelimiterError::Duplicate('^'))
        );
        assert_eq!(
            Delimiters::from_msh('A', "^~\\&"),
            Err(DelimiterError::NotAllowed('A'))
        );
        assert_eq!(
            Delimiters::from_msh('|', "^~"),
            Err(DelimiterError::WrongCount(2))
        );
    }
}
