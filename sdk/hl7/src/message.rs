//! An HL7 v2 message: parsed from bytes, read and edited by path, and
//! serialized back byte for byte when unchanged.

use std::fmt;
use std::sync::Arc;

use crate::element::{Element, Level};
use crate::path::{Path, PathError};
use crate::{Delimiters, escape};

/// How the message's bytes map to text, so that serialization gives back
/// the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// The bytes were valid UTF-8 (ASCII included).
    Utf8,
    /// The bytes were not UTF-8 and are read as ISO 8859-1, one byte per
    /// character, which every byte sequence is.
    Latin1,
}

/// One segment: its id, its fields in raw (escaped) form, and the bytes that
/// ended it.
///
/// A parsed segment copies nothing out of the message: it shares the
/// message's text and keeps where each field starts in it, four bytes per
/// field. Its fields are copied into strings of their own only when the
/// segment is edited, and a segment built by hand ([`Segment::new`]) owns
/// its fields from the start.
#[derive(Clone)]
pub struct Segment {
    /// The message text that spans point into (shared by all the segments
    /// of one parsed message; empty for a segment built by hand).
    src: Arc<str>,
    body: Body,
    /// The segment terminator as found (`\r`, `\n`, `\r\n`, blank lines
    /// included), or empty for a last segment without one.
    terminator: Text,
}

/// Where a segment's id and fields are.
#[derive(Clone)]
enum Body {
    /// As received: the line is `src[start..end]`, its id `src[start..id_end]`,
    /// and field `i + 1` begins at `starts[i]` and runs to the next field
    /// separator (`sep_len` bytes long) or the end of the line. For MSH,
    /// `starts[0]` is MSH-1, the field separator itself.
    Parsed {
        start: u32,
        id_end: u32,
        end: u32,
        starts: Vec<u32>,
        sep_len: u32,
        msh: bool,
    },
    /// Built or edited: `fields[n - 1]` is field n. For MSH, `fields[0]` is
    /// MSH-1 (the field separator) and `fields[1]` is MSH-2 (the encoding
    /// characters).
    Owned { id: String, fields: Vec<String> },
}

/// A piece of text: a span of the segment's `src`, or a constant.
#[derive(Clone, Copy)]
enum Text {
    Span(u32, u32),
    Fixed(&'static str),
}

impl Text {
    fn as_str<'a>(&self, src: &'a str) -> &'a str {
        match *self {
            Text::Span(a, b) => &src[a as usize..b as usize],
            Text::Fixed(s) => s,
        }
    }
}

/// A parsed HL7 v2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    delimiters: Delimiters,
    encoding: TextEncoding,
    /// The bytes started with a UTF-8 byte order mark, kept for round trip.
    bom: bool,
    segments: Vec<Segment>,
}

/// What went wrong while parsing, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (segment {segment_number}{id}, byte {offset})", id = segment_id.as_deref().map(|s| format!(" {s}")).unwrap_or_default())]
pub struct ParseError {
    /// What is wrong.
    pub kind: ParseErrorKind,
    /// The segment's position in the message, from 1.
    pub segment_number: usize,
    /// The segment's id, when it could be read.
    pub segment_id: Option<String>,
    /// The field concerned, when there is one.
    pub field: Option<usize>,
    /// Byte offset of the problem from the start of the message.
    pub offset: usize,
}

/// The kinds of parse error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// No bytes at all.
    #[error("empty message")]
    Empty,
    /// The message does not start with an MSH segment.
    #[error("message does not start with an MSH segment")]
    NoMsh,
    /// MSH ends before the field separator and encoding characters.
    #[error("MSH is too short to declare its delimiters")]
    TruncatedMsh,
    /// MSH-1/MSH-2 declare an unusable delimiter set.
    #[error("bad delimiters in MSH-1/MSH-2: {0}")]
    Delimiters(#[from] crate::delimiters::DelimiterError),
    /// A line does not start with a segment id (three upper-case letters or
    /// digits). The line may be message content split by a stray carriage
    /// return, so none of it is kept: the error says where, not what.
    #[error("a line does not start with a segment id (three upper-case letters or digits)")]
    BadSegmentId,
    /// The message is 4 GiB or more, past what offsets into it can address.
    #[error("the message is 4 GiB or larger")]
    TooLarge,
}

