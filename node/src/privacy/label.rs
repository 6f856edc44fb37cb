//! The label: what a holder discloses to one peer for one index entry, at the disclosure
//! level its policy grants that peer (docs/architecture.md, "Distribution and disclosure"):
//! `pointer` (origin, reference, contact, match strength), `summary` (+ action, control
//! entries, decision date, destination) or `full` (+ the notice body, opaque JSON).
//!
//! A label never holds the match-key value itself. The `full` body does hold party data,
//! so `Debug` shows only its size.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One index entry's disclosure. The JSON form is flat, with `"level"` naming the level.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Origin agency, e.g. `DE-BAFA`.
    pub origin: String,
    /// The notice serial at the origin.
    pub serial: String,
    /// The authority's own reference for the decision.
    pub authority_ref: String,
    /// Whom to contact (a mailbox or an operator URN), never a person's private data.
    pub contact: String,
    /// The kind of match key this entry is indexed under (`name`, `id`, `name_country`...).
    pub key_kind: String,
    /// That key's strength (`weak`, `medium`, `strong`).
    pub strength: String,
    #[serde(flatten)]
    pub disclosure: Disclosure,
}

/// What the level adds to the pointer fields.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "lowercase")]
pub enum Disclosure {
    Pointer,
    Summary(Summary),
    Full {
        #[serde(flatten)]
        summary: Summary,
        /// The notice body, opaque to this module.
        notice: serde_json::Value,
    },
}

/// The `summary` fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// refuse, annul, suspend, limit, revoke...
    pub action: String,
    /// Control-list entries such as `3A001` or an ECCN.
    pub control_entries: Vec<String>,
    /// `YYYY-MM-DD`.
    pub decision_date: String,
    /// Destination country code.
    pub destination: String,
}

impl Disclosure {
    /// `pointer`, `summary` or `full`.
    pub fn level(&self) -> &'static str {
        match self {
            Self::Pointer => "pointer",
            Self::Summary(_) => "summary",
            Self::Full { .. } => "full",
        }
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Label");
        d.field("origin", &self.origin)
            .field("serial", &self.serial)
            .field("authority_ref", &self.authority_ref)
            .field("contact", &self.contact)
            .field("key_kind", &self.key_kind)
            .field("strength", &self.strength)
            .field("level", &self.disclosure.level());
        match &self.disclosure {
            Disclosure::Pointer => {}
            Disclosure::Summary(summary) => {
                d.field("summary", summary);
            }
            Disclosure::Full { summary, notice } => {
                let size = serde_json::to_vec(notice).map_or(0, |v| v.len());
                d.field("summary", summary).field("notice_bytes", &size);
            }
        }
        d.finish()
    }
}

impl fmt::Debug for Disclosure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.level())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn pointer() -> Label {
        Label {
            origin: "DE-BAFA".into(),
            serial: "DE-BAFA/2025/000123".into(),
            authority_ref: "AZ 212-4711/25".into(),
            contact: "denials@bafa.example".into(),
            key_kind: "name_country".into(),
            strength: "strong".into(),
            disclosure: Disclosure::Pointer,
        }
    }

    pub(crate) fn summary() -> Summary {
        Summary {
            action: "refuse".into(),
            control_entries: vec!["3A001".into(), "5A002".into()],
            decision_date: "2025-03-14".into(),
            destination: "IR".into(),
        }
    }

    pub(crate) fn full() -> Label {
        Label {
            disclosure: Disclosure::Full {
                summary: summary(),
                notice: serde_json::json!({"parties": [{"name": "ACME TRADING"}]}),
            },
            ..pointer()
        }
    }

    #[test]
    fn json_is_flat_with_a_level() {
        let json = serde_json::to_value(pointer()).unwrap();
        assert_eq!(json["level"], "pointer");
        assert_eq!(json["origin"], "DE-BAFA");
        let json = serde_json::to_value(full()).unwrap();
        assert_eq!(json["level"], "full");
        assert_eq!(json["action"], "refuse");
        let back: Label = serde_json::from_value(json).unwrap();
        assert_eq!(back, full());
    }

    #[test]
    fn debug_hides_the_notice_body() {
        let debug = format!("{:?}", full());
        assert!(!debug.contains("ACME"), "{debug}");
        assert!(debug.contains("notice_bytes"));
    }
}
