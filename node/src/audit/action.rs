//! The kinds of audited action. A closed list, so that callers cannot invent
//! free-text kinds; the snake_case names are part of the hashed encoding and
//! must never change (add a variant instead).

use std::fmt;
use std::str::FromStr;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// OPRF evaluations served to a peer; details carry the count, never values.
    EvaluationServed,
    /// A match label (pointer, summary or full) disclosed to a peer.
    MatchDisclosed,
    /// A notice sent (pushed or pulled) to a peer.
    NoticeSent,
    /// A notice received from a peer and stored.
    NoticeReceived,
    /// A received notice refused (bad signature, conflict, not entitled).
    NoticeRefused,
    /// A consultation opened, answered, extended, closed or gone overdue.
    ConsultationStep,
    /// A deconfliction hit: contact pointers exchanged.
    DeconflictionAlert,
    /// A call refused (wrong surface, unknown peer, revoked certificate).
    CallRefused,
    /// A call refused because the peer's query budget was spent.
    BudgetRefused,
    /// Configuration, certificates or CRLs reloaded.
    ConfigReloaded,
    /// A consultation step refused: a peer's step that we refused, or ours
    /// that the peer refused (details say which, with the gRPC code).
    ConsultationRefused,
    /// A backup written (details: its digest, the agency).
    BackupMade,
    /// A backup restored into this data directory (details: its digest).
    BackupRestored,
    /// A (party, notice) pair marked or cleared as a false positive; details carry the
    /// party's keyed digest, never the party.
    FalsePositive,
    /// An alert acknowledged or annotated by the operator (the note is not audited).
    AlertReviewed,
    /// A bloc charter version came into force (every member signed it).
    BlocCharter,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 16] = [
        Action::EvaluationServed,
        Action::MatchDisclosed,
        Action::NoticeSent,
        Action::NoticeReceived,
        Action::NoticeRefused,
        Action::ConsultationStep,
        Action::DeconflictionAlert,
        Action::CallRefused,
        Action::BudgetRefused,
        Action::ConfigReloaded,
        Action::ConsultationRefused,
        Action::BackupMade,
        Action::BackupRestored,
        Action::FalsePositive,
        Action::AlertReviewed,
        Action::BlocCharter,
    ];

    /// The stable name used in the hash and the export.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::EvaluationServed => "evaluation_served",
            Action::MatchDisclosed => "match_disclosed",
            Action::NoticeSent => "notice_sent",
            Action::NoticeReceived => "notice_received",
            Action::NoticeRefused => "notice_refused",
            Action::ConsultationStep => "consultation_step",
            Action::DeconflictionAlert => "deconfliction_alert",
            Action::CallRefused => "call_refused",
            Action::BudgetRefused => "budget_refused",
            Action::ConfigReloaded => "config_reloaded",
            Action::ConsultationRefused => "consultation_refused",
            Action::BackupMade => "backup_made",
            Action::BackupRestored => "backup_restored",
            Action::FalsePositive => "false_positive",
            Action::AlertReviewed => "alert_reviewed",
            Action::BlocCharter => "bloc_charter",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`Action::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit action")]
pub struct UnknownAction;

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(UnknownAction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
            assert!(seen.insert(a.as_str()));
        }
        assert_eq!("something_else".parse::<Action>(), Err(UnknownAction));
    }
}
