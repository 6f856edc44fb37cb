//! Match keys: the strings two agencies compare (through the OPRF) to find a shared party,
//! spec sections K and F. Exact keys are `mk2|<kind>|...` (identifiers, whole names, names
//! with a country or birth year); each name also has a fuzzy form ([`FuzzyName`]) whose
//! slots a querier must cover to open it. Keys of another spec version can never equal
//! these. Derivation is a pure function of the party: independent of the order of aliases,
//! ids and countries, and deduplicated and sorted.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::fuzzy::{FuzzyName, FuzzyParams, Side, fuzzy_name, unvocalised_script};
use super::normalise::name_tokens_with;
use super::translit::Backend;
use super::{Party, PartyKind, country_code, ids, phonetic};

/// The spec version prefix of every key.
pub const KEY_VERSION: &str = "mk2";

/// How much a shared key says about two records being the same party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strength {
    Weak,
    Medium,
    Strong,
}

impl Strength {
    /// Every strength, weakest first.
    pub const ALL: [Self; 3] = [Self::Weak, Self::Medium, Self::Strong];

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
    /// Normalised name, tokens sorted between patronymic particles.
    Name,
    /// The tokens of a name of two or more tokens written together in order.
    Joined,
    /// The vowel-aware sound codes of a name of two or more tokens, sorted between
    /// patronymic particles (`TYURIN` and `TIURIN`, `ALEXEYEVICH` and `ALEKSEYEVICH` agree).
    Sound,
    /// The consonant skeletons of a name, where one side is written without vowels
    /// (Arabic or Hebrew script): sorted (`consonants`) and in order (`consonant_seq`).
    Consonants,
    ConsonantSeq,
}

impl KeyKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::Id,
        Self::NameCountry,
        Self::NameBirthYear,
        Self::Name,
        Self::Joined,
        Self::Sound,
        Self::Consonants,
        Self::ConsonantSeq,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::NameCountry => "name_country",
            Self::NameBirthYear => "name_birth_year",
            Self::Name => "name",
            Self::Joined => "joined",
            Self::Sound => "sound",
            Self::Consonants => "consonants",
            Self::ConsonantSeq => "consonant_seq",
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

/// A name of fewer letters and digits than this has weak name keys (spec K1).
pub const MIN_NAME_CHARS: usize = 4;
/// The joined key needs this many letters and digits (spec K4).
pub const MIN_JOINED_CHARS: usize = 6;

/// Fuzzy and consonant keys are derived from the first this many tokens of a name (no
/// real name has more; a hostile one would otherwise cost its token count squared).
pub const MAX_NAME_TOKENS: usize = 16;

/// The year of a `YYYY`, `YYYY-MM` or `YYYY-MM-DD` birth date (anything after the first
/// four digits must start with `-`); `None` otherwise.
pub fn birth_year(s: &str) -> Option<&str> {
    let s = s.trim();
    let year = s.get(..4)?;
    let ok = year.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 4 || s.as_bytes().get(4) == Some(&b'-'));
    ok.then_some(year)
}

/// Patronymic particles: the name key sorts the tokens between them, never across them, so
/// "ALI BIN HASSAN" (Ali, son of Hassan) and "HASSAN BIN ALI" stay apart.
const PARTICLES: [&str; 7] = ["BIN", "IBN", "BINT", "BEN", "OGLY", "OGLU", "KYZY"];

/// The name key's token order: sorted within each run between particles.
fn sorted_name(tokens: &[String]) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(tokens.len());
    let mut run: Vec<&str> = Vec::new();
    for t in tokens {
        if PARTICLES.contains(&t.as_str()) {
            run.sort_unstable();
            out.append(&mut run);
            out.push(t);
        } else {
            run.push(t);
        }
    }
    run.sort_unstable();
    out.append(&mut run);
    out.join(" ")
}

/// Keys of one name (already normalised, in written order).
fn name_keys(
    tokens: &[String],
    countries: &[&str],
    year: Option<&str>,
    out: &mut BTreeSet<(std::cmp::Reverse<Strength>, String, KeyKind)>,
) {
    let mut push = |k: MatchKey| {
        out.insert((std::cmp::Reverse(k.strength), k.value, k.kind));
    };
    let chars: usize = tokens.iter().map(String::len).sum();
    if chars == 0 {
        return;
    }
    let long = chars >= MIN_NAME_CHARS;
    let name = sorted_name(tokens);
    push(MatchKey::new(
        KeyKind::Name,
        if long {
            Strength::Medium
        } else {
            Strength::Weak
        },
        &[&name],
    ));
    let attribute = if long {
        Strength::Strong
    } else {
        Strength::Medium
    };
    for c in countries {
        push(MatchKey::new(KeyKind::NameCountry, attribute, &[c, &name]));
    }
    if let Some(y) = year {
        push(MatchKey::new(
            KeyKind::NameBirthYear,
            attribute,
            &[y, &name],
        ));
    }
    if tokens.len() >= 2 && chars >= MIN_JOINED_CHARS {
        push(MatchKey::new(
            KeyKind::Joined,
            Strength::Medium,
            &[&tokens.concat()],
        ));
        let codes: Vec<String> = tokens
            .iter()
            .map(|t| {
                if PARTICLES.contains(&t.as_str()) {
                    t.clone()
                } else {
                    super::fuzzy::sound_code(t)
                }
            })
            .collect();
        push(MatchKey::new(
            KeyKind::Sound,
            Strength::Weak,
            &[&sorted_name(&codes)],
        ));
    }
}

