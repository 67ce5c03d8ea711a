//! HL7 v2 text from values: composites of components and sub-components,
//! every leaf escaped, trailing empties dropped, segments in order.

use weft_sdk::hl7::Delimiters;
use weft_sdk::hl7::escape::encode;

/// One value of a v2 data type (a field repetition): components, each a
/// list of sub-components, unescaped until written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Composite {
    parts: Vec<Vec<String>>,
}

impl Composite {
    /// An empty value.
    pub fn new() -> Composite {
        Composite::default()
    }

    /// A value of one component (a primitive: ST, ID, DTM, NM …).
    pub fn text(value: impl Into<String>) -> Composite {
        Composite::new().with(1, value)
    }

    /// Sets component `c` (from 1) to `value`.
    pub fn set(&mut self, c: usize, value: impl Into<String>) -> &mut Composite {
        self.set_sub(c, 1, value)
    }

    /// Sets sub-component `s` of component `c` (both from 1).
    pub fn set_sub(&mut self, c: usize, s: usize, value: impl Into<String>) -> &mut Composite {
        let value = value.into();
        if c == 0 || s == 0 || value.is_empty() {
            return self;
        }
        if self.parts.len() < c {
            self.parts.resize(c, Vec::new());
        }
        let comp = &mut self.parts[c - 1];
        if comp.len() < s {
            comp.resize(s, String::new());
        }
        comp[s - 1] = value;
        self
    }

    /// [`Composite::set`], by value.
    pub fn with(mut self, c: usize, value: impl Into<String>) -> Composite {
        self.set(c, value);
        self
    }

    /// [`Composite::set_sub`], by value.
    pub fn with_sub(mut self, c: usize, s: usize, value: impl Into<String>) -> Composite {
        self.set_sub(c, s, value);
        self
    }

    /// Places `inner` (a value of a component's own type, e.g. an HD inside
    /// a CX) as component `c`: its components become sub-components.
    pub fn with_inner(mut self, c: usize, inner: &Composite) -> Composite {
        for (i, part) in inner.parts.iter().enumerate() {
            if let Some(v) = part.first() {
                self.set_sub(c, i + 1, v.clone());
            }
        }
        self
    }

    /// Component `c`'s first sub-component, or `""`.
    pub fn get(&self, c: usize) -> &str {
        c.checked_sub(1)
            .and_then(|i| self.parts.get(i))
            .and_then(|p| p.first())
            .map_or("", String::as_str)
    }

    /// True when no component holds anything.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| p.iter().all(String::is_empty))
    }

    /// The escaped text, without trailing empty components or
    /// sub-components.
    pub fn encode(&self, d: &Delimiters) -> String {
        let comps: Vec<String> = self
            .parts
            .iter()
            .map(|subs| {
                let used = subs
                    .iter()
                    .rposition(|s| !s.is_empty())
                    .map_or(0, |i| i + 1);
                subs[..used]
                    .iter()
                    .map(|s| encode(s, d).into_owned())
                    .collect::<Vec<_>>()
                    .join(&d.subcomponent.to_string())
            })
            .collect();
        let used = comps
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1);
        comps[..used].join(&d.component.to_string())
    }
}

/// Formatted text (FT) from plain text: each line escaped, line breaks as
/// `\.br\`.
pub fn formatted_text(text: &str, d: &Delimiters) -> String {
    let br = format!("{e}.br{e}", e = d.escape);
    text.lines()
        .map(|l| encode(l, d).into_owned())
        .collect::<Vec<_>>()
        .join(&br)
}

/// One segment being built: fields of repetitions.
#[derive(Debug, Clone)]
pub struct SegmentBuilder {
    id: &'static str,
    fields: Vec<Vec<Composite>>,
    /// Fields already escaped (FT text), by number.
    raw: Vec<(usize, String)>,
}

