//! Arithmetic on FHIR `dateTime`/`instant` text: an appointment's end from
//! its start and duration.

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `start` (`YYYY-MM-DDTHH:MM:SS` + optional fraction + zone) plus
/// `minutes`, in the same zone; `None` when `start` is not in that form.
pub fn add_minutes(start: &str, minutes: i64) -> Option<String> {
    let num = |r: std::ops::Range<usize>| start.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
    );
    let sec = start.get(17..19)?;
    let rest = start.get(19..)?;
    let zone = &rest[rest.find(['Z', '+', '-'])?..];
    let total = days_from_civil(y, mo, d) * 1440 + h * 60 + mi + minutes;
    let (days, mins) = (total.div_euclid(1440), total.rem_euclid(1440));
    let (y, mo, d) = civil_from_days(days);
    Some(format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{sec}{zone}",
        mins / 60,
        mins % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_across_days_and_years() {
        assert_eq!(
            add_minutes("2021-09-24T09:30:00+02:15", 50).as_deref(),
            Some("2021-09-24T10:20:00+02:15")
        );
        assert_eq!(
            add_minutes("2020-12-31T23:30:00Z", 60).as_deref(),
            Some("2021-01-01T00:30:00Z")
        );
        assert_eq!(
            add_minutes("2024-02-28T23:00:00-05:00", 120).as_deref(),
            Some("2024-02-29T01:00:00-05:00")
        );
        assert_eq!(add_minutes("2024-02-28", 1), None);
    }
}
