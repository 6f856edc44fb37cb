//! The UN Security Council Consolidated List XML (`CONSOLIDATED_LIST` with
//! `INDIVIDUAL` and `ENTITY` records). `line` is the record's number in the
//! file (1-based, individuals and entities counted together).
//!
//! `list` is `UN`, `list_id` the `DATAID`, `reference` the `REFERENCE_NUMBER`
//! (`QDi.006`), `programs` the `UN_LIST_TYPE`, `start_date` `LISTED_ON`,
//! `updated` the latest `LAST_DAY_UPDATED`. The name joins `FIRST_NAME` ..
//! `FOURTH_NAME`; aliases are every non-empty `ALIAS_NAME`, split at `;` (good and low
//! quality); `NAME_ORIGINAL_SCRIPT` goes to `original_script_names`;
//! countries from `NATIONALITY` and the address countries (names, as given);
//! ids from `INDIVIDUAL_DOCUMENT` (type mapped by `ids`); the birth date is
//! the first exact date or single year (a `BETWEEN` range gives none).
//! Never puts a field value into an error.

use std::path::Path;

use crate::party::{Party, PartyKind};

use super::xml::{self, Item, Node};
use super::{Format, ListError, ListRecord, RowError, Rows, dates, ids, load, text, wrong_format};

const ROOT: &str = "CONSOLIDATED_LIST";
const RECORDS: [&str; 2] = ["INDIVIDUAL", "ENTITY"];
const NAME_PARTS: [&str; 4] = ["FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME"];

pub fn read(path: &Path) -> Result<Rows, ListError> {
    let bytes = load(path)?;
    let doc = std::str::from_utf8(&bytes)
        .map_err(|_| wrong_format(path, Format::Un, "the file is not UTF-8 text"))?;
    let mut root = None;
    let mut rows = Vec::new();
    xml::walk(doc, &RECORDS, |item| match item {
        Item::Root(name) => root = Some(name),
        Item::Record(n, node) => rows.push(record(n, &node)),
        Item::Broken(n, problem) => rows.push(Err(RowError::new(n, problem))),
    });
    match root.as_deref() {
        Some(ROOT) => Ok(rows),
        _ => Err(wrong_format(
            path,
            Format::Un,
            "the root element is not CONSOLIDATED_LIST",
        )),
    }
}