impl SegmentBuilder {
    /// A segment `id` with no fields.
    pub fn new(id: &'static str) -> SegmentBuilder {
        SegmentBuilder {
            id,
            fields: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// The segment id.
    pub fn id(&self) -> &str {
        self.id
    }

    /// Sets field `n` (from 1) to one value; an empty value leaves it empty.
    pub fn set(&mut self, n: usize, value: Composite) -> &mut SegmentBuilder {
        if n == 0 || value.is_empty() {
            return self;
        }
        self.grow(n);
        self.fields[n - 1] = vec![value];
        self
    }

    /// Sets field `n` to one primitive value.
    pub fn set_text(&mut self, n: usize, value: impl Into<String>) -> &mut SegmentBuilder {
        self.set(n, Composite::text(value))
    }

    /// Sets field `n` to a value that is already escaped (formatted text).
    pub fn set_raw(&mut self, n: usize, raw: String) -> &mut SegmentBuilder {
        if n > 0 && !raw.is_empty() {
            self.grow(n);
            self.raw.push((n, raw));
        }
        self
    }

    /// Adds a repetition to field `n`; an empty value is skipped.
    pub fn push(&mut self, n: usize, value: Composite) -> &mut SegmentBuilder {
        if n == 0 || value.is_empty() {
            return self;
        }
        self.grow(n);
        self.fields[n - 1].push(value);
        self
    }

    /// Adds every value as a repetition of field `n`.
    pub fn push_all(
        &mut self,
        n: usize,
        values: impl IntoIterator<Item = Composite>,
    ) -> &mut SegmentBuilder {
        for v in values {
            self.push(n, v);
        }
        self
    }

    /// True when field `n` holds nothing.
    pub fn is_empty_at(&self, n: usize) -> bool {
        n.checked_sub(1)
            .and_then(|i| self.fields.get(i))
            .is_none_or(|reps| reps.iter().all(Composite::is_empty))
            && !self.raw.iter().any(|(k, _)| *k == n)
    }

    fn grow(&mut self, n: usize) {
        if self.fields.len() < n {
            self.fields.resize(n, Vec::new());
        }
    }

    /// The segment's line (without terminator).
    pub fn encode(&self, d: &Delimiters) -> String {
        let mut out = String::from(self.id);
        let mut fields: Vec<String> = self
            .fields
            .iter()
            .map(|reps| {
                reps.iter()
                    .map(|r| r.encode(d))
                    .collect::<Vec<_>>()
                    .join(&d.repetition.to_string())
            })
            .collect();
        for (n, raw) in &self.raw {
            fields[n - 1] = raw.clone();
        }
        let used = fields
            .iter()
            .rposition(|f| !f.is_empty())
            .map_or(0, |i| i + 1);
        for f in &fields[..used] {
            out.push(d.field);
            out.push_str(f);
        }
        out
    }
}

/// A message's segments after its MSH, and the text of the whole.
#[derive(Debug, Default)]
pub struct Segments {
    list: Vec<SegmentBuilder>,
}

impl Segments {
    /// No segments yet.
    pub fn new() -> Segments {
        Segments::default()
    }

    /// Appends `segment`.
    pub fn push(&mut self, segment: SegmentBuilder) {
        self.list.push(segment);
    }

    /// How many segments there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The segments, in order.
    pub fn iter(&self) -> impl Iterator<Item = &SegmentBuilder> {
        self.list.iter()
    }

    /// The message text: `msh` (the MSH line, already written), then every
    /// segment, each ended by a carriage return.
    pub fn text(&self, msh: &str, d: &Delimiters) -> String {
        let mut out = String::with_capacity(256 * (self.list.len() + 1));
        out.push_str(msh);
        out.push('\r');
        for s in &self.list {
            out.push_str(&s.encode(d));
            out.push('\r');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_leaves_and_drops_trailing_empties() {
        let d = Delimiters::default();
        let c = Composite::new()
            .with(1, "A|B^C")
            .with_sub(4, 2, "1.2.3")
            .with_sub(4, 3, "ISO")
            .with(7, "");
        assert_eq!(c.encode(&d), "A\\F\\B\\S\\C^^^&1.2.3&ISO");
        let mut s = SegmentBuilder::new("PID");
        s.set_text(3, "x~y")
            .set(5, Composite::new())
            .push(8, Composite::text("F"));
        assert_eq!(s.encode(&d), "PID|||x\\R\\y|||||F");
        assert_eq!(formatted_text("a&b\nc", &d), "a\\T\\b\\.br\\c");
    }
}
