//! The documented JSON form of a notice (`tessera notice issue --file`, and
//! `notice import --format jsonl`, one per line), and conversions between the
//! party record of `party` and the wire `Party`.
//!
//! Enumerations are lower-case words (`eu-dual-use`, `refuse`, `end-user`);
//! an unknown word is an error naming the field and the allowed words. JSON
//! errors are reported by line and column with quoted text removed, so a
//! party's name never reaches an error message.

use serde::{Deserialize, Serialize};
use tessera_proto::v1::{
    DenialAction, DenialNotice, EnforcementNotice, EnforcementType, Item, Marking, Notice,
    NoticeStatus, Party as WireParty, PartyId as WirePartyId, PartyKind as WireKind, PartyRole,
    RegimeBasis, RoledParty, notice::Body,
};

use super::dates;
use super::validate::Invalid;
use crate::party::{Party, PartyId, PartyKind};

/// A notice as an operator writes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeJson {
    /// Assigned by the node when absent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serial: String,
    /// TLP 2.0: CLEAR, GREEN, AMBER, AMBER+STRICT, RED. Default AMBER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marking: Option<String>,
    /// `local`, `all`, `peer:B[,C]`, `group:G`. Default: the node's `notices.default_to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial: Option<DenialJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<EnforcementJson>,
    /// Output only: a licence granted despite a peer's denial (issued by the
    /// node at the end of a consultation, never from a file).
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub grant: Option<GrantJson>,
}

