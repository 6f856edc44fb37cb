//! Validation of notices, with errors that name the field and the problem,
//! e.g. `denial.items[2].control_entry: empty` or
//! `denial.decision_date: 2031-02-30 is not a date`.
//!
//! The same rules apply to a notice an operator issues and to one a peer
//! sends. Messages never quote a party's name or identifier: they say what is
//! wrong with the field, not what it holds.

use prost::Message;
use tessera_proto::v1::{
    DenialNotice, Distribution, EnforcementNotice, Item, Marking, Notice, Party, PartyId,
    RoledParty, distribution::Target, notice::Body,
};

use super::dates;
use crate::identity::AgencyId;

/// Largest encoded notice accepted.
pub const MAX_NOTICE_BYTES: usize = 256 * 1024;
/// Longest free-text field.
const MAX_TEXT: usize = 8 * 1024;

/// One problem in one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    pub field: String,
    pub problem: String,
}

/// What the operator sent does not follow the rules: INVALID_ARGUMENT,
/// naming the field.
impl From<Invalid> for tonic::Status {
    fn from(e: Invalid) -> Self {
        Self::invalid_argument(e.to_string())
    }
}

pub(crate) fn bad(field: impl Into<String>, problem: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Checks a serial: 1 to 64 of `A-Z a-z 0-9 . _ : -`.
pub fn serial(s: &str) -> Result<(), Invalid> {
    if s.is_empty() {
        return Err(bad("serial", "empty"));
    }
    if s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(bad(
            "serial",
            "must be 1 to 64 letters, digits, '.', '_', ':' or '-'",
        ));
    }
    Ok(())
}

/// Checks a whole notice as it will be signed or was received.
pub fn notice(n: &Notice) -> Result<(), Invalid> {
    if n.encoded_len() > MAX_NOTICE_BYTES {
        return Err(bad(
            "notice",
            format!("larger than {MAX_NOTICE_BYTES} bytes"),
        ));
    }
    n.origin
        .parse::<AgencyId>()
        .map_err(|_| bad("origin", "not an agency id like DE-BAFA"))?;
    serial(&n.serial)?;
    if n.version == 0 {
        return Err(bad("version", "must be 1 or more"));
    }
    if n.issued_at <= 0 {
        return Err(bad("issued_at", "missing"));
    }
    let marking = Marking::try_from(n.marking).map_err(|_| bad("marking", "unknown value"))?;
    if marking == Marking::Unspecified {
        return Err(bad(
            "marking",
            "missing (CLEAR, GREEN, AMBER, AMBER+STRICT or RED)",
        ));
    }
    distribution(n.distribution.as_ref(), marking)?;
    match &n.body {
        None => Err(bad(
            "body",
            "missing: a notice is a denial or an enforcement notice",
        )),
        Some(Body::Denial(d)) => denial(d),
        Some(Body::Enforcement(e)) => enforcement(e),
        Some(Body::Grant(g)) => grant(g),
        Some(Body::Charter(c)) => crate::bloc::charter::validate(n, c),
        Some(Body::Trusted(t)) => crate::bloc::trusted::validate(n, t),
    }
}

fn distribution(d: Option<&Distribution>, marking: Marking) -> Result<(), Invalid> {
    let target = d
        .and_then(|d| d.target.as_ref())
        .ok_or_else(|| bad("distribution", "missing (local, peers, group or all)"))?;
    match target {
        Target::All(_) | Target::Group(_) if marking == Marking::Red => {
            return Err(bad(
                "distribution",
                "a TLP:RED notice may only go to named peers, not to a group or to all",
            ));
        }
        Target::Local(_) | Target::All(_) => {}
        Target::Group(g) => {
            if g.is_empty() {
                return Err(bad("distribution.group", "empty"));
            }
        }
        Target::Peers(p) => {
            for (i, a) in p.agencies.iter().enumerate() {
                a.parse::<AgencyId>().map_err(|_| {
                    bad(
                        format!("distribution.peers[{i}]"),
                        "not an agency id like DE-BAFA",
                    )
                })?;
            }
        }
    }
    Ok(())
}

