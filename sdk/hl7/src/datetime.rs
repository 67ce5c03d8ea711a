//! HL7 dates and times (DT, DTM/TS): checked parsing and conversion to the
//! FHIR `date` / `dateTime` forms.

use std::fmt;

/// A checked HL7 date/time, `YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTime {
    /// Four-digit year.
    pub year: u16,
    /// Month 1–12, when given.
    pub month: Option<u8>,
    /// Day of month, when given.
    pub day: Option<u8>,
    /// Hour 0–23, when given.
    pub hour: Option<u8>,
    /// Minute, when given.
    pub minute: Option<u8>,
    /// Second, when given.
    pub second: Option<u8>,
    /// Fraction of a second, digits after the point, when given.
    pub fraction: Option<String>,
    /// UTC offset in minutes, when given.
    pub offset_minutes: Option<i16>,
}

/// A value that is not a valid HL7 date/time. Its message says what is
/// wrong, never the value (it may be a birth date): prefix the field's
/// position (`PID-7: …`) when turning it into a reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid HL7 date/time: {reason}")]
pub struct DateTimeError {
    /// The text that was given (for the plugin's own debugging; keep it out
    /// of reasons and logs above debug).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl DateTime {
    /// Parses and checks an HL7 DT or DTM value (the calendar is checked:
    /// `20230230` is refused).
    pub fn parse(value: &str) -> Result<DateTime, DateTimeError> {
        let err = |reason| DateTimeError {
            value: value.to_string(),
            reason,
        };
        let (main, offset) = match value.find(['+', '-']) {
            Some(i) => (&value[..i], Some(&value[i..])),
            None => (value, None),
        };
        let (digits, fraction) = match main.split_once('.') {
            Some((d, f)) => (d, Some(f)),
            None => (main, None),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                "only digits are allowed before the fraction and offset",
            ));
        }
        if !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14) {
            return Err(err(
                "expected YYYY, YYYYMM, YYYYMMDD, or a time to the hour, minute or second",
            ));
        }
        let part = |i: usize| -> Option<u8> { digits.get(i..i + 2).and_then(|s| s.parse().ok()) };
        let year: u16 = digits[..4].parse().map_err(|_| err("bad year"))?;
        let dt = DateTime {
            year,
            month: part(4),
            day: part(6),
            hour: part(8),
            minute: part(10),
            second: part(12),
            fraction: match fraction {
                Some(f)
                    if f.is_empty() || f.len() > 4 || !f.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    return Err(err("the fraction of a second must be 1 to 4 digits"));
                }
                Some(_) if digits.len() != 14 => {
                    return Err(err("a fraction of a second needs seconds"));
                }
                f => f.map(str::to_string),
            },
            offset_minutes: match offset {
                None => None,
                Some(o) => {
                    let (sign, hhmm) = o.split_at(1);
                    if hhmm.len() != 4 || !hhmm.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(err("the UTC offset must be +HHMM or -HHMM"));
                    }
                    let h: i16 = hhmm[..2].parse().map_err(|_| err("bad offset"))?;
                    let m: i16 = hhmm[2..].parse().map_err(|_| err("bad offset"))?;
                    if h > 14 || m > 59 {
                        return Err(err("the UTC offset is out of range"));
                    }
                    let total = h * 60 + m;
                    Some(if sign == "-" { -total } else { total })
                }
            },
        };
        if let Some(m) = dt.month
            && !(1..=12).contains(&m)
        {
            return Err(err("month out of range"));
        }
        if let (Some(m), Some(d)) = (dt.month, dt.day)
            && (d < 1 || d > days_in_month(year, m))
        {
            return Err(err("day out of range for the month"));
        }
        if dt.hour.is_some_and(|h| h > 23) {
            return Err(err("hour out of range"));
        }
        if dt.minute.is_some_and(|m| m > 59) {
            return Err(err("minute out of range"));
        }
        if dt.second.is_some_and(|s| s > 59) {
            return Err(err("second out of range"));
        }
        Ok(dt)
    }

    /// The instant as seconds since the Unix epoch, when it names one: a
    /// UTC offset and at least the minute are given (a missing second counts
    /// as 0, the fraction is dropped). `None` for a value without an offset
    /// (whose instant depends on the sender's zone) or without the minute.
    pub fn unix_seconds(&self) -> Option<i64> {
        let offset = i64::from(self.offset_minutes?);
        let (month, day) = (i64::from(self.month?), i64::from(self.day?));
        let (hour, minute) = (i64::from(self.hour?), i64::from(self.minute?));
        let second = i64::from(self.second.unwrap_or(0));
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = i64::from(self.year) - i64::from(month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60)
    }

    /// The FHIR `date` form: `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (the time is
    /// dropped).
    pub fn fhir_date(&self) -> String {
        let mut s = String::with_capacity(32);
        self.push_date(&mut s);
        s
    }

    fn push_date(&self, s: &mut String) {
        push_digits(s, u32::from(self.year), 4);
        if let Some(m) = self.month {
            s.push('-');
            push_digits(s, u32::from(m), 2);
            if let Some(d) = self.day {
                s.push('-');
                push_digits(s, u32::from(d), 2);
            }
        }
    }

    /// The FHIR `dateTime` form. FHIR requires a time zone whenever a time is
    /// given: when the value has none, `default_offset_minutes` is used, and
    /// without one the value is reduced to its date.
    pub fn fhir_datetime(&self, default_offset_minutes: Option<i16>) -> String {
        let (Some(h), Some(_)) = (self.hour, self.day) else {
            return self.fhir_date();
        };
        let Some(offset) = self.offset_minutes.or(default_offset_minutes) else {
            return self.fhir_date();
        };
        let mut s = String::with_capacity(32);
        self.push_date(&mut s);
        s.push('T');
        push_digits(&mut s, u32::from(h), 2);
        s.push(':');
        push_digits(&mut s, u32::from(self.minute.unwrap_or(0)), 2);
        s.push(':');
        push_digits(&mut s, u32::from(self.second.unwrap_or(0)), 2);
        if let Some(f) = &self.fraction {
            s.push('.');
            s.push_str(f);
        }
        if offset == 0 {
            s.push('Z');
        } else {
            s.push(if offset < 0 { '-' } else { '+' });
            let a = u32::from(offset.unsigned_abs());
            push_digits(&mut s, a / 60, 2);
            s.push(':');
            push_digits(&mut s, a % 60, 2);
        }
        s
    }
}