/// The JSON form of a grant notice.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GrantJson {
    pub consultation_id: String,
    pub denial: String,
    pub answer: String,
    pub decision_date: String,
    pub reasons: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenialJson {
    pub authority_reference: String,
    /// eu-dual-use, wassenaar, nsg, australia-group, mtcr, national, catch-all.
    pub regime_basis: String,
    #[serde(default)]
    pub legal_basis: String,
    /// refuse, annul, suspend, limit, revoke. Default refuse.
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub decision_date: String,
    /// Default: decision_date + 3 years.
    #[serde(default)]
    pub review_due: String,
    #[serde(default)]
    pub items: Vec<ItemJson>,
    pub parties: Vec<RoledPartyJson>,
    #[serde(default)]
    pub destination: String,
    #[serde(default)]
    pub end_use: String,
    #[serde(default)]
    pub reason: String,
    /// in-force, amended, renewed, revoked, expired. Default in-force.
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnforcementJson {
    /// investigation-opened, seizure, penalty, suspicious-procurement, forum-shopping.
    #[serde(rename = "type")]
    pub kind: String,
    pub parties: Vec<RoledPartyJson>,
    #[serde(default)]
    pub items: Vec<ItemJson>,
    #[serde(default)]
    pub route: Vec<String>,
    #[serde(default)]
    pub event_date: String,
    pub contact: String,
    #[serde(default)]
    pub expires: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemJson {
    #[serde(default)]
    pub control_entry: String,
    #[serde(default)]
    pub hs_code: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub quantity: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoledPartyJson {
    /// exporter, consignee, end-user, intermediary, subject.
    pub role: String,
    pub party: Party,
}

const REGIMES: &[(&str, RegimeBasis)] = &[
    ("eu-dual-use", RegimeBasis::EuDualUse),
    ("wassenaar", RegimeBasis::Wassenaar),
    ("nsg", RegimeBasis::Nsg),
    ("australia-group", RegimeBasis::AustraliaGroup),
    ("mtcr", RegimeBasis::Mtcr),
    ("national", RegimeBasis::National),
    ("catch-all", RegimeBasis::CatchAll),
];
const ACTIONS: &[(&str, DenialAction)] = &[
    ("refuse", DenialAction::Refuse),
    ("annul", DenialAction::Annul),
    ("suspend", DenialAction::Suspend),
    ("limit", DenialAction::Limit),
    ("revoke", DenialAction::Revoke),
];
const STATUSES: &[(&str, NoticeStatus)] = &[
    ("in-force", NoticeStatus::InForce),
    ("amended", NoticeStatus::Amended),
    ("renewed", NoticeStatus::Renewed),
    ("revoked", NoticeStatus::Revoked),
    ("expired", NoticeStatus::Expired),
];
const ROLES: &[(&str, PartyRole)] = &[
    ("exporter", PartyRole::Exporter),
    ("consignee", PartyRole::Consignee),
    ("end-user", PartyRole::EndUser),
    ("intermediary", PartyRole::Intermediary),
    ("subject", PartyRole::Subject),
];
const ENFORCEMENT_TYPES: &[(&str, EnforcementType)] = &[
    ("investigation-opened", EnforcementType::InvestigationOpened),
    ("seizure", EnforcementType::Seizure),
    ("penalty", EnforcementType::Penalty),
    (
        "suspicious-procurement",
        EnforcementType::SuspiciousProcurement,
    ),
    ("forum-shopping", EnforcementType::ForumShopping),
];
const MARKINGS: &[(&str, Marking)] = &[
    ("CLEAR", Marking::Clear),
    ("GREEN", Marking::Green),
    ("AMBER", Marking::Amber),
    ("AMBER+STRICT", Marking::AmberStrict),
    ("RED", Marking::Red),
];

fn pick<E: Copy>(
    field: &str,
    value: &str,
    table: &[(&str, E)],
    default: Option<E>,
) -> Result<E, Invalid> {
    if value.is_empty()
        && let Some(d) = default
    {
        return Ok(d);
    }
    let wanted = value.trim().trim_start_matches("TLP:");
    table
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
        .map(|(_, e)| *e)
        .ok_or_else(|| Invalid {
            field: field.into(),
            problem: format!(
                "unknown value; expected one of {}",
                table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        })
}

/// The word for an enum value, for display.
pub fn word<E: Copy + PartialEq>(table: &[(&'static str, E)], value: E) -> &'static str {
    table
        .iter()
        .find(|(_, e)| *e == value)
        .map_or("-", |(n, _)| *n)
}

pub fn regime_word(v: i32) -> &'static str {
    RegimeBasis::try_from(v).map_or("-", |e| word(REGIMES, e))
}
pub fn action_word(v: i32) -> &'static str {
    DenialAction::try_from(v).map_or("-", |e| word(ACTIONS, e))
}
pub fn status_word(v: i32) -> &'static str {
    NoticeStatus::try_from(v).map_or("-", |e| word(STATUSES, e))
}
pub fn role_word(v: i32) -> &'static str {
    PartyRole::try_from(v).map_or("-", |e| word(ROLES, e))
}
pub fn enforcement_word(v: i32) -> &'static str {
    EnforcementType::try_from(v).map_or("-", |e| word(ENFORCEMENT_TYPES, e))
}
pub fn marking_word(v: i32) -> &'static str {
    Marking::try_from(v).map_or("-", |e| word(MARKINGS, e))
}

/// Parses a marking word (`AMBER`, `TLP:RED`, ...).
pub fn parse_marking(s: &str) -> Result<Marking, Invalid> {
    pick("marking", s, MARKINGS, None)
}

/// JSON text that is not a notice: where and what, never quoted content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(String);

/// Parses the JSON text of one notice. Errors carry line and column, never quoted content.
pub fn parse(text: &str) -> Result<NoticeJson, JsonError> {
    serde_json::from_str(text).map_err(|e| JsonError(scrub_json_error(&e)))
}

/// A serde_json error with quoted content removed.
pub fn scrub_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let mut out = String::with_capacity(msg.len());
    let mut quoted = false;
    for c in msg.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

impl NoticeJson {
    /// The wire notice (origin, version, issued_at and seq are the node's to
    /// set; without `to`, the node applies its default distribution).
    pub fn to_notice(&self) -> Result<Notice, Invalid> {
        // Absent: AMBER for a new notice, unchanged for an amendment.
        let marking = match &self.marking {
            Some(m) => parse_marking(m)? as i32,
            None => 0,
        };
        let distribution = self
            .to
            .as_deref()
            .map(crate::policy::parse_to)
            .transpose()
            .map_err(|e| Invalid {
                field: "to".into(),
                problem: e.to_string(),
            })?;
        let body = match (&self.denial, &self.enforcement) {
            (Some(d), None) => Body::Denial(d.to_wire()?),
            (None, Some(e)) => Body::Enforcement(e.to_wire()?),
            _ => {
                return Err(Invalid {
                    field: "denial".into(),
                    problem: "give exactly one of `denial` or `enforcement`".into(),
                });
            }
        };
        Ok(Notice {
            serial: self.serial.clone(),
            body: Some(body),
            distribution,
            marking,
            ..Notice::default()
        })
    }

    /// [`NoticeJson::from_notice`] as a JSON value (a `full` label's notice, an own match
    /// shown whole).
    pub fn value_of(n: &Notice) -> serde_json::Value {
        // A struct of strings, lists and maps always serialises.
        serde_json::to_value(Self::from_notice(n)).unwrap_or_default()
    }

    /// The JSON form of a wire notice (for `--json` output).
    pub fn from_notice(n: &Notice) -> Self {
        let roled = |ps: &[RoledParty]| -> Vec<RoledPartyJson> {
            ps.iter()
                .map(|rp| RoledPartyJson {
                    role: role_word(rp.role).to_owned(),
                    party: rp.party.as_ref().map(party_from_wire).unwrap_or_default(),
                })
                .collect()
        };
        let items = |is: &[Item]| -> Vec<ItemJson> {
            is.iter()
                .map(|i| ItemJson {
                    control_entry: i.control_entry.clone(),
                    hs_code: i.hs_code.clone(),
                    description: i.description.clone(),
                    quantity: i.quantity.clone(),
                })
                .collect()
        };
        let grant = match &n.body {
            Some(Body::Grant(g)) => Some(GrantJson {
                consultation_id: g.consultation_id.clone(),
                denial: format!("{}/{}", g.denial_origin, g.denial_serial),
                answer: g.answer.clone(),
                decision_date: g.decision_date.clone(),
                reasons: g.reasons.clone(),
            }),
            _ => None,
        };
        let (denial, enforcement) = match &n.body {
            Some(Body::Denial(d)) => (
                Some(DenialJson {
                    authority_reference: d.authority_reference.clone(),
                    regime_basis: regime_word(d.regime_basis).to_owned(),
                    legal_basis: d.legal_basis.clone(),
                    action: action_word(d.action).to_owned(),
                    decision_date: d.decision_date.clone(),
                    review_due: d.review_due.clone(),
                    items: items(&d.items),
                    parties: roled(&d.parties),
                    destination: d.destination.clone(),
                    end_use: d.end_use.clone(),
                    reason: d.reason.clone(),
                    status: status_word(d.status).to_owned(),
                }),
                None,
            ),
            Some(Body::Enforcement(e)) => (
                None,
                Some(EnforcementJson {
                    kind: enforcement_word(e.r#type).to_owned(),
                    parties: roled(&e.parties),
                    items: items(&e.items),
                    route: e.route.clone(),
                    event_date: e.event_date.clone(),
                    contact: e.contact.clone(),
                    expires: e.expires.clone(),
                    summary: e.summary.clone(),
                    status: status_word(e.status).to_owned(),
                }),
            ),
            Some(Body::Grant(_) | Body::Charter(_) | Body::Trusted(_)) | None => (None, None),
        };
        Self {
            serial: n.serial.clone(),
            marking: Some(marking_word(n.marking).to_owned()),
            to: Some(crate::policy::describe(n.distribution.as_ref())),
            denial,
            enforcement,
            grant,
        }
    }
}

impl DenialJson {
    fn to_wire(&self) -> Result<DenialNotice, Invalid> {
        let review_due = if self.review_due.is_empty() {
            dates::parse(&self.decision_date)
                .map(|d| dates::format(dates::add_years(d, 3)))
                .unwrap_or_default()
        } else {
            self.review_due.clone()
        };
        Ok(DenialNotice {
            authority_reference: self.authority_reference.clone(),
            regime_basis: pick("denial.regime_basis", &self.regime_basis, REGIMES, None)? as i32,
            legal_basis: self.legal_basis.clone(),
            action: pick(
                "denial.action",
                &self.action,
                ACTIONS,
                Some(DenialAction::Refuse),
            )? as i32,
            decision_date: self.decision_date.clone(),
            review_due,
            items: self.items.iter().map(ItemJson::to_wire).collect(),
            parties: roled("denial", &self.parties)?,
            destination: self.destination.trim().to_ascii_uppercase(),
            end_use: self.end_use.clone(),
            reason: self.reason.clone(),
            status: pick(
                "denial.status",
                &self.status,
                STATUSES,
                Some(NoticeStatus::InForce),
            )? as i32,
        })
    }
}

impl EnforcementJson {
    fn to_wire(&self) -> Result<EnforcementNotice, Invalid> {
        Ok(EnforcementNotice {
            r#type: pick("enforcement.type", &self.kind, ENFORCEMENT_TYPES, None)? as i32,
            parties: roled("enforcement", &self.parties)?,
            items: self.items.iter().map(ItemJson::to_wire).collect(),
            route: self.route.clone(),
            event_date: self.event_date.clone(),
            contact: self.contact.clone(),
            expires: self.expires.clone(),
            summary: self.summary.clone(),
            status: pick(
                "enforcement.status",
                &self.status,
                STATUSES,
                Some(NoticeStatus::InForce),
            )? as i32,
        })
    }
}

impl ItemJson {
    fn to_wire(&self) -> Item {
        Item {
            control_entry: self.control_entry.trim().to_owned(),
            hs_code: self.hs_code.trim().to_owned(),
            description: self.description.clone(),
            quantity: self.quantity.clone(),
        }
    }
}

/// Parties with their roles, checked; errors name `<prefix>.parties[i].role`.
pub fn roled(prefix: &str, parties: &[RoledPartyJson]) -> Result<Vec<RoledParty>, Invalid> {
    parties
        .iter()
        .enumerate()
        .map(|(i, rp)| {
            Ok(RoledParty {
                role: pick(
                    &format!("{prefix}.parties[{i}].role"),
                    &rp.role,
                    ROLES,
                    None,
                )? as i32,
                party: Some(party_to_wire(&rp.party)),
            })
        })
        .collect()
}

/// The wire form of a party record.
pub fn party_to_wire(p: &Party) -> WireParty {
    WireParty {
        kind: match p.kind {
            PartyKind::Person => WireKind::Person,
            PartyKind::Organisation => WireKind::Organisation,
            PartyKind::Vessel => WireKind::Vessel,
            PartyKind::Aircraft => WireKind::Aircraft,
        } as i32,
        name: p.name.clone(),
        aliases: p.aliases.clone(),
        original_script_names: p.original_script_names.clone(),
        ids: p
            .ids
            .iter()
            .map(|id| WirePartyId {
                r#type: id.id_type.clone(),
                value: id.value.clone(),
                country: id.country.clone().unwrap_or_default(),
            })
            .collect(),
        countries: p.countries.clone(),
        addresses: p.addresses.clone(),
        birth_date: p.birth_date.clone().unwrap_or_default(),
    }
}

/// The party record of a wire party (for match keys and display).
pub fn party_from_wire(p: &WireParty) -> Party {
    Party {
        kind: match WireKind::try_from(p.kind) {
            Ok(WireKind::Person) => PartyKind::Person,
            Ok(WireKind::Vessel) => PartyKind::Vessel,
            Ok(WireKind::Aircraft) => PartyKind::Aircraft,
            _ => PartyKind::Organisation,
        },
        name: p.name.clone(),
        aliases: p.aliases.clone(),
        original_script_names: p.original_script_names.clone(),
        ids: p
            .ids
            .iter()
            .map(|id| PartyId {
                id_type: id.r#type.clone(),
                value: id.value.clone(),
                country: (!id.country.is_empty()).then(|| id.country.clone()),
            })
            .collect(),
        countries: p.countries.clone(),
        addresses: p.addresses.clone(),
        birth_date: (!p.birth_date.is_empty()).then(|| p.birth_date.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_never_quote_content() {
        let err = parse(r#"{"denial": {"authority_reference": 5, "parties": [{"role": "x", "party": {"name": "SECRET NAME", "nme": 1}}]}}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
        let err = parse(r#"{"serial": "ACME CORP" "#).unwrap_err().to_string();
        assert!(!err.contains("ACME"), "{err}");
    }

    #[test]
    fn unknown_words_name_the_field() {
        let n = NoticeJson {
            denial: Some(DenialJson {
                authority_reference: "X".into(),
                regime_basis: "wasenaar".into(),
                ..DenialJson::default()
            }),
            ..NoticeJson::default()
        };
        let err = n.to_notice().unwrap_err();
        assert_eq!(err.field, "denial.regime_basis");
        assert!(err.problem.contains("wassenaar"));
    }

    #[test]
    fn review_defaults_to_three_years() {
        let n = NoticeJson {
            denial: Some(DenialJson {
                authority_reference: "X".into(),
                regime_basis: "nsg".into(),
                decision_date: "2026-03-14".into(),
                ..DenialJson::default()
            }),
            ..NoticeJson::default()
        };
        let Some(Body::Denial(d)) = n.to_notice().unwrap().body else {
            panic!("denial expected")
        };
        assert_eq!(d.review_due, "2029-03-14");
        assert_eq!(d.action, DenialAction::Refuse as i32);
    }
}
