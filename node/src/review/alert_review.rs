//! The review state of alerts: acknowledged (read) or not, and the
//! operator's notes. Kept beside the alerts, never sent to a peer.

use prost::Message;
use tessera_proto::v1::{AlertNote, AlertReview};

use super::ReviewError;
use crate::store::{Store, StoreError};

const TREE: &str = "alert_reviews";
/// Longest note kept.
const MAX_NOTE: usize = 4_000;

/// Alert reviews, keyed by alert number.
#[derive(Debug, Clone)]
pub struct AlertReviews {
    tree: sled::Tree,
}

fn access(source: sled::Error) -> StoreError {
    StoreError::Access {
        tree: TREE,
        record: "alert review",
        source,
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt {
        tree: TREE,
        record: "alert review",
    }
}

impl AlertReviews {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: store.tree(TREE)?,
        })
    }

    /// Acknowledges alert `seq` and/or adds a note; returns its review.
    pub fn review(
        &self,
        seq: u64,
        acknowledge: bool,
        note: &str,
    ) -> Result<AlertReview, ReviewError> {
        let note = note.trim();
        if !acknowledge && note.is_empty() {
            return Err(ReviewError::Invalid(
                "acknowledge the alert or write a note".into(),
            ));
        }
        if note.chars().count() > MAX_NOTE {
            return Err(ReviewError::Invalid(format!(
                "note: at most {MAX_NOTE} characters"
            )));
        }
        let key = seq.to_be_bytes();
        let mut review = match self.tree.get(key).map_err(access)? {
            Some(v) => AlertReview::decode(v.as_ref()).map_err(|_| corrupt())?,
            None => AlertReview {
                seq,
                ..AlertReview::default()
            },
        };
        let now = crate::peers::now_ms();
        if acknowledge && !review.acknowledged {
            review.acknowledged = true;
            review.acknowledged_at_ms = now;
        }
        if !note.is_empty() {
            review.notes.push(AlertNote {
                at_ms: now,
                text: note.to_owned(),
            });
        }
        self.tree
            .insert(key, review.encode_to_vec())
            .map_err(access)?;
        Ok(review)
    }

    /// Every review, by alert number.
    pub fn list(&self) -> Result<Vec<AlertReview>, ReviewError> {
        self.tree
            .iter()
            .map(|item| {
                let (_, v) = item.map_err(access)?;
                Ok(AlertReview::decode(v.as_ref()).map_err(|_| corrupt())?)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledging_and_notes_accumulate() {
        let s = Store::from_db(sled::Config::new().temporary(true).open().expect("db"));
        let r = AlertReviews::open(&s).expect("open");
        assert!(r.review(3, false, "  ").is_err());
        let first = r.review(3, false, "called the exporter").expect("note");
        assert!(!first.acknowledged);
        let second = r.review(3, true, "").expect("ack");
        assert!(second.acknowledged);
        assert_eq!(second.notes.len(), 1);
        assert_eq!(r.list().expect("list").len(), 1);
    }
}
