//! Calendar dates as notices carry them: `YYYY-MM-DD` strings.

use time::{Date, Month};

/// Parses `YYYY-MM-DD`, refusing impossible dates such as 2031-02-30.
pub fn parse(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// Formats as `YYYY-MM-DD`.
pub fn format(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The same day `years` later; 29 February becomes 28 February.
pub fn add_years(d: Date, years: i32) -> Date {
    let year = d.year() + years;
    Date::from_calendar_date(year, d.month(), d.day())
        .or_else(|_| Date::from_calendar_date(year, d.month(), 28))
        .unwrap_or(d)
}

/// Today in UTC.
pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_real_dates() {
        assert!(parse("2026-03-14").is_some());
        assert!(parse("2024-02-29").is_some());
        assert!(parse("2031-02-30").is_none());
        assert!(parse("2023-02-29").is_none());
        assert!(parse("2026-3-14").is_none());
        assert!(parse("14/03/2026").is_none());
        assert!(parse("").is_none());
    }

    #[test]
    fn three_years_later() {
        let d = parse("2024-02-29").unwrap();
        assert_eq!(format(add_years(d, 3)), "2027-02-28");
        assert_eq!(
            format(add_years(parse("2026-03-14").unwrap(), 3)),
            "2029-03-14"
        );
    }
}
