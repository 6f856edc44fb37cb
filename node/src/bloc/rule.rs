//! The "essentially identical" rule: when a member's matched denial and an
//! application are the same transaction for the purpose of consultation
//! (Regulation (EU) 2021/821, Article 16). Versioned by name; a charter
//! names the rule its bloc applies, and a bloc tightens it by naming a
//! stricter one. The text of each rule is in docs/blocs.md.

use time::Date;

use crate::notice::dates;

/// How far back a denial counts, in years.
pub const LOOKBACK_YEARS: i32 = 3;

/// A version of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Same party (strong or medium match), the same control-list entry
    /// (list and entry, sub-items ignored), and the same destination or the
    /// same stated end use; decided in the last three years.
    IdenticalV1,
    /// As v1, but only a strong party match, control entries that overlap
    /// down to the sub-item, and the same destination.
    IdenticalV1Strict,
}

impl Rule {
    pub const NAMES: [&'static str; 2] = ["identical-v1", "identical-v1-strict"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "identical-v1" => Some(Self::IdenticalV1),
            "identical-v1-strict" => Some(Self::IdenticalV1Strict),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::IdenticalV1 => Self::NAMES[0],
            Self::IdenticalV1Strict => Self::NAMES[1],
        }
    }
}

/// What the application states.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    pub control_entries: Vec<String>,
    pub destination: String,
    pub end_use: String,
}

/// What is known of a matched denial. `None` fields were not disclosed.
#[derive(Debug, Clone, Default)]
pub struct Denied {
    /// Match strength of the party: strong, medium or weak.
    pub strength: String,
    pub control_entries: Option<Vec<String>>,
    pub destination: Option<String>,
    pub end_use: Option<String>,
    pub decision_date: Option<String>,
}

/// The rule's answer with its reasons, in words (never a name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub identical: bool,
    pub why: String,
}

/// An entry split into its list-and-entry head and its sub-items:
/// `5A002.a.1` → (`5A002`, [`A`, `1`]); `ML10.b` → (`ML10`, [`B`]).
fn parts(entry: &str) -> (String, Vec<String>) {
    let clean: String = entry
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let mut it = clean.split(['.', '/']).filter(|s| !s.is_empty());
    let head = it.next().unwrap_or_default().to_owned();
    (head, it.map(str::to_owned).collect())
}

/// Whether two entries overlap: the same head and, when `sub_items`, one's
/// sub-items a prefix of the other's.
fn overlap(a: &str, b: &str, sub_items: bool) -> bool {
    let (ha, sa) = parts(a);
    let (hb, sb) = parts(b);
    if ha.is_empty() || ha != hb {
        return false;
    }
    !sub_items || sa.iter().zip(&sb).all(|(x, y)| x == y)
}

fn same_text(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    !a.trim().is_empty() && norm(a) == norm(b)
}