/// An edit that could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The path does not follow the grammar.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The message has no such segment (occurrence) to edit.
    #[error("no segment {0} in the message")]
    NoSuchSegment(String),
    /// MSH-1 and MSH-2 are the delimiters and cannot be edited as values.
    #[error("{0} holds the delimiters and cannot be edited")]
    ReadOnly(String),
}

/// True when `id` can name a segment: three upper-case ASCII letters or
/// digits, the first a letter.
pub fn is_segment_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 3
        && b[0].is_ascii_uppercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl Segment {
    /// A new, empty segment with the given id, ended by `\r`.
    pub fn new(id: &str) -> Segment {
        Segment {
            src: Arc::from(""),
            body: Body::Owned {
                id: id.to_string(),
                fields: Vec::new(),
            },
            terminator: Text::Fixed("\r"),
        }
    }

    /// True for an MSH segment, whose first two fields are the delimiters.
    fn is_msh(&self) -> bool {
        match &self.body {
            Body::Parsed { msh, .. } => *msh,
            Body::Owned { id, .. } => id == "MSH",
        }
    }

    /// The segment id, e.g. `PID`.
    pub fn id(&self) -> &str {
        match &self.body {
            Body::Parsed { start, id_end, .. } => &self.src[*start as usize..*id_end as usize],
            Body::Owned { id, .. } => id,
        }
    }

    /// Number of fields present (trailing empty fields that were written
    /// count too).
    pub fn field_count(&self) -> usize {
        match &self.body {
            Body::Parsed { starts, .. } => starts.len(),
            Body::Owned { fields, .. } => fields.len(),
        }
    }

    /// Field `n` (from 1); empty when absent.
    pub fn field<'a>(&'a self, n: usize, d: &'a Delimiters) -> Element<'a> {
        let raw = n.checked_sub(1).map_or("", |i| self.raw(i));
        if n <= 2 && self.is_msh() {
            Element::verbatim(raw, d)
        } else {
            Element::new(raw, Level::Field, d)
        }
    }

    /// The raw text of field `i + 1`; empty when absent.
    fn raw(&self, i: usize) -> &str {
        match &self.body {
            Body::Owned { fields, .. } => fields.get(i).map_or("", String::as_str),
            Body::Parsed {
                end,
                starts,
                sep_len,
                msh,
                ..
            } => {
                let Some(&begin) = starts.get(i) else {
                    return "";
                };
                let finish = if *msh && i == 0 {
                    begin + sep_len
                } else {
                    starts.get(i + 1).map_or(*end, |next| next - sep_len)
                };
                &self.src[begin as usize..finish as usize]
            }
        }
    }

    /// Replaces field `n` (from 1) with raw, already escaped text, adding
    /// empty fields before it as needed.
    pub fn set_field_raw(&mut self, n: usize, raw: &str) {
        if n == 0 {
            return;
        }
        let fields = self.fields_mut();
        if fields.len() < n {
            fields.resize(n, String::new());
        }
        fields[n - 1] = raw.to_string();
    }

    /// The fields as strings of their own, copied out of the message text
    /// the first time the segment is edited.
    fn fields_mut(&mut self) -> &mut Vec<String> {
        if let Body::Parsed { .. } = self.body {
            let id = self.id().to_string();
            let fields = (0..self.field_count())
                .map(|i| self.raw(i).to_string())
                .collect();
            self.body = Body::Owned { id, fields };
        }
        match &mut self.body {
            Body::Owned { fields, .. } => fields,
            Body::Parsed { .. } => unreachable!("made owned above"),
        }
    }

    fn terminator(&self) -> &str {
        self.terminator.as_str(&self.src)
    }

    /// How many bytes [`Segment::write`] adds, as an upper bound.
    fn len_hint(&self) -> usize {
        let body = match &self.body {
            Body::Parsed { start, end, .. } => (end - start) as usize,
            Body::Owned { id, fields } => {
                id.len() + fields.iter().map(|f| f.len() + 4).sum::<usize>() + 8
            }
        };
        body + self.terminator().len()
    }

    fn write(&self, out: &mut String, d: &Delimiters) {
        match &self.body {
            // Unchanged since parsing: the line as received.
            Body::Parsed { start, end, .. } => {
                out.push_str(&self.src[*start as usize..*end as usize]);
            }
            Body::Owned { id, fields } if id == "MSH" => {
                out.push_str(id);
                out.push(d.field);
                match fields.get(1) {
                    Some(enc) => out.push_str(enc),
                    None => out.push_str(&d.encoding_characters()),
                }
                for f in fields.iter().skip(2) {
                    out.push(d.field);
                    out.push_str(f);
                }
            }
            Body::Owned { id, fields } => {
                out.push_str(id);
                for f in fields {
                    out.push(d.field);
                    out.push_str(f);
                }
            }
        }
        out.push_str(self.terminator());
    }
}

