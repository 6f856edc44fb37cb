//! Consultation deadlines in working days.
//!
//! A no-undercut consultation must be answered within 10 working days of the
//! day it is opened, extendable once to 30. Saturdays, Sundays and the
//! agency's holidays (config: a list of `YYYY-MM-DD`) are not working days.
//! The deadline is the end of the n-th working day after the opening day.
//!
//! Everything here is a pure function of dates: callers pass `now` (the
//! agency's local date), so tests need no clock. An overdue consultation
//! stays [`ConsultState::Overdue`] until someone answers or closes it; nothing
//! here closes it on its own.

use std::collections::BTreeSet;
use std::ops::Bound;

use time::{Date, Weekday};

/// Working days to answer, unless extended.
pub const DEFAULT_DAYS: u32 = 10;
/// The longest a deadline may be extended to.
pub const MAX_DAYS: u32 = 30;
/// A reminder is due when this many working days or fewer are left.
pub const REMIND_WITHIN: u32 = 2;

/// Errors of deadlines and calendars.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeadlineError {
    #[error("the deadline has already been extended once")]
    AlreadyExtended,
    #[error("a deadline can be extended to at most {max} working days, not {asked}")]
    BeyondLimit { asked: u32, max: u32 },
    #[error("an extension must be longer than the current {current} working days, not {asked}")]
    NotLonger { asked: u32, current: u32 },
    #[error("holiday {index} ({value:?}) is not a date of the form YYYY-MM-DD")]
    BadHoliday { index: usize, value: String },
}

/// An agency's working days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    pub holidays: BTreeSet<Date>,
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

impl WorkCalendar {
    pub fn new(holidays: impl IntoIterator<Item = Date>) -> Self {
        Self {
            holidays: holidays.into_iter().collect(),
        }
    }

    /// Reads the holiday list from config (`YYYY-MM-DD` each).
    pub fn from_config<S: AsRef<str>>(holidays: &[S]) -> Result<Self, DeadlineError> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        holidays
            .iter()
            .enumerate()
            .map(|(index, s)| {
                Date::parse(s.as_ref().trim(), &format).map_err(|_| DeadlineError::BadHoliday {
                    index,
                    value: s.as_ref().to_owned(),
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()
            .map(|holidays| Self { holidays })
    }

    /// This calendar with `extra` holidays too.
    #[must_use]
    pub fn with(&self, extra: impl IntoIterator<Item = Date>) -> Self {
        let mut holidays = self.holidays.clone();
        holidays.extend(extra);
        Self { holidays }
    }

    pub fn is_working_day(&self, d: Date) -> bool {
        !is_weekend(d) && !self.holidays.contains(&d)
    }

    /// The n-th working day after `start` (`start` itself never counts;
    /// n = 0 gives `start`). Saturates at the last representable date.
    pub fn add_working_days(&self, start: Date, n: u32) -> Date {
        let mut d = start;
        let mut left = n;
        while left > 0 {
            let Some(next) = d.next_day() else {
                return d;
            };
            d = next;
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Working days `d` with `a < d <= b` (0 if `b <= a`).
    pub fn working_days_between(&self, a: Date, b: Date) -> u32 {
        if b <= a {
            return 0;
        }
        let days = i64::from(b.to_julian_day() - a.to_julian_day());
        // Whole weeks hold five weekdays each; walk the remainder.
        let mut weekdays = days / 7 * 5;
        let mut d = a;
        for _ in 0..days % 7 {
            d = d.next_day().unwrap_or(d);
            if !is_weekend(d) {
                weekdays += 1;
            }
        }
        let holidays = self
            .holidays
            .range((Bound::Excluded(a), Bound::Included(b)))
            .filter(|h| !is_weekend(**h))
            .count();
        u32::try_from(weekdays - holidays as i64).unwrap_or(u32::MAX)
    }
}

/// Holidays a consultation with a peer skips beyond this agency's own: a
/// bloc charter's public holidays of this agency and of the peer, when both
/// are members of a bloc whose charter is in force.
pub trait SharedHolidays: Send + Sync + std::fmt::Debug {
    /// The extra holidays of a consultation with `peer`; empty for none.
    fn with_peer(&self, peer: &str) -> Vec<Date>;
}

/// The state on day `now` of a consultation due on `due`. `closed` wins
/// over `answered`, and both over the calendar; an unanswered consultation
/// past its due day is `Overdue` however long ago that was.
pub fn state_for_due(
    due: Date,
    now: Date,
    answered: bool,
    closed: bool,
    cal: &WorkCalendar,
) -> ConsultState {
    if closed {
        return ConsultState::Closed;
    }
    if answered {
        return ConsultState::Answered;
    }
    if now > due {
        return ConsultState::Overdue {
            working_days_late: cal.working_days_between(due, now),
        };
    }
    let left = cal.working_days_between(now, due);
    if left <= REMIND_WITHIN {
        ConsultState::DueSoon {
            working_days_left: left,
        }
    } else {
        ConsultState::Open
    }
}

/// A consultation's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The day the consultation was opened.
    pub opened: Date,
    /// Working days allowed after `opened`.
    pub days: u32,
    pub extended: bool,
}

/// Where a consultation stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsultState {
    /// Not answered, more than [`REMIND_WITHIN`] working days left.
    Open,
    /// Not answered, due within [`REMIND_WITHIN`] working days (0: due today):
    /// time to remind the denying agency.
    DueSoon {
        working_days_left: u32,
    },
    /// Not answered and past its due day. Counted in full working days after
    /// the due day, so the weekend right after a Friday deadline is 0.
    Overdue {
        working_days_late: u32,
    },
    Answered,
    Closed,
}

impl ConsultState {
    /// A stable name for listings and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsultState::Open => "open",
            ConsultState::DueSoon { .. } => "due_soon",
            ConsultState::Overdue { .. } => "overdue",
            ConsultState::Answered => "answered",
            ConsultState::Closed => "closed",
        }
    }
}

impl Deadline {
    /// A new deadline of [`DEFAULT_DAYS`] from `opened`.
    pub fn new(opened: Date) -> Self {
        Self {
            opened,
            days: DEFAULT_DAYS,
            extended: false,
        }
    }

