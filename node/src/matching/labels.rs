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
use crate::party::{self, KeyKind, MatchKey, Strength};
use crate::policy::DisclosureLevel;
use crate::privacy::threshold;
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

/// The exact-key labels of `notice` for `peer`, given its recipients and our disclosure
/// level for that peer: none if the peer may not see it. What the tests check row
/// contents against; the index is built from [`sources_for_peer`].
#[cfg(test)]
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

/// Every row of `notice` for `peer` to build: its label sealed once, a pointer to it per
/// exact key, and its parties' fuzzy names sealed t-of-n (`findings::name_rows`); none if
/// the peer may not see it.
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
    // The label once, under a random key: exact keys point to it, names name it.
    let label_key = threshold::slot_key();
    let mut out = vec![RowSource::Derived {
        y: Box::new(threshold::slot_row_key(&label_key)),
        body: privacy::label_bytes::encode(&base)?,
    }];
    for key in notice_keys(notice) {
        out.push(RowSource::Pointer {
            input: format!("{prefix}{}", key.value),
            slot: label_key,
            relation: label_pointer_code(key.kind, key.strength),
        });
    }
    let mut seen: BTreeSet<(Vec<String>, Vec<String>)> = BTreeSet::new();
    for p in notice_parties(notice) {
        for name in party::party_keys(&p, party::Side::Listed).names {
            let tokens = (
                name.slots.iter().map(|s| s.token.clone()).collect(),
                name.common.clone(),
            );
            if seen.insert(tokens) {
                out.extend(findings::name_rows(&name, &label_key, prefix)?);
            }
        }
    }
    if out.len() == 1 {
        // Nothing points to the label.
        out.clear();
    }
    Ok(out)
}

/// The relation byte of a pointer to a notice's label row (docs/private-matching.md §2):
/// the high bit, then the exact key's kind and strength, which the shared label leaves
/// empty. Fuzzy alternatives' relations stay below it.
const LABEL_POINTER: u8 = 0x80;

/// The relation byte of an exact key's pointer.
pub fn label_pointer_code(kind: KeyKind, strength: Strength) -> u8 {
    let k = KeyKind::ALL.iter().position(|x| *x == kind).unwrap_or(0);
    let s = Strength::ALL
        .iter()
        .position(|x| *x == strength)
        .unwrap_or(0);
    // At most 8 kinds and 3 strengths: (7 << 2) | 2 fits under the high bit.
    LABEL_POINTER | ((k as u8) << 2) | s as u8
}

/// The kind and strength of an exact key's pointer; none for a fuzzy alternative's
/// pointer (or a byte no holder writes).
pub fn label_pointer_of(code: u8) -> Option<(KeyKind, Strength)> {
    if code & LABEL_POINTER == 0 {
        return None;
    }
    let kind = *KeyKind::ALL.get(usize::from((code & 0x7f) >> 2))?;
    let strength = *Strength::ALL.get(usize::from(code & 0b11))?;
    Some((kind, strength))
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

/// The exact-key labels of `notice` for a peer with disclosure level `level` (tests).
#[cfg(test)]
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
            notice: NoticeJson::value_of(notice),
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
    fn exact_key_pointers_carry_every_kind_and_strength_and_fuzzy_relations_are_not_them() {
        for kind in KeyKind::ALL {
            for strength in Strength::ALL {
                let code = label_pointer_code(kind, strength);
                assert_eq!(label_pointer_of(code), Some((kind, strength)));
            }
        }
        for fuzzy in 0..0x80 {
            assert_eq!(label_pointer_of(fuzzy), None);
        }
        assert_eq!(label_pointer_of(0x80 | 0b11), None, "no fourth strength");
    }

    #[test]
    fn a_notice_label_is_sealed_once_however_many_keys_lead_to_it() {
        let n = listed();
        let to = vec!["FR-SBDU".to_owned()];
        let rows = sources_for_peer(&n, &to, "FR-SBDU", DisclosureLevel::Summary, "").unwrap();
        let labels = rows
            .iter()
            .filter(|r| matches!(r, RowSource::Derived { body, .. } if body.first() == Some(&threshold::RECORD_LABEL)))
            .count();
        let pointers = rows
            .iter()
            .filter(|r| matches!(r, RowSource::Pointer { relation, .. } if label_pointer_of(*relation).is_some()))
            .count();
        assert_eq!(labels, 1);
        assert_eq!(pointers, notice_keys(&n).len());
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
