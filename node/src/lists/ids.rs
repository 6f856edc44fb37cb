//! Identifier labels of the lists (OFAC's `Tax ID No.`, `Cedula No.`, the UN's
//! `National Identification Number`, ...) mapped to the schemes of
//! [`PartyId`]: `PASSPORT`, `NATIONAL_ID`, `TAX`, `REG`, `LEI`, `IMO`, `MMSI`,
//! `SWIFT_BIC`, `DUNS`, `ISIN`, `AIRCRAFT_MSN`, `AIRCRAFT_TAIL`,
//! `DRIVER_LICENSE`, `CALL_SIGN`.
//!
//! Only labels that name an identifier of the party are mapped; descriptive
//! entries that share the syntax (gender, website, e-mail, sanctions notes,
//! digital currency addresses, establishment dates) give `None` and are left
//! out of the party.

use crate::party::PartyId;

/// Source label → scheme. Matching ignores case and runs of spaces.
pub const LABELS: &[(&str, &str)] = &[
    ("Passport", "PASSPORT"),
    ("Diplomatic Passport", "PASSPORT"),
    ("British National Overseas Passport", "PASSPORT"),
    ("Stateless Person Passport", "PASSPORT"),
    ("Travel Document Number", "PASSPORT"),
    ("Numéro de passeport", "PASSPORT"),
    ("Número de pasaporte", "PASSPORT"),
    ("National ID No.", "NATIONAL_ID"),
    ("National Foreign ID Number", "NATIONAL_ID"),
    ("National Identification Number", "NATIONAL_ID"),
    ("Identification Number", "NATIONAL_ID"),
    ("Cedula No.", "NATIONAL_ID"),
    ("C.U.R.P.", "NATIONAL_ID"),
    ("CURP #", "NATIONAL_ID"),
    ("D.N.I.", "NATIONAL_ID"),
    ("N.I.E.", "NATIONAL_ID"),
    ("C.U.I.", "NATIONAL_ID"),
    ("C.U.I.P.", "NATIONAL_ID"),
    ("Personal ID Card", "NATIONAL_ID"),
    ("Citizen's Card Number", "NATIONAL_ID"),
    ("Bosnian Personal ID No.", "NATIONAL_ID"),
    ("Moroccan Personal ID No.", "NATIONAL_ID"),
    ("CNP (Personal Numerical Code)", "NATIONAL_ID"),
    ("Kenyan ID No.", "NATIONAL_ID"),
    ("Turkish Identification Number", "NATIONAL_ID"),
    ("Tazkira National ID Card", "NATIONAL_ID"),
    ("UAE Identification", "NATIONAL_ID"),
    ("Numero de Identidad", "NATIONAL_ID"),
    ("SSN", "NATIONAL_ID"),
    ("Electoral Registry No.", "NATIONAL_ID"),
    ("Credencial electoral", "NATIONAL_ID"),
    ("I.F.E.", "NATIONAL_ID"),
    ("Residency Number", "NATIONAL_ID"),
    ("Refugee ID Card", "NATIONAL_ID"),
    ("Stateless Person ID Card", "NATIONAL_ID"),
    ("Birth Certificate Number", "NATIONAL_ID"),
    ("Immigration No.", "NATIONAL_ID"),
    ("Tax ID No.", "TAX"),
    ("NIT #", "TAX"),
    ("R.F.C.", "TAX"),
    ("RFC", "TAX"),
    ("RUC #", "TAX"),
    ("RIF #", "TAX"),
    ("RSIN", "TAX"),
    ("RTN", "TAX"),
    ("V.A.T. Number", "TAX"),
    ("C.I.F.", "TAX"),
    ("C.U.I.T.", "TAX"),
    ("Italian Fiscal Code", "TAX"),
    ("Fiscal Code", "TAX"),
    ("Romanian Tax Registration", "TAX"),
    ("US FEIN", "TAX"),
    ("Paraguayan tax identification number", "TAX"),
    ("Numero Unico de Identificacao Tributaria (NUIT)", "TAX"),
    ("Registration Number", "REG"),
    ("Registration ID", "REG"),
    ("Company Number", "REG"),
    ("UK Company Number", "REG"),
    ("Commercial Registry Number", "REG"),
    ("Business Registration Number", "REG"),
    ("Business Registration Document #", "REG"),
    ("Business Number", "REG"),
    ("Certificate of Incorporation Number", "REG"),
    ("Chamber of Commerce Number", "REG"),
    ("Dubai Chamber of Commerce Membership No.", "REG"),
    ("Istanbul Chamber of Comm. No.", "REG"),
    ("Folio Mercantil No.", "REG"),
    ("Matricula Mercantil No", "REG"),
    ("Government Gazette Number", "REG"),
    ("C.R. No.", "REG"),
    ("Romanian C.R.", "REG"),
    ("Trade License No.", "REG"),
    ("Public Registration Number", "REG"),
    ("Enterprise Number", "REG"),
    ("Unified Social Credit Code (USCC)", "REG"),
    ("United Social Credit Code Certificate (USCCC)", "REG"),
    ("Economic Register Number (CBLS)", "REG"),
    ("Registered Charity No.", "REG"),
    ("Central Registration System Number", "REG"),
    ("LE Number", "REG"),
    ("Branch Unit Number", "REG"),
    ("MSB Registration Number", "REG"),
    // An LEI when the value has the 20-character LEI shape, else a registration number.
    ("Legal Entity Number", "LEI"),
    ("Vessel Registration Identification", "IMO"),
    ("MMSI", "MMSI"),
    ("SWIFT/BIC", "SWIFT_BIC"),
    ("D-U-N-S Number", "DUNS"),
    ("ISIN", "ISIN"),
    (
        "Aircraft Manufacturer's Serial Number (MSN)",
        "AIRCRAFT_MSN",
    ),
    ("Aircraft Serial Identification", "AIRCRAFT_MSN"),
    ("Aircraft Tail Number", "AIRCRAFT_TAIL"),
    ("Previous Aircraft Tail Number", "AIRCRAFT_TAIL"),
    ("Driver's License No.", "DRIVER_LICENSE"),
    ("Other Vessel Call Sign", "CALL_SIGN"),
    ("Vessel Call Sign", "CALL_SIGN"),
];