/// All exact match keys of `party`: deduplicated, strongest first, then by value.
pub fn match_keys(party: &Party) -> Vec<MatchKey> {
    match_keys_with(party, Backend::AnyAscii)
}

/// A party's exact keys and the fuzzy form of each of its names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyKeys {
    pub exact: Vec<MatchKey>,
    pub names: Vec<FuzzyName>,
}

impl PartyKeys {
    /// Every key string a querier has evaluated for this party (exact keys, then every
    /// alternative of every slot), deduplicated, in a stable order.
    pub fn all_values(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.exact
            .iter()
            .map(|k| k.value.as_str())
            .chain(
                self.names
                    .iter()
                    .flat_map(|n| &n.slots)
                    .flat_map(|s| &s.alternatives)
                    .map(|a| a.value.as_str()),
            )
            .filter(|v| seen.insert(*v))
            .collect()
    }
}

/// The party's names in spec order: primary, aliases, original-script names.
fn names_of(party: &Party) -> impl Iterator<Item = &String> {
    std::iter::once(&party.name)
        .chain(&party.aliases)
        .chain(&party.original_script_names)
}

/// The exact keys of `party` for `side`: [`match_keys`] and the whole-name consonant keys
/// (which differ by side). These are the keys of the private path: the holder's index
/// (`Side::Listed`) and screening and watch lists (`Side::Query`).
pub fn exact_keys(party: &Party, side: Side) -> Vec<MatchKey> {
    let mut exact = match_keys(party);
    let mut seen: Vec<Vec<String>> = Vec::new();
    for name in names_of(party) {
        let mut tokens = name_tokens_with(name, party.kind, Backend::AnyAscii);
        tokens.truncate(MAX_NAME_TOKENS);
        if tokens.is_empty() || seen.contains(&tokens) {
            continue;
        }
        consonant_keys(&tokens, unvocalised_script(name), side, &mut exact);
        seen.push(tokens);
    }
    sort_keys(&mut exact);
    exact
}

/// Strongest first, then by value; one key per value.
fn sort_keys(keys: &mut Vec<MatchKey>) {
    keys.sort_by(|a, b| {
        b.strength
            .cmp(&a.strength)
            .then_with(|| a.value.cmp(&b.value))
    });
    keys.dedup_by(|a, b| a.value == b.value);
}

/// Exact keys and fuzzy names of `party`, for `side` (spec sections K and F).
pub fn party_keys(party: &Party, side: Side) -> PartyKeys {
    party_keys_with(party, side, &FuzzyParams::default())
}

/// [`party_keys`] with other fuzzy parameters (evaluation only).
pub fn party_keys_with(party: &Party, side: Side, params: &FuzzyParams) -> PartyKeys {
    let mut names: Vec<FuzzyName> = Vec::new();
    let mut seen: Vec<Vec<String>> = Vec::new();
    let mut exact = match_keys(party);
    for (i, name) in names_of(party).enumerate() {
        let mut tokens = name_tokens_with(name, party.kind, Backend::AnyAscii);
        tokens.truncate(MAX_NAME_TOKENS);
        if tokens.is_empty() || seen.contains(&tokens) {
            continue;
        }
        let script = unvocalised_script(name);
        if params.consonants {
            consonant_keys(&tokens, script, side, &mut exact);
        }
        let fuzzy = fuzzy_name(i, &tokens, script, party.kind, side, params);
        seen.push(tokens);
        if !fuzzy.slots.is_empty() {
            names.push(fuzzy);
        }
    }
    sort_keys(&mut exact);
    PartyKeys { exact, names }
}

/// Whole-name consonant keys (spec K5), asymmetric like the fuzzy consonant keys: a
/// listed name offers `k` keys always and `u` keys when written without vowels; a query
/// written without vowels asks for `k` keys, any other for `u` keys. Two names written
/// with vowels never meet on consonants alone.
fn consonant_keys(tokens: &[String], script: bool, side: Side, out: &mut Vec<MatchKey>) {
    let skeletons: Vec<String> = tokens
        .iter()
        .map(|t| phonetic::skeleton_of(t, script))
        .collect();
    let mut sorted: Vec<&str> = skeletons
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    sorted.sort_unstable();
    let sorted = sorted.join(" ");
    let sequence: String = skeletons.concat();
    let letters = sequence.len();
    if letters < MIN_CONSONANTS {
        return;
    }
    let bare = script
        || tokens.iter().all(|t| {
            !t.bytes()
                .any(|b| matches!(b, b'A' | b'E' | b'I' | b'O' | b'U' | b'Y'))
        });
    let prefixes: &[&str] = match (side, bare) {
        (Side::Listed, true) => &["k", "u"],
        (Side::Listed, false) | (Side::Query, true) => &["k"],
        (Side::Query, false) => &["u"],
    };
    for p in prefixes {
        out.push(MatchKey::new(
            KeyKind::Consonants,
            Strength::Weak,
            &[p, &sorted],
        ));
        out.push(MatchKey::new(
            KeyKind::ConsonantSeq,
            Strength::Weak,
            &[p, &sequence],
        ));
    }
}

/// Whole-name consonant keys need this many consonant codes.
pub const MIN_CONSONANTS: usize = 5;

/// [`match_keys`] with another transliteration backend (evaluation only: the spec's keys
/// are those of [`Backend::AnyAscii`]).
pub fn match_keys_with(party: &Party, backend: Backend) -> Vec<MatchKey> {
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
    for name in names_of(party) {
        let tokens = name_tokens_with(name, party.kind, backend);
        name_keys(&tokens, &countries, year, &mut set);
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
