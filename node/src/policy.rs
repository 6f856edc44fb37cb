//! Distribution and disclosure policy: who may receive a notice, and what a
//! peer learns about a match. The sender decides and enforces it on every
//! path out (push, pull, get-by-id, index).
//!
//! Recipients are resolved from this node's configuration when a version is
//! issued and fixed with it: membership of a group is the sender's word,
//! never a receiver's claim. An empty group reaches nobody; an unknown group
//! is refused (and could never reach anybody); `all` means every configured
//! peer; TLP:RED may only go to named peers (checked in validation).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use tessera_proto::v1::{Distribution, PeerList, distribution::Target};

use crate::config::NodeConfig;
use crate::identity::AgencyId;

/// What a peer learns about a match on one of our notices (the label in its
/// index). Config: `privacy.default_disclosure`, `peers[].disclosure`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DisclosureLevel {
    /// Origin, reference, contact, match strength.
    #[default]
    Pointer,
    /// The pointer, and the action, control entries, decision date, destination.
    Summary,
    /// The summary, and the notice.
    Full,
}

impl DisclosureLevel {
    pub const ALL: [Self; 3] = [Self::Pointer, Self::Summary, Self::Full];

    /// The wire and config form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pointer => "pointer",
            Self::Summary => "summary",
            Self::Full => "full",
        }
    }
}

impl fmt::Display for DisclosureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A distribution that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("group {0:?} is not configured on this node; it would reach nobody")]
    UnknownGroup(String),
    #[error("{0} is not a configured peer")]
    NotAPeer(String),
    #[error("{0:?} is not a distribution: use local, all, peer:AGENCY[,AGENCY...] or group:NAME")]
    Unparsable(String),
    #[error("no distribution given")]
    Missing,
}

/// Parses the command-line form: `local`, `all`, `peer:B[,C...]`, `group:G`.
pub fn parse_to(s: &str) -> Result<Distribution, PolicyError> {
    let target = match s.trim() {
        "local" => Target::Local(true),
        "all" => Target::All(true),
        other => {
            if let Some(peers) = other.strip_prefix("peer:") {
                let agencies: Vec<String> = peers
                    .split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect();
                if agencies.is_empty() {
                    return Err(PolicyError::Unparsable(s.to_owned()));
                }
                Target::Peers(PeerList { agencies })
            } else if let Some(group) = other.strip_prefix("group:") {
                if group.trim().is_empty() {
                    return Err(PolicyError::Unparsable(s.to_owned()));
                }
                Target::Group(group.trim().to_owned())
            } else {
                return Err(PolicyError::Unparsable(s.to_owned()));
            }
        }
    };
    Ok(Distribution {
        target: Some(target),
    })
}

/// The command-line form of a distribution.
pub fn describe(d: Option<&Distribution>) -> String {
    match d.and_then(|d| d.target.as_ref()) {
        Some(Target::Local(_)) => "local".into(),
        Some(Target::All(_)) => "all".into(),
        Some(Target::Peers(p)) => format!("peer:{}", p.agencies.join(",")),
        Some(Target::Group(g)) => format!("group:{g}"),
        None => "-".into(),
    }
}

/// The peers a distribution reaches, under this node's configuration.
pub fn recipients(d: &Distribution, config: &NodeConfig) -> Result<Vec<AgencyId>, PolicyError> {
    Policy::from_config(config).recipients(d)
}

/// Who a distribution reaches: this node, its peers and its groups.
#[derive(Debug, Clone)]
pub struct Policy {
    own: AgencyId,
    peers: BTreeSet<AgencyId>,
    groups: BTreeMap<String, Vec<String>>,
}

impl Policy {
    pub fn new(
        own: AgencyId,
        peers: impl IntoIterator<Item = AgencyId>,
        groups: BTreeMap<String, Vec<String>>,
    ) -> Self {
        Self {
            own,
            peers: peers.into_iter().collect(),
            groups,
        }
    }

