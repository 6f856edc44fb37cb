//! A member's annual-report figures in the shape of Recommendation (EU)
//! 2024/214: authorisations and denials for a period, by item category and
//! destination. Computed from this member's own records only — the
//! applications it decided and the denials it issued — and holding counts,
//! categories and countries, never a party or a reference.
//!
//! An authorisation is an application recorded `granted` with its decision
//! in the period. A denial is one of this member's denial notices decided in
//! the period and not revoked, or an application recorded `refused` in the
//! period for which no denial notice carries its reference (so that a
//! refusal both recorded and notified counts once). A decision covering
//! items of several categories counts in the row of each.

use std::collections::{BTreeMap, BTreeSet};

use tessera_proto::v1::{AnnualRow, DenialNotice, NoticeStatus, PilotAnnualResponse};

use super::applications::ApplicationRecord;
use super::pilot::Period;
use crate::notice::dates;

/// The category of entries that are neither on the dual-use list (0 to 9)
/// nor on the military list.
pub const OTHER: &str = "other";
/// Category and destination of a record kept before they were recorded.
pub const UNKNOWN: &str = "unknown";

/// The item category of a control entry: the dual-use category (its first
/// digit, `5` of `5A002.a`), `ML` for the military list (`ML10.b`), else
/// [`OTHER`].
pub fn category(entry: &str) -> &'static str {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    let e = entry.trim_start();
    if e.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("ML")) {
        return "ML";
    }
    match e.chars().next().and_then(|c| c.to_digit(10)) {
        Some(d) => DIGITS[d as usize],
        None => OTHER,
    }
}

/// One decision as the report counts it.
struct Decision<'a> {
    entries: Vec<&'a str>,
    destination: &'a str,
    granted: bool,
}

impl Decision<'_> {
    fn categories(&self) -> BTreeSet<&'static str> {
        if self.entries.is_empty() {
            return BTreeSet::from([UNKNOWN]);
        }
        self.entries.iter().map(|e| category(e)).collect()
    }

    fn destination(&self) -> String {
        let d = self.destination.trim();
        if d.is_empty() {
            UNKNOWN.to_owned()
        } else {
            d.to_ascii_uppercase()
        }
    }
}

/// The decisions of the period: grants and refusals of applications, and
/// this member's denial notices, each counted once.
fn decisions<'a>(
    period: Period,
    applications: &'a [ApplicationRecord],
    denials: &'a [DenialNotice],
) -> Vec<Decision<'a>> {
    let notified: BTreeSet<&str> = denials
        .iter()
        .map(|d| d.authority_reference.as_str())
        .filter(|r| !r.is_empty())
        .collect();
    let decided = applications.iter().filter(|a| {
        period.holds(&a.decided_on)
            && (a.decision == "granted"
                || (a.decision == "refused" && !notified.contains(a.reference.as_str())))
    });
    let denied = denials
        .iter()
        .filter(|d| d.status != NoticeStatus::Revoked as i32 && period.holds(&d.decision_date));
    decided
        .map(|a| Decision {
            entries: a.control_entries.iter().map(String::as_str).collect(),
            destination: &a.destination,
            granted: a.decision == "granted",
        })
        .chain(denied.map(|d| Decision {
            entries: d.items.iter().map(|i| i.control_entry.as_str()).collect(),
            destination: &d.destination,
            granted: false,
        }))
        .collect()
}

/// `agency`'s figures for `period`, rows ordered by category and destination.
pub fn report(
    agency: &str,
    period: Period,
    applications: &[ApplicationRecord],
    denials: &[DenialNotice],
) -> PilotAnnualResponse {
    let mut rows: BTreeMap<(&'static str, String), (u64, u64)> = BTreeMap::new();
    let (mut authorisations, mut refusals) = (0, 0);
    for d in decisions(period, applications, denials) {
        let destination = d.destination();
        for c in d.categories() {
            let row = rows.entry((c, destination.clone())).or_default();
            if d.granted {
                row.0 += 1;
            } else {
                row.1 += 1;
            }
        }
        if d.granted {
            authorisations += 1;
        } else {
            refusals += 1;
        }
    }
    PilotAnnualResponse {
        agency: agency.to_owned(),
        from: dates::format(period.from),
        to: dates::format(period.to),
        rows: rows
            .into_iter()
            .map(|((category, destination), (a, d))| AnnualRow {
                category: category.to_owned(),
                destination,
                authorisations: a,
                denials: d,
            })
            .collect(),
        authorisations,
        denials: refusals,
    }
}

#[cfg(test)]
mod tests {
    use tessera_proto::v1::Item;

    use super::*;

    fn app(
        reference: &str,
        entries: &[&str],
        dest: &str,
        decision: &str,
        on: &str,
    ) -> ApplicationRecord {
        ApplicationRecord {
            reference: reference.into(),
            control_entries: entries.iter().map(|e| (*e).to_owned()).collect(),
            destination: dest.into(),
            decision: decision.into(),
            decided_on: on.into(),
            ..ApplicationRecord::default()
        }
    }

    fn denial(
        reference: &str,
        entry: &str,
        dest: &str,
        on: &str,
        status: NoticeStatus,
    ) -> DenialNotice {
        DenialNotice {
            authority_reference: reference.into(),
            items: vec![Item {
                control_entry: entry.into(),
                ..Item::default()
            }],
            destination: dest.into(),
            decision_date: on.into(),
            status: status as i32,
            ..DenialNotice::default()
        }
    }

    #[test]
    fn categories_are_the_list_and_its_first_digit() {
        assert_eq!(category("5A002.a.1"), "5");
        assert_eq!(category(" 0B001"), "0");
        assert_eq!(category("ml10.b"), "ML");
        assert_eq!(category("PL9001"), OTHER);
        assert_eq!(category(""), OTHER);
    }

    #[test]
    fn counts_each_decision_once_by_category_and_destination() {
        let p = Period::parse("2026-01-01", "2026-12-31").unwrap();
        let apps = [
            app("A-1", &["5A002.a", "3A001"], "cn", "granted", "2026-03-01"),
            app("A-2", &["5A002"], "CN", "granted", "2026-04-01"),
            // Refused and notified: counted once, from the notice.
            app("A-3", &["ML10"], "RU", "refused", "2026-05-01"),
            // Refused, not notified.
            app("A-4", &["2B001"], "IR", "refused", "2026-05-02"),
            // Outside the period, pending, and a record without entries.
            app("A-5", &["5A002"], "CN", "granted", "2025-12-31"),
            app("A-6", &["5A002"], "CN", "", ""),
            app("A-7", &[], "", "granted", "2026-06-01"),
        ];
        let denials = [
            denial("A-3", "ML10.a", "RU", "2026-05-01", NoticeStatus::InForce),
            denial("D-9", "5A002", "CN", "2026-07-01", NoticeStatus::InForce),
            denial("D-10", "5A002", "CN", "2026-07-02", NoticeStatus::Revoked),
        ];
        let r = report("DE-BAFA", p, &apps, &denials);
        let rows: Vec<(&str, &str, u64, u64)> = r
            .rows
            .iter()
            .map(|r| {
                (
                    r.category.as_str(),
                    r.destination.as_str(),
                    r.authorisations,
                    r.denials,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("2", "IR", 0, 1),
                ("3", "CN", 1, 0),
                ("5", "CN", 2, 1),
                ("ML", "RU", 0, 1),
                (UNKNOWN, UNKNOWN, 1, 0),
            ]
        );
        assert_eq!((r.authorisations, r.denials), (3, 3));
    }
}