/// The scheme for a source label, if the label names an identifier.
pub fn scheme(label: &str) -> Option<&'static str> {
    let label = normalise_label(label);
    normalised_labels()
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, s)| *s)
}

/// If `text` starts with a known label followed by a space, that label's
/// scheme-less form and the rest: `("Tax ID No.", "7703436139 (Russia)")`.
/// The longest label wins (`Diplomatic Passport` over `Passport`).
pub fn split_labelled(text: &str) -> Option<(&'static str, &str)> {
    let lower = text.to_lowercase();
    LABELS
        .iter()
        .zip(normalised_labels())
        .filter(|(_, (norm, _))| {
            lower.starts_with(norm.as_str()) && lower[norm.len()..].starts_with(' ')
        })
        .max_by_key(|(_, (norm, _))| norm.len())
        .and_then(|((label, _), (norm, _))| Some((*label, text.get(norm.len()..)?.trim())))
}

fn normalised_labels() -> &'static [(String, &'static str)] {
    static CELL: std::sync::OnceLock<Vec<(String, &'static str)>> = std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        LABELS
            .iter()
            .map(|(l, s)| (normalise_label(l), *s))
            .collect()
    })
}

/// Builds an id from a label, a value and an optional issuing country,
/// mapping the label and tidying the value (`IMO 9187629` → `9187629` under
/// `IMO`). `None` when the label is not an identifier or the value is empty.
pub fn make_id(label: &str, value: &str, country: Option<&str>) -> Option<PartyId> {
    let mut scheme = scheme(label)?;
    let value = super::text::squash_spaces(value);
    let mut value = value.trim_start_matches(['#', ':']).trim();
    if let Some(imo) = strip_imo(value) {
        scheme = "IMO";
        value = imo;
    } else if scheme == "IMO" {
        // "Vessel Registration Identification" without an IMO number is a national registration.
        scheme = "REG";
    }
    if scheme == "LEI" && !is_lei(value) {
        scheme = "REG";
    }
    if value.is_empty() || value == "-0-" {
        return None;
    }
    Some(PartyId {
        id_type: scheme.to_string(),
        value: value.to_string(),
        country: country
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string),
    })
}

