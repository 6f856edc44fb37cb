//! What OFAC writes into the SDN `Remarks` column, read where it is clearly
//! structured: `DOB 10 Jan 1960; POB ...; nationality Iran; Passport A123
//! (Iran) expires 01 Jun 2021; Vessel Registration Identification IMO 9683740`.
//!
//! Items are separated by `;` (usually `; `); an `alt. ` prefix marks an alternative value.
//! Birth date: the first `DOB` that is unambiguous. Countries: `nationality`
//! and `citizen`. Identifiers: any item starting with a label known to `ids`.
//! Everything else (POB, gender, `Linked To:`, websites, sanctions notes) is
//! left in the remarks text only.

use crate::party::PartyId;

use super::{dates, ids, text};

/// The structured facts found in one remarks string.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Remarks {
    pub birth_date: Option<String>,
    pub countries: Vec<String>,
    pub ids: Vec<PartyId>,
}

pub fn parse(remarks: &str) -> Remarks {
    let mut out = Remarks::default();
    let remarks = remarks.trim().trim_end_matches('.');
    for item in remarks.split(';') {
        let item = item.trim();
        let item = item.strip_prefix("alt. ").unwrap_or(item).trim();
        if let Some(dob) = item.strip_prefix("DOB ") {
            if out.birth_date.is_none() {
                out.birth_date = dates::birth_date(dob);
            }
        } else if let Some(c) = item
            .strip_prefix("nationality ")
            .or_else(|| item.strip_prefix("citizen "))
        {
            text::push_unique(&mut out.countries, c);
        } else if let Some(id) = labelled_id(item)
            && !out.ids.contains(&id)
        {
            out.ids.push(id);
        }
    }
    out
}

/// `Passport C480ZRLP5 (Germany) expires 02 Apr 2027` → PASSPORT, C480ZRLP5, Germany.
fn labelled_id(item: &str) -> Option<PartyId> {
    let (label, rest) = ids::split_labelled(item)?;
    // A leading space lets "Passport issued in X" lose its whole (absent) value.
    let padded = format!(" {rest}");
    let rest = cut_at_any(
        &padded,
        &[" issued ", " expires ", " Issue Date", " Expiration Date"],
    );
    let (value, country) = match rest.strip_suffix(')').and_then(|r| r.rsplit_once(" (")) {
        Some((value, country)) => (value, Some(country)),
        None => (rest, None),
    };
    ids::make_id(label, value, country)
}

fn cut_at_any<'a>(s: &'a str, markers: &[&str]) -> &'a str {
    let end = markers
        .iter()
        .filter_map(|m| s.find(m))
        .min()
        .unwrap_or(s.len());
    s[..end].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(t: &str, v: &str, c: Option<&str>) -> PartyId {
        PartyId {
            id_type: t.into(),
            value: v.into(),
            country: c.map(Into::into),
        }
    }

    #[test]
    fn person_remarks() {
        let r = parse(
            "DOB 26 Nov 1988; nationality Germany; alt. nationality Lebanon; Gender Male; \
             Secondary sanctions risk: section 1(b) of Executive Order 13224; \
             Passport C480ZRLP5 (Germany) expires 02 Apr 2027; National ID No. 2865885 (Lebanon); \
             Linked To: HIZBALLAH.",
        );
        assert_eq!(r.birth_date.as_deref(), Some("1988-11-26"));
        assert_eq!(r.countries, ["Germany", "Lebanon"]);
        assert_eq!(
            r.ids,
            [
                id("PASSPORT", "C480ZRLP5", Some("Germany")),
                id("NATIONAL_ID", "2865885", Some("Lebanon"))
            ]
        );
    }

    #[test]
    fn first_unambiguous_dob_wins() {
        let r = parse(
            "DOB 1960 to 1962; alt. DOB 1958; alt. DOB 01 Jan 1957; nationality Korea, North.",
        );
        assert_eq!(r.birth_date.as_deref(), Some("1958"));
        assert_eq!(r.countries, ["Korea, North"]);
    }

    #[test]
    fn vessel_and_company_remarks() {
        let r =
            parse("Vessel Registration Identification IMO 9683740; MMSI 273340060; Linked To: X.");
        assert_eq!(
            r.ids,
            [id("IMO", "9683740", None), id("MMSI", "273340060", None)]
        );
        let r = parse(
            "Folio Mercantil No. 343997 (Mexico) issued 14 Dec 2005; R.F.C. # IPR-931014 (Mexico); \
             Organization Established Date 1969; Website www.example.com.",
        );
        assert_eq!(
            r.ids,
            [
                id("REG", "343997", Some("Mexico")),
                id("TAX", "IPR-931014", Some("Mexico"))
            ]
        );
        assert_eq!(parse("-0- "), Remarks::default());
        let r = parse(
            "Passport issued in Sarajevo, Bosnia-Herzegovina; nationality possibly Palestinian;arrested 2002.",
        );
        assert_eq!(r.ids, []);
        assert_eq!(r.countries, ["possibly Palestinian"]);
    }
}