fn record(number: u64, node: &Node) -> Result<ListRecord, RowError> {
    let list_id = node
        .text_of("DATAID")
        .ok_or_else(|| RowError::new(number, "DATAID is missing"))?
        .to_string();
    let name = NAME_PARTS
        .iter()
        .filter_map(|p| node.text_of(p))
        .map(text::squash_spaces)
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        return Err(RowError::new(
            number,
            "FIRST_NAME to FOURTH_NAME are all empty",
        ));
    }
    let individual = node.name == "INDIVIDUAL";
    let mut party = Party {
        kind: if individual {
            PartyKind::Person
        } else {
            PartyKind::Organisation
        },
        name,
        ..Party::default()
    };
    let prefix = if individual { "INDIVIDUAL" } else { "ENTITY" };

    for alias in node.all(&format!("{prefix}_ALIAS")) {
        // One ALIAS_NAME may hold several names joined by "; ".
        if let Some(all) = alias.text_of("ALIAS_NAME") {
            for a in text::split_multi(all, ";") {
                let a = text::squash_spaces(a);
                if a != party.name {
                    text::push_unique(&mut party.aliases, &a);
                }
            }
        }
    }
    for original in node.all("NAME_ORIGINAL_SCRIPT") {
        text::push_unique(
            &mut party.original_script_names,
            &text::squash_spaces(&original.text),
        );
    }
    for nationality in node.all("NATIONALITY") {
        for value in nationality.all("VALUE") {
            text::push_unique(&mut party.countries, &value.text);
        }
    }
    for address in node.all(&format!("{prefix}_ADDRESS")) {
        let parts = ["STREET", "CITY", "STATE_PROVINCE", "ZIP_CODE", "COUNTRY"]
            .map(|p| address.text_of(p).unwrap_or(""));
        let joined = text::join_parts(parts);
        if !joined.is_empty() {
            text::push_unique(&mut party.addresses, &joined);
        }
        if let Some(country) = address.text_of("COUNTRY") {
            text::push_unique(&mut party.countries, country);
        }
    }
    for doc in node.all("INDIVIDUAL_DOCUMENT") {
        let (Some(label), Some(number)) = (doc.text_of("TYPE_OF_DOCUMENT"), doc.text_of("NUMBER"))
        else {
            continue;
        };
        let country = doc
            .text_of("ISSUING_COUNTRY")
            .or_else(|| doc.text_of("COUNTRY_OF_ISSUE"));
        if let Some(id) = ids::make_id(label, number, country)
            && !party.ids.contains(&id)
        {
            party.ids.push(id);
        }
    }
    party.birth_date = node
        .all("INDIVIDUAL_DATE_OF_BIRTH")
        .find_map(|d| match d.text_of("DATE") {
            Some(date) => dates::iso_date(date),
            None => d.text_of("YEAR").and_then(dates::birth_date),
        });

    let mut warnings = Vec::new();
    let updated = node
        .all("LAST_DAY_UPDATED")
        .flat_map(|l| l.all("VALUE"))
        .filter_map(|v| dates::iso_date(&v.text))
        .max();
    Ok(ListRecord {
        line: number,
        list: "UN".to_string(),
        list_id,
        party,
        sdn_type: None,
        programs: node
            .text_of("UN_LIST_TYPE")
            .map(|p| vec![p.to_string()])
            .unwrap_or_default(),
        start_date: dates::list_date(
            node.text_of("LISTED_ON").unwrap_or(""),
            "LISTED_ON",
            &mut warnings,
        ),
        end_date: None,
        updated,
        reference: node.text_of("REFERENCE_NUMBER").map(str::to_string),
        federal_register_notice: None,
        remarks: node.text_of("COMMENTS1").map(str::to_string),
        source_url: None,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::test_support::{assert_no_leak, fixture, split, temp_file};

    fn fixture_records() -> Vec<ListRecord> {
        let (ok, bad) = split(read(&fixture("un_consolidated.xml")).expect("fixture readable"));
        assert!(bad.is_empty(), "fixture records fail: {bad:?}");
        ok
    }

    #[test]
    fn fixture_records_read() {
        let recs = fixture_records();
        assert_eq!(recs.len(), 5);
        assert_eq!(
            recs.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let persons = recs
            .iter()
            .filter(|r| r.party.kind == PartyKind::Person)
            .count();
        assert_eq!(persons, 3);
        assert!(
            recs.iter()
                .all(|r| r.list == "UN" && r.start_date.is_some())
        );
        let scripts = recs
            .iter()
            .filter(|r| !r.party.original_script_names.is_empty())
            .count();
        assert_eq!(scripts, 3);
    }

    #[test]
    fn an_alias_field_of_several_names_gives_one_alias_each() {
        let xml = "<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL><DATAID>1</DATAID>\
                   <FIRST_NAME>Haleh</FIRST_NAME><SECOND_NAME>BAKHTIARI</SECOND_NAME>\
                   <INDIVIDUAL_ALIAS><QUALITY>Good</QUALITY>\
                   <ALIAS_NAME>Halen Bakhtiar; Haleh Bakhtiari;  Haleh Bakhtiyar ;</ALIAS_NAME>\
                   </INDIVIDUAL_ALIAS></INDIVIDUAL></INDIVIDUALS></CONSOLIDATED_LIST>";
        let path = temp_file("un.xml", xml.as_bytes());
        let (ok, bad) = split(read(&path).expect("readable"));
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            ok[0].party.aliases,
            ["Halen Bakhtiar", "Haleh Bakhtiari", "Haleh Bakhtiyar"]
        );
    }

    #[test]
    fn names_aliases_documents_and_dates() {
        let recs = fixture_records();
        let aziz = recs
            .iter()
            .find(|r| r.list_id == "6908072")
            .expect("record");
        assert!(aziz.party.name.starts_with("TARIQ "));
        assert_eq!(aziz.party.original_script_names, ["طارق عزيز"]);
        assert_eq!(aziz.party.aliases, ["Tariq Mikhail Aziz"]);
        assert!(aziz.party.ids.iter().any(|i| i.value == "No34409/129"));
        assert_eq!(aziz.reference.as_deref(), Some("IQi.025"));
        assert_eq!(aziz.party.birth_date.as_deref(), Some("1936-07-01"));
        let fituri = recs
            .iter()
            .find(|r| r.list_id == "6908704")
            .expect("record");
        assert_eq!(fituri.party.ids.len(), 2);
        assert_eq!(fituri.party.birth_date.as_deref(), Some("1988-05-07"));
        assert!(fituri.party.ids.iter().any(|i| i.id_type == "NATIONAL_ID"));
        let bosco = recs
            .iter()
            .find(|r| r.list_id == "6908021")
            .expect("record");
        assert!(bosco.party.aliases.len() >= 3);
        assert_eq!(
            bosco.party.birth_date, None,
            "a BETWEEN range is not a birth date"
        );
        let entity = recs
            .iter()
            .find(|r| r.list_id == "6908332")
            .expect("record");
        assert_eq!(entity.party.kind, PartyKind::Organisation);
        assert!(
            entity.party.addresses.iter().any(|a| a.contains(" & ")),
            "&amp; decoded"
        );
        assert!(entity.party.aliases.is_empty());
    }

    #[test]
    fn bad_records_are_reported_and_reading_goes_on() {
        let xml = "<?xml version=\"1.0\"?><CONSOLIDATED_LIST><INDIVIDUALS>\
            <INDIVIDUAL><DATAID>1</DATAID><FIRST_NAME>GOOD ONE</FIRST_NAME></INDIVIDUAL>\
            <INDIVIDUAL><FIRST_NAME>SECRET NOBODY</FIRST_NAME></INDIVIDUAL>\
            <INDIVIDUAL/>\
            <INDIVIDUAL><DATAID>4</DATAID><FIRST_NAME>GOOD&#32;TWO</FIRST_NAME></INDIVIDUAL>\
            </INDIVIDUALS><ENTITIES><ENTITY><DATAID>5</DATAID><FIRST_NAME>HIDDEN CO</ENTITY>";
        let rows = read(&temp_file("un.xml", xml.as_bytes())).expect("readable");
        let (ok, bad) = split(rows);
        assert_eq!(ok.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(ok[1].party.name, "GOOD TWO");
        assert_eq!(bad.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3, 5]);
        assert_no_leak(&bad, &ok, &["SECRET", "HIDDEN"]);
    }

    #[test]
    fn other_xml_is_a_list_error() {
        let path = temp_file("other.xml", b"<sdnList><sdnEntry/></sdnList>");
        assert!(matches!(read(&path), Err(ListError::WrongFormat { .. })));
    }
}
