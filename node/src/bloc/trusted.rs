//! Trusted-operator records: the rules a record follows (consent above
//! all), and how an application's party is found among them — by any of a
//! record's identifiers, normalised as the match-key spec does
//! (`party::ids::normalise_id`).

use tessera_proto::v1::{Notice, TrustedOperator, distribution::Target};

use crate::notice::validate::{self, Invalid, bad, country, date, text};
use crate::party::{IdKey, normalise_id};

/// Serials of trusted-operator records start with this.
pub const SERIAL_PREFIX: &str = "TO-";
/// The programmes a record can belong to.
pub const PROGRAMMES: [&str; 3] = ["aeo", "validated-end-user", "general-authorisation"];
/// A record's standing.
pub const STANDINGS: [&str; 3] = ["valid", "suspended", "revoked"];

/// The rules of a trusted-operator notice, as issued and as received.
pub fn validate(n: &Notice, t: &TrustedOperator) -> Result<(), Invalid> {
    if !t.consent {
        return Err(bad(
            "trusted.consent",
            "the operator has not consented to the exchange; a record without consent is not published",
        ));
    }
    if !n.serial.starts_with(SERIAL_PREFIX) {
        return Err(bad(
            "serial",
            format!("a trusted-operator record's serial starts with {SERIAL_PREFIX}"),
        ));
    }
    if !PROGRAMMES.contains(&t.programme.as_str()) {
        return Err(bad(
            "trusted.programme",
            format!("use one of {}", PROGRAMMES.join(", ")),
        ));
    }
    let party = t
        .party
        .as_ref()
        .ok_or_else(|| bad("trusted.party", "missing"))?;
    validate::party("trusted.party", party)?;
    if party.ids.is_empty() {
        return Err(bad(
            "trusted.party.ids",
            "at least one identifier (EORI, REG, LEI, ...) is required: records are matched on identifiers",
        ));
    }
    if !STANDINGS.contains(&t.standing.as_str()) {
        return Err(bad(
            "trusted.standing",
            format!("use one of {}", STANDINGS.join(", ")),
        ));
    }
    date("trusted.validated_on", &t.validated_on, true)?;
    for (i, e) in t.scope_items.iter().enumerate() {
        text(&format!("trusted.scope_items[{i}]"), e, true)?;
    }
    for (i, c) in t.scope_destinations.iter().enumerate() {
        country(&format!("trusted.scope_destinations[{i}]"), c)?;
        if c.is_empty() {
            return Err(bad(format!("trusted.scope_destinations[{i}]"), "empty"));
        }
    }
    text("trusted.reason", &t.reason, false)?;
    match n.distribution.as_ref().and_then(|d| d.target.as_ref()) {
        Some(Target::Group(_) | Target::Local(_)) => Ok(()),
        _ => Err(bad(
            "distribution",
            "a trusted-operator record goes to a bloc's group (group:G) or stays local",
        )),
    }
}

fn same(a: &IdKey, b: &IdKey) -> bool {
    a.scheme == b.scheme
        && a.value == b.value
        && (a.global || a.country.is_none() || b.country.is_none() || a.country == b.country)
}

/// The schemes of the identifiers `party` shares with `record` (EORI, LEI,
/// ...), never their values; empty when none.
pub fn matched_on(
    party: &tessera_proto::v1::Party,
    record: &tessera_proto::v1::Party,
) -> Vec<String> {
    let norm = |p: &tessera_proto::v1::Party| -> Vec<IdKey> {
        crate::notice::json::party_from_wire(p)
            .ids
            .iter()
            .filter_map(normalise_id)
            .collect()
    };
    let ours = norm(party);
    let mut out: Vec<String> = norm(record)
        .iter()
        .filter(|r| ours.iter().any(|o| same(o, r)))
        .map(|r| r.scheme.clone())
        .collect();
    out.dedup();
    out
}

/// Whether an application's entries and destination fall within the scope
/// (an empty scope covers everything; entries by prefix, case-insensitive).
pub fn in_scope(t: &TrustedOperator, entries: &[String], destination: &str) -> bool {
    let items = t.scope_items.is_empty()
        || entries.iter().all(|e| {
            let e = e.to_ascii_uppercase();
            t.scope_items
                .iter()
                .any(|s| e.starts_with(&s.to_ascii_uppercase()))
        });
    let dest = t.scope_destinations.is_empty()
        || t.scope_destinations
            .iter()
            .any(|d| d.eq_ignore_ascii_case(destination));
    items && dest
}

#[cfg(test)]
mod tests {
    use tessera_proto::v1::{Party, PartyId, PartyKind};

    use super::*;

    fn party(ids: &[(&str, &str)]) -> Party {
        Party {
            kind: PartyKind::Organisation as i32,
            name: "Example Logistics BV".into(),
            ids: ids
                .iter()
                .map(|(t, v)| PartyId {
                    r#type: (*t).into(),
                    value: (*v).into(),
                    country: String::new(),
                })
                .collect(),
            ..Party::default()
        }
    }

    fn record() -> (Notice, TrustedOperator) {
        let n = Notice {
            origin: "NL-CDIU".into(),
            serial: "TO-NL-AEO-1".into(),
            distribution: Some(crate::policy::parse_to("group:eu").unwrap()),
            ..Notice::default()
        };
        let t = TrustedOperator {
            programme: "aeo".into(),
            party: Some(party(&[
                ("EORI", "NL123456789"),
                ("LEI", "529900T8BM49AURSDO55"),
            ])),
            standing: "valid".into(),
            validated_on: "2025-06-01".into(),
            scope_items: vec!["5A002".into()],
            scope_destinations: vec![],
            consent: true,
            reason: String::new(),
            status: 1,
        };
        (n, t)
    }

    #[test]
    fn a_record_without_consent_is_refused() {
        let (n, mut t) = record();
        assert_eq!(validate(&n, &t), Ok(()));
        t.consent = false;
        assert_eq!(validate(&n, &t).unwrap_err().field, "trusted.consent");
    }

    #[test]
    fn a_record_to_all_peers_is_refused() {
        let (mut n, t) = record();
        n.distribution = Some(crate::policy::parse_to("all").unwrap());
        assert_eq!(validate(&n, &t).unwrap_err().field, "distribution");
    }

    #[test]
    fn any_identifier_matches_and_only_its_scheme_is_told() {
        let (_, t) = record();
        let rec = t.party.clone().unwrap();
        assert_eq!(
            matched_on(&party(&[("eori", "nl 1234-56789")]), &rec),
            ["EORI"]
        );
        assert_eq!(
            matched_on(&party(&[("LEI", "529900T8BM49AURSDO55")]), &rec),
            ["LEI"]
        );
        assert!(matched_on(&party(&[("EORI", "NL999999999")]), &rec).is_empty());
        assert!(matched_on(&party(&[]), &rec).is_empty());
    }

    #[test]
    fn scope_is_by_entry_prefix_and_destination() {
        let (_, mut t) = record();
        assert!(in_scope(&t, &["5a002.a.1".into()], "US"));
        assert!(!in_scope(&t, &["5A002".into(), "ML10".into()], "US"));
        t.scope_destinations = vec!["US".into()];
        assert!(!in_scope(&t, &["5A002".into()], "CN"));
    }
}