/// Parses one entry of the CSL `ids` column: `[country, ][issue date, ]
/// [expiry date, ]value, label`, e.g. `LB, 2020-08-28, RL 3367620, Passport`.
pub fn parse_csl_id(entry: &str) -> Option<PartyId> {
    let (rest, label) = entry.trim().rsplit_once(", ")?;
    scheme(label)?;
    let mut parts: Vec<&str> = rest.split(", ").collect();
    let country = match parts.as_slice() {
        [first, _, ..] if is_country_code(first) => Some(parts.remove(0)),
        _ => None,
    };
    // Issue and expiry dates stand between the country and the value.
    while parts.len() > 1 && super::dates::iso_date(parts[0]).is_some() {
        parts.remove(0);
    }
    make_id(label, &parts.join(", "), country)
}

fn normalise_label(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(':')
        .to_lowercase()
}

pub fn strip_imo(value: &str) -> Option<&str> {
    let rest = value.strip_prefix("IMO")?.trim_start();
    (rest.len() == 7 && rest.bytes().all(|b| b.is_ascii_digit())).then_some(rest)
}

fn is_country_code(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// ISO 17442 shape: 18 alphanumerics and two check digits.
pub fn is_lei(s: &str) -> bool {
    s.len() == 20
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        && s.as_bytes()[18..].iter().all(u8::is_ascii_digit)
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
    fn csl_entries() {
        assert_eq!(
            parse_csl_id("CA, BC166787, Passport"),
            Some(id("PASSPORT", "BC166787", Some("CA")))
        );
        assert_eq!(
            parse_csl_id("LB, 2020-08-28, RL 3367620, Passport"),
            Some(id("PASSPORT", "RL 3367620", Some("LB")))
        );
        assert_eq!(
            parse_csl_id("JO, 2014-08-30, 2009-08-31, K475336, Passport"),
            Some(id("PASSPORT", "K475336", Some("JO")))
        );
        assert_eq!(
            parse_csl_id("IMO 8898831, Vessel Registration Identification"),
            Some(id("IMO", "8898831", None))
        );
        assert_eq!(
            parse_csl_id("MX, 22839 (Jalisco), Folio Mercantil No."),
            Some(id("REG", "22839 (Jalisco)", Some("MX")))
        );
        assert_eq!(
            parse_csl_id("PA, 467323, Doc. 694710, Public Registration Number"),
            Some(id("REG", "467323, Doc. 694710", Some("PA")))
        );
        assert_eq!(
            parse_csl_id("AIIFIQBA, SWIFT/BIC"),
            Some(id("SWIFT_BIC", "AIIFIQBA", None))
        );
        assert_eq!(parse_csl_id("Male, Gender"), None);
        assert_eq!(
            parse_csl_id("Subject to Secondary Sanctions, Additional Sanctions Information -"),
            None
        );
        assert_eq!(parse_csl_id("www.example.com, Website"), None);
        assert_eq!(parse_csl_id("no label here"), None);
    }

    #[test]
    fn lei_only_when_shaped_like_one() {
        assert_eq!(
            make_id(
                "Legal Entity Number",
                "253400V1H6ART1UQ0N98",
                Some("Russia")
            ),
            Some(id("LEI", "253400V1H6ART1UQ0N98", Some("Russia")))
        );
        assert_eq!(
            make_id("Legal Entity Number", "852496527", Some("NL")),
            Some(id("REG", "852496527", Some("NL")))
        );
    }

    #[test]
    fn labels_ignore_case_and_spacing() {
        assert_eq!(
            scheme("National Identification\n   Number"),
            Some("NATIONAL_ID")
        );
        assert_eq!(scheme("passport"), Some("PASSPORT"));
        assert_eq!(scheme("Gender"), None);
        assert_eq!(
            make_id("R.F.C.", "# IPR-931014", None).map(|i| i.value),
            Some("IPR-931014".into())
        );
        assert_eq!(
            make_id("Identification Number", "IMO 5342883", None).map(|i| i.id_type),
            Some("IMO".into())
        );
        assert_eq!(make_id("Passport", " ", None), None);
        assert_eq!(
            split_labelled("Diplomatic Passport 4138 (Syria)"),
            Some(("Diplomatic Passport", "4138 (Syria)"))
        );
        assert_eq!(split_labelled("Passports are fine"), None);
    }
}