/// Applies `rule` to one matched denial, as of `today`.
pub fn judge(rule: Rule, app: &Transaction, denied: &Denied, today: Date) -> Verdict {
    let strict = rule == Rule::IdenticalV1Strict;
    let no = |why: String| Verdict {
        identical: false,
        why,
    };
    let party_ok = match denied.strength.as_str() {
        "strong" => true,
        "medium" => !strict,
        _ => false,
    };
    if !party_ok {
        return no(format!(
            "the party matched with {} strength only, below what {} requires",
            denied.strength,
            rule.name()
        ));
    }
    if let Some(decided) = denied.decision_date.as_deref().and_then(dates::parse)
        && dates::add_years(decided, LOOKBACK_YEARS) < today
    {
        return no(format!(
            "the denial was decided more than {LOOKBACK_YEARS} years ago"
        ));
    }
    let (Some(entries), Some(destination)) = (&denied.control_entries, &denied.destination) else {
        return Verdict {
            identical: true,
            why: "the member disclosed only a pointer: its control entries and destination \
                  cannot be compared, so consult it"
                .into(),
        };
    };
    let shared: Vec<&String> = app
        .control_entries
        .iter()
        .filter(|a| entries.iter().any(|d| overlap(a, d, strict)))
        .collect();
    if shared.is_empty() {
        return no(format!(
            "different control entries (denial: {}; application: {})",
            entries.join(", "),
            app.control_entries.join(", ")
        ));
    }
    let same_destination =
        !destination.is_empty() && destination.eq_ignore_ascii_case(&app.destination);
    let same_end_use =
        !strict && same_text(denied.end_use.as_deref().unwrap_or_default(), &app.end_use);
    if !same_destination && !same_end_use {
        return no(format!(
            "different destination (denial: {}; application: {})",
            if destination.is_empty() {
                "none"
            } else {
                destination
            },
            app.destination
        ));
    }
    let entries: Vec<&str> = shared.iter().map(|s| s.as_str()).collect();
    Verdict {
        identical: true,
        why: format!(
            "{} party match, overlapping control entries ({}), {} ({})",
            denied.strength,
            entries.join(", "),
            if same_destination {
                "same destination"
            } else {
                "same stated end use"
            },
            rule.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(entries: &[&str], dest: &str) -> Transaction {
        Transaction {
            control_entries: entries.iter().map(|e| (*e).to_owned()).collect(),
            destination: dest.into(),
            end_use: "civil aerospace".into(),
        }
    }

    fn denied(entries: &[&str], dest: &str, strength: &str) -> Denied {
        Denied {
            strength: strength.into(),
            control_entries: Some(entries.iter().map(|e| (*e).to_owned()).collect()),
            destination: Some(dest.into()),
            end_use: None,
            decision_date: Some("2026-03-02".into()),
        }
    }

    fn today() -> Date {
        dates::parse("2026-12-01").unwrap()
    }

    #[test]
    fn v1_compares_party_entry_and_destination() {
        let r = Rule::IdenticalV1;
        let d = denied(&["2B001.b"], "CN", "strong");
        assert!(judge(r, &app(&["2b001.a"], "cn"), &d, today()).identical);
        assert!(!judge(r, &app(&["2B006"], "CN"), &d, today()).identical);
        assert!(!judge(r, &app(&["2B001"], "RU"), &d, today()).identical);
        let weak = denied(&["2B001.b"], "CN", "weak");
        assert!(!judge(r, &app(&["2B001"], "CN"), &weak, today()).identical);
        // Medium matches count under v1, not under the strict rule.
        let medium = denied(&["2B001.b"], "CN", "medium");
        assert!(judge(r, &app(&["2B001.b"], "CN"), &medium, today()).identical);
        assert!(
            !judge(
                Rule::IdenticalV1Strict,
                &app(&["2B001.b"], "CN"),
                &medium,
                today()
            )
            .identical
        );
    }

    #[test]
    fn the_strict_rule_compares_sub_items_and_ignores_end_use() {
        let s = Rule::IdenticalV1Strict;
        let d = denied(&["5A002.a.1"], "IR", "strong");
        assert!(judge(s, &app(&["5A002.a"], "IR"), &d, today()).identical);
        assert!(!judge(s, &app(&["5A002.b"], "IR"), &d, today()).identical);
        let mut end_use = denied(&["5A002.a.1"], "AE", "strong");
        end_use.end_use = Some("Civil  Aerospace".into());
        assert!(judge(Rule::IdenticalV1, &app(&["5A002"], "IR"), &end_use, today()).identical);
        assert!(!judge(s, &app(&["5A002"], "IR"), &end_use, today()).identical);
    }

    #[test]
    fn an_old_denial_does_not_count_and_a_pointer_is_consulted() {
        let mut old = denied(&["ML10"], "CN", "strong");
        old.decision_date = Some("2023-11-30".into());
        assert!(!judge(Rule::IdenticalV1, &app(&["ML10"], "CN"), &old, today()).identical);
        let pointer = Denied {
            strength: "strong".into(),
            ..Denied::default()
        };
        let v = judge(Rule::IdenticalV1, &app(&["ML10"], "CN"), &pointer, today());
        assert!(v.identical && v.why.contains("pointer"), "{v:?}");
    }
}
