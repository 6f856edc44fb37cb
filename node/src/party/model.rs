//! The plain party record that match keys are derived from.
//!
//! This is the JSON Lines form of docs/architecture.md ("The party line contract") (`tessera keys`, `screen --file`,
//! `watch add`): only `name` is required. The notice model in `tessera-proto`
//! converts into it, so keys never depend on the wire encoding.

use serde::{Deserialize, Serialize};

/// What sort of party a record describes. Written in lower case; read as
/// its `FromStr` reads it (any case, and the names other lists use:
/// `individual`, `organization`, `entity`, `company`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum PartyKind {
    Person,
    #[default]
    Organisation,
    Vessel,
    Aircraft,
}

impl PartyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Organisation => "organisation",
            Self::Vessel => "vessel",
            Self::Aircraft => "aircraft",
        }
    }
}

impl std::str::FromStr for PartyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "person" | "individual" => Ok(Self::Person),
            "organisation" | "organization" | "entity" | "company" => Ok(Self::Organisation),
            "vessel" => Ok(Self::Vessel),
            "aircraft" => Ok(Self::Aircraft),
            other => Err(format!(
                "unknown party kind {other:?} (expected person, organisation, vessel or aircraft)"
            )),
        }
    }
}

impl TryFrom<String> for PartyKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// An identifier such as an LEI, IMO number, passport or tax id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PartyId {
    /// The identifier scheme, e.g. `LEI`, `IMO`, `PASSPORT`, `TAX`, `REG`.
    #[serde(rename = "type")]
    pub id_type: String,
    pub value: String,
    /// Issuing country (ISO 3166 alpha-2 or a country name), where one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A party as an agency records it: names, identifiers, countries, birth date.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    #[serde(default)]
    pub kind: PartyKind,
    /// The primary name, in whatever script the source gives it.
    pub name: String,
    /// Other names: aliases, former names, spellings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Names in their original script (Arabic, Cyrillic, Chinese, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub original_script_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<PartyId>,
    /// Countries of the party: nationality, registration or address (codes or names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (persons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(json: &str) -> Result<PartyKind, serde_json::Error> {
        serde_json::from_str::<Party>(json).map(|p| p.kind)
    }

    #[test]
    fn kinds_are_read_by_the_names_other_lists_use_and_written_in_lower_case() {
        for (written, kind) in [
            ("person", PartyKind::Person),
            ("Individual", PartyKind::Person),
            ("organization", PartyKind::Organisation),
            ("ENTITY", PartyKind::Organisation),
            ("company", PartyKind::Organisation),
            ("Vessel", PartyKind::Vessel),
        ] {
            let json = format!(r#"{{"kind":"{written}","name":"N"}}"#);
            assert_eq!(kind_of(&json).expect(written), kind);
        }
        assert_eq!(kind_of(r#"{"name":"N"}"#).unwrap(), PartyKind::Organisation);
        let err = kind_of(r#"{"kind":"robot","name":"N"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown party kind"), "{err}");
        let party = Party {
            kind: PartyKind::Person,
            name: "N".into(),
            ..Party::default()
        };
        let written = serde_json::to_string(&party).unwrap();
        assert!(written.contains(r#""kind":"person""#), "{written}");
    }
}
