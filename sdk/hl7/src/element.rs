//! A read-only view of one part of a field: the field, a repetition, a
//! component or a sub-component.

use std::borrow::Cow;

use crate::{Delimiters, escape};

/// How deep an [`Element`] sits in a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A whole field, repetitions included.
    Field,
    /// One repetition of a field.
    Repetition,
    /// One component of a repetition.
    Component,
    /// One sub-component: a primitive value.
    Subcomponent,
}

/// A view of one part of a field, still in its raw (escaped) form.
///
/// Navigation never fails: a part that is not in the message is an empty
/// element, as HL7 treats a missing trailing component like an empty one.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    raw: &'a str,
    level: Level,
    delimiters: &'a Delimiters,
    verbatim: bool,
}

impl<'a> Element<'a> {
    pub(crate) fn new(raw: &'a str, level: Level, delimiters: &'a Delimiters) -> Self {
        Element {
            raw,
            level,
            delimiters,
            verbatim: false,
        }
    }

    /// MSH-1 and MSH-2 hold delimiters themselves: they are never split or
    /// decoded.
    pub(crate) fn verbatim(raw: &'a str, delimiters: &'a Delimiters) -> Self {
        Element {
            raw,
            level: Level::Subcomponent,
            delimiters,
            verbatim: true,
        }
    }

    /// The raw text, escape sequences and inner separators included.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// How deep this element sits.
    pub fn level(&self) -> Level {
        self.level
    }

    /// True when the element holds no text at all.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The decoded text of the first primitive inside this element, e.g.
    /// the family name for `PID-5`.
    pub fn value(&self) -> Cow<'a, str> {
        if self.verbatim {
            return Cow::Borrowed(self.raw);
        }
        let mut e = *self;
        while e.level < Level::Subcomponent {
            e = e.part(1);
        }
        escape::decode(e.raw, self.delimiters)
    }

    /// The decoded text of the whole element when it has no inner structure,
    /// otherwise the first primitive; `None` when that text is empty.
    pub fn non_empty(&self) -> Option<Cow<'a, str>> {
        let v = self.value();
        (!v.is_empty()).then_some(v)
    }

    /// The parts one level down (repetitions of a field, components of a
    /// repetition, sub-components of a component). A sub-component yields
    /// itself.
    pub fn parts(self) -> impl Iterator<Item = Element<'a>> + 'a {
        let (sep, level) = self.child();
        let d = self.delimiters;
        let raw = self.raw;
        let verbatim = self.verbatim;
        let split: Box<dyn Iterator<Item = &'a str>> = match sep {
            Some(sep) if !verbatim => Box::new(raw.split(sep)),
            _ => Box::new(std::iter::once(raw)),
        };
        split.map(move |r| Element {
            raw: r,
            level,
            delimiters: d,
            verbatim,
        })
    }

    /// Part `n` (from 1) one level down; empty when absent.
    pub fn part(&self, n: usize) -> Element<'a> {
        let (sep, level) = self.child();
        let raw = match sep {
            _ if n == 0 => None,
            Some(sep) if !self.verbatim => self.raw.split(sep).nth(n - 1),
            _ => (n == 1).then_some(self.raw),
        };
        match raw {
            Some(raw) => Element {
                raw,
                level,
                delimiters: self.delimiters,
                verbatim: self.verbatim,
            },
            None => Element {
                raw: "",
                level,
                delimiters: self.delimiters,
                verbatim: false,
            },
        }
    }

    /// The repetitions of a field (a single one for lower levels).
    pub fn repetitions(self) -> impl Iterator<Item = Element<'a>> + 'a {
        let e = if self.level == Level::Field {
            self
        } else {
            Element {
                level: Level::Field,
                ..self
            }
        };
        e.parts()
    }

    /// Repetition `n` (from 1).
    pub fn repetition(&self, n: usize) -> Element<'a> {
        if self.level == Level::Field {
            self.part(n)
        } else {
            *self
        }
    }

    /// Component `n` (from 1) of the first repetition.
    pub fn component(&self, n: usize) -> Element<'a> {
        self.descend(Level::Repetition).part(n)
    }

    /// The components of the first repetition.
    pub fn components(self) -> impl Iterator<Item = Element<'a>> + 'a {
        self.descend(Level::Repetition).parts()
    }

    /// Sub-component `n` (from 1) of the first component.
    pub fn subcomponent(&self, n: usize) -> Element<'a> {
        self.descend(Level::Component).part(n)
    }

    fn descend(&self, to: Level) -> Element<'a> {
        let mut e = *self;
        while e.level < to {
            e = e.part(1);
        }
        e
    }

    fn child(&self) -> (Option<char>, Level) {
        let d = self.delimiters;
        match self.level {
            Level::Field => (Some(d.repetition), Level::Repetition),
            Level::Repetition => (Some(d.component), Level::Component),
            Level::Component => (Some(d.subcomponent), Level::Subcomponent),
            Level::Subcomponent => (None, Level::Subcomponent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigates_levels() {
        let d = Delimiters::default();
        let f = Element::new(r"A&a1^B~C^D\S\E", Level::Field, &d);
        assert_eq!(f.value(), "A");
        assert_eq!(f.repetitions().count(), 2);
        assert_eq!(f.component(2).value(), "B");
        assert_eq!(f.subcomponent(2).value(), "a1");
        assert_eq!(f.repetition(2).component(2).value(), "D^E");
        assert!(f.repetition(3).is_empty());
        assert!(f.component(9).is_empty());
        assert_eq!(f.repetition(2).components().count(), 2);
    }
}
