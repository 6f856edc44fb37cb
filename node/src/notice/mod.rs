//! Notices: the model's rules, canonical bytes, signatures, and storage.
//!
//! A notice travels as a `SignedNotice`: the protobuf encoding of a `Notice`
//! exactly as signed. Receivers verify the signature over the bytes they got,
//! then decode; nothing is re-encoded before verification.
//!
//! Layout: `validate` (the rules), `json` (the operator's JSON form),
//! `from_list` (public list records as denials), `seal` (signing, opening),
//! `store` (the `notices` tree), `issue` (our new notices and versions),
//! `review` (review-date reminders), `dates`.

use std::fmt;
use std::str::FromStr;

use tessera_proto::v1::{Notice, notice::Body};

pub mod dates;
pub mod from_list;
pub mod issue;
pub mod json;
pub mod review;
pub mod seal;
pub mod store;
pub mod validate;

/// What a notice is. The operator API's and the CLI's word is
/// [`NoticeKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum NoticeKind {
    Denial,
    Enforcement,
    /// "Granted despite a denial", after a consultation.
    Grant,
    /// A member's signature of a bloc charter.
    Charter,
    /// A trusted-operator record shared with a bloc.
    Trusted,
}

impl NoticeKind {
    pub const ALL: [Self; 5] = [
        Self::Denial,
        Self::Enforcement,
        Self::Grant,
        Self::Charter,
        Self::Trusted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Denial => "denial",
            Self::Enforcement => "enforcement",
            Self::Grant => "grant",
            Self::Charter => "charter",
            Self::Trusted => "trusted",
        }
    }

    /// The kind of a notice (`None` for a notice with no body).
    pub fn of(notice: &Notice) -> Option<Self> {
        match notice.body {
            Some(Body::Denial(_)) => Some(Self::Denial),
            Some(Body::Enforcement(_)) => Some(Self::Enforcement),
            Some(Body::Grant(_)) => Some(Self::Grant),
            Some(Body::Charter(_)) => Some(Self::Charter),
            Some(Body::Trusted(_)) => Some(Self::Trusted),
            None => None,
        }
    }
}

impl fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a notice kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kind: use denial, enforcement, grant, charter or trusted")]
pub struct UnknownNoticeKind;

impl From<UnknownNoticeKind> for tonic::Status {
    fn from(e: UnknownNoticeKind) -> Self {
        Self::invalid_argument(e.to_string())
    }
}

impl FromStr for NoticeKind {
    type Err = UnknownNoticeKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownNoticeKind)
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_a_typo_is_refused() {
        for k in NoticeKind::ALL {
            assert_eq!(k.as_str().parse::<NoticeKind>(), Ok(k));
        }
        assert_eq!("denials".parse::<NoticeKind>(), Err(UnknownNoticeKind));
        assert_eq!(
            tonic::Status::from(UnknownNoticeKind).code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(NoticeKind::of(&Notice::default()), None);
    }
}
