//! Distribution policy: who may receive a notice. The sender decides and
//! enforces it on every path out (push, pull, get-by-id).
//!
//! Recipients are resolved from this node's configuration when a version is
//! issued and fixed with it: membership of a group is the sender's word,
//! never a receiver's claim. An empty group reaches nobody; an unknown group
//! is refused (and could never reach anybody); `all` means every configured
//! peer; TLP:RED may only go to named peers (checked in validation).

use std::collections::BTreeSet;

use tessera_proto::v1::{Distribution, PeerList, distribution::Target};

use crate::config::NodeConfig;
use crate::identity::AgencyId;

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
    let own = config.agency_id();
    let peers: BTreeSet<AgencyId> = config
        .peers
        .iter()
        .filter_map(|p| p.agency.parse().ok())
        .collect();
    let named = |names: &[String]| -> Result<BTreeSet<AgencyId>, PolicyError> {
        let mut out = BTreeSet::new();
        for n in names {
            let a: AgencyId = n.parse().map_err(|_| PolicyError::NotAPeer(n.clone()))?;
            if a == own {
                continue;
            }
            if !peers.contains(&a) {
                return Err(PolicyError::NotAPeer(n.clone()));
            }
            out.insert(a);
        }
        Ok(out)
    };
    let set = match d.target.as_ref().ok_or(PolicyError::Missing)? {
        Target::Local(_) => BTreeSet::new(),
        Target::All(_) => peers,
        Target::Peers(list) => named(&list.agencies)?,
        Target::Group(g) => {
            let members = config
                .groups
                .get(g)
                .ok_or_else(|| PolicyError::UnknownGroup(g.clone()))?;
            named(members)?
        }
    };
    Ok(set.into_iter().collect())
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
}
