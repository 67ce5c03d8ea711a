//! The message being mapped and what every mapper needs from it: the
//! header, the site's time zone, field access and field names for reasons.

use std::fmt;

use weft_sdk::hl7::datetime::DateTime;
use weft_sdk::hl7::{Element, Header, Message, Segment};
use weft_sdk::{Error, Result, config};

/// One HL7 v2 message under mapping.
pub struct Context<'m> {
    /// The parsed message.
    pub hl7: &'m Message,
    /// Its MSH routing fields.
    pub header: Header,
    /// The `default_utc_offset` setting, in minutes east of UTC: used for
    /// HL7 times without an offset (FHIR requires one on every time).
    pub offset: Option<i16>,
}

impl<'m> Context<'m> {
    /// Reads the header and the plugin's `default_utc_offset` setting.
    pub fn new(hl7: &'m Message) -> Result<Context<'m>> {
        let header = hl7.header().map_err(|e| Error::reject(e.to_string()))?;
        Ok(Context {
            hl7,
            header,
            offset: utc_offset()?,
        })
    }

    /// Checks MSH-9 against the `CODE^TRIGGER` types a plugin maps (e.g.
    /// `["ORM^O01", "OML^O21"]`) and returns the trigger; any other type
    /// is a reject naming the plugin and what it maps.
    pub fn require_type(&self, plugin: &str, types: &[&str]) -> Result<String> {
        let t = self.header.message_type();
        if types.iter().any(|x| *x == t) {
            return Ok(self.header.trigger_event.clone());
        }
        // "ADT^A01, A02, A03": the code once per run.
        let mut list = String::new();
        let mut last_code = "";
        for ty in types {
            let (code, trigger) = ty.split_once('^').unwrap_or((ty, ""));
            if !list.is_empty() {
                list.push_str(", ");
            }
            if code == last_code && !trigger.is_empty() {
                list.push_str(trigger);
            } else {
                list.push_str(ty);
            }
            last_code = code;
        }
        Err(Error::reject(format!(
            "MSH-9 {t} is not mapped by {plugin} (it maps {list})"
        )))
    }

    /// Field `n` of `seg`.
    pub fn field(&self, seg: &'m Segment, n: usize) -> Element<'m> {
        self.hl7.field(seg, n)
    }

    /// The decoded, trimmed text of field `n` (first repetition, first
    /// component).
    pub fn text(&self, seg: &'m Segment, n: usize) -> String {
        self.hl7.field(seg, n).value().trim().to_string()
    }

    /// The sending facility (MSH-4.1): the assigning authority of
    /// identifiers that name none.
    pub fn facility(&self) -> &str {
        &self.header.sending_facility
    }

    /// The name of field `n` of `seg` for a reason: `PID-7`, or
    /// `OBX-5 at segment 12` when the message has more than one `OBX`.
    /// Worked out only when formatted (on the error and warning paths).
    pub fn name<'s>(&'s self, seg: &'s Segment, n: usize) -> FieldName<'s> {
        FieldName {
            hl7: self.hl7,
            seg,
            n,
        }
    }

    /// An HL7 date/time to FHIR `dateTime`; an impossible value is a reject
    /// naming `field` (not the value: it may be patient data).
    pub fn date_time_value(&self, field: &dyn fmt::Display, value: &str) -> Result<Option<String>> {
        Ok(parse(field, value)?.map(|d| d.fhir_datetime(self.offset)))
    }

    /// An HL7 date/time to FHIR `date`.
    pub fn date_value(&self, field: &dyn fmt::Display, value: &str) -> Result<Option<String>> {
        Ok(parse(field, value)?.map(|d| d.fhir_date()))
    }

    /// An HL7 date/time to FHIR `instant` (needs a time to the minute and
    /// an offset; missing seconds are 00); `None` when the value is less
    /// precise than that.
    pub fn instant_value(&self, field: &dyn fmt::Display, value: &str) -> Result<Option<String>> {
        let Some(d) = parse(field, value)? else {
            return Ok(None);
        };
        let full = d.minute.is_some() && (d.offset_minutes.is_some() || self.offset.is_some());
        Ok(full.then(|| d.fhir_datetime(self.offset)))
    }

    /// Field `n` of `seg` (its first component) as a FHIR `dateTime`.
    pub fn date_time(&self, seg: &'m Segment, n: usize) -> Result<Option<String>> {
        let v = self.field(seg, n).repetition(1).part(1).value();
        self.date_time_value(&self.name(seg, n), v.trim())
    }

    /// Field `n` of `seg` (its first component) as a FHIR `date`.
    pub fn date(&self, seg: &'m Segment, n: usize) -> Result<Option<String>> {
        let v = self.field(seg, n).repetition(1).part(1).value();
        self.date_value(&self.name(seg, n), v.trim())
    }
}

fn parse(field: &dyn fmt::Display, value: &str) -> Result<Option<DateTime>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    DateTime::parse(value).map(Some).map_err(|e| {
        Error::reject(format!(
            "{field} is not a valid HL7 date/time: {}",
            e.reason
        ))
    })
}

/// A field's name for a reason or a warning ([`Context::name`]).
#[derive(Clone, Copy)]
pub struct FieldName<'s> {
    hl7: &'s Message,
    seg: &'s Segment,
    n: usize,
}

impl fmt::Display for FieldName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.seg.id();
        let mut same = 0;
        let mut line = 0;
        for (i, s) in self.hl7.segments().iter().enumerate() {
            if s.id() == id {
                same += 1;
            }
            if std::ptr::eq(s, self.seg) {
                line = i + 1;
            }
        }
        if same > 1 && line > 0 {
            write!(f, "{id}-{} at segment {line}", self.n)
        } else {
            write!(f, "{id}-{}", self.n)
        }
    }
}

/// Checks the settings every mapping of this crate reads (today
/// `default_utc_offset`): what a plugin's [`weft_sdk::Plugin::init`] calls,
/// so a bad setting refuses the version at load instead of failing every
/// message.
pub fn check_settings() -> Result<()> {
    utc_offset().map(|_| ())
}

/// The `default_utc_offset` setting, in minutes east of UTC.
fn utc_offset() -> Result<Option<i16>> {
    let Some(text) = config("default_utc_offset") else {
        return Ok(None);
    };
    let bad = || {
        Error::failed(format!(
            "config default_utc_offset {text:?} is not +HH:MM or -HH:MM"
        ))
    };
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let h: i16 = h.parse().map_err(|_| bad())?;
    let m: i16 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(Some(sign * (h * 60 + m)))
}
