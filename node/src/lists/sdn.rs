//! The OFAC SDN list in its CSV form: `sdn.csv` (headerless, CRLF, a trailing
//! 0x1A byte, `-0-` for empty) joined on `ent_num` with `alt.csv` (aliases:
//! aka, fka, nka) and `add.csv` (addresses) when they sit beside it.
//!
//! `list` is `SDN`, `list_id` the `ent_num`, `sdn_type` the lower-case
//! `SDN_Type` with `-0-` read as `entity`. Programs come from `Program`
//! (`SDGT] [IRGC`). Birth date, nationality/citizenship countries and
//! identifiers come from `Remarks` (see `sdn_remarks`); countries also from
//! the addresses and `Vess_flag`; the call sign is an id. A bad row of
//! `alt.csv` or `add.csv` is reported as a row error that names that file,
//! with its line in that file, after the rows of `sdn.csv`. A file whose first
//! row is not 12 columns starting with a number is not an SDN file. Never puts a
//! field value into an error.

use std::collections::HashMap;
use std::path::Path;

use crate::party::{Party, PartyKind};

use super::{
    Format, ListError, ListRecord, RowError, Rows, ids, load, sdn_remarks, table, text,
    wrong_format,
};

const SDN_COLUMNS: [&str; 12] = [
    "ent_num",
    "SDN_Name",
    "SDN_Type",
    "Program",
    "Title",
    "Call_Sign",
    "Vess_type",
    "Tonnage",
    "GRT",
    "Vess_flag",
    "Vess_owner",
    "Remarks",
];
const ALT_COLUMNS: [&str; 5] = ["ent_num", "alt_num", "alt_type", "alt_name", "alt_remarks"];
const ADD_COLUMNS: [&str; 6] = [
    "ent_num",
    "add_num",
    "address",
    "city_state_postal",
    "country",
    "add_remarks",
];

/// What the side files add to an entity.
#[derive(Default)]
struct Extra {
    aliases: Vec<String>,
    addresses: Vec<String>,
    countries: Vec<String>,
}

pub fn read(path: &Path) -> Result<Rows, ListError> {
    let bytes = load(path)?;
    let rows = table::rows(&bytes, b',', &SDN_COLUMNS);
    let starts_well = match rows.first() {
        Some((_, Ok(first))) => ent_num(&first[0]).is_some(),
        Some((_, Err(_))) => false,
        None => true,
    };
    if !starts_well {
        return Err(wrong_format(
            path,
            Format::Sdn,
            "the first row is not 12 columns starting with an entity number (sdn.csv has no header)",
        ));
    }
    let mut side_errors = Vec::new();
    let mut extra: HashMap<u64, Extra> = HashMap::new();
    let dir = path.parent().unwrap_or(Path::new("."));
    read_side(
        &dir.join("alt.csv"),
        "alt.csv",
        &ALT_COLUMNS,
        &mut side_errors,
        |f| {
            let e = extra
                .entry(ent_num(&f[0]).ok_or(NOT_A_NUMBER)?)
                .or_default();
            if let Some(alias) = text::clean(&f[3]) {
                text::push_unique(&mut e.aliases, &alias);
            }
            Ok(())
        },
    )?;
    read_side(
        &dir.join("add.csv"),
        "add.csv",
        &ADD_COLUMNS,
        &mut side_errors,
        |f| {
            let e = extra
                .entry(ent_num(&f[0]).ok_or(NOT_A_NUMBER)?)
                .or_default();
            let address = text::join_parts([f[2].as_str(), &f[3], &f[4]]);
            text::push_unique(&mut e.addresses, &address);
            if let Some(c) = text::clean(&f[4]) {
                text::push_unique(&mut e.countries, &c);
            }
            Ok(())
        },
    )?;

    let mut out: Rows = rows
        .into_iter()
        .map(|(line, fields)| fields.and_then(|f| record(line, &f, &mut extra)))
        .collect();
    out.extend(side_errors.into_iter().map(Err));
    Ok(out)
}

const NOT_A_NUMBER: &str = "ent_num column is not a number";

