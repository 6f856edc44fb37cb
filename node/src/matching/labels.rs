//! What goes into a peer's index for one notice: a row per match key of
//! every party, labelled with what this agency discloses to that peer.
//!
//! Only notices in force (in force, amended, renewed) are indexed; a revoked
//! or expired notice has no rows.

use std::collections::BTreeMap;

use tessera_proto::v1::{Notice, NoticeStatus, notice::Body};

use crate::notice::issue::status_of;
use crate::notice::json::{NoticeJson, action_word, enforcement_word, party_from_wire};
use crate::party::{self, MatchKey};
use crate::privacy::{Disclosure, Label, Summary};

/// Whether a notice should be matchable.
pub fn active(notice: &Notice) -> bool {
    matches!(
        status_of(notice),
        Some(NoticeStatus::InForce | NoticeStatus::Amended | NoticeStatus::Renewed)
    )
}

/// Prefix of the OPRF inputs of investigation subjects: only a peer's
/// investigation subjects (evaluated with the same prefix) can find them, so
/// ordinary screening and watch lists never reveal an investigation.
pub const DECONFLICT_PREFIX: &str = "deconflict|";

/// An investigation subject kept at home: never replicated, but matchable
/// by every peer for deconfliction, disclosing the case contact only.
pub fn is_local_investigation(notice: &Notice) -> bool {
    let local = matches!(
        notice.distribution.as_ref().and_then(|d| d.target.as_ref()),
        Some(tessera_proto::v1::distribution::Target::Local(_))
    );
    local
        && matches!(&notice.body, Some(Body::Enforcement(e))
            if e.r#type == tessera_proto::v1::EnforcementType::InvestigationOpened as i32)
}

/// The rows of `notice` for `peer`, given its recipients and our disclosure
/// level for that peer: none if the peer may not see it.
pub fn rows_for_peer(
    notice: &Notice,
    recipients: &[String],
    peer: &str,
    level: &str,
    contact: &str,
) -> Vec<(String, Label)> {
    if is_local_investigation(notice) {
        rows(notice, "pointer", contact)
            .into_iter()
            .map(|(k, l)| (format!("{DECONFLICT_PREFIX}{k}"), l))
            .collect()
    } else if recipients.iter().any(|r| r == peer) {
        rows(notice, level, contact)
    } else {
        Vec::new()
    }
}

/// The match keys of every party of a notice, strongest per value.
pub fn notice_keys(notice: &Notice) -> Vec<MatchKey> {
    let parties = match &notice.body {
        Some(Body::Denial(d)) => &d.parties,
        Some(Body::Enforcement(e)) => &e.parties,
        Some(Body::Grant(_)) | None => return Vec::new(),
    };
    let mut best: BTreeMap<String, MatchKey> = BTreeMap::new();
    for rp in parties {
        let Some(p) = &rp.party else { continue };
        for key in party::match_keys(&party_from_wire(p)) {
            match best.get(&key.value) {
                Some(k) if k.strength >= key.strength => {}
                _ => {
                    best.insert(key.value.clone(), key);
                }
            }
        }
    }
    best.into_values().collect()
}

/// The rows of `notice` for a peer with disclosure level `level`.
pub fn rows(notice: &Notice, level: &str, contact: &str) -> Vec<(String, Label)> {
    if !active(notice) {
        return Vec::new();
    }
    let (reference, contact, summary) = match &notice.body {
        Some(Body::Denial(d)) => (
            d.authority_reference.clone(),
            contact.to_owned(),
            Summary {
                action: action_word(d.action).to_owned(),
                control_entries: d.items.iter().map(|i| i.control_entry.clone()).collect(),
                decision_date: d.decision_date.clone(),
                destination: d.destination.clone(),
            },
        ),
        Some(Body::Enforcement(e)) => (
            enforcement_word(e.r#type).to_owned(),
            e.contact.clone(),
            Summary {
                action: enforcement_word(e.r#type).to_owned(),
                control_entries: e.items.iter().map(|i| i.control_entry.clone()).collect(),
                decision_date: e.event_date.clone(),
                destination: e.route.last().cloned().unwrap_or_default(),
            },
        ),
        Some(Body::Grant(_)) | None => return Vec::new(),
    };
    let disclosure = match level {
        "full" => Disclosure::Full {
            summary,
            notice: serde_json::to_value(NoticeJson::from_notice(notice)).unwrap_or_default(),
        },
        "summary" => Disclosure::Summary(summary),
        _ => Disclosure::Pointer,
    };
    notice_keys(notice)
        .into_iter()
        .map(|k| {
            let label = Label {
                origin: notice.origin.clone(),
                serial: notice.serial.clone(),
                authority_ref: reference.clone(),
                contact: contact.clone(),
                key_kind: k.kind.as_str().to_owned(),
                strength: k.strength.as_str().to_owned(),
                disclosure: disclosure.clone(),
            };
            (k.value, label)
        })
        .collect()
}
