//! FollowTheMoney entities, one JSON object per line, as OpenSanctions
//! publishes them: `{"id", "schema", "datasets", "properties": {prop: [values]}}`.
//!
//! Party schemas: `Person`; `Company`, `Organization`, `LegalEntity`,
//! `PublicBody` (organisation); `Vessel`; `Airplane` (aircraft). A line of any
//! other schema (`Sanction`, `Address`, ...) is a row error. The first `name`
//! is the name (else `caption`), the rest with `alias`, `weakAlias` and
//! `previousName` are aliases. Identifier properties map to schemes (see
//! `ID_PROPS`); countries from `country`, `nationality`, `citizenship`,
//! `jurisdiction`, `mainCountry`, `flag`, as given. `list` is the first of
//! `datasets` (else `ftm`), `list_id` the `id`, `programs` from `program` and
//! `programId`, `start_date` from `createdAt`, `updated` from `modifiedAt`.
//! Never puts a property value into an error.

use serde_json::{Map, Value};

use crate::party::{Party, PartyId, PartyKind};

use super::{ListRecord, RowError, dates, ids, text};

/// Identifier property → scheme. `registrationNumber` of an `Airplane` is its tail number.
const ID_PROPS: &[(&str, &str)] = &[
    ("leiCode", "LEI"),
    ("imoNumber", "IMO"),
    ("registrationNumber", "REG"),
    ("ogrnCode", "REG"),
    ("taxNumber", "TAX"),
    ("innCode", "TAX"),
    ("vatCode", "TAX"),
    ("passportNumber", "PASSPORT"),
    ("idNumber", "NATIONAL_ID"),
    ("swiftBic", "SWIFT_BIC"),
    ("mmsi", "MMSI"),
    ("callSign", "CALL_SIGN"),
    ("dunsCode", "DUNS"),
    ("serialNumber", "AIRCRAFT_MSN"),
];
const COUNTRY_PROPS: [&str; 6] = [
    "country",
    "nationality",
    "citizenship",
    "jurisdiction",
    "mainCountry",
    "flag",
];
const ALIAS_PROPS: [&str; 3] = ["alias", "weakAlias", "previousName"];

pub(super) fn record(line: u64, raw: &str) -> Result<ListRecord, RowError> {
    let value: Value =
        serde_json::from_str(raw).map_err(|e| RowError::new(line, text::json_problem(&e)))?;
    let entity = value
        .as_object()
        .ok_or_else(|| RowError::new(line, "the line is not a JSON object"))?;
    let list_id = scalar(entity.get("id")).ok_or_else(|| RowError::new(line, "id is missing"))?;
    let schema = entity.get("schema").and_then(Value::as_str).unwrap_or("");
    let kind = match schema {
        "Person" => PartyKind::Person,
        "Company" | "Organization" | "LegalEntity" | "PublicBody" => PartyKind::Organisation,
        "Vessel" => PartyKind::Vessel,
        "Airplane" => PartyKind::Aircraft,
        "" => return Err(RowError::new(line, "schema is missing")),
        _ => return Err(RowError::new(line, "schema is not a party schema")),
    };
    let empty = Map::new();
    let props = entity
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let values = |prop: &str| -> Vec<String> { strings(props.get(prop)) };

    let mut names = values("name");
    if names.is_empty() {
        names.extend(scalar(entity.get("caption")));
    }
    if names.is_empty() {
        return Err(RowError::new(line, "properties.name is empty"));
    }
    let name = names.remove(0);
    let mut party = Party {
        kind,
        ..Party::default()
    };
    names.extend(ALIAS_PROPS.iter().flat_map(|p| values(p)));
    for alias in names.iter().filter(|a| **a != name) {
        text::push_unique(&mut party.aliases, alias);
    }
    party.name = name;
    for (prop, scheme) in ID_PROPS {
        let scheme = match (*prop, kind) {
            ("registrationNumber", PartyKind::Aircraft) => "AIRCRAFT_TAIL",
            _ => *scheme,
        };
        for v in values(prop) {
            let id = party_id(scheme, &v);
            if !party.ids.contains(&id) {
                party.ids.push(id);
            }
        }
    }
    for prop in COUNTRY_PROPS {
        for c in values(prop) {
            text::push_unique(&mut party.countries, &c);
        }
    }
    for a in values("address") {
        text::push_unique(&mut party.addresses, &a);
    }
    party.birth_date = values("birthDate")
        .iter()
        .find_map(|d| dates::birth_date(d));

    let mut warnings = Vec::new();
    let first_date = |prop: &str, warnings: &mut Vec<String>| {
        values(prop)
            .first()
            .and_then(|d| dates::list_date(d.get(..10).unwrap_or(d), prop, warnings))
    };
    let notes = values("notes");
    Ok(ListRecord {
        line,
        list: entity
            .get("datasets")
            .and_then(|d| strings(Some(d)).into_iter().next())
            .unwrap_or_else(|| "ftm".to_string()),
        list_id,
        party,
        sdn_type: None,
        programs: ["program", "programId"]
            .iter()
            .flat_map(|p| values(p))
            .collect(),
        start_date: first_date("createdAt", &mut warnings),
        end_date: None,
        updated: first_date("modifiedAt", &mut warnings),
        reference: None,
        federal_register_notice: None,
        remarks: (!notes.is_empty()).then(|| notes.join("; ")),
        source_url: values("sourceUrl").into_iter().next(),
        warnings,
    })
}