/// Reads a side file if it exists; a row that `apply` rejects becomes an
/// error naming the file.
fn read_side(
    path: &Path,
    file: &str,
    columns: &[&str],
    errors: &mut Vec<RowError>,
    mut apply: impl FnMut(&[String]) -> Result<(), &'static str>,
) -> Result<(), ListError> {
    if !path.is_file() {
        return Ok(());
    }
    let bytes = load(path)?;
    for (line, fields) in table::rows(&bytes, b',', columns) {
        let result = fields.and_then(|f| apply(&f).map_err(|problem| RowError::new(line, problem)));
        if let Err(e) = result {
            errors.push(RowError::new(e.line, format!("{file}: {}", e.message)));
        }
    }
    Ok(())
}

/// `f` has exactly the 12 columns of `SDN_COLUMNS`: `table::rows` rejects
/// any other width, so the indexing below cannot go out of bounds.
fn record(
    line: u64,
    f: &[String],
    extra: &mut HashMap<u64, Extra>,
) -> Result<ListRecord, RowError> {
    let num = ent_num(&f[0]).ok_or_else(|| RowError::new(line, NOT_A_NUMBER))?;
    let name = text::clean(&f[1]).ok_or_else(|| RowError::new(line, "SDN_Name column is empty"))?;
    let sdn_type = text::clean(&f[2]).map_or_else(|| "entity".to_string(), |t| t.to_lowercase());
    let kind = match sdn_type.as_str() {
        "individual" => PartyKind::Person,
        "vessel" => PartyKind::Vessel,
        "aircraft" => PartyKind::Aircraft,
        _ => PartyKind::Organisation,
    };
    let remarks = text::clean(&f[11]);
    let facts = sdn_remarks::parse(remarks.as_deref().unwrap_or(""));
    let side = extra.remove(&num).unwrap_or_default();

    let mut party = Party {
        kind,
        name,
        birth_date: facts.birth_date,
        ids: facts.ids,
        countries: facts.countries,
        addresses: side.addresses,
        ..Party::default()
    };
    party.aliases = side
        .aliases
        .into_iter()
        .filter(|a| *a != party.name)
        .collect();
    for c in side.countries.iter().chain(text::clean(&f[9]).as_ref()) {
        text::push_unique(&mut party.countries, c);
    }
    if let Some(id) = ids::make_id("Vessel Call Sign", &f[5], None)
        && !party.ids.contains(&id)
    {
        party.ids.push(id);
    }
    Ok(ListRecord {
        line,
        list: "SDN".to_string(),
        list_id: num.to_string(),
        party,
        sdn_type: Some(sdn_type),
        programs: text::split_multi(f[3].trim_matches(['[', ']', ' ']), "] [")
            .map(str::to_string)
            .collect(),
        remarks,
        ..ListRecord::default()
    })
}