    /// The policy of a (validated) configuration.
    pub fn from_config(config: &NodeConfig) -> Self {
        Self::new(
            config.agency_id(),
            config.peers.iter().filter_map(|p| p.agency.parse().ok()),
            config.groups.clone(),
        )
    }

    /// Every configured peer.
    pub fn peers(&self) -> impl Iterator<Item = &AgencyId> {
        self.peers.iter()
    }

    /// The peers `d` reaches.
    pub fn recipients(&self, d: &Distribution) -> Result<Vec<AgencyId>, PolicyError> {
        let named = |names: &[String]| -> Result<BTreeSet<AgencyId>, PolicyError> {
            let mut out = BTreeSet::new();
            for n in names {
                let a: AgencyId = n.parse().map_err(|_| PolicyError::NotAPeer(n.clone()))?;
                if a == self.own {
                    continue;
                }
                if !self.peers.contains(&a) {
                    return Err(PolicyError::NotAPeer(n.clone()));
                }
                out.insert(a);
            }
            Ok(out)
        };
        let set = match d.target.as_ref().ok_or(PolicyError::Missing)? {
            Target::Local(_) => BTreeSet::new(),
            Target::All(_) => self.peers.clone(),
            Target::Peers(list) => named(&list.agencies)?,
            Target::Group(g) => {
                let members = self
                    .groups
                    .get(g)
                    .ok_or_else(|| PolicyError::UnknownGroup(g.clone()))?;
                named(members)?
            }
        };
        Ok(set.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cli_forms() {
        assert_eq!(describe(Some(&parse_to("local").unwrap())), "local");
        assert_eq!(describe(Some(&parse_to("all").unwrap())), "all");
        assert_eq!(
            describe(Some(&parse_to("peer:FR-SBDU,US-BIS").unwrap())),
            "peer:FR-SBDU,US-BIS"
        );
        assert_eq!(describe(Some(&parse_to("group:EU").unwrap())), "group:EU");
        for bad in ["", "everyone", "peer:", "group:", "group: "] {
            assert!(parse_to(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn recipients_are_the_senders_word_and_an_empty_group_reaches_nobody() {
        let a = |s: &str| s.parse::<AgencyId>().unwrap();
        let groups = BTreeMap::from([
            (
                "eu".to_owned(),
                vec!["DE-BAFA".to_owned(), "FR-SBDU".to_owned()],
            ),
            ("none".to_owned(), Vec::new()),
        ]);
        let policy = Policy::new(a("DE-BAFA"), [a("FR-SBDU"), a("US-BIS")], groups);
        let to = |s: &str| policy.recipients(&parse_to(s).unwrap());
        assert_eq!(to("all").unwrap(), [a("FR-SBDU"), a("US-BIS")]);
        assert!(to("local").unwrap().is_empty());
        assert_eq!(to("group:eu").unwrap(), [a("FR-SBDU")]);
        assert!(to("group:none").unwrap().is_empty());
        assert_eq!(
            to("group:nato").unwrap_err(),
            PolicyError::UnknownGroup("nato".into())
        );
        assert_eq!(
            to("peer:JP-METI").unwrap_err(),
            PolicyError::NotAPeer("JP-METI".into())
        );
        assert_eq!(to("peer:US-BIS,DE-BAFA").unwrap(), [a("US-BIS")]);
    }

    #[test]
    fn disclosure_levels_read_from_config_words_and_refuse_others() {
        #[derive(Deserialize)]
        struct T {
            level: DisclosureLevel,
        }
        for l in DisclosureLevel::ALL {
            let t: T = toml::from_str(&format!("level = \"{l}\"")).unwrap();
            assert_eq!(t.level, l);
        }
        let err = toml::from_str::<T>("level = \"ful\"").err().unwrap();
        assert!(err.to_string().contains("pointer"), "{err}");
    }
}
