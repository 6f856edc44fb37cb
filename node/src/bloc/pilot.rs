//! A member's pilot figures for a period: counts over its own applications,
//! consultations and undercut notices — no party, no application reference
//! — restricted to what the charter allows, and signed with the member's
//! key so that the bloc view can be checked member by member.

use std::collections::BTreeMap;

use prost::Message;
use tessera_proto::v1::{
    BlocCharter, Consultation, GrantNotice, PilotFigures, SignedMessage, consult_message::Kind,
};
use time::Date;

use super::applications::ApplicationRecord;
use crate::consult::deadline::WorkCalendar;
use crate::notice::dates;
use crate::signing::{PublicKey, SigningError, SigningKey};

/// The signing context of pilot figures.
pub const CONTEXT: &str = "tessera/pilot/v1";

/// Every count a member can contribute; a charter may allow fewer.
pub const COUNTS: [&str; 13] = [
    "applications_checked",
    "applications_decided",
    "granted",
    "refused",
    "decided_within_20_working_days",
    "decided_within_60_working_days",
    "consultations_opened",
    "consultations_answered_in_time",
    "consultations_answered_late",
    "consultations_unanswered",
    "undercut_notices",
    "bloc_denials_matched",
    "trusted_operator_hits",
];

/// A period, both ends inclusive.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub from: Date,
    pub to: Date,
}

impl Period {
    /// Reads `from` and `to` (YYYY-MM-DD).
    pub fn parse(from: &str, to: &str) -> Result<Self, super::BlocError> {
        let d = |what: &str, s: &str| {
            dates::parse(s).ok_or_else(|| {
                super::BlocError::Invalid(format!("{what}: {s:?} is not a date (YYYY-MM-DD)"))
            })
        };
        let p = Self {
            from: d("from", from)?,
            to: d("to", to)?,
        };
        if p.to < p.from {
            return Err(super::BlocError::Invalid("to: before from".into()));
        }
        Ok(p)
    }

    pub fn holds(self, day: &str) -> bool {
        dates::parse(day).is_some_and(|d| self.from <= d && d <= self.to)
    }
}

/// What a member's figures are computed from.
pub struct Sources<'a> {
    pub agency: &'a str,
    pub charter: &'a BlocCharter,
    pub applications: &'a [ApplicationRecord],
    pub consultations: &'a [Consultation],
    /// Grant notices this member issued.
    pub grants: &'a [GrantNotice],
}

/// The member's working days, with its holidays from the charter.
pub fn calendar(charter: &BlocCharter, agency: &str) -> WorkCalendar {
    WorkCalendar::new(super::charter::holidays(charter, agency))
}

/// The figures for `period`, with only the counts the charter allows.
pub fn figures(src: &Sources<'_>, period: Period) -> PilotFigures {
    let cal = calendar(src.charter, src.agency);
    let mut counts: BTreeMap<&str, u64> = COUNTS.iter().map(|c| (*c, 0)).collect();
    let mut add = |k: &str, n: u64| {
        if let Some(v) = counts.get_mut(k) {
            *v += n;
        }
    };
    let mut decision_days = Vec::new();
    for a in src
        .applications
        .iter()
        .filter(|a| period.holds(&a.received_on))
    {
        add("applications_checked", 1);
        add("bloc_denials_matched", u64::from(a.bloc_denials_matched));
        add("trusted_operator_hits", u64::from(a.trusted_hits));
        let (Some(received), Some(decided)) =
            (dates::parse(&a.received_on), dates::parse(&a.decided_on))
        else {
            continue;
        };
        let days = cal.working_days_between(received, decided);
        decision_days.push(days);
        add("applications_decided", 1);
        add(
            if a.decision == "granted" {
                "granted"
            } else {
                "refused"
            },
            1,
        );
        if days <= 20 {
            add("decided_within_20_working_days", 1);
        }
        if days <= 60 {
            add("decided_within_60_working_days", 1);
        }
    }
    let members = &src.charter.members;
    let mut by_day: BTreeMap<String, u64> = BTreeMap::new();
    for c in src.consultations {
        let Some(open) = &c.open else { continue };
        if c.role != "consulting" || !members.contains(&c.peer) || !period.holds(&open.opened_on) {
            continue;
        }
        add("consultations_opened", 1);
        *by_day.entry(open.opened_on.clone()).or_default() += 1;
        let answered = c.steps.iter().find_map(|s| match s.kind {
            Some(Kind::Answer(_)) if s.from == c.peer => {
                time::OffsetDateTime::from_unix_timestamp(s.sent_at)
                    .ok()
                    .map(time::OffsetDateTime::date)
            }
            _ => None,
        });
        match (answered, dates::parse(&c.due)) {
            (Some(on), Some(due)) if on <= due => add("consultations_answered_in_time", 1),
            (Some(_), _) => add("consultations_answered_late", 1),
            (None, _) => add("consultations_unanswered", 1),
        }
    }
    for g in src.grants {
        if g.answer == "objection"
            && members.contains(&g.denial_origin)
            && period.holds(&g.decision_date)
        {
            add("undercut_notices", 1);
        }
    }
    let allowed = |k: &str| {
        src.charter.pilot_counts.is_empty() || src.charter.pilot_counts.iter().any(|a| a == k)
    };
    let timing = allowed("applications_decided");
    PilotFigures {
        bloc: src.charter.bloc.clone(),
        agency: src.agency.to_owned(),
        from: dates::format(period.from),
        to: dates::format(period.to),
        counts: counts
            .into_iter()
            .filter(|(k, _)| allowed(k))
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        decision_days: if timing { decision_days } else { Vec::new() },
        consultations_by_day: if allowed("consultations_opened") {
            by_day.into_iter().collect()
        } else {
            std::collections::HashMap::new()
        },
        made_at: time::OffsetDateTime::now_utc().unix_timestamp(),
    }
}