/// Appends `n` in decimal, zero-padded to `width` digits.
fn push_digits(s: &mut String, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    for &b in &buf[start..] {
        s.push(char::from(b));
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fhir_datetime(None))
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

/// The current time as an HL7 DTM in UTC, e.g. `20240102030405+0000`.
pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_unix(secs)
}

/// Formats seconds since the Unix epoch as an HL7 DTM in UTC.
pub fn format_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_seconds_only_for_an_instant() {
        let at = |v: &str| DateTime::parse(v).unwrap().unix_seconds();
        assert_eq!(at("19700101000000+0000"), Some(0));
        assert_eq!(at("20261203125400+0000"), Some(1_796_302_440));
        // The same instant written in another zone.
        assert_eq!(at("20261203075400-0500"), Some(1_796_302_440));
        assert_eq!(at("202612031354+0100"), Some(1_796_302_440));
        assert_eq!(at("20000229235959.123+0000"), Some(951_868_799));
        assert_eq!(at("20261203125400"), None, "no offset: not an instant");
        assert_eq!(at("20261203+0000"), None, "no time");
    }

    use super::*;

    #[test]
    fn parses_and_converts() {
        let d = DateTime::parse("19800101").unwrap();
        assert_eq!(d.fhir_date(), "1980-01-01");
        let d = DateTime::parse("198808181126+0215").unwrap();
        assert_eq!(d.fhir_datetime(None), "1988-08-18T11:26:00+02:15");
        let d = DateTime::parse("20210817151943.4+0200").unwrap();
        assert_eq!(d.fhir_datetime(None), "2021-08-17T15:19:43.4+02:00");
        let d = DateTime::parse("202108171519").unwrap();
        assert_eq!(d.fhir_datetime(None), "2021-08-17");
        assert_eq!(d.fhir_datetime(Some(0)), "2021-08-17T15:19:00Z");
        assert_eq!(DateTime::parse("1980").unwrap().fhir_date(), "1980");
        assert_eq!(DateTime::parse("198002").unwrap().fhir_date(), "1980-02");
    }

    #[test]
    fn refuses_impossible_dates() {
        for bad in [
            "2023130",
            "20231301",
            "20230230",
            "20230229",
            "2023011",
            "19800101250000",
            "abc",
            "",
            "20200101+25",
            "20200101.5",
        ] {
            assert!(DateTime::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(DateTime::parse("20240229").is_ok());
    }

    #[test]
    fn formats_unix_time() {
        assert_eq!(format_unix(0), "19700101000000+0000");
        assert_eq!(format_unix(1_709_210_096), "20240229123456+0000");
    }
}
