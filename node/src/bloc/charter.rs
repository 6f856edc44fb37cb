//! A bloc's charter: its rules, its canonical bytes and the tally of who
//! signed which version.
//!
//! Each member signs by issuing a charter notice (serial
//! `CHARTER-<bloc>-<version>`) to the bloc's group. Two members signed the
//! same charter when the SHA-256 of the charter's canonical encoding is the
//! same; a version is complete when every member it lists signed exactly
//! that charter. Only a complete version is ever acted on.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use sha2::{Digest, Sha256};
use tessera_proto::v1::{BlocCharter, Notice, distribution::Target};

use crate::identity::AgencyId;
use crate::notice::validate::{Invalid, bad, date, text};

/// Serials of charter notices start with this.
pub const SERIAL_PREFIX: &str = "CHARTER-";
/// Notice kinds a charter can recognise bloc-wide.
pub const RECOGNISABLE: [&str; 3] = ["denial", "enforcement", "trusted"];
/// Most members of one bloc.
pub const MAX_MEMBERS: usize = 64;

/// `agency`'s public holidays in the charter (a date that does not parse
/// is left out; a signed charter was validated when it was stored).
pub fn holidays<'a>(c: &'a BlocCharter, agency: &'a str) -> impl Iterator<Item = time::Date> + 'a {
    c.holidays
        .iter()
        .filter(move |h| h.agency == agency)
        .flat_map(|h| {
            h.dates
                .iter()
                .filter_map(|d| crate::notice::dates::parse(d))
        })
}

/// The serial of a member's charter notice for `bloc` at `version`.
pub fn serial(bloc: &str, version: u32) -> String {
    format!("{SERIAL_PREFIX}{bloc}-{version}")
}

/// A bloc name: 1 to 32 letters, digits, `_`, `.` or `-` (it is a `[groups]` name and part of a serial).
pub fn bloc_name(field: &str, name: &str) -> Result<(), Invalid> {
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(bad(
            field,
            "a bloc name is 1 to 32 letters, digits, '_', '.' or '-'",
        ));
    }
    Ok(())
}

/// The charter with every list sorted and deduplicated: what is hashed.
pub fn canonical(c: &BlocCharter) -> BlocCharter {
    let sorted = |v: &[String]| -> Vec<String> {
        v.iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let mut holidays: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for h in &c.holidays {
        holidays
            .entry(h.agency.clone())
            .or_default()
            .extend(h.dates.iter().cloned());
    }
    BlocCharter {
        bloc: c.bloc.clone(),
        charter_version: c.charter_version,
        members: sorted(&c.members),
        recognised: sorted(&c.recognised),
        disclosure: c.disclosure.clone(),
        consult_days: c.consult_days,
        holidays: holidays
            .into_iter()
            .map(|(agency, dates)| tessera_proto::v1::MemberHolidays {
                agency,
                dates: dates.into_iter().collect(),
            })
            .collect(),
        identical_rule: c.identical_rule.clone(),
        pilot_counts: sorted(&c.pilot_counts),
    }
}

/// SHA-256 of the canonical encoding.
pub fn hash(c: &BlocCharter) -> [u8; 32] {
    Sha256::digest(canonical(c).encode_to_vec()).into()
}

/// The rules of a charter notice, as issued and as received.
pub fn validate(n: &Notice, c: &BlocCharter) -> Result<(), Invalid> {
    bloc_name("charter.bloc", &c.bloc)?;
    if c.charter_version == 0 {
        return Err(bad("charter.charter_version", "must be 1 or more"));
    }
    if n.serial != serial(&c.bloc, c.charter_version) {
        return Err(bad(
            "serial",
            format!(
                "a charter notice's serial is {}",
                serial(&c.bloc, c.charter_version)
            ),
        ));
    }
    let mut members = BTreeSet::new();
    for (i, m) in c.members.iter().enumerate() {
        m.parse::<AgencyId>().map_err(|_| {
            bad(
                format!("charter.members[{i}]"),
                "not an agency id like DE-BAFA",
            )
        })?;
        if !members.insert(m.as_str()) {
            return Err(bad(format!("charter.members[{i}]"), "listed twice"));
        }
    }
    if members.len() < 2 || members.len() > MAX_MEMBERS {
        return Err(bad(
            "charter.members",
            format!("a bloc has 2 to {MAX_MEMBERS} members"),
        ));
    }
    if !members.contains(n.origin.as_str()) {
        return Err(bad(
            "charter.members",
            "the signing agency is not a member of the charter it signs",
        ));
    }
    for (i, k) in c.recognised.iter().enumerate() {
        if !RECOGNISABLE.contains(&k.as_str()) {
            return Err(bad(
                format!("charter.recognised[{i}]"),
                "use denial, enforcement or trusted",
            ));
        }
    }
    if !crate::policy::DisclosureLevel::ALL
        .iter()
        .any(|l| l.as_str() == c.disclosure)
    {
        return Err(bad("charter.disclosure", "use pointer, summary or full"));
    }
    if c.consult_days == 0 || c.consult_days > crate::consult::deadline::MAX_DAYS {
        return Err(bad(
            "charter.consult_days",
            format!("1 to {} working days", crate::consult::deadline::MAX_DAYS),
        ));
    }
    for (i, h) in c.holidays.iter().enumerate() {
        if !members.contains(h.agency.as_str()) {
            return Err(bad(
                format!("charter.holidays[{i}].agency"),
                "not a member of the charter",
            ));
        }
        for (j, d) in h.dates.iter().enumerate() {
            date(&format!("charter.holidays[{i}].dates[{j}]"), d, true)?;
        }
    }
    if super::rule::Rule::from_name(&c.identical_rule).is_none() {
        return Err(bad(
            "charter.identical_rule",
            format!("use one of {}", super::rule::Rule::NAMES.join(", ")),
        ));
    }
    for (i, k) in c.pilot_counts.iter().enumerate() {
        text(&format!("charter.pilot_counts[{i}]"), k, true)?;
        if !super::pilot::COUNTS.contains(&k.as_str()) {
            return Err(bad(
                format!("charter.pilot_counts[{i}]"),
                format!("use one of {}", super::pilot::COUNTS.join(", ")),
            ));
        }
    }
    match n.distribution.as_ref().and_then(|d| d.target.as_ref()) {
        Some(Target::Group(g)) if g == &c.bloc => Ok(()),
        _ => Err(bad(
            "distribution",
            format!("a charter goes to its bloc's group: group:{}", c.bloc),
        )),
    }
}

/// One charter version as the members signed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tallied {
    pub charter: BlocCharter,
    pub hash: [u8; 32],
    pub signed: Vec<String>,
    pub missing: Vec<String>,
}