fn ent_num(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::test_support::{assert_no_leak, fixture, split, temp_file};

    fn fixture_records() -> Vec<ListRecord> {
        let (ok, bad) = split(read(&fixture("sdn/sdn.csv")).expect("fixture readable"));
        assert!(bad.is_empty(), "fixture rows fail: {bad:?}");
        ok
    }

    fn by_id<'a>(recs: &'a [ListRecord], id: &str) -> &'a ListRecord {
        recs.iter()
            .find(|r| r.list_id == id)
            .expect("entity in fixture")
    }

    #[test]
    fn fixture_counts_and_types() {
        let recs = fixture_records();
        assert_eq!(recs.len(), 31);
        assert!(recs.iter().all(|r| r.list == "SDN"));
        let count = |t: &str| {
            recs.iter()
                .filter(|r| r.sdn_type.as_deref() == Some(t))
                .count()
        };
        assert_eq!(count("vessel"), 3);
        assert_eq!(count("aircraft"), 2);
        assert_eq!(count("entity"), 8);
        assert_eq!(count("individual"), 18);
        assert_eq!(recs.last().map(|r| r.line), Some(31));
    }

    #[test]
    fn aliases_from_alt_land_on_their_entity() {
        let recs = fixture_records();
        let muammar = by_id(&recs, "12606");
        assert_eq!(muammar.party.name, "QADHAFI, Muammar");
        assert!(muammar.party.aliases.iter().any(|a| a.contains("GADDAFI")));
        assert!(
            muammar
                .party
                .aliases
                .iter()
                .all(|a| *a != muammar.party.name)
        );
        let saadi = by_id(&recs, "12629");
        assert!(saadi.party.aliases.iter().any(|a| a.contains("Saadi")));
        assert!(saadi.party.aliases.iter().all(|a| !a.contains("Muammar")));
        assert_eq!(by_id(&recs, "36").party.aliases, ["AERO-CARIBBEAN"]);
        assert!(by_id(&recs, "7698").party.aliases.is_empty());
    }

    #[test]
    fn addresses_remarks_and_ids() {
        let recs = fixture_records();
        let cubana = by_id(&recs, "36");
        assert_eq!(cubana.party.kind, PartyKind::Organisation);
        assert_eq!(cubana.party.addresses, ["Havana, Cuba"]);
        assert_eq!(cubana.party.countries, ["Cuba"]);
        assert_eq!(cubana.programs, ["CUBA"]);
        let soleimani = by_id(&recs, "10481");
        assert_eq!(soleimani.party.kind, PartyKind::Person);
        assert_eq!(soleimani.party.birth_date.as_deref(), Some("1957-03-11"));
        assert!(soleimani.party.countries.iter().any(|c| c == "Iran"));
        assert!(soleimani.programs.len() >= 4);
        let muammar = by_id(&recs, "12606");
        assert_eq!(muammar.party.birth_date.as_deref(), Some("1942"));
        let vessel = by_id(&recs, "46613");
        assert_eq!(vessel.party.kind, PartyKind::Vessel);
        assert!(
            vessel
                .party
                .ids
                .iter()
                .any(|i| i.id_type == "IMO" && i.value == "9322839")
        );
        assert!(vessel.party.ids.iter().any(|i| i.id_type == "MMSI"));
        let robow = by_id(&recs, "11313");
        assert!(robow.party.ids.iter().any(|i| i.id_type == "PASSPORT"
            && i.value == "0310857"
            && i.country.as_deref() == Some("Eritrea")));
        let vtb = by_id(&recs, "17013");
        assert!(
            vtb.party
                .ids
                .iter()
                .any(|i| i.id_type == "SWIFT_BIC" && i.value == "VTBRRUMM")
        );
        let tax = by_id(&recs, "44824");
        assert!(
            tax.party
                .ids
                .iter()
                .any(|i| i.id_type == "TAX" && i.country.as_deref() == Some("Russia"))
        );
        assert!(tax.party.ids.iter().any(|i| i.id_type == "REG"));
    }

    #[test]
    fn without_side_files_only_sdn_is_read() {
        let sdn = std::fs::read(fixture("sdn/sdn.csv")).expect("fixture");
        let (ok, bad) = split(read(&temp_file("sdn.csv", &sdn)).expect("readable"));
        assert!(bad.is_empty());
        assert_eq!(ok.len(), 31);
        assert!(
            ok.iter()
                .all(|r| r.party.aliases.is_empty() && r.party.addresses.is_empty())
        );
    }

    #[test]
    fn malformed_rows_are_reported_and_reading_goes_on() {
        let data = "36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n\
                    X1,\"SECRET NAME\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n\
                    37,\"TRUNCATED SECRET\"\r\n\
                    38,\"GOOD TWO\",\"individual\",\"SDGT] [IRGC\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"DOB 1960.\"\r\n\x1a";
        let path = temp_file("sdn.csv", data.as_bytes());
        let dir = path.parent().expect("temp dir");
        std::fs::write(
            dir.join("alt.csv"),
            "38,1,\"aka\",\"ALIAS OF TWO\",-0- \r\nBAD,2,\"aka\",\"HIDDEN ALIAS\",-0- \r\n\x1a",
        )
        .expect("alt");
        let rows = read(&path).expect("readable");
        let (ok, bad) = split(rows);
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].line, 4);
        assert_eq!(ok[1].programs, ["SDGT", "IRGC"]);
        assert_eq!(ok[1].party.aliases, ["ALIAS OF TWO"]);
        assert_eq!(ok[1].party.birth_date.as_deref(), Some("1960"));
        let found: Vec<(u64, &str)> = bad.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(
            found,
            [
                (2, "ent_num column is not a number"),
                (3, "row has 2 columns, expected 12"),
                (2, "alt.csv: ent_num column is not a number"),
            ]
        );
        assert_no_leak(&bad, &ok, &["SECRET", "HIDDEN"]);
    }

    #[test]
    fn csl_file_is_not_an_sdn_file() {
        assert!(read(&fixture("consolidated.csv")).is_err());
    }
}
