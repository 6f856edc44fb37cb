//! What goes into a peer's index for one notice: a row per exact match key of
//! every party, labelled with what this agency discloses to that peer, and
//! each party name sealed t-of-n under its fuzzy keys (`findings`).
//!
//! Only notices in force (in force, amended, renewed) are indexed; a revoked
//! or expired notice has no rows.

use std::collections::{BTreeMap, BTreeSet};

use tessera_proto::v1::{EnforcementType, Notice, NoticeStatus, notice::Body};

use super::findings;
use crate::notice::issue::status_of;
use crate::notice::json::{NoticeJson, action_word, enforcement_word, party_from_wire};
use crate::party::{self, MatchKey, Strength};
use crate::policy::DisclosureLevel;
use crate::privacy::{self, Disclosure, Label, PrivacyError, RowSource, Summary};

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
            if e.r#type == EnforcementType::InvestigationOpened as i32)
}

/// Whether a label is of a peer's investigation (an enforcement notice
/// "investigation opened"): the reference of such a row is that type's word.
pub fn is_investigation(label: &Label) -> bool {
    label.authority_ref == enforcement_word(EnforcementType::InvestigationOpened as i32)
}

/// The rows of `notice` for `peer`, given its recipients and our disclosure
/// level for that peer: none if the peer may not see it.
pub fn rows_for_peer(
    notice: &Notice,
    recipients: &[String],
    peer: &str,
    level: DisclosureLevel,
    contact: &str,
) -> Vec<(String, Label)> {
    if is_local_investigation(notice) {
        rows(notice, DisclosureLevel::Pointer, contact)
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
    let mut best: BTreeMap<String, MatchKey> = BTreeMap::new();
    for p in notice_parties(notice) {
        for key in party::exact_keys(&p, party::Side::Listed) {
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

/// Every row of `notice` for `peer` to build: its exact keys' labels and its parties'
/// fuzzy names sealed t-of-n (`findings::name_rows`); none if the peer may not see it.
/// Investigations kept at home carry both under the deconfliction prefix.
pub fn sources_for_peer(
    notice: &Notice,
    recipients: &[String],
    peer: &str,
    level: DisclosureLevel,
    contact: &str,
) -> Result<Vec<RowSource>, PrivacyError> {
    let (prefix, level) = if is_local_investigation(notice) {
        (DECONFLICT_PREFIX, DisclosureLevel::Pointer)
    } else if recipients.iter().any(|r| r == peer) {
        ("", level)
    } else {
        return Ok(Vec::new());
    };
    let Some(base) = base_label(notice, level, contact) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for key in notice_keys(notice) {
        let label = Label {
            key_kind: key.kind.as_str().to_owned(),
            strength: key.strength.as_str().to_owned(),
            ..base.clone()
        };
        out.push(RowSource::Keyed {
            input: format!("{prefix}{}", key.value),
            body: privacy::label_bytes::encode(&label)?,
        });
    }
    let fuzzy = Label {
        key_kind: FUZZY_KIND.to_owned(),
        strength: Strength::Weak.as_str().to_owned(),
        ..base
    };
    let mut seen: BTreeSet<(Vec<String>, Vec<String>)> = BTreeSet::new();
    for p in notice_parties(notice) {
        for name in party::party_keys(&p, party::Side::Listed).names {
            let tokens = (
                name.slots.iter().map(|s| s.token.clone()).collect(),
                name.common.clone(),
            );
            if seen.insert(tokens) {
                out.extend(findings::name_rows(&name, &fuzzy, prefix)?);
            }
        }
    }
    Ok(out)
}

/// The key kind of a fuzzy name's label.
pub const FUZZY_KIND: &str = "fuzzy_name";

/// The parties of a denial or enforcement notice.
fn notice_parties(notice: &Notice) -> Vec<party::Party> {
    let parties = match &notice.body {
        Some(Body::Denial(d)) => &d.parties,
        Some(Body::Enforcement(e)) => &e.parties,
        Some(Body::Grant(_) | Body::Charter(_) | Body::Trusted(_)) | None => return Vec::new(),
    };
    parties
        .iter()
        .filter_map(|rp| rp.party.as_ref().map(party_from_wire))
        .collect()
}

/// The rows of `notice` for a peer with disclosure level `level`.
pub fn rows(notice: &Notice, level: DisclosureLevel, contact: &str) -> Vec<(String, Label)> {
    let Some(base) = base_label(notice, level, contact) else {
        return Vec::new();
    };
    notice_keys(notice)
        .into_iter()
        .map(|k| {
            let label = Label {
                key_kind: k.kind.as_str().to_owned(),
                strength: k.strength.as_str().to_owned(),
                ..base.clone()
            };
            (k.value, label)
        })
        .collect()
}

/// What every row of `notice` discloses at `level`, key kind and strength left empty;
/// none for a notice not in force or with nothing to match.
fn base_label(notice: &Notice, level: DisclosureLevel, contact: &str) -> Option<Label> {
    if !active(notice) {
        return None;
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
        Some(Body::Grant(_) | Body::Charter(_) | Body::Trusted(_)) | None => return None,
    };
    let disclosure = match level {
        DisclosureLevel::Full => Disclosure::Full {
            summary,
            notice: serde_json::to_value(NoticeJson::from_notice(notice)).unwrap_or_default(),
        },
        DisclosureLevel::Summary => Disclosure::Summary(summary),
        DisclosureLevel::Pointer => Disclosure::Pointer,
    };
    Some(Label {
        origin: notice.origin.clone(),
        serial: notice.serial.clone(),
        authority_ref: reference,
        contact,
        key_kind: String::new(),
        strength: String::new(),
        disclosure,
    })
}

#[cfg(test)]
mod tests {
    use tessera_proto::v1::distribution::Target;

    use super::*;
    use crate::test_support::{denial, org};

    fn listed() -> Notice {
        denial("DE-BAFA", "S-1", "all", &[org("Example Trading FZE", "AE")])
    }

    #[test]
    fn each_level_discloses_what_it_says_and_no_more() {
        let n = listed();
        let keys = notice_keys(&n).len();
        for level in DisclosureLevel::ALL {
            let rows = rows(&n, level, "desk@bafa.example");
            assert_eq!(rows.len(), keys);
            let label = &rows[0].1;
            assert_eq!(label.disclosure.level(), level.as_str());
            assert_eq!(
                (label.origin.as_str(), label.serial.as_str()),
                ("DE-BAFA", "S-1")
            );
            assert_eq!(label.contact, "desk@bafa.example");
            match &label.disclosure {
                Disclosure::Pointer => {}
                Disclosure::Summary(s) => assert_eq!(s.control_entries, ["3A001"]),
                Disclosure::Full { notice, .. } => assert!(notice.get("denial").is_some()),
            }
        }
    }

    #[test]
    fn only_recipients_get_rows_and_a_revoked_notice_has_none() {
        let n = listed();
        let to = vec!["FR-SBDU".to_owned()];
        assert!(!rows_for_peer(&n, &to, "FR-SBDU", DisclosureLevel::Pointer, "").is_empty());
        assert!(rows_for_peer(&n, &to, "US-BIS", DisclosureLevel::Pointer, "").is_empty());
        let mut revoked = listed();
        if let Some(Body::Denial(d)) = revoked.body.as_mut() {
            d.status = NoticeStatus::Revoked as i32;
        }
        assert!(!active(&revoked));
        assert!(rows(&revoked, DisclosureLevel::Full, "").is_empty());
    }

    #[test]
    fn a_local_investigation_is_matchable_by_every_peer_under_its_prefix_only() {
        let mut n = listed();
        let Some(Body::Denial(d)) = n.body.take() else {
            unreachable!()
        };
        n.distribution = Some(tessera_proto::v1::Distribution {
            target: Some(Target::Local(true)),
        });
        n.body = Some(Body::Enforcement(tessera_proto::v1::EnforcementNotice {
            r#type: EnforcementType::InvestigationOpened as i32,
            parties: d.parties,
            contact: "case desk".into(),
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        }));
        assert!(is_local_investigation(&n));
        let rows = rows_for_peer(&n, &[], "US-BIS", DisclosureLevel::Full, "");
        assert!(!rows.is_empty());
        for (key, label) in &rows {
            assert!(key.starts_with(DECONFLICT_PREFIX));
            assert_eq!(label.disclosure.level(), "pointer", "the case contact only");
            assert_eq!(label.contact, "case desk");
            assert!(is_investigation(label));
        }
    }
}
