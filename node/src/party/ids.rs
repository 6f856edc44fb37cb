//! Identifiers: scheme names, value normalisation and check digits (spec step I).
//!
//! LEI (ISO 17442, ISO 7064 mod 97-10), IMO ship numbers (7 digits, weighted check digit),
//! BIC (ISO 9362 shape), MMSI (9 digits) and aircraft tail marks are global: their key has
//! no country. Every other scheme (passport, national id, tax id, registration, ...) is
//! national: its key carries the issuing country where one is given. A value that fails its
//! scheme's check yields no key (it cannot be the identifier it claims to be).

use unicode_normalization::UnicodeNormalization;

use super::PartyId;
use super::country::country_code;
use super::normalise::basic_tokens;
use super::translit::{self, Backend};

/// A normalised identifier, ready to become a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdKey {
    /// Canonical scheme: `LEI`, `IMO`, `BIC`, `MMSI`, `TAIL`, `PASSPORT`, `NATIONAL_ID`,
    /// `TAX`, `REG`, or the normalised type as given (tokens joined with `_`).
    pub scheme: String,
    /// Upper-case ASCII letters and digits only.
    pub value: String,
    /// ISO 3166 alpha-2 issuing country, for national schemes only.
    pub country: Option<&'static str>,
    /// Global schemes identify a party on their own.
    pub global: bool,
}

/// Scheme synonyms: normalised type (tokens joined by `_`) -> canonical scheme.
const SCHEMES: &[(&str, &str)] = &[
    ("LEI", "LEI"),
    ("LEGAL_ENTITY_IDENTIFIER", "LEI"),
    ("LEGAL_ENTITY_NUMBER", "LEI"),
    ("IMO", "IMO"),
    ("IMO_NUMBER", "IMO"),
    ("IMO_NO", "IMO"),
    ("VESSEL_REGISTRATION_IDENTIFICATION", "IMO"),
    ("BIC", "BIC"),
    ("SWIFT", "BIC"),
    ("SWIFT_BIC", "BIC"),
    ("SWIFT_CODE", "BIC"),
    ("BIC_CODE", "BIC"),
    ("MMSI", "MMSI"),
    ("AIRCRAFT_TAIL_NUMBER", "TAIL"),
    ("TAIL_NUMBER", "TAIL"),
    ("TAIL", "TAIL"),
    ("PASSPORT", "PASSPORT"),
    ("PASSPORT_NO", "PASSPORT"),
    ("PASSPORT_NUMBER", "PASSPORT"),
    ("NATIONAL_ID", "NATIONAL_ID"),
    ("NATIONAL_ID_NO", "NATIONAL_ID"),
    ("NATIONAL_ID_NUMBER", "NATIONAL_ID"),
    ("NATIONAL_IDENTIFICATION_NUMBER", "NATIONAL_ID"),
    ("IDENTIFICATION_NUMBER", "NATIONAL_ID"),
    ("ID", "NATIONAL_ID"),
    ("TAX", "TAX"),
    ("TAX_ID", "TAX"),
    ("TAX_ID_NO", "TAX"),
    ("TAX_ID_NUMBER", "TAX"),
    ("TIN", "TAX"),
    ("INN", "TAX"),
    ("REG", "REG"),
    ("REGISTRATION", "REG"),
    ("REGISTRATION_NUMBER", "REG"),
    ("REGISTRATION_ID", "REG"),
    ("COMPANY_NUMBER", "REG"),
    ("BUSINESS_REGISTRATION_NUMBER", "REG"),
    ("COMMERCIAL_REGISTRY_NUMBER", "REG"),
];

fn canonical_scheme(id_type: &str) -> String {
    let t = basic_tokens(id_type, Backend::AnyAscii).join("_");
    SCHEMES
        .iter()
        .find(|(k, _)| *k == t)
        .map(|(_, v)| (*v).to_owned())
        .unwrap_or(t)
}

/// Value normalisation: NFKC, transliteration, upper case, letters and digits only.
fn clean_value(v: &str) -> String {
    let nfkc: String = v.nfkc().collect();
    translit::to_ascii(&nfkc, Backend::AnyAscii)
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_uppercase() as char)
        .collect()
}

/// ISO 17442: 20 letters or digits, ISO 7064 mod 97-10 remainder 1.
pub fn lei_valid(v: &str) -> bool {
    v.len() == 20 && v.bytes().all(|b| b.is_ascii_alphanumeric()) && mod97(v) == 1
}

fn mod97(v: &str) -> u32 {
    let mut r: u32 = 0;
    for b in v.bytes() {
        let d = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return u32::MAX,
        };
        r = if d >= 10 {
            (r * 100 + d) % 97
        } else {
            (r * 10 + d) % 97
        };
    }
    r
}

/// IMO ship number: 7 digits; the sum of the first six times 7, 6, 5, 4, 3, 2 ends in the
/// seventh.
pub fn imo_valid(v: &str) -> bool {
    let d: Vec<u32> = v.bytes().map(|b| u32::from(b.wrapping_sub(b'0'))).collect();
    v.len() == 7
        && d.iter().all(|x| *x <= 9)
        && (0..6).map(|i| d[i] * (7 - i as u32)).sum::<u32>() % 10 == d[6]
}

/// Normalises and checks one identifier; `None` when it is empty, too short (national
/// schemes need 4 characters) or fails its scheme's check.
pub fn normalise_id(id: &PartyId) -> Option<IdKey> {
    let scheme = canonical_scheme(&id.id_type);
    let mut value = clean_value(&id.value);
    if scheme.is_empty() || value.is_empty() {
        return None;
    }
    let global = match scheme.as_str() {
        "LEI" => lei_valid(&value),
        "IMO" => {
            if value.starts_with("IMO") {
                value.drain(..3);
            }
            imo_valid(&value)
        }
        "BIC" => {
            if value.len() == 11 && value.ends_with("XXX") {
                value.truncate(8);
            }
            let b = value.as_bytes();
            (b.len() == 8 || b.len() == 11) && b[..6].iter().all(u8::is_ascii_uppercase)
        }
        "MMSI" => value.len() == 9 && value.bytes().all(|b| b.is_ascii_digit()),
        "TAIL" => value.len() >= 3,
        _ => {
            if value.len() < 4 {
                return None;
            }
            let country = id.country.as_deref().and_then(country_code);
            return Some(IdKey {
                scheme,
                value,
                country,
                global: false,
            });
        }
    };
    global.then_some(IdKey {
        scheme,
        value,
        country: None,
        global: true,
    })
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
    fn checks() {
        assert!(lei_valid("5493001KJTIIGC8Y1R12"));
        assert!(!lei_valid("5493001KJTIIGC8Y1R13"));
        assert!(imo_valid("9074729"));
        assert!(!imo_valid("9074728"));
        let k = normalise_id(&id("IMO", "IMO 9074729", None)).unwrap();
        assert_eq!((k.scheme.as_str(), k.value.as_str()), ("IMO", "9074729"));
        let k = normalise_id(&id("Passport No.", "a-12 345", Some("Russia"))).unwrap();
        assert_eq!(
            (k.scheme.as_str(), k.value.as_str(), k.country),
            ("PASSPORT", "A12345", Some("RU"))
        );
        assert!(normalise_id(&id("LEI", "5493001KJTIIGC8Y1R13", None)).is_none());
        assert!(
            normalise_id(&id("BIC", "DEUTDEFFXXX", None)).is_some_and(|k| k.value == "DEUTDEFF")
        );
        assert!(normalise_id(&id("TAX", "12", None)).is_none());
    }
}
