//! The files an operator writes for a bloc: a charter (`bloc sign --file`),
//! trusted-operator records (`trusted import`, JSON Lines or CSV) and an
//! application (`application check --file`). Unknown fields are refused.

use serde::{Deserialize, Serialize};
use tessera_proto::v1::{
    Application, BlocCharter, Item, MemberHolidays, Notice, NoticeStatus, TrustedOperator,
    notice::Body,
};

use crate::notice::json::{ItemJson, RoledPartyJson, parse_marking, party_to_wire};
use crate::notice::validate::Invalid;
use crate::party::{Party, PartyId};

/// A charter as members write it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharterJson {
    pub bloc: String,
    pub version: u32,
    pub members: Vec<String>,
    /// denial, enforcement, trusted. Default: denial and trusted.
    #[serde(default = "default_recognised")]
    pub recognised: Vec<String>,
    /// pointer, summary or full. Default summary.
    #[serde(default = "default_disclosure")]
    pub disclosure: String,
    /// Default 10.
    #[serde(default = "default_days")]
    pub consult_days: u32,
    /// Member -> its public holidays (YYYY-MM-DD).
    #[serde(default)]
    pub holidays: std::collections::BTreeMap<String, Vec<String>>,
    /// Default identical-v1.
    #[serde(default = "default_rule")]
    pub identical_rule: String,
    /// The counts members contribute to the pilot report. Default: every count.
    #[serde(default)]
    pub pilot_counts: Vec<String>,
}

fn default_recognised() -> Vec<String> {
    vec!["denial".into(), "trusted".into()]
}
fn default_disclosure() -> String {
    "summary".into()
}
fn default_days() -> u32 {
    crate::consult::deadline::DEFAULT_DAYS
}
fn default_rule() -> String {
    super::rule::Rule::NAMES[0].into()
}

impl CharterJson {
    pub fn to_wire(&self) -> BlocCharter {
        super::charter::canonical(&BlocCharter {
            bloc: self.bloc.clone(),
            charter_version: self.version,
            members: self.members.clone(),
            recognised: self.recognised.clone(),
            disclosure: self.disclosure.to_lowercase(),
            consult_days: self.consult_days,
            holidays: self
                .holidays
                .iter()
                .map(|(agency, dates)| MemberHolidays {
                    agency: agency.clone(),
                    dates: dates.clone(),
                })
                .collect(),
            identical_rule: self.identical_rule.clone(),
            pilot_counts: self.pilot_counts.clone(),
        })
    }
}

/// One trusted-operator record, one JSON object per line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedJson {
    /// The member's own id of the record; the serial is `TO-<record_id>`.
    pub record_id: String,
    /// aeo, validated-end-user, general-authorisation.
    pub programme: String,
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub ids: Vec<PartyId>,
    /// valid (default), suspended, revoked.
    #[serde(default)]
    pub standing: String,
    pub validated_on: String,
    #[serde(default)]
    pub scope_items: Vec<String>,
    #[serde(default)]
    pub scope_destinations: Vec<String>,
    /// The operator's consent to the exchange. A record without it is refused.
    #[serde(default)]
    pub consent: bool,
    #[serde(default)]
    pub reason: String,
}

impl TrustedJson {
    /// The record as a notice (GREEN, to `to`). The serial is `TO-` and
    /// `record_id`, characters outside the serial alphabet as `-`.
    pub fn to_notice(&self, to: &str) -> Result<Notice, Invalid> {
        if self.record_id.trim().is_empty() {
            return Err(crate::notice::validate::bad("record_id", "empty"));
        }
        let standing = if self.standing.is_empty() {
            "valid".to_owned()
        } else {
            self.standing.to_lowercase()
        };
        let status = if standing == "revoked" {
            NoticeStatus::Revoked
        } else {
            NoticeStatus::InForce
        };
        let party = Party {
            name: self.name.clone(),
            addresses: self.addresses.clone(),
            countries: self.countries.clone(),
            ids: self.ids.clone(),
            ..Party::default()
        };
        Ok(Notice {
            // `TO-` and the id, within the serial alphabet and length.
            serial: crate::notice::from_list::serial("TO", self.record_id.trim()),
            marking: parse_marking("GREEN")? as i32,
            distribution: Some(
                crate::policy::parse_to(to)
                    .map_err(|e| crate::notice::validate::bad("to", e.to_string()))?,
            ),
            body: Some(Body::Trusted(TrustedOperator {
                programme: self.programme.to_lowercase(),
                party: Some(party_to_wire(&party)),
                standing,
                validated_on: self.validated_on.clone(),
                scope_items: self.scope_items.clone(),
                scope_destinations: self
                    .scope_destinations
                    .iter()
                    .map(|d| d.trim().to_ascii_uppercase())
                    .collect(),
                consent: self.consent,
                reason: self.reason.clone(),
                status: status as i32,
            })),
            ..Notice::default()
        })
    }
}