impl PartialEq for Segment {
    /// Segments are equal when their ids, raw fields and terminators are,
    /// however they are stored.
    fn eq(&self, other: &Segment) -> bool {
        self.id() == other.id()
            && self.field_count() == other.field_count()
            && (0..self.field_count()).all(|i| self.raw(i) == other.raw(i))
            && self.terminator() == other.terminator()
    }
}

impl Eq for Segment {}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<&str> = (0..self.field_count()).map(|i| self.raw(i)).collect();
        f.debug_struct("Segment")
            .field("id", &self.id())
            .field("fields", &fields)
            .field("terminator", &self.terminator())
            .finish()
    }
}

impl Message {
    /// The most heap memory a message of `len` bytes with `segments`
    /// segments and `fields` fields keeps once parsed: its text (twice, for
    /// a message read as ISO 8859-1 whose bytes above 0x7F take two in
    /// UTF-8), 128 bytes a segment and four a field. A receiver can charge
    /// this before parsing; `tests/memory.rs` holds the parser to it.
    pub fn parsed_size_bound(len: usize, segments: usize, fields: usize) -> usize {
        len.saturating_mul(2)
            .saturating_add(segments.saturating_mul(128))
            .saturating_add(fields.saturating_mul(4))
    }

    /// Parses a message from bytes, reading the delimiters from MSH-1 and
    /// MSH-2. Segments may end with `\r`, `\n` or `\r\n`. A leading UTF-8
    /// byte order mark is skipped (and written back by [`Message::to_bytes`]).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let (bom, body) = match bytes.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, bytes),
        };
        let parsed = match std::str::from_utf8(body) {
            Ok(text) => Self::parse_text(Arc::from(text), TextEncoding::Utf8),
            Err(_) => {
                let text: String = body.iter().map(|&b| b as char).collect();
                Self::parse_text(Arc::from(text), TextEncoding::Latin1)
            }
        };
        match parsed {
            Ok(mut m) => {
                m.bom = bom;
                Ok(m)
            }
            Err(mut e) => {
                if bom {
                    e.offset += BOM.len();
                }
                Err(e)
            }
        }
    }

    /// Parses a message from text.
    pub fn parse_str(text: &str) -> Result<Message, ParseError> {
        Self::parse_text(Arc::from(text), TextEncoding::Utf8)
    }

    fn parse_text(src: Arc<str>, encoding: TextEncoding) -> Result<Message, ParseError> {
        let text: &str = &src;
        let at = |kind, segment_number, segment_id: Option<&str>, field, pos: usize| ParseError {
            kind,
            segment_number,
            segment_id: segment_id.map(str::to_string),
            field,
            offset: byte_offset(text, pos, encoding),
        };
        if u32::try_from(text.len()).is_err() {
            return Err(at(ParseErrorKind::TooLarge, 1, None, None, 0));
        }
        if text.is_empty() {
            return Err(at(ParseErrorKind::Empty, 1, None, None, 0));
        }
        if !text.starts_with("MSH") {
            return Err(at(ParseErrorKind::NoMsh, 1, None, None, 0));
        }
        let field_sep = text[3..]
            .chars()
            .next()
            .filter(|c| *c != '\r' && *c != '\n')
            .ok_or_else(|| at(ParseErrorKind::TruncatedMsh, 1, Some("MSH"), Some(1), 3))?;
        let enc_start = 3 + field_sep.len_utf8();
        let enc_end = text[enc_start..]
            .find([field_sep, '\r', '\n'])
            .map_or(text.len(), |i| enc_start + i);
        let delimiters =
            Delimiters::from_msh(field_sep, &text[enc_start..enc_end]).map_err(|e| {
                let (field, pos) = match e {
                    crate::delimiters::DelimiterError::NotAllowed(c) if c == field_sep => (1, 3),
                    crate::delimiters::DelimiterError::WrongCount(_)
                        if !text[enc_end..].starts_with(field_sep) =>
                    {
                        return at(
                            ParseErrorKind::TruncatedMsh,
                            1,
                            Some("MSH"),
                            Some(2),
                            enc_end,
                        );
                    }
                    _ => (2, enc_start),
                };
                at(e.into(), 1, Some("MSH"), Some(field), pos)
            })?;

        let sep_len = field_sep.len_utf8();
        let bytes = text.as_bytes();
        let is_terminator = |b: &u8| *b == b'\r' || *b == b'\n';
        // Every offset below is at most `text.len()`, checked to fit a u32.
        let offset = |i: usize| i as u32;
        let mut segments = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            let line_end = bytes[pos..]
                .iter()
                .position(is_terminator)
                .map_or(text.len(), |i| pos + i);
            let term_end = bytes[line_end..]
                .iter()
                .position(|b| !is_terminator(b))
                .map_or(text.len(), |i| line_end + i);
            let line = &text[pos..line_end];
            let number = segments.len() + 1;
            let id_end = line.find(field_sep).unwrap_or(line.len());
            let id = &line[..id_end];
            if !is_segment_id(id) {
                return Err(at(ParseErrorKind::BadSegmentId, number, None, None, pos));
            }
            let msh = id == "MSH";
            let mut starts = Vec::new();
            if id_end < line.len() {
                let rest = id_end + sep_len;
                let fields = &line[rest..];
                starts.reserve_exact(count_of(fields, field_sep) + 1 + usize::from(msh));
                if msh {
                    // MSH-1 is the field separator that ends the id.
                    starts.push(offset(pos + id_end));
                }
                starts.push(offset(pos + rest));
                for_each_at(fields, field_sep, |i| {
                    starts.push(offset(pos + rest + i + sep_len));
                });
            }
            segments.push(Segment {
                src: Arc::clone(&src),
                body: Body::Parsed {
                    start: offset(pos),
                    id_end: offset(pos + id_end),
                    end: offset(line_end),
                    starts,
                    sep_len: offset(sep_len),
                    msh,
                },
                terminator: Text::Span(offset(line_end), offset(term_end)),
            });
            pos = term_end;
        }
        Ok(Message {
            delimiters,
            encoding,
            bom: false,
            segments,
        })
    }

    /// A new message holding only an MSH segment with the given delimiters
    /// (MSH-1 and MSH-2 filled in).
    pub fn new(delimiters: Delimiters) -> Message {
        let msh = Segment {
            src: Arc::from(""),
            body: Body::Owned {
                id: "MSH".to_string(),
                fields: vec![
                    delimiters.field.to_string(),
                    delimiters.encoding_characters(),
                ],
            },
            terminator: Text::Fixed("\r"),
        };
        Message {
            delimiters,
            encoding: TextEncoding::Utf8,
            bom: false,
            segments: vec![msh],
        }
    }

    /// The message's delimiters.
    pub fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    /// How the original bytes were read as text.
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// All segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The first segment with this id.
    pub fn segment(&self, id: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.id() == id)
    }

    /// Every segment with this id, in order.
    pub fn segments_named<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Segment> + 'a {
        self.segments.iter().filter(move |s| s.id() == id)
    }

    /// Field `n` of a segment, as a view that can be navigated further.
    pub fn field<'a>(&'a self, segment: &'a Segment, n: usize) -> Element<'a> {
        segment.field(n, &self.delimiters)
    }

    /// The element a path addresses (field, repetition, component or
    /// sub-component, as deep as the path goes), or `None` when its segment
    /// is absent.
    pub fn element(&self, path: &str) -> Result<Option<Element<'_>>, PathError> {
        let p = Path::parse(path)?;
        Ok(self.element_at(&p))
    }

    /// Like [`Message::element`], with a path already parsed.
    pub fn element_at(&self, p: &Path) -> Option<Element<'_>> {
        let seg = self
            .segments
            .iter()
            .filter(|s| s.id() == p.segment)
            .nth(p.occurrence - 1)?;
        let field = seg.field(p.field, &self.delimiters);
        if seg.id() == "MSH" && p.field <= 2 {
            return Some(field);
        }
        let mut e = field.part(p.repetition);
        if let Some(c) = p.component {
            e = e.part(c);
        }
        if let Some(s) = p.subcomponent {
            e = e.part(s);
        }
        Some(e)
    }

    /// The decoded value a path addresses (the first primitive below it, so
    /// `PID-5` reads `PID-5.1.1`); `None` when absent or empty.
    ///
    /// ```
    /// let m = weft_hl7::Message::parse(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\rPID|1||123^^^H^MR~456||O\\T\\Brien^Pat").unwrap();
    /// assert_eq!(m.get("PID-5.1").unwrap().as_deref(), Some("O&Brien"));
    /// assert_eq!(m.get("PID-3(2).1").unwrap().as_deref(), Some("456"));
    /// assert_eq!(m.get("MSH-9.2").unwrap().as_deref(), Some("A01"));
    /// assert_eq!(m.get("PID-8").unwrap(), None);
    /// ```
    pub fn get(&self, path: &str) -> Result<Option<String>, PathError> {
        Ok(self
            .element(path)?
            .and_then(|e| e.non_empty().map(|v| v.into_owned())))
    }

    /// Sets the primitive a path addresses (the first one below it, as for
    /// [`Message::get`]) to `value`, escaping delimiters in it. Missing
    /// fields, repetitions and components are added; the segment must exist.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), EditError> {
        let mut p = Path::parse(path)?;
        p.component.get_or_insert(1);
        p.subcomponent.get_or_insert(1);
        let encoded = escape::encode(value, &self.delimiters).into_owned();
        self.set_raw_at(&p, &encoded)
    }

    /// Replaces exactly the element a path addresses (a whole repetition for
    /// `PID-3(2)`, a component for `PID-5.1`) with raw text, which is not
    /// escaped: it may hold component and sub-component separators.
    pub fn set_raw(&mut self, path: &str, raw: &str) -> Result<(), EditError> {
        let p = Path::parse(path)?;
        self.set_raw_at(&p, raw)
    }

    fn set_raw_at(&mut self, p: &Path, raw: &str) -> Result<(), EditError> {
        let d = self.delimiters;
        if p.segment == "MSH" && p.field <= 2 {
            return Err(EditError::ReadOnly(format!("MSH-{}", p.field)));
        }
        let seg = self
            .segments
            .iter_mut()
            .filter(|s| s.id() == p.segment)
            .nth(p.occurrence - 1)
            .ok_or_else(|| EditError::NoSuchSegment(format!("{}[{}]", p.segment, p.occurrence)))?;
        let old = seg.field(p.field, &d).raw().to_string();
        let mut reps: Vec<Vec<Vec<String>>> = old
            .split(d.repetition)
            .map(|r| {
                r.split(d.component)
                    .map(|c| c.split(d.subcomponent).map(str::to_string).collect())
                    .collect()
            })
            .collect();
        grow(&mut reps, p.repetition, || vec![vec![String::new()]]);
        let rep = &mut reps[p.repetition - 1];
        match p.component {
            None => *rep = vec![vec![raw.to_string()]],
            Some(c) => {
                grow(rep, c, || vec![String::new()]);
                let comp = &mut rep[c - 1];
                match p.subcomponent {
                    None => *comp = vec![raw.to_string()],
                    Some(s) => {
                        grow(comp, s, String::new);
                        comp[s - 1] = raw.to_string();
                    }
                }
            }
        }
        let joined = join(&reps, &d);
        seg.set_field_raw(p.field, &joined);
        Ok(())
    }

    pub(crate) fn clear_segments(&mut self) {
        self.segments.clear();
    }

    /// Appends a segment at the end of the message.
    pub fn push_segment(&mut self, segment: Segment) {
        if let Some(last) = self.segments.last_mut()
            && last.terminator().is_empty()
        {
            last.terminator = Text::Fixed("\r");
        }
        self.segments.push(segment);
    }

    /// Appends a segment built from raw fields (already escaped).
    pub fn push_segment_fields(&mut self, id: &str, fields: &[&str]) {
        let mut s = Segment::new(id);
        *s.fields_mut() = fields.iter().map(|f| f.to_string()).collect();
        self.push_segment(s);
    }

    /// Removes every segment for which `remove` answers true (MSH is always
    /// kept). Returns how many were removed.
    pub fn remove_segments(&mut self, mut remove: impl FnMut(&Segment) -> bool) -> usize {
        let before = self.segments.len();
        let mut first = true;
        self.segments.retain(|s| {
            let keep = first || !remove(s);
            first = false;
            keep
        });
        before - self.segments.len()
    }

    /// The message as text.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.segments.iter().map(Segment::len_hint).sum());
        for s in &self.segments {
            s.write(&mut out, &self.delimiters);
        }
        out
    }

    /// The message as bytes, in the encoding it was read with. An unchanged
    /// message gives back exactly the bytes it was parsed from. In a message
    /// read as ISO 8859-1, a character outside that set (which only an edit
    /// can put there) is written as `?`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let text = self.to_text();
        let mut out = Vec::with_capacity(text.len() + 3);
        if self.bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        match self.encoding {
            TextEncoding::Utf8 => out.extend_from_slice(text.as_bytes()),
            TextEncoding::Latin1 => out.extend(
                text.chars()
                    .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
            ),
        }
        out
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn grow<T>(v: &mut Vec<T>, n: usize, empty: impl Fn() -> T) {
    while v.len() < n {
        v.push(empty());
    }
}

