//! Who is on the other end: agency ids, roles, and reading them from certificates.
//!
//! Identity lives in exactly one SAN URI of the certificate:
//! `urn:tessera:node:<AGENCY>` for a node, `urn:tessera:operator:<AGENCY>:<name>`
//! for a person or tool acting for its agency. A certificate with none, or with
//! more than one, has no Tessera identity and is refused by every service.
//! This module only parses; the decision to accept is the services'.

use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

const NODE_PREFIX: &str = "urn:tessera:node:";
const OPERATOR_PREFIX: &str = "urn:tessera:operator:";

/// An agency id such as `DE-BAFA`: a two-letter country, a dash, a short name
/// of upper-case letters, digits and dashes (at most 32 characters in all).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgencyId(String);

/// Why a string is not an agency id.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an agency id like DE-BAFA (country code, dash, upper-case short name)")]
pub struct BadAgencyId(String);

impl AgencyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a string already known to be valid.
    pub(crate) fn unchecked(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl FromStr for AgencyId {
    type Err = BadAgencyId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadAgencyId(s.chars().take(40).collect());
        if s.len() > 32 {
            return Err(bad());
        }
        let (country, name) = s.split_once('-').ok_or_else(bad)?;
        let ok_country = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
        let ok_name = !name.is_empty()
            && !name.ends_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if ok_country && ok_name {
            Ok(Self(s.to_owned()))
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a certificate entitles its holder to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// An agency's node, speaking on the federation port.
    Node,
    /// A person or tool of an agency, speaking on the operator port.
    Operator { name: String },
}

/// The Tessera identity carried by a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub agency: AgencyId,
    pub role: Role,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role {
            Role::Node => write!(f, "node {}", self.agency),
            Role::Operator { name } => write!(f, "operator {}:{name}", self.agency),
        }
    }
}

/// Why a certificate carries no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the certificate cannot be parsed")]
    Unparsable,
    #[error("the certificate has no urn:tessera SAN URI")]
    Missing,
    #[error("the certificate has more than one urn:tessera SAN URI")]
    Ambiguous,
    #[error("the certificate's urn:tessera SAN URI is malformed")]
    Malformed,
}

impl Identity {
    /// Parses the identity from a SAN URI string.
    pub fn from_uri(uri: &str) -> Result<Self, IdentityError> {
        if let Some(agency) = uri.strip_prefix(NODE_PREFIX) {
            let agency = agency.parse().map_err(|_| IdentityError::Malformed)?;
            return Ok(Self {
                agency,
                role: Role::Node,
            });
        }
        if let Some(rest) = uri.strip_prefix(OPERATOR_PREFIX) {
            let (agency, name) = rest.split_once(':').ok_or(IdentityError::Malformed)?;
            let agency = agency.parse().map_err(|_| IdentityError::Malformed)?;
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !name_ok {
                return Err(IdentityError::Malformed);
            }
            return Ok(Self {
                agency,
                role: Role::Operator {
                    name: name.to_owned(),
                },
            });
        }
        Err(IdentityError::Missing)
    }

    /// Reads the identity from a DER certificate.
    pub fn from_cert_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| IdentityError::Unparsable)?;
        let san = cert
            .subject_alternative_name()
            .map_err(|_| IdentityError::Unparsable)?
            .ok_or(IdentityError::Missing)?;
        let mut found = None;
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && uri.starts_with("urn:tessera:")
            {
                if found.is_some() {
                    return Err(IdentityError::Ambiguous);
                }
                found = Some(Self::from_uri(uri)?);
            }
        }
        found.ok_or(IdentityError::Missing)
    }

    /// The SAN URI for a node of `agency`.
    pub fn node_uri(agency: &AgencyId) -> String {
        format!("{NODE_PREFIX}{agency}")
    }

    /// The SAN URI for operator `name` of `agency`.
    pub fn operator_uri(agency: &AgencyId, name: &str) -> String {
        format!("{OPERATOR_PREFIX}{agency}:{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_ids() {
        for ok in ["DE-BAFA", "US-BIS", "FR-SBDU", "GB-ECJU", "XX-A1-B"] {
            assert!(ok.parse::<AgencyId>().is_ok(), "{ok}");
        }
        for bad in [
            "", "DE", "de-bafa", "DEU-BAFA", "DE-", "DE-bafa", "DE-BA FA", "DE-BAFA-",
        ] {
            assert!(bad.parse::<AgencyId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn uris() {
        let node = Identity::from_uri("urn:tessera:node:DE-BAFA").unwrap();
        assert_eq!(node.role, Role::Node);
        assert_eq!(node.agency.as_str(), "DE-BAFA");
        let op = Identity::from_uri("urn:tessera:operator:US-BIS:admin").unwrap();
        assert_eq!(
            op.role,
            Role::Operator {
                name: "admin".into()
            }
        );
        assert_eq!(
            Identity::from_uri("urn:tessera:operator:US-BIS"),
            Err(IdentityError::Malformed)
        );
        assert_eq!(
            Identity::from_uri("urn:tessera:node:nope"),
            Err(IdentityError::Malformed)
        );
        assert_eq!(Identity::from_uri("https://x"), Err(IdentityError::Missing));
    }

    #[test]
    fn garbage_certificate_is_unparsable() {
        assert_eq!(
            Identity::from_cert_der(&[0x30, 0x03, 0x01, 0x02]),
            Err(IdentityError::Unparsable)
        );
    }
}
