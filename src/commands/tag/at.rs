//! `tag new --at`: an RFC 3339 time, and when it is not one, the reason in
//! the words `tag check` uses for a tag's timestamp.

use anyhow::bail;
use chrono::{DateTime, Datelike, Month, Months, NaiveDate, Utc};

/// What `--at` looks like, shown with every error.
const EXPECTED: &str = "expected RFC 3339, YYYY-MM-DDThh:mm:ss and Z or an offset, e.g. 2020-11-08T19:56:30Z";

pub fn parse(text: &str) -> anyhow::Result<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(time) => Ok(time.with_timezone(&Utc)),
        Err(err) => {
            let why = explain(text).unwrap_or_else(|| format!("not an RFC 3339 time ({err})"));
            bail!("invalid --at {text:?}: {why}; {EXPECTED}")
        }
    }
}

/// The first field out of range, as `tag check` would name it, when the
/// text has the shape of an RFC 3339 time; `None` when it does not.
fn explain(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let number = |at: usize, len: usize| -> Option<u32> {
        let digits = b.get(at..at + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let year = number(0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (month, day) = (number(5, 2)?, number(8, 2)?);
    if !(1..=12).contains(&month) {
        return Some(format!("month {month:02} at position 5 is out of range 01-12"));
    }
    let first = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, 1)?;
    let max = first.checked_add_months(Months::new(1))?.pred_opt()?.day();
    if day == 0 || day > max {
        let name = Month::try_from(u8::try_from(month).ok()?).ok()?.name();
        return Some(format!(
            "day {day:02} at position 8 is out of range 01-{max} for {name} {year}"
        ));
    }
    if b.len() == 10 {
        return Some("a date without a time".to_owned());
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    for (field, value, position, max) in [
        ("hour", hour, 11, 23),
        ("minute", minute, 14, 59),
        ("second", second, 17, 59),
    ] {
        if value > max {
            return Some(format!(
                "{field} {value:02} at position {position} is out of range 00-{max}"
            ));
        }
    }
    let zone = text[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if zone.is_empty() {
        return Some("no time zone (Z or an offset such as +01:00)".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn impossible_dates_are_explained_like_tag_check_does() {
        let table = [
            (
                "2020-02-30T00:00:00Z",
                Some("day 30 at position 8 is out of range 01-29 for February 2020"),
            ),
            (
                "2021-02-29T00:00:00Z",
                Some("day 29 at position 8 is out of range 01-28 for February 2021"),
            ),
            (
                "2020-13-01T00:00:00Z",
                Some("month 13 at position 5 is out of range 01-12"),
            ),
            (
                "2020-11-08T24:00:00Z",
                Some("hour 24 at position 11 is out of range 00-23"),
            ),
            (
                "2020-11-08T19:60:00Z",
                Some("minute 60 at position 14 is out of range 00-59"),
            ),
            ("2020-11-08", Some("a date without a time")),
            (
                "2020-11-08T19:56:30",
                Some("no time zone (Z or an offset such as +01:00)"),
            ),
            ("yesterday", None),
        ];
        for (text, want) in table {
            assert_eq!(explain(text).as_deref(), want, "{text}");
        }
    }
}