fn join(reps: &[Vec<Vec<String>>], d: &Delimiters) -> String {
    let mut out = String::new();
    for (ri, rep) in reps.iter().enumerate() {
        if ri > 0 {
            out.push(d.repetition);
        }
        for (ci, comp) in rep.iter().enumerate() {
            if ci > 0 {
                out.push(d.component);
            }
            for (si, sub) in comp.iter().enumerate() {
                if si > 0 {
                    out.push(d.subcomponent);
                }
                out.push_str(sub);
            }
        }
    }
    out
}

/// How many times `c` occurs in `text`.
fn count_of(text: &str, c: char) -> usize {
    if c.is_ascii() {
        // A byte below 0x80 is always a whole character in UTF-8, and
        // counting bytes is several times faster than searching for chars.
        let b = c as u8;
        text.bytes().filter(|x| *x == b).count()
    } else {
        text.matches(c).count()
    }
}

/// Calls `f` with the byte index of each occurrence of `c` in `text`.
fn for_each_at(text: &str, c: char, mut f: impl FnMut(usize)) {
    if c.is_ascii() {
        let b = c as u8;
        for (i, x) in text.bytes().enumerate() {
            if x == b {
                f(i);
            }
        }
    } else {
        for (i, _) in text.match_indices(c) {
            f(i);
        }
    }
}