/// Signs `f` with this member's key.
pub fn seal(f: &PilotFigures, key: &SigningKey) -> SignedMessage {
    let body = f.encode_to_vec();
    SignedMessage {
        signature: key.sign(CONTEXT, &body),
        origin: f.agency.clone(),
        key_id: key.public().key_id(),
        body,
    }
}

/// Why a member's signed figures were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the figures' signature does not verify under the member's pinned key")]
    Signature(#[from] SigningError),
    #[error("the figures do not decode")]
    Decode,
    #[error("the figures are for another member, bloc or period than asked")]
    Mismatch,
}

/// Verifies figures signed by `member` for `bloc` and `period`.
pub fn open(
    msg: &SignedMessage,
    pinned: &PublicKey,
    member: &str,
    bloc: &str,
    period: Period,
) -> Result<PilotFigures, OpenError> {
    pinned.verify(CONTEXT, &msg.body, &msg.signature)?;
    let f = PilotFigures::decode(msg.body.as_slice()).map_err(|_| OpenError::Decode)?;
    if f.agency != member
        || f.bloc != bloc
        || f.from != dates::format(period.from)
        || f.to != dates::format(period.to)
    {
        return Err(OpenError::Mismatch);
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charter() -> BlocCharter {
        BlocCharter {
            bloc: "eu".into(),
            charter_version: 1,
            members: vec!["DE-BAFA".into(), "FR-SBDU".into()],
            consult_days: 10,
            ..BlocCharter::default()
        }
    }

    fn app(received: &str, decided: &str, decision: &str) -> ApplicationRecord {
        ApplicationRecord {
            reference: "APP-1".into(),
            bloc: "eu".into(),
            received_on: received.into(),
            decided_on: decided.into(),
            decision: decision.into(),
            bloc_denials_matched: 1,
            ..ApplicationRecord::default()
        }
    }

    #[test]
    fn counts_working_days_and_keeps_only_allowed_counts() {
        let mut c = charter();
        // 2026-06-05 (a Friday) is a holiday of DE-BAFA.
        c.holidays = vec![tessera_proto::v1::MemberHolidays {
            agency: "DE-BAFA".into(),
            dates: vec!["2026-06-05".into()],
        }];
        let apps = [
            app("2026-06-01", "2026-06-08", "granted"),
            app("2026-06-02", "", ""),
            app("2025-01-01", "2025-01-02", "refused"),
        ];
        let grants = [GrantNotice {
            denial_origin: "FR-SBDU".into(),
            answer: "objection".into(),
            decision_date: "2026-06-08".into(),
            ..GrantNotice::default()
        }];
        let src = Sources {
            agency: "DE-BAFA",
            charter: &c,
            applications: &apps,
            consultations: &[],
            grants: &grants,
        };
        let p = Period::parse("2026-01-01", "2026-12-31").unwrap();
        let f = figures(&src, p);
        assert_eq!(f.counts["applications_checked"], 2);
        assert_eq!(f.counts["applications_decided"], 1);
        assert_eq!(f.counts["undercut_notices"], 1);
        assert_eq!(f.counts["bloc_denials_matched"], 2);
        // Tue..Mon with the Friday off: 4 working days.
        assert_eq!(f.decision_days, [4]);
        let mut narrow = c.clone();
        narrow.pilot_counts = vec!["applications_checked".into()];
        let src = Sources {
            charter: &narrow,
            ..src
        };
        let f = figures(&src, p);
        assert_eq!(f.counts.len(), 1);
        assert!(f.decision_days.is_empty());
    }

    #[test]
    fn figures_open_only_under_the_members_key_and_for_what_was_asked() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let other = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let p = Period::parse("2026-01-01", "2026-12-31").unwrap();
        let f = figures(
            &Sources {
                agency: "DE-BAFA",
                charter: &charter(),
                applications: &[],
                consultations: &[],
                grants: &[],
            },
            p,
        );
        let msg = seal(&f, &key);
        assert!(open(&msg, key.public(), "DE-BAFA", "eu", p).is_ok());
        assert!(matches!(
            open(&msg, other.public(), "DE-BAFA", "eu", p),
            Err(OpenError::Signature(_))
        ));
        assert!(matches!(
            open(&msg, key.public(), "FR-SBDU", "eu", p),
            Err(OpenError::Mismatch)
        ));
    }
}