/// A CSV row of trusted-operator records: one column per field; lists
/// separated by `;`; identifiers as `TYPE:VALUE` or `TYPE:CC:VALUE`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedCsvRow {
    pub record_id: String,
    pub programme: String,
    pub name: String,
    #[serde(default)]
    pub addresses: String,
    #[serde(default)]
    pub countries: String,
    #[serde(default)]
    pub ids: String,
    #[serde(default)]
    pub standing: String,
    pub validated_on: String,
    #[serde(default)]
    pub scope_items: String,
    #[serde(default)]
    pub scope_destinations: String,
    /// yes, true or 1; anything else is no consent.
    #[serde(default)]
    pub consent: String,
    #[serde(default)]
    pub reason: String,
}

fn list(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

impl TrustedCsvRow {
    /// Every row of a CSV file with a header line, read and converted; a
    /// row that cannot be read says which line and why, never what it holds.
    pub fn read_all(text: &str) -> Vec<Result<TrustedJson, String>> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        reader
            .deserialize::<Self>()
            .map(|row| {
                row.map_err(|e| {
                    format!(
                        "line {}: not a record row (columns: record_id, programme, name, addresses, countries, ids, standing, validated_on, scope_items, scope_destinations, consent, reason)",
                        e.position().map_or(0, csv::Position::line)
                    )
                })
                .and_then(|r| r.to_json().map_err(|e| e.to_string()))
            })
            .collect()
    }

    pub fn to_json(&self) -> Result<TrustedJson, Invalid> {
        let ids = list(&self.ids)
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let parts: Vec<&str> = id.splitn(3, ':').collect();
                match parts.as_slice() {
                    [t, v] => Ok(PartyId {
                        id_type: (*t).into(),
                        value: (*v).into(),
                        country: None,
                    }),
                    [t, c, v] => Ok(PartyId {
                        id_type: (*t).into(),
                        value: (*v).into(),
                        country: Some((*c).into()),
                    }),
                    _ => Err(crate::notice::validate::bad(
                        format!("ids[{i}]"),
                        "write TYPE:VALUE or TYPE:CC:VALUE",
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedJson {
            record_id: self.record_id.clone(),
            programme: self.programme.clone(),
            name: self.name.clone(),
            addresses: list(&self.addresses),
            countries: list(&self.countries),
            ids,
            standing: self.standing.clone(),
            validated_on: self.validated_on.clone(),
            scope_items: list(&self.scope_items),
            scope_destinations: list(&self.scope_destinations),
            consent: matches!(
                self.consent.trim().to_lowercase().as_str(),
                "yes" | "true" | "1" | "y"
            ),
            reason: self.reason.clone(),
        })
    }
}

/// An application as the licensing officer writes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationJson {
    pub reference: String,
    pub parties: Vec<RoledPartyJson>,
    pub items: Vec<ItemJson>,
    pub destination: String,
    #[serde(default)]
    pub end_use: String,
    /// YYYY-MM-DD; default today.
    #[serde(default)]
    pub received_on: String,
}

impl ApplicationJson {
    pub fn to_wire(&self) -> Result<Application, Invalid> {
        let parties = crate::notice::json::roled("application", &self.parties)?;
        Ok(Application {
            reference: self.reference.clone(),
            parties,
            items: self
                .items
                .iter()
                .map(|i| Item {
                    control_entry: i.control_entry.clone(),
                    hs_code: i.hs_code.clone(),
                    description: i.description.clone(),
                    quantity: i.quantity.clone(),
                })
                .collect(),
            destination: self.destination.trim().to_ascii_uppercase(),
            end_use: self.end_use.clone(),
            received_on: self.received_on.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_row_reads_lists_and_identifiers_and_consent_words() {
        let row = TrustedCsvRow {
            record_id: "NL AEO 1".into(),
            programme: "AEO".into(),
            name: "Example Logistics BV".into(),
            ids: "EORI:NL123456789; LEI:529900T8BM49AURSDO55; REG:NL:12345678".into(),
            validated_on: "2025-06-01".into(),
            scope_items: "5A002;3A001".into(),
            consent: "Yes".into(),
            ..TrustedCsvRow::default()
        };
        let j = row.to_json().unwrap();
        assert_eq!(j.ids.len(), 3);
        assert_eq!(j.ids[2].country.as_deref(), Some("NL"));
        assert!(j.consent);
        let n = j.to_notice("group:eu").unwrap();
        assert_eq!(n.serial, "TO-NL-AEO-1");
        let no = TrustedCsvRow {
            consent: "no".into(),
            ..row
        };
        assert!(!no.to_json().unwrap().consent);
    }
}
