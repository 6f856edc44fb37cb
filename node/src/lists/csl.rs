//! The trade.gov Consolidated Screening List, `consolidated.csv`: a header and
//! 29 columns; multi-valued fields are separated by `; `.
//!
//! `list` is the `source` column verbatim; `list_id` is `entity_number` when
//! present (the SDN and other Treasury rows), else `_id`; an entity listed by
//! two sources has the same id in both, so ids are unique per source only. Names come from
//! `name` and `alt_names`; ids from the `ids` column (`CC, [dates, ]value,
//! label`, see `ids`) and `call_sign`; countries from `nationalities`,
//! `citizenships`, the country code that ends each address, and
//! `vessel_flag`; the birth date is the first unambiguous `dates_of_birth`
//! entry. A row without a `type` (DPL, Entity List, ...) keeps the model's
//! default kind. A leading `and ` of an alias (Entity List prose: `A; and B`)
//! is dropped. Never puts a field value into an error.

use std::path::Path;

use crate::party::{Party, PartyKind};

use super::{
    Format, ListError, ListRecord, RowError, Rows, dates, ids, load, table, text, wrong_format,
};

pub const COLUMNS: [&str; 29] = [
    "_id",
    "source",
    "entity_number",
    "type",
    "programs",
    "name",
    "title",
    "addresses",
    "federal_register_notice",
    "start_date",
    "end_date",
    "standard_order",
    "license_requirement",
    "license_policy",
    "call_sign",
    "vessel_type",
    "gross_tonnage",
    "gross_registered_tonnage",
    "vessel_flag",
    "vessel_owner",
    "remarks",
    "source_list_url",
    "alt_names",
    "citizenships",
    "dates_of_birth",
    "nationalities",
    "places_of_birth",
    "source_information_url",
    "ids",
];

const SEP: &str = "; ";

pub fn read(path: &Path) -> Result<Rows, ListError> {
    let bytes = load(path)?;
    let mut rows = table::rows(&bytes, b',', &COLUMNS).into_iter();
    match rows.next() {
        Some((_, Ok(header))) if header.iter().map(String::as_str).eq(COLUMNS) => {}
        _ => {
            return Err(wrong_format(
                path,
                Format::Csl,
                "the first line is not the 29-column CSL header",
            ));
        }
    }
    Ok(rows
        .map(|(line, fields)| fields.and_then(|f| record(line, &f)))
        .collect())
}

fn record(line: u64, f: &[String]) -> Result<ListRecord, RowError> {
    let col = |name: &str| -> &str {
        COLUMNS
            .iter()
            .position(|c| *c == name)
            .and_then(|i| f.get(i))
            .map_or("", |s| s.trim())
    };
    let name =
        text::clean(col("name")).ok_or_else(|| RowError::new(line, "name column is empty"))?;
    let list_id = text::clean(col("entity_number"))
        .or_else(|| text::clean(col("_id")))
        .ok_or_else(|| RowError::new(line, "_id and entity_number columns are both empty"))?;
    let mut warnings = Vec::new();

    let type_col = col("type");
    let kind = match type_col {
        "" => PartyKind::default(),
        t => t.parse::<PartyKind>().unwrap_or_else(|_| {
            warnings.push("type column: unknown value; kind left as organisation".to_string());
            PartyKind::default()
        }),
    };

    let mut party = Party {
        kind,
        name,
        ..Party::default()
    };
    for alias in text::split_multi(col("alt_names"), SEP) {
        // Entity List enumerates aliases as prose: "A; B; and C".
        let alias = alias.strip_prefix("and ").unwrap_or(alias);
        if alias != party.name {
            text::push_unique(&mut party.aliases, alias);
        }
    }
    for entry in text::split_multi(col("ids"), SEP) {
        if let Some(id) = ids::parse_csl_id(entry)
            && !party.ids.contains(&id)
        {
            party.ids.push(id);
        }
    }
    if let Some(id) = ids::make_id("Vessel Call Sign", col("call_sign"), None) {
        party.ids.push(id);
    }
    for c in text::split_multi(col("nationalities"), SEP)
        .chain(text::split_multi(col("citizenships"), SEP))
    {
        text::push_unique(&mut party.countries, c);
    }
    for address in text::split_multi(col("addresses"), SEP) {
        text::push_unique(&mut party.addresses, address);
        if let Some(cc) = address_country(address) {
            text::push_unique(&mut party.countries, cc);
        }
    }
    if let Some(flag) = text::clean(col("vessel_flag")) {
        text::push_unique(&mut party.countries, &flag);
    }
    party.birth_date = text::split_multi(col("dates_of_birth"), SEP).find_map(dates::birth_date);

    Ok(ListRecord {
        line,
        list: col("source").to_string(),
        list_id,
        party,
        sdn_type: (!type_col.is_empty()).then(|| type_col.to_ascii_lowercase()),
        programs: text::split_multi(col("programs"), SEP)
            .map(str::to_string)
            .collect(),
        start_date: dates::list_date(col("start_date"), "start_date", &mut warnings),
        end_date: dates::list_date(col("end_date"), "end_date", &mut warnings),
        updated: None,
        reference: None,
        federal_register_notice: text::clean(col("federal_register_notice")),
        remarks: text::clean(col("remarks")),
        source_url: text::clean(col("source_list_url"))
            .or_else(|| text::clean(col("source_information_url"))),
        warnings,
    })
}