fn party_id(scheme: &str, value: &str) -> PartyId {
    let value = value.trim();
    let value = match scheme {
        "IMO" => ids::strip_imo(value).unwrap_or(value),
        _ => value,
    };
    PartyId {
        id_type: scheme.to_string(),
        value: value.to_string(),
        country: None,
    }
}

/// The non-empty strings of a property (FTM values are lists of strings).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(|i| scalar(Some(i))).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => text::clean(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::test_support::{assert_no_leak, fixture, split, temp_file};

    fn fixture_records() -> Vec<ListRecord> {
        let (ok, bad) = split(
            super::super::read(super::super::Format::Ftm, &fixture("ftm.jsonl"))
                .expect("fixture readable"),
        );
        assert!(bad.is_empty(), "{bad:?}");
        ok
    }

    #[test]
    fn fixture_entities_read() {
        let recs = fixture_records();
        assert_eq!(recs.len(), 5);
        let kinds: Vec<PartyKind> = recs.iter().map(|r| r.party.kind).collect();
        assert_eq!(
            kinds,
            [
                PartyKind::Person,
                PartyKind::Organisation,
                PartyKind::Vessel,
                PartyKind::Aircraft,
                PartyKind::Organisation
            ]
        );
        let person = &recs[0];
        assert_eq!(person.list, "us_ofac_sdn");
        assert_eq!(person.list_id, "ofac-10481");
        assert_eq!(person.party.birth_date.as_deref(), Some("1957-03-11"));
        assert_eq!(person.party.aliases.len(), 3);
        assert_eq!(person.party.countries, ["ir"]);
        assert_eq!(person.programs, ["SDGT", "IRGC"]);
        assert_eq!(person.start_date.as_deref(), Some("2007-10-25"));
        assert!(person.party.ids.iter().any(|i| i.id_type == "PASSPORT"));
        let bank = &recs[1];
        assert!(
            bank.party
                .ids
                .iter()
                .any(|i| i.id_type == "LEI" && i.value == "253400V1H6ART1UQ0N98")
        );
        assert_eq!(
            bank.party.ids.iter().filter(|i| i.id_type == "TAX").count(),
            1
        );
        let vessel = &recs[2];
        assert!(
            vessel
                .party
                .ids
                .iter()
                .any(|i| i.id_type == "IMO" && i.value == "9322839")
        );
        assert_eq!(vessel.party.countries, ["lr"]);
        assert!(
            recs[3]
                .party
                .ids
                .iter()
                .any(|i| i.id_type == "AIRCRAFT_TAIL")
        );
        let org = &recs[4];
        assert_eq!(org.list, "ftm");
        assert_eq!(org.party.aliases[0], "الجهاد الاسلامي المصري");
    }

    #[test]
    fn bad_lines_are_reported_and_reading_goes_on() {
        let data = concat!(
            "{\"id\":\"a\",\"schema\":\"Person\",\"properties\":{\"name\":[\"FIRST GOOD\"]}}\n",
            "{\"id\":\"b\",\"schema\":\"Sanction\",\"properties\":{\"entity\":[\"SECRET ONE\"]}}\n",
            "{\"schema\":\"Person\",\"properties\":{\"name\":[\"SECRET TWO\"]}}\n",
            "{\"id\":\"c\",\"schema\":\"Company\",\"properties\":{\"alias\":[\"SECRET THREE\"]}}\n",
            "{\"id\":\"d\",\"schema\":\"Person\",\"properties\":{\"name\":[\"SECRET FOUR\"]}\n",
            "{\"id\":\"e\",\"schema\":\"Vessel\",\"properties\":{\"name\":[\"LAST GOOD\"],\"createdAt\":[\"3033-01-01\"]}}\n",
        );
        let (ok, bad) = split(
            super::super::read(
                super::super::Format::Ftm,
                &temp_file("f.jsonl", data.as_bytes()),
            )
            .expect("readable"),
        );
        assert_eq!(ok.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 6]);
        assert_eq!(ok[1].start_date, None);
        assert_eq!(ok[1].warnings.len(), 1);
        assert_eq!(bad.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3, 4, 5]);
        assert_no_leak(&bad, &ok, &["SECRET", "3033"]);
    }
}