fn byte_offset(text: &str, pos: usize, encoding: TextEncoding) -> usize {
    match encoding {
        TextEncoding::Utf8 => pos,
        TextEncoding::Latin1 => text[..pos].chars().count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &str = "MSH|^~\\&|SEND|FAC|RECV|RFAC|20240102030405||ADT^A01^ADT_A01|CTRL1|P|2.5.1\rEVN|A01|20240102\rPID|1||123^^^HOSP^MR~456^^^SSA^SS||Doe^Jane^Q||19800101|F\rZPI|secret\r";

    #[test]
    fn reads_paths() {
        let m = Message::parse(ADT.as_bytes()).unwrap();
        assert_eq!(m.get("MSH-1").unwrap().as_deref(), Some("|"));
        assert_eq!(m.get("MSH-2").unwrap().as_deref(), Some("^~\\&"));
        assert_eq!(m.get("MSH-3").unwrap().as_deref(), Some("SEND"));
        assert_eq!(m.get("MSH-9.3").unwrap().as_deref(), Some("ADT_A01"));
        assert_eq!(m.get("PID-3(2).4").unwrap().as_deref(), Some("SSA"));
        assert_eq!(m.get("PID-5").unwrap().as_deref(), Some("Doe"));
        assert_eq!(m.get("PID-5.2").unwrap().as_deref(), Some("Jane"));
        assert_eq!(m.get("PID-99").unwrap(), None);
        assert_eq!(m.get("OBX-5").unwrap(), None);
        assert!(m.get("nonsense").is_err());
    }

    #[test]
    fn round_trips_and_edits() {
        let mut m = Message::parse(ADT.as_bytes()).unwrap();
        assert_eq!(m.to_bytes(), ADT.as_bytes());
        m.set("PID-5.1", "O'Brien & Sons").unwrap();
        m.set("PID-3(2).1", "999").unwrap();
        m.set("PID-13(2).4", "x@y").unwrap();
        let text = m.to_text();
        assert!(text.contains("|O'Brien \\T\\ Sons^Jane^Q|"), "{text}");
        assert!(text.contains("~999^^^SSA^SS|"), "{text}");
        assert!(text.contains("|~^^^x@y\r"), "{text}");
        let again = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(
            again.get("PID-5.1").unwrap().as_deref(),
            Some("O'Brien & Sons")
        );
        assert_eq!(
            m.set("MSH-2", "x"),
            Err(EditError::ReadOnly("MSH-2".into()))
        );
        assert!(matches!(
            m.set("OBX-5", "x"),
            Err(EditError::NoSuchSegment(_))
        ));
    }

    #[test]
    fn other_delimiters_and_line_endings() {
        let text = "MSH!@*#$!A!B\r\nPID!1!!7@@@X*8!!Doe@J#T#x\n\nZZZ\r\n";
        let m = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(m.segments().len(), 3);
        assert_eq!(m.get("PID-3.4").unwrap().as_deref(), Some("X"));
        assert_eq!(m.get("PID-3(2)").unwrap().as_deref(), Some("8"));
        assert_eq!(m.get("PID-5.2").unwrap().as_deref(), Some("J$x"));
        assert_eq!(m.to_bytes(), text.as_bytes());
    }

    #[test]
    fn latin1_round_trip() {
        let mut bytes = b"MSH|^~\\&|A|B\rPID|1||1||M\xfcller".to_vec();
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.encoding(), TextEncoding::Latin1);
        assert_eq!(m.get("PID-5").unwrap().as_deref(), Some("Müller"));
        assert_eq!(m.to_bytes(), bytes);
        bytes.push(b'\r');
        assert_eq!(Message::parse(&bytes).unwrap().to_bytes(), bytes);
    }

    #[test]
    fn errors_say_where() {
        let e = Message::parse(b"MSH|^~\\&|A\rPID|1\rPI|1\r").unwrap_err();
        assert_eq!(e.segment_number, 3);
        assert_eq!(e.offset, 17);
        assert!(e.to_string().contains("segment 3, byte 17"), "{e}");
        let e = Message::parse(b"MSH|^~").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::TruncatedMsh);
        assert_eq!(e.field, Some(2));
        let e = Message::parse(b"MSHA^~\\&A").unwrap_err();
        assert_eq!(e.field, Some(1));
        // A line that is not a segment may be content: none of it is shown.
        let e = Message::parse(b"MSH|^~\\&|A\rJane Doe lives at 12 Main St\r").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::BadSegmentId);
        assert_eq!((e.segment_number, e.offset), (2, 11));
        assert!(!e.to_string().contains("Jane"), "{e}");
    }

    #[test]
    fn non_ascii_field_separator() {
        let text = "MSH\u{a6}^~\\&\u{a6}A\u{a6}B\rPID\u{a6}1\u{a6}\u{a6}x^y\u{a6}\u{e9}\r";
        let mut m = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(m.get("MSH-1").unwrap().as_deref(), Some("\u{a6}"));
        assert_eq!(m.get("MSH-4").unwrap().as_deref(), Some("B"));
        assert_eq!(m.get("PID-3.2").unwrap().as_deref(), Some("y"));
        assert_eq!(m.get("PID-4").unwrap().as_deref(), Some("\u{e9}"));
        assert_eq!(m.to_bytes(), text.as_bytes());
        m.set("PID-2", "z").unwrap();
        assert!(
            m.to_text()
                .ends_with("PID\u{a6}1\u{a6}z\u{a6}x^y\u{a6}\u{e9}\r")
        );
    }

    #[test]
    fn an_edit_copies_only_its_segment() {
        let parsed = Message::parse(ADT.as_bytes()).unwrap();
        let mut m = parsed.clone();
        m.set("PID-8", "M").unwrap();
        let owned = |m: &Message| {
            m.segments()
                .iter()
                .filter(|s| matches!(s.body, Body::Owned { .. }))
                .count()
        };
        assert_eq!((owned(&parsed), owned(&m)), (0, 1));
        // Equal whether a segment is stored as spans or as strings.
        m.set("PID-8", "F").unwrap();
        assert_eq!(m, parsed);
        assert_eq!(m.to_bytes(), ADT.as_bytes());
        // A second MSH (a batch) keeps its MSH-1 and MSH-2 apart.
        let two = Message::parse(b"MSH|^~\\&|A\rMSH|^~\\&|B\r").unwrap();
        let second = &two.segments()[1];
        assert_eq!(two.field(second, 1).raw(), "|");
        assert_eq!(two.field(second, 3).raw(), "B");
        assert_eq!(two.to_bytes(), b"MSH|^~\\&|A\rMSH|^~\\&|B\r");
    }

    #[test]
    fn a_segment_without_fields_and_a_missing_last_terminator() {
        let mut m = Message::parse(b"MSH|^~\\&|A\rZZZ\rPID").unwrap();
        assert_eq!(m.segments()[1].field_count(), 0);
        assert_eq!(m.segments()[2].id(), "PID");
        m.push_segment_fields("NTE", &["1", "note"]);
        assert_eq!(m.to_text(), "MSH|^~\\&|A\rZZZ\rPID\rNTE|1|note\r");
    }

    #[test]
    fn removes_segments_but_not_msh() {
        let mut m = Message::parse(ADT.as_bytes()).unwrap();
        assert_eq!(
            m.remove_segments(|s| s.id().starts_with('Z') || s.id() == "MSH"),
            1
        );
        assert_eq!(m.segments().len(), 3);
        assert!(m.segment("MSH").is_some());
    }
}
