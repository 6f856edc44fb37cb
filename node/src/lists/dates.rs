//! Date normalisation: list dates become `YYYY-MM-DD`, birth dates `YYYY`,
//! `YYYY-MM` or `YYYY-MM-DD` when the source is unambiguous.
//!
//! A date outside 1800..=2100 is treated as bad input (DPL carries a
//! `Last_Update` of 3033-09-30): it becomes `None` and the reader records a
//! warning naming the column; the row itself is kept.

const MIN_YEAR: u32 = 1800;
const MAX_YEAR: u32 = 2100;

/// A list date (`YYYY-MM-DD`, `YYYY-MM-DDThh:mm...` or US `MM/DD/YYYY`) as
/// `YYYY-MM-DD`. Empty input gives `None` silently; anything unreadable or
/// implausible gives `None` and a warning naming `column`.
pub fn list_date(raw: &str, column: &str, warnings: &mut Vec<String>) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || s == "-0-" {
        return None;
    }
    let parsed = iso_date(s).or_else(|| us_date(s));
    if parsed.is_none() {
        warnings.push(format!(
            "{column}: not a plausible date (expected YYYY-MM-DD between {MIN_YEAR} and {MAX_YEAR}); left empty"
        ));
    }
    parsed
}

/// `YYYY-MM-DD` (an ISO time after it is ignored), validated.
pub fn iso_date(s: &str) -> Option<String> {
    let s = s.trim();
    let date = s.get(..10)?;
    if s.len() > 10 && !s[10..].starts_with(['T', ' ', 'Z', '+']) {
        return None;
    }
    let mut it = date.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    ymd(num(y)?, num(m)?, num(d)?)
}

/// US `MM/DD/YYYY` as `YYYY-MM-DD`.
pub fn us_date(s: &str) -> Option<String> {
    let mut it = s.trim().split('/');
    let (m, d, y) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 {
        return None;
    }
    ymd(num(y)?, num(m)?, num(d)?)
}

/// A birth date as the lists write it: `1962-08-06`, `1962-08`, `1962`,
/// `06 Aug 1962`, `Aug 1962`, `circa 1962`. Ranges (`1960 to 1962`) and
/// anything else give `None`.
pub fn birth_date(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s
        .strip_prefix("circa ")
        .or_else(|| s.strip_prefix("Circa "))
        .unwrap_or(s)
        .trim();
    if s.contains(" to ") || s.is_empty() {
        return None;
    }
    if let Some(d) = iso_date(s) {
        return Some(d);
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.as_slice() {
        [y] if y.len() == 4 => year(y),
        [y] if y.len() == 7 => {
            let (yy, mm) = y.split_once('-')?;
            let yy = year(yy)?;
            let m = num(mm).filter(|m| (1..=12).contains(m))?;
            Some(format!("{yy}-{m:02}"))
        }
        [mon, y] => {
            let m = month(mon)?;
            Some(format!("{}-{m:02}", year(y)?))
        }
        [d, mon, y] => ymd(num(y)?, month(mon)?, num(d)?),
        _ => None,
    }
}

fn year(s: &str) -> Option<String> {
    let y = num(s).filter(|y| (MIN_YEAR..=MAX_YEAR).contains(y))?;
    (s.len() == 4).then(|| y.to_string())
}

fn ymd(y: u32, m: u32, d: u32) -> Option<String> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=days)
        .contains(&d)
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month(s: &str) -> Option<u32> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let s = s.trim_end_matches('.');
    if s.len() < 3 || !s.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let key = s[..3].to_ascii_lowercase();
    let i = NAMES.iter().position(|n| *n == key)?;
    u32::try_from(i + 1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_dates() {
        let mut w = Vec::new();
        assert_eq!(
            list_date("2003-06-19", "c", &mut w).as_deref(),
            Some("2003-06-19")
        );
        assert_eq!(
            list_date("06/19/2003", "c", &mut w).as_deref(),
            Some("2003-06-19")
        );
        assert_eq!(
            list_date("2020-11-24T00:00:00", "c", &mut w).as_deref(),
            Some("2020-11-24")
        );
        assert_eq!(list_date("", "c", &mut w), None);
        assert!(w.is_empty());
        assert_eq!(list_date("3033-09-30", "Last_Update", &mut w), None);
        assert_eq!(list_date("2023-02-30", "Effective_Date", &mut w), None);
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with("Last_Update: not a plausible date"));
    }

    #[test]
    fn birth_dates() {
        assert_eq!(birth_date("1962-08-06").as_deref(), Some("1962-08-06"));
        assert_eq!(birth_date("1962").as_deref(), Some("1962"));
        assert_eq!(birth_date("10 Jan 1960").as_deref(), Some("1960-01-10"));
        assert_eq!(birth_date("Jan 1960").as_deref(), Some("1960-01"));
        assert_eq!(birth_date("circa 1955").as_deref(), Some("1955"));
        assert_eq!(birth_date("1962-08").as_deref(), Some("1962-08"));
        assert_eq!(birth_date("1960 to 1962"), None);
        assert_eq!(birth_date("31 Feb 1960"), None);
        assert_eq!(birth_date("3033"), None);
        assert_eq!(birth_date("unknown"), None);
    }
}
