//! The BIS Denied Persons List in its native form, `dpl.txt`: tab-separated,
//! quoted, with a header of 12 columns.
//!
//! The DPL has one row per (denial, address): `list_id` is `DPL-` and the first
//! 16 hex digits of SHA-256 over `Name`, `Effective_Date` and `FR_Citation`, so
//! it is stable across file versions and shared by the rows of one denial at
//! several addresses. The list gives no party type: the kind stays the model's
//! default. `Action` goes into `remarks`, `Last_Update` into `updated`.
//!
//! Dates: a date that cannot be read or lies outside 1800..=2100 (one
//! `Last_Update` reads 3033-09-30, two
//! read 1023-11-01) becomes `None` and a warning naming the
//! column; the row is kept. Never puts a field value into an error.

use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::party::Party;

use super::{
    Format, ListError, ListRecord, RowError, Rows, dates, load, table, text, wrong_format,
};

pub const COLUMNS: [&str; 12] = [
    "Name",
    "Street_Address",
    "City",
    "State",
    "Country",
    "Postal_Code",
    "Effective_Date",
    "Expiration_Date",
    "Standard_Order",
    "Last_Update",
    "Action",
    "FR_Citation",
];

pub fn read(path: &Path) -> Result<Rows, ListError> {
    let bytes = load(path)?;
    let mut rows = table::rows(&bytes, b'\t', &COLUMNS).into_iter();
    match rows.next() {
        Some((_, Ok(header))) if header.iter().map(String::as_str).eq(COLUMNS) => {}
        _ => {
            return Err(wrong_format(
                path,
                Format::Dpl,
                "the first line is not the tab-separated DPL header",
            ));
        }
    }
    Ok(rows
        .map(|(line, fields)| fields.and_then(|f| record(line, &f)))
        .collect())
}

fn record(line: u64, f: &[String]) -> Result<ListRecord, RowError> {
    let [
        name,
        street,
        city,
        state,
        country,
        postal,
        effective,
        expiration,
        _order,
        updated,
        action,
        fr,
    ] = f
    else {
        return Err(RowError::new(
            line,
            format!("row has {} columns, expected 12", f.len()),
        ));
    };
    let name = text::clean(name).ok_or_else(|| RowError::new(line, "Name column is empty"))?;
    let mut warnings = Vec::new();
    let mut party = Party {
        name,
        ..Party::default()
    };
    let address = text::join_parts([street, city, state, postal, country].map(String::as_str));
    if !address.is_empty() {
        party.addresses.push(address);
    }
    if let Some(c) = text::clean(country) {
        party.countries.push(c);
    }
    Ok(ListRecord {
        line,
        list: "DPL".to_string(),
        list_id: stable_id(&party.name, effective, fr),
        party,
        sdn_type: None,
        programs: Vec::new(),
        start_date: dates::list_date(effective, "Effective_Date", &mut warnings),
        end_date: dates::list_date(expiration, "Expiration_Date", &mut warnings),
        updated: dates::list_date(updated, "Last_Update", &mut warnings),
        reference: None,
        federal_register_notice: text::clean(fr),
        remarks: text::clean(action),
        source_url: None,
        warnings,
    })
}

fn stable_id(name: &str, effective: &str, fr: &str) -> String {
    let mut h = Sha256::new();
    for part in [name.trim(), effective.trim(), fr.trim()] {
        h.update(part.as_bytes());
        h.update([0x1F]);
    }
    let digest = h.finalize();
    digest[..8].iter().fold(String::from("DPL-"), |mut id, b| {
        let _ = write!(id, "{b:02x}"); // writing to a String cannot fail
        id
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::test_support::{assert_no_leak, fixture, split, temp_file};

    fn fixture_records() -> Vec<ListRecord> {
        let (ok, bad) = split(read(&fixture("dpl.txt")).expect("fixture readable"));
        assert!(bad.is_empty(), "fixture rows fail: {bad:?}");
        ok
    }

    #[test]
    fn fixture_rows_read() {
        let recs = fixture_records();
        assert_eq!(recs.len(), 20);
        assert!(
            recs.iter()
                .all(|r| r.list == "DPL" && r.list_id.len() == 20)
        );
        assert!(recs.iter().all(|r| r.start_date.is_some()));
        let first = &recs[0];
        assert_eq!(first.line, 2);
        assert_eq!(first.start_date.as_deref(), Some("2003-06-19"));
        assert_eq!(first.end_date.as_deref(), Some("2056-06-29"));
        assert_eq!(first.updated.as_deref(), Some("2007-01-31"));
        assert!(
            first
                .federal_register_notice
                .as_deref()
                .is_some_and(|f| f.starts_with("68 F.R."))
        );
        assert_eq!(first.party.countries, ["US"]);
    }

    #[test]
    fn years_3033_and_1023_are_dropped_with_a_warning_and_the_rows_kept() {
        let recs = fixture_records();
        let odd: Vec<_> = recs.iter().filter(|r| !r.warnings.is_empty()).collect();
        // Last_Update 3033-09-30 (line 12) and 1023-11-01 (line 16).
        assert_eq!(odd.iter().map(|r| r.line).collect::<Vec<_>>(), [12, 16]);
        for row in &odd {
            assert_eq!(row.updated, None);
            assert!(row.start_date.is_some() && row.end_date.is_some());
            assert_eq!(row.warnings.len(), 1);
            assert!(row.warnings[0].starts_with("Last_Update:"));
        }
        assert_eq!(odd[0].start_date.as_deref(), Some("2022-09-26"));
        let names: Vec<&str> = odd.iter().map(|r| r.party.name.as_str()).collect();
        assert_no_leak(&[], &recs, &[names[0], names[1], "3033", "1023"]);
    }

    #[test]
    fn rows_of_one_denial_share_an_id() {
        let recs = fixture_records();
        let aerocargo: Vec<_> = recs
            .iter()
            .filter(|r| r.party.name.starts_with("AEROCARGO"))
            .collect();
        assert!(aerocargo.len() >= 2);
        assert!(aerocargo.iter().all(|r| r.list_id == aerocargo[0].list_id));
        assert_ne!(aerocargo[0].party.addresses, aerocargo[1].party.addresses);
        let mut ids: Vec<_> = recs.iter().map(|r| r.list_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), recs.len() - (aerocargo.len() - 1));
    }

    #[test]
    fn malformed_row_is_an_error_and_reading_goes_on() {
        let header = COLUMNS.map(|c| format!("\"{c}\"")).join("\t");
        let row = |name: &str| {
            format!(
                "\"{name}\"\t\"1 MAIN ST\"\t\"TOWN\"\t\"\"\t\"RU\"\t\"\"\t\"01/02/2020\"\t\"\"\t\"Y\"\t\"2020-01-03\"\t\"ADDED\"\t\"85 F.R. 1\""
            )
        };
        let data = format!(
            "{header}\n{}\n\"SECRET PERSON\"\t\"ONLY TWO\"\n{}\n",
            row("FIRST PARTY"),
            row("THIRD PARTY")
        );
        let (ok, bad) = split(read(&temp_file("dpl.txt", data.as_bytes())).expect("readable"));
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].line, 4);
        assert_eq!(ok[1].start_date.as_deref(), Some("2020-01-02"));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        assert_no_leak(&bad, &ok, &["SECRET PERSON", "ONLY TWO"]);
    }

    #[test]
    fn csl_file_is_not_a_dpl_file() {
        let err = read(&fixture("consolidated.csv")).expect_err("wrong format");
        assert!(matches!(err, ListError::WrongFormat { .. }));
    }
}