pub(crate) fn text(field: &str, s: &str, required: bool) -> Result<(), Invalid> {
    if required && s.trim().is_empty() {
        return Err(bad(field, "empty"));
    }
    if s.len() > MAX_TEXT {
        return Err(bad(field, format!("longer than {MAX_TEXT} bytes")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(bad(field, "contains control characters"));
    }
    Ok(())
}

pub(crate) fn date(field: &str, s: &str, required: bool) -> Result<(), Invalid> {
    if s.is_empty() {
        return if required {
            Err(bad(field, "empty"))
        } else {
            Ok(())
        };
    }
    if dates::parse(s).is_none() {
        return Err(bad(
            field,
            format!("{} is not a date (YYYY-MM-DD)", printable(s)),
        ));
    }
    Ok(())
}

/// A date-like value is safe to echo; still cut it short and keep it printable.
fn printable(s: &str) -> String {
    s.chars().take(16).filter(|c| !c.is_control()).collect()
}

pub(crate) fn country(field: &str, s: &str) -> Result<(), Invalid> {
    if s.is_empty() || (s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())) {
        Ok(())
    } else {
        Err(bad(field, "not an ISO 3166 alpha-2 code such as IR"))
    }
}

fn enum_set<E: TryFrom<i32>>(field: &str, v: i32, what: &str) -> Result<(), Invalid> {
    if v == 0 || E::try_from(v).is_err() {
        Err(bad(field, format!("missing or unknown {what}")))
    } else {
        Ok(())
    }
}

fn items(prefix: &str, items: &[Item]) -> Result<(), Invalid> {
    for (i, item) in items.iter().enumerate() {
        let f = |name: &str| format!("{prefix}.items[{i}].{name}");
        text(&f("control_entry"), &item.control_entry, true)?;
        text(&f("hs_code"), &item.hs_code, false)?;
        text(&f("description"), &item.description, false)?;
        text(&f("quantity"), &item.quantity, false)?;
    }
    Ok(())
}

fn parties(prefix: &str, parties: &[RoledParty]) -> Result<(), Invalid> {
    if parties.is_empty() {
        return Err(bad(
            format!("{prefix}.parties"),
            "at least one party is required",
        ));
    }
    for (i, rp) in parties.iter().enumerate() {
        let p = format!("{prefix}.parties[{i}]");
        enum_set::<tessera_proto::v1::PartyRole>(&format!("{p}.role"), rp.role, "role")?;
        let party = rp
            .party
            .as_ref()
            .ok_or_else(|| bad(format!("{p}.party"), "missing"))?;
        self::party(&format!("{p}.party"), party)?;
    }
    Ok(())
}

/// Checks one party record.
pub fn party(p: &str, party: &Party) -> Result<(), Invalid> {
    enum_set::<tessera_proto::v1::PartyKind>(&format!("{p}.kind"), party.kind, "party kind")?;
    text(&format!("{p}.name"), &party.name, true)?;
    for (j, a) in party.aliases.iter().enumerate() {
        text(&format!("{p}.aliases[{j}]"), a, true)?;
    }
    for (j, a) in party.original_script_names.iter().enumerate() {
        text(&format!("{p}.original_script_names[{j}]"), a, true)?;
    }
    for (j, id) in party.ids.iter().enumerate() {
        party_id(&format!("{p}.ids[{j}]"), id)?;
    }
    for (j, a) in party.addresses.iter().enumerate() {
        text(&format!("{p}.addresses[{j}]"), a, true)?;
    }
    for (j, c) in party.countries.iter().enumerate() {
        text(&format!("{p}.countries[{j}]"), c, true)?;
    }
    let bd = &party.birth_date;
    let ok = bd.is_empty()
        || (bd.len() == 4 && bd.bytes().all(|b| b.is_ascii_digit()))
        || (bd.len() == 7 && dates::parse(&format!("{bd}-01")).is_some())
        || dates::parse(bd).is_some();
    if !ok {
        return Err(bad(
            format!("{p}.birth_date"),
            "not YYYY, YYYY-MM or YYYY-MM-DD",
        ));
    }
    Ok(())
}

fn party_id(p: &str, id: &PartyId) -> Result<(), Invalid> {
    text(&format!("{p}.type"), &id.r#type, true)?;
    text(&format!("{p}.value"), &id.value, true)?;
    if !id.country.is_empty() {
        text(&format!("{p}.country"), &id.country, false)?;
    }
    Ok(())
}

fn denial(d: &DenialNotice) -> Result<(), Invalid> {
    text("denial.authority_reference", &d.authority_reference, true)?;
    enum_set::<tessera_proto::v1::RegimeBasis>(
        "denial.regime_basis",
        d.regime_basis,
        "regime basis",
    )?;
    text("denial.legal_basis", &d.legal_basis, false)?;
    enum_set::<tessera_proto::v1::DenialAction>("denial.action", d.action, "action")?;
    date("denial.decision_date", &d.decision_date, false)?;
    date("denial.review_due", &d.review_due, false)?;
    if let (Some(a), Some(b)) = (dates::parse(&d.decision_date), dates::parse(&d.review_due))
        && b < a
    {
        return Err(bad("denial.review_due", "before the decision date"));
    }
    items("denial", &d.items)?;
    parties("denial", &d.parties)?;
    country("denial.destination", &d.destination)?;
    text("denial.end_use", &d.end_use, false)?;
    text("denial.reason", &d.reason, false)?;
    enum_set::<tessera_proto::v1::NoticeStatus>("denial.status", d.status, "status")
}

fn grant(g: &tessera_proto::v1::GrantNotice) -> Result<(), Invalid> {
    text("grant.consultation_id", &g.consultation_id, true)?;
    g.denial_origin
        .parse::<AgencyId>()
        .map_err(|_| bad("grant.denial_origin", "not an agency id like DE-BAFA"))?;
    text("grant.denial_serial", &g.denial_serial, true)?;
    text("grant.answer", &g.answer, false)?;
    date("grant.decision_date", &g.decision_date, true)?;
    text("grant.reasons", &g.reasons, false)
}

fn enforcement(e: &EnforcementNotice) -> Result<(), Invalid> {
    enum_set::<tessera_proto::v1::EnforcementType>(
        "enforcement.type",
        e.r#type,
        "enforcement type",
    )?;
    parties("enforcement", &e.parties)?;
    items("enforcement", &e.items)?;
    for (i, r) in e.route.iter().enumerate() {
        text(&format!("enforcement.route[{i}]"), r, true)?;
    }
    date("enforcement.event_date", &e.event_date, false)?;
    text("enforcement.contact", &e.contact, true)?;
    date("enforcement.expires", &e.expires, false)?;
    text("enforcement.summary", &e.summary, false)?;
    enum_set::<tessera_proto::v1::NoticeStatus>("enforcement.status", e.status, "status")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_rule_is_invalid_argument_naming_the_field() {
        let status = tonic::Status::from(bad("denial.destination", "not a country"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "denial.destination: not a country");
    }
}
