//! Regional blocs: a charter every member signs, trusted-operator records
//! shared inside the bloc, the licensing officer's application check with
//! its "essentially identical" rule, and the pilot figures.
//!
//! Layout: `charter` (the charter's rules, canonical bytes, the tally of
//! signatures), `charters` (the charters this node holds, the version in
//! force, its adoption audited), `trusted` (trusted-operator records: rules
//! and identifier matching), `json` (the files an operator writes), `rule`
//! (the versioned "essentially identical" rule), `applications` (the
//! applications this member checked and decided), `pilot` (the counts a
//! member contributes to the pilot report, signed), `annual` (a member's
//! annual-report figures by item category and destination).
//!
//! Charters and trusted-operator records are notices: signed, stored and
//! replicated like every other notice, to the bloc's group only. This module
//! never sends anything itself, and never puts a party's name or identifier
//! in a log, an error or a figure.

pub mod annual;
pub mod applications;
pub mod charter;
pub mod charters;
pub mod json;
pub mod pilot;
pub mod report;
pub mod rule;
pub mod trusted;

use crate::notice::store::NoticeStoreError;
use crate::store::StoreError;

/// Why a bloc call could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum BlocError {
    #[error("{0}")]
    Invalid(String),
    #[error("bloc {0:?}: this node holds no charter for it; sign one with `tessera bloc sign`")]
    NoCharter(String),
    #[error(
        "bloc {bloc:?}: charter version {version} is not signed by {missing}; this node does not act on a charter that not every member signed"
    )]
    Unsigned {
        bloc: String,
        version: u32,
        missing: String,
    },
    #[error("bloc {bloc:?}: {agency} is not a member under the charter in force")]
    NotMember { bloc: String, agency: String },
    #[error("no application {0:?} was checked on this node")]
    UnknownApplication(String),
    #[error(transparent)]
    Notices(#[from] NoticeStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<BlocError> for tonic::Status {
    fn from(e: BlocError) -> Self {
        match e {
            BlocError::Invalid(_) => Self::invalid_argument(e.to_string()),
            BlocError::NoCharter(_) | BlocError::UnknownApplication(_) => {
                Self::not_found(e.to_string())
            }
            BlocError::Unsigned { .. } => Self::failed_precondition(e.to_string()),
            BlocError::NotMember { .. } => Self::permission_denied(e.to_string()),
            BlocError::Notices(e) => e.into(),
            BlocError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_a_status_a_person_can_act_on() {
        let s = tonic::Status::from(BlocError::Unsigned {
            bloc: "eu".into(),
            version: 2,
            missing: "FR-SBDU".into(),
        });
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        assert!(
            s.message().contains("not signed by FR-SBDU"),
            "{}",
            s.message()
        );
        assert_eq!(
            tonic::Status::from(BlocError::NoCharter("eu".into())).code(),
            tonic::Code::NotFound
        );
        assert_eq!(
            tonic::Status::from(BlocError::Invalid("x".into())).code(),
            tonic::Code::InvalidArgument
        );
    }
}