/// CSL addresses end with an ISO alpha-2 code: `5 Lothbury, London, EC2R 7HD, GB`.
fn address_country(address: &str) -> Option<&str> {
    let last = address.rsplit(", ").next()?.trim();
    (last.len() == 2 && last.bytes().all(|b| b.is_ascii_uppercase())).then_some(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::test_support::{assert_no_leak, fixture, split, temp_file};

    fn fixture_records() -> Vec<ListRecord> {
        let (ok, bad) = split(read(&fixture("consolidated.csv")).expect("fixture readable"));
        assert!(bad.is_empty(), "fixture rows fail: {bad:?}");
        ok
    }

    #[test]
    fn fixture_counts_and_sources() {
        let recs = fixture_records();
        assert_eq!(recs.len(), 30);
        let count = |prefix: &str| recs.iter().filter(|r| r.list.starts_with(prefix)).count();
        assert_eq!(count("Entity List (EL)"), 6);
        assert_eq!(count("Denied Persons List (DPL)"), 4);
        assert_eq!(count("Unverified List (UVL)"), 3);
        assert_eq!(count("Military End User (MEU)"), 3);
        assert_eq!(count("Specially Designated Nationals (SDN)"), 8);
        assert!(recs.iter().all(|r| r.line >= 2 && !r.list_id.is_empty()));
    }

    #[test]
    fn sdn_rows_carry_ids_types_and_countries() {
        let recs = fixture_records();
        let vessels: Vec<_> = recs
            .iter()
            .filter(|r| r.party.kind == PartyKind::Vessel)
            .collect();
        assert_eq!(vessels.len(), 2);
        assert!(
            vessels
                .iter()
                .all(|v| v.sdn_type.as_deref() == Some("vessel"))
        );
        assert!(vessels.iter().all(|v| {
            v.party
                .ids
                .iter()
                .any(|i| i.id_type == "IMO" && i.value.len() == 7)
        }));
        let with_passport = recs
            .iter()
            .filter(|r| {
                r.party
                    .ids
                    .iter()
                    .any(|i| i.id_type == "PASSPORT" && i.country.is_some())
            })
            .count();
        assert_eq!(with_passport, 3);
        let persons = recs.iter().filter(|r| r.party.kind == PartyKind::Person);
        assert!(persons.clone().count() >= 3);
        assert!(persons.clone().all(|p| p.party.birth_date.is_some()));
        // Entity List rows have no type: the model's default kind, no sdn_type.
        let el = recs
            .iter()
            .find(|r| r.list.starts_with("Entity List"))
            .expect("an Entity List row");
        assert_eq!(el.sdn_type, None);
        assert!(el.start_date.is_some());
        assert!(el.federal_register_notice.is_some());
        assert!(
            recs.iter()
                .any(|r| r.list.starts_with("Entity List") && !r.party.aliases.is_empty())
        );
    }

    #[test]
    fn first_row_is_parsed_exactly() {
        let first = &fixture_records()[0];
        assert_eq!(first.line, 2);
        assert_eq!(first.list_id.len(), 40, "Entity List rows use the _id hash");
        assert_eq!(first.start_date.as_deref(), Some("2022-04-07"));
        assert_eq!(first.end_date, None);
        assert_eq!(
            first.federal_register_notice.as_deref(),
            Some("87 FR 20299")
        );
        assert_eq!(first.party.countries, ["BY"]);
        assert_eq!(first.party.addresses.len(), 1);
        assert_eq!(first.party.aliases.len(), 2);
        assert!(
            first.party.aliases[1].starts_with("JSC "),
            "leading 'and ' dropped"
        );
    }

    #[test]
    fn bad_rows_are_reported_and_reading_goes_on() {
        let header = COLUMNS.join(",");
        let good = "x1,Entity List (EL) - Bureau of Industry and Security,,,,ACME SECRET WIDGETS,,\"1 Road, Town, CN\",85 FR 1,2020-01-02,,,,,,,,,,,,,,,,,,,";
        let short = "x2,Entity List (EL) - Bureau of Industry and Security,,,,HIDDEN NAME CO";
        let no_name =
            "x3,Entity List (EL) - Bureau of Industry and Security,,,,,,,,,,,,,,,,,,,,,,,,,,,";
        let bad_date = "x4,Entity List (EL) - Bureau of Industry and Security,,,,OTHER NAME LTD,,,,2020-13-45,,,,,,,,,,,,,,,,,,,";
        let data = format!("{header}\n{good}\n{short}\n{no_name}\n{bad_date}\n{good}\n");
        let path = temp_file("consolidated.csv", data.as_bytes());
        let rows = read(&path).expect("readable");
        assert_eq!(rows.len(), 5);
        let (ok, bad) = split(rows);
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[0].party.countries, ["CN"]);
        assert_eq!(ok[1].line, 5);
        assert_eq!(ok[1].start_date, None);
        assert_eq!(ok[1].warnings.len(), 1);
        assert_eq!(ok[2].line, 6);
        let lines: Vec<u64> = bad.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4]);
        assert_no_leak(
            &bad,
            &ok,
            &["HIDDEN NAME", "ACME", "OTHER NAME", "2020-13-45"],
        );
    }

    #[test]
    fn wrong_header_is_a_list_error() {
        let path = temp_file("not.csv", b"a,b,c\n1,2,3\n");
        let err = read(&path).expect_err("not a CSL file");
        assert!(err.to_string().contains("not a csl file"), "{err}");
    }
}
