//! The operator's review of results: false positives (a party and a notice
//! judged not to be the same, left out of screening and watch results until
//! cleared) and the review state of alerts (acknowledged, notes).
//!
//! A false positive is keyed by a keyed digest of the party ([`party_digest`]),
//! so neither this store nor the audit chain holds the party.

pub mod alert_review;
pub mod false_positive;

pub use alert_review::AlertReviews;
pub use false_positive::{FalsePositives, Suppressed};

use crate::store::StoreError;

/// Why a review call failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
}

impl From<ReviewError> for tonic::Status {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Store(e) => e.into(),
            ReviewError::Invalid(m) => Self::invalid_argument(m),
            ReviewError::NotFound(m) => Self::not_found(format!("{m} not found")),
        }
    }
}