    /// The last day to answer (answers are due by its end).
    pub fn due(&self, cal: &WorkCalendar) -> Date {
        cal.add_working_days(self.opened, self.days)
    }

    /// Extends the deadline to `to_days` working days after the opening day.
    /// Allowed once, to at most [`MAX_DAYS`], and only to a longer deadline.
    pub fn extend(&mut self, to_days: u32) -> Result<(), DeadlineError> {
        if self.extended {
            return Err(DeadlineError::AlreadyExtended);
        }
        if to_days > MAX_DAYS {
            return Err(DeadlineError::BeyondLimit {
                asked: to_days,
                max: MAX_DAYS,
            });
        }
        if to_days <= self.days {
            return Err(DeadlineError::NotLonger {
                asked: to_days,
                current: self.days,
            });
        }
        self.days = to_days;
        self.extended = true;
        Ok(())
    }

    /// The state on day `now`. `closed` wins over `answered`, and both over
    /// the calendar; an unanswered consultation past its due day is
    /// `Overdue` however long ago that was.
    pub fn state_at(
        &self,
        now: Date,
        answered: bool,
        closed: bool,
        cal: &WorkCalendar,
    ) -> ConsultState {
        state_for_due(self.due(cal), now, answered, closed, cal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn plain() -> WorkCalendar {
        WorkCalendar::default()
    }

    #[test]
    fn weekends_are_not_working_days() {
        let cal = plain();
        assert!(cal.is_working_day(date!(2025 - 03 - 07))); // Friday
        assert!(!cal.is_working_day(date!(2025 - 03 - 08)));
        assert!(!cal.is_working_day(date!(2025 - 03 - 09)));
        assert!(cal.is_working_day(date!(2025 - 03 - 10)));
    }

    #[test]
    fn adding_across_a_weekend() {
        let cal = plain();
        // Opened Thursday 6 March: 1 → Fri 7, 2 → Mon 10.
        assert_eq!(
            cal.add_working_days(date!(2025 - 03 - 06), 1),
            date!(2025 - 03 - 07)
        );
        assert_eq!(
            cal.add_working_days(date!(2025 - 03 - 06), 2),
            date!(2025 - 03 - 10)
        );
        // Opened on a Saturday: the first working day is Monday.
        assert_eq!(
            cal.add_working_days(date!(2025 - 03 - 08), 1),
            date!(2025 - 03 - 10)
        );
        assert_eq!(
            cal.add_working_days(date!(2025 - 03 - 08), 0),
            date!(2025 - 03 - 08)
        );
        // Ten working days from Monday 3 March: two whole weeks → Monday 17.
        let d = Deadline::new(date!(2025 - 03 - 03));
        assert_eq!(d.due(&cal), date!(2025 - 03 - 17));
    }

    #[test]
    fn adding_across_a_holiday() {
        // Good Friday 18 April and Easter Monday 21 April 2025.
        let cal = WorkCalendar::from_config(&["2025-04-18", " 2025-04-21 "]).unwrap();
        assert!(!cal.is_working_day(date!(2025 - 04 - 18)));
        // Opened Thursday 17: 1 → Tue 22 (Fri, Sat, Sun, Mon skipped).
        assert_eq!(
            cal.add_working_days(date!(2025 - 04 - 17), 1),
            date!(2025 - 04 - 22)
        );
        // Ten from Mon 14: 15 16 17 22 23 24 25 28 29 30 → Wed 30 April.
        assert_eq!(
            Deadline::new(date!(2025 - 04 - 14)).due(&cal),
            date!(2025 - 04 - 30)
        );
        assert_eq!(
            Deadline::new(date!(2025 - 04 - 14)).due(&plain()),
            date!(2025 - 04 - 28)
        );
    }

    #[test]
    fn bad_holidays_are_named() {
        assert_eq!(
            WorkCalendar::from_config(&["2025-01-01", "2025-13-01"]),
            Err(DeadlineError::BadHoliday {
                index: 1,
                value: "2025-13-01".into()
            })
        );
        assert!(WorkCalendar::from_config(&["1 May"]).is_err());
    }

    #[test]
    fn counting_working_days_between() {
        let cal = WorkCalendar::new([date!(2025 - 04 - 18), date!(2025 - 04 - 19)]);
        let a = date!(2025 - 04 - 14);
        assert_eq!(cal.working_days_between(a, a), 0);
        assert_eq!(cal.working_days_between(date!(2025 - 04 - 30), a), 0);
        assert_eq!(cal.working_days_between(a, date!(2025 - 04 - 17)), 3);
        // A holiday on a Saturday is not subtracted twice.
        assert_eq!(cal.working_days_between(a, date!(2025 - 04 - 21)), 4);
        // Agrees with add_working_days over long spans and odd starts.
        for start in 0..14 {
            let s = a.checked_add(time::Duration::days(start)).unwrap();
            for n in [1, 2, 5, 10, 30, 300] {
                let end = cal.add_working_days(s, n);
                assert_eq!(cal.working_days_between(s, end), n, "from {s} + {n}");
            }
        }
    }

    #[test]
    fn extension_once_and_only_once() {
        let cal = plain();
        let mut d = Deadline::new(date!(2025 - 03 - 03));
        assert_eq!(
            d.extend(10),
            Err(DeadlineError::NotLonger {
                asked: 10,
                current: 10
            })
        );
        d.extend(30).unwrap();
        assert!(d.extended);
        // 30 working days after Monday 3 March: six whole weeks → Monday 14 April.
        assert_eq!(d.due(&cal), date!(2025 - 04 - 14));
        assert_eq!(d.extend(30), Err(DeadlineError::AlreadyExtended));
        let mut d = Deadline::new(date!(2025 - 03 - 03));
        d.extend(20).unwrap();
        assert_eq!(d.extend(30), Err(DeadlineError::AlreadyExtended));
    }

    #[test]
    fn extension_beyond_thirty_is_refused() {
        let mut d = Deadline::new(date!(2025 - 03 - 03));
        assert_eq!(
            d.extend(31),
            Err(DeadlineError::BeyondLimit { asked: 31, max: 30 })
        );
        assert!(!d.extended);
        assert_eq!(d.days, DEFAULT_DAYS);
    }

    #[test]
    fn states_over_time() {
        let cal = plain();
        let d = Deadline::new(date!(2025 - 03 - 03)); // due Monday 17 March
        let at = |now| d.state_at(now, false, false, &cal);
        assert_eq!(at(date!(2025 - 03 - 03)), ConsultState::Open);
        assert_eq!(at(date!(2025 - 03 - 12)), ConsultState::Open); // Wed: 3 left
        assert_eq!(
            at(date!(2025 - 03 - 13)), // Thu: Fri and Mon left
            ConsultState::DueSoon {
                working_days_left: 2
            }
        );
        assert_eq!(
            at(date!(2025 - 03 - 15)), // Saturday
            ConsultState::DueSoon {
                working_days_left: 1
            }
        );
        assert_eq!(
            at(date!(2025 - 03 - 17)),
            ConsultState::DueSoon {
                working_days_left: 0
            }
        );
        assert_eq!(
            at(date!(2025 - 03 - 18)),
            ConsultState::Overdue {
                working_days_late: 1
            }
        );
        // Long overdue is still overdue, never closed by itself.
        assert_eq!(
            at(date!(2025 - 06 - 18)),
            ConsultState::Overdue {
                working_days_late: 67
            }
        );
        assert_eq!(at(date!(2025 - 06 - 18)).as_str(), "overdue");
        assert_eq!(
            d.state_at(date!(2025 - 06 - 18), true, false, &cal),
            ConsultState::Answered
        );
        assert_eq!(
            d.state_at(date!(2025 - 06 - 18), true, true, &cal),
            ConsultState::Closed
        );
        assert_eq!(
            d.state_at(date!(2025 - 03 - 18), false, true, &cal),
            ConsultState::Closed
        );
    }

    #[test]
    fn overdue_over_the_weekend_after_a_friday_deadline() {
        let cal = plain();
        // Opened Friday 28 Feb: ten working days → Friday 14 March.
        let d = Deadline::new(date!(2025 - 02 - 28));
        assert_eq!(d.due(&cal), date!(2025 - 03 - 14));
        assert_eq!(
            d.state_at(date!(2025 - 03 - 15), false, false, &cal),
            ConsultState::Overdue {
                working_days_late: 0
            }
        );
        assert_eq!(
            d.state_at(date!(2025 - 03 - 17), false, false, &cal),
            ConsultState::Overdue {
                working_days_late: 1
            }
        );
    }
}
