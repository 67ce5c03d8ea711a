//! Journal timestamps (ms since the epoch) as operators write and read
//! them: `2026-11-25`, `2026-11-25T08:30[:00]`, always UTC.

/// A time an operator gave that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date such as 2026-11-25 or 2026-11-25T08:30")]
pub struct BadTime(pub String);

/// `YYYY-MM-DD HH:MM:SS` (UTC) for ms since the epoch.
pub fn iso(ms: i64) -> String {
    let t = weft_hl7::datetime::format_unix((ms.max(0) / 1000) as u64);
    format!(
        "{}-{}-{} {}:{}:{}",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..12],
        &t[12..14]
    )
}

/// ms since the epoch for `YYYY-MM-DD[THH:MM[:SS]]` in UTC.
pub fn parse(text: &str) -> Result<i64, BadTime> {
    let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    let dt = weft_hl7::datetime::DateTime::parse(&digits).map_err(|_| BadTime(text.into()))?;
    let (y, m, d) = (
        i64::from(dt.year),
        i64::from(dt.month.unwrap_or(1)),
        i64::from(dt.day.unwrap_or(1)),
    );
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400
        + i64::from(dt.hour.unwrap_or(0)) * 3600
        + i64::from(dt.minute.unwrap_or(0)) * 60
        + i64::from(dt.second.unwrap_or(0));
    Ok(secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ms = parse("2024-02-29T12:34:56").unwrap();
        assert_eq!(ms, 1_709_210_096_000);
        assert_eq!(iso(ms), "2024-02-29 12:34:56");
        assert_eq!(parse("1970-01-01").unwrap(), 0);
        assert!(parse("yesterday").is_err());
    }
}