impl Tallied {
    /// Every listed member signed exactly this charter.
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Groups members' charters by (version, hash): who signed what. A member
/// counts only for a charter that lists it.
pub fn tally(signed: impl IntoIterator<Item = (String, BlocCharter)>) -> Vec<Tallied> {
    let mut by: BTreeMap<(u32, [u8; 32]), (BlocCharter, BTreeSet<String>)> = BTreeMap::new();
    for (origin, charter) in signed {
        let charter = canonical(&charter);
        let h = hash(&charter);
        by.entry((charter.charter_version, h))
            .or_insert_with(|| (charter, BTreeSet::new()))
            .1
            .insert(origin);
    }
    by.into_iter()
        .map(|((_, hash), (charter, signers))| {
            let signed: Vec<String> = charter
                .members
                .iter()
                .filter(|m| signers.contains(*m))
                .cloned()
                .collect();
            let missing = charter
                .members
                .iter()
                .filter(|m| !signers.contains(*m))
                .cloned()
                .collect();
            Tallied {
                charter,
                hash,
                signed,
                missing,
            }
        })
        .collect()
}

/// The newest complete version, if any.
pub fn in_force(versions: &[Tallied]) -> Option<&Tallied> {
    versions
        .iter()
        .filter(|t| t.complete())
        .max_by_key(|t| t.charter.charter_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn charter(members: &[&str], days: u32) -> BlocCharter {
        BlocCharter {
            bloc: "eu".into(),
            charter_version: 1,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            recognised: vec!["denial".into(), "trusted".into()],
            disclosure: "summary".into(),
            consult_days: days,
            holidays: vec![],
            identical_rule: "identical-v1".into(),
            pilot_counts: vec![],
        }
    }

    #[test]
    fn a_version_is_complete_only_when_every_member_signed_the_same_charter() {
        let c = charter(&["DE-BAFA", "FR-SBDU", "NL-CDIU"], 10);
        let mut reordered = c.clone();
        reordered.members.reverse();
        let t = tally([
            ("DE-BAFA".to_owned(), c.clone()),
            ("FR-SBDU".to_owned(), reordered),
        ]);
        assert_eq!(t.len(), 1, "member order does not change the charter");
        assert_eq!(t[0].missing, ["NL-CDIU"]);
        assert!(in_force(&t).is_none());

        // The third member signs a different deadline: still nothing in force.
        let t = tally([
            ("DE-BAFA".to_owned(), c.clone()),
            ("FR-SBDU".to_owned(), c.clone()),
            (
                "NL-CDIU".to_owned(),
                charter(&["DE-BAFA", "FR-SBDU", "NL-CDIU"], 20),
            ),
        ]);
        assert!(in_force(&t).is_none());

        let t = tally(["DE-BAFA", "FR-SBDU", "NL-CDIU"].map(|m| (m.to_owned(), c.clone())));
        assert_eq!(in_force(&t).map(|t| t.charter.charter_version), Some(1));
    }

    #[test]
    fn a_signature_by_an_agency_the_charter_does_not_list_counts_for_nothing() {
        let c = charter(&["DE-BAFA", "FR-SBDU"], 10);
        let t = tally([
            ("DE-BAFA".to_owned(), c.clone()),
            ("US-BIS".to_owned(), c.clone()),
        ]);
        assert_eq!(t[0].signed, ["DE-BAFA"]);
        assert_eq!(t[0].missing, ["FR-SBDU"]);
    }

    #[test]
    fn the_rules_name_the_field() {
        let c = charter(&["DE-BAFA", "FR-SBDU"], 10);
        let n = Notice {
            origin: "DE-BAFA".into(),
            serial: serial("eu", 1),
            distribution: Some(crate::policy::parse_to("group:eu").unwrap()),
            ..Notice::default()
        };
        assert_eq!(validate(&n, &c), Ok(()));
        let mut outsider = n.clone();
        outsider.origin = "US-BIS".into();
        assert_eq!(
            validate(&outsider, &c).unwrap_err().field,
            "charter.members"
        );
        let mut wrong = c.clone();
        wrong.consult_days = 31;
        assert_eq!(
            validate(&n, &wrong).unwrap_err().field,
            "charter.consult_days"
        );
        let mut everyone = n.clone();
        everyone.distribution = Some(crate::policy::parse_to("all").unwrap());
        assert_eq!(validate(&everyone, &c).unwrap_err().field, "distribution");
        let mut rule = c;
        rule.identical_rule = "anything".into();
        assert_eq!(
            validate(&n, &rule).unwrap_err().field,
            "charter.identical_rule"
        );
    }
}
