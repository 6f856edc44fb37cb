//! Match keys: the strings two agencies compare (through the OPRF) to find a shared party,
//! spec section K. Each key is `mk1|<kind>|...`, so keys of another spec version can never
//! equal these. Derivation is a pure function of the party: independent of the order of
//! aliases, ids and countries, and deduplicated and sorted.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::normalise::name_tokens_with;
use super::translit::Backend;
use super::{Party, PartyKind, country_code, ids, phonetic};

/// The spec version prefix of every key.
pub const KEY_VERSION: &str = "mk1";

/// How much a shared key says about two records being the same party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strength {
    Weak,
    Medium,
    Strong,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weak => "weak",
            Self::Medium => "medium",
            Self::Strong => "strong",
        }
    }
}

/// What a key is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// A global identifier, or a national one with its issuing country (strong); a
    /// national identifier without country (weak: related entities on the lists share
    /// tax and registration numbers across countries' formats).
    Id,
    /// Normalised name + ISO country code.
    NameCountry,
    /// Normalised name + year of birth.
    NameBirthYear,
    /// Normalised name, tokens sorted.
    Name,
    /// Persons: the first and the last token of the name, sorted.
    NamePair,
    /// Consonant skeletons of the tokens, sorted.
    Phonetic,
    /// Consonant skeletons of the tokens in written order, joined.
    PhoneticSeq,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::NameCountry => "name_country",
            Self::NameBirthYear => "name_birth_year",
            Self::Name => "name",
            Self::NamePair => "name_pair",
            Self::Phonetic => "phonetic",
            Self::PhoneticSeq => "phonetic_seq",
        }
    }
}

/// One match key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MatchKey {
    pub kind: KeyKind,
    pub value: String,
    pub strength: Strength,
}

impl MatchKey {
    fn new(kind: KeyKind, strength: Strength, parts: &[&str]) -> Self {
        let mut value = String::with_capacity(64);
        value.push_str(KEY_VERSION);
        value.push('|');
        value.push_str(kind.as_str());
        for p in parts {
            value.push('|');
            value.push_str(p);
        }
        Self {
            kind,
            value,
            strength,
        }
    }
}

/// A name key needs this many letters and digits in total (spec K2).
pub const MIN_NAME_CHARS: usize = 4;
/// A phonetic key needs this many code letters in total (spec K4).
pub const MIN_PHONETIC_CHARS: usize = 4;
/// A sequence phonetic key needs this many code letters (spec K5).
pub const MIN_SEQUENCE_CHARS: usize = 5;

/// The year of a `YYYY`, `YYYY-MM` or `YYYY-MM-DD` birth date (anything after the first
/// four digits must start with `-`); `None` otherwise.
pub fn birth_year(s: &str) -> Option<&str> {
    let s = s.trim();
    let year = s.get(..4)?;
    let ok = year.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 4 || s.as_bytes().get(4) == Some(&b'-'));
    ok.then_some(year)
}

/// Keys of one name (already normalised, in written order).
fn name_keys(
    tokens: &[String],
    person: bool,
    countries: &[&str],
    year: Option<&str>,
    out: &mut BTreeSet<(std::cmp::Reverse<Strength>, String, KeyKind)>,
) {
    let mut push = |k: MatchKey| {
        out.insert((std::cmp::Reverse(k.strength), k.value, k.kind));
    };
    let chars: usize = tokens.iter().map(String::len).sum();
    if chars >= MIN_NAME_CHARS {
        let mut sorted: Vec<&str> = tokens.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let name = sorted.join(" ");
        push(MatchKey::new(KeyKind::Name, Strength::Medium, &[&name]));
        for c in countries {
            push(MatchKey::new(
                KeyKind::NameCountry,
                Strength::Strong,
                &[c, &name],
            ));
        }
        if let Some(y) = year {
            push(MatchKey::new(
                KeyKind::NameBirthYear,
                Strength::Strong,
                &[y, &name],
            ));
        }
        if let (true, [first, .., last]) = (person, tokens) {
            let mut pair = [first.as_str(), last.as_str()];
            pair.sort_unstable();
            push(MatchKey::new(
                KeyKind::NamePair,
                Strength::Weak,
                &[&pair.join(" ")],
            ));
        }
    }
    let skeletons: Vec<String> = tokens.iter().map(|t| phonetic::skeleton(t)).collect();
    let codes: usize = skeletons.iter().map(String::len).sum();
    if codes >= MIN_PHONETIC_CHARS {
        let mut sorted: Vec<&str> = skeletons
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        sorted.sort_unstable();
        push(MatchKey::new(
            KeyKind::Phonetic,
            Strength::Weak,
            &[&sorted.join(" ")],
        ));
    }
    let seq = phonetic::join_sequence(skeletons.iter().map(String::as_str));
    if seq.len() >= MIN_SEQUENCE_CHARS {
        push(MatchKey::new(KeyKind::PhoneticSeq, Strength::Weak, &[&seq]));
    }
}

/// All match keys of `party`: deduplicated, strongest first, then by value.
pub fn match_keys(party: &Party) -> Vec<MatchKey> {
    match_keys_with(party, Backend::AnyAscii)
}

/// [`match_keys`] with another transliteration backend (evaluation only: the spec's keys
/// are those of [`Backend::AnyAscii`]).
pub(crate) fn match_keys_with(party: &Party, backend: Backend) -> Vec<MatchKey> {
    let mut set = BTreeSet::new();
    let mut countries: Vec<&str> = party
        .countries
        .iter()
        .filter_map(|c| country_code(c))
        .collect();
    countries.sort_unstable();
    countries.dedup();
    let year = match party.kind {
        PartyKind::Person => party.birth_date.as_deref().and_then(birth_year),
        _ => None,
    };
    let names = std::iter::once(&party.name)
        .chain(&party.aliases)
        .chain(&party.original_script_names);
    for name in names {
        let tokens = name_tokens_with(name, party.kind, backend);
        name_keys(
            &tokens,
            party.kind == PartyKind::Person,
            &countries,
            year,
            &mut set,
        );
    }
    for id in &party.ids {
        let Some(k) = ids::normalise_id(id) else {
            continue;
        };
        let mut push = |strength, parts: &[&str]| {
            let m = MatchKey::new(KeyKind::Id, strength, parts);
            set.insert((std::cmp::Reverse(m.strength), m.value, m.kind));
        };
        if k.global {
            push(Strength::Strong, &[&k.scheme, &k.value]);
        } else {
            if let Some(c) = k.country {
                push(Strength::Strong, &[&k.scheme, c, &k.value]);
            }
            push(Strength::Weak, &[&k.scheme, &k.value]);
        }
    }
    set.into_iter()
        .map(|(s, value, kind)| MatchKey {
            kind,
            value,
            strength: s.0,
        })
        .collect()
}
