//! Parties and their match keys: the harmonised spec (`docs/match-keys.md`, version `mk2`).
//!
//! Owns the party record ([`Party`]), text normalisation, transliteration, the legal-form,
//! honorific and country tables, identifier checks, phonetic encoding and key derivation.
//! Every agency must derive byte-identical keys from the same party, so everything here is
//! deterministic, locale-independent and versioned: a change of output is a change of
//! [`KEY_VERSION`] and of the spec, never a silent one.
//!
//! Must never: log or echo a party name or identifier (errors say what is wrong, not with
//! what), panic on any input, or depend on the order of aliases, ids or countries.
//!
//! Layout: `normalise` (the text pipeline) uses `translit`, `legal_forms`, `honorifics`,
//! `abbreviations`; `ids` and `country` read identifiers and countries; `phonetic` encodes tokens;
//! `keys` assembles [`MatchKey`]s and `fuzzy` the fuzzy names; `verdict` turns what
//! matched into a reported strength, score and reason; `json` is the `tessera keys` line
//! contract. The evaluation on the real lists lives in the CLI (`tessera eval`).

mod abbreviations;
mod country;
pub mod fuzzy;
mod honorifics;
mod ids;
mod json;
mod keys;
mod legal_forms;
mod model;
pub mod normalise;
mod phonetic;
pub mod translit;
pub mod verdict;
mod wordlist;

#[cfg(test)]
mod tests;

pub use country::country_code;
pub use fuzzy::{Agreement, FuzzyName, FuzzyParams, NameMatch, Relation, Side, Slot};
pub use ids::{IdKey, normalise_id};
pub use json::keys_json_line;
pub use keys::{
    KEY_VERSION, KeyKind, MAX_NAME_TOKENS, MatchKey, PartyKeys, Strength, birth_year, exact_keys,
    match_keys, match_keys_with, party_keys, party_keys_with,
};
pub use model::*;
pub use phonetic::phonetic_debug;
