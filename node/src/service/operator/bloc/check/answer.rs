//! The check's answer, in its order of precedence (consult, not fully
//! screened, trusted, clear), and the reasons in words: never a name.

use tessera_proto::v1::{IdenticalDenial, PeerProblem, TrustedHit};

/// What the check found, for the answer and its reasons.
pub(super) struct Findings<'a> {
    pub me: &'a str,
    pub denials: &'a [IdenticalDenial],
    pub hits: &'a [TrustedHit],
    pub unanswered: &'a [PeerProblem],
}

impl Findings<'_> {
    /// Denials of another member that call for consultation (indexes).
    pub fn to_consult(&self) -> Vec<usize> {
        self.denials
            .iter()
            .enumerate()
            .filter(|(_, d)| d.identical && d.member != self.me)
            .map(|(i, _)| i)
            .collect()
    }

    pub fn answer(&self) -> &'static str {
        if !self.to_consult().is_empty() {
            "consult"
        } else if !self.unanswered.is_empty() {
            "not-fully-screened"
        } else if self.hits.iter().any(|h| h.in_scope) {
            "trusted"
        } else {
            "clear"
        }
    }

    /// One line per denial, trusted-operator hit and silent member.
    pub fn reasons(&self) -> Vec<String> {
        let denials = self.denials.iter().map(|d| self.denial_line(d));
        let hits = self.hits.iter().map(hit_line);
        let silent = self
            .unanswered
            .iter()
            .map(|p| format!("{}: {}", p.peer, p.reason));
        denials.chain(hits).chain(silent).collect()
    }

    fn denial_line(&self, d: &IdenticalDenial) -> String {
        let what = if d.member == self.me && d.identical {
            "this agency's own denial, essentially identical".to_owned()
        } else if d.identical {
            format!(
                "essentially identical: consult {} by {}",
                d.member, d.deadline
            )
        } else {
            "not essentially identical".to_owned()
        };
        format!(
            "party {} matches denial {}/{} of {}: {what} ({})",
            d.party, d.origin, d.serial, d.member, d.why
        )
    }
}

fn hit_line(h: &TrustedHit) -> String {
    format!(
        "party {} is a trusted operator of {} ({}, validated {}, matched on {}){}",
        h.party,
        h.member,
        h.programme,
        h.validated_on,
        h.matched_on.join(", "),
        if h.in_scope {
            ""
        } else {
            ", but this application is outside its scope"
        }
    )
}

/// The first reason of a clear answer: what was screened, against whom.
pub(super) fn clear_line(parties: usize, others: &[String]) -> String {
    format!(
        "{parties} parties screened against {} and this agency's own lists: no essentially identical bloc denial",
        others.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(member: &str, identical: bool) -> IdenticalDenial {
        IdenticalDenial {
            member: member.into(),
            identical,
            ..IdenticalDenial::default()
        }
    }

    #[test]
    fn consult_wins_then_silence_then_trust() {
        let own = [denial("DE-BAFA", true)];
        let other = [denial("FR-SBDU", true)];
        let hit = [TrustedHit {
            in_scope: true,
            ..TrustedHit::default()
        }];
        let silent = [PeerProblem::default()];
        let f = |denials, hits, unanswered| {
            Findings {
                me: "DE-BAFA",
                denials,
                hits,
                unanswered,
            }
            .answer()
        };
        assert_eq!(f(&other, &hit, &silent), "consult");
        assert_eq!(f(&own, &hit, &silent), "not-fully-screened");
        assert_eq!(f(&own, &hit, &[]), "trusted");
        assert_eq!(f(&own, &[], &[]), "clear");
    }
}
