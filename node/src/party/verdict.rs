//! From what a querier found to what it reports: a match's strength, a score for ranking
//! and the threshold, and *why* in plain words ("same passport", "exact name + country",
//! "similar spelling: 2 of 3 name parts"). Screening, watch lists and deconfliction all
//! report through [`verdict`], so one party gets one answer whichever path found it.
//!
//! Words never quote a name or an identifier: they name the kind of evidence only.

use serde::{Deserialize, Serialize};

use super::fuzzy::{NameMatch, Relation};
use super::{KeyKind, MatchKey, Strength};

/// A fuzzy match at or above this similarity is medium; below it, weak, unless the queried
/// name is found whole in the listed one ([`MEDIUM_WHOLE_QUERY`]).
pub const MEDIUM_SIMILARITY: f64 = 0.85;

/// A fuzzy match in which every part of the queried name (two or more) is matched is
/// medium from this similarity on: a listed name with a part the query lacks
/// (`KIM, Ho Kyu` for `KIM Kyu`) is far more often the same party than a queried name with
/// a part the listed one lacks (`BANK SEPAH INTERNATIONAL` for `BANK SEPAH`), which stays
/// weak below [`MEDIUM_SIMILARITY`]. Chosen on the dev split of `tessera eval screening`.
pub const MEDIUM_WHOLE_QUERY: f64 = 0.70;

/// The default reporting threshold: fuzzy matches scoring below it are not reported
/// (exact-key matches always are). Chosen from the precision/recall frontier of
/// `tessera eval screening` (see BENCHMARKS.md).
pub const DEFAULT_THRESHOLD: f64 = 0.70;

/// One opened listed name, as the querier scored it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NameEvidence {
    /// Which name of the querier's party matched (0 the primary name, then aliases, then
    /// original-script names).
    pub query_name: usize,
    pub matched: NameMatch,
}

/// What the querier reports for one listed notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub strength: Strength,
    /// 0..=1: exact identifiers and names with a country or birth year score 1.
    pub score: f64,
    /// Plain words: what matched.
    pub why: String,
    /// The querier's names that matched (indices as in [`NameEvidence::query_name`]).
    pub query_names: Vec<usize>,
}

fn id_words(value: &str) -> &'static str {
    // `mk2|id|SCHEME|...`
    match value.split('|').nth(2).unwrap_or("") {
        "LEI" => "same LEI",
        "IMO" => "same IMO number",
        "BIC" => "same BIC",
        "MMSI" => "same MMSI",
        "TAIL" => "same aircraft tail number",
        "PASSPORT" => "same passport",
        "NATIONAL_ID" => "same national id",
        "TAX" => "same tax id",
        "REG" => "same registration number",
        _ => "same identifier",
    }
}

/// The score and words of an exact key.
fn exact(key: &MatchKey) -> (f64, String) {
    let (score, words) = match (key.kind, key.strength) {
        (KeyKind::Id, Strength::Strong) => (1.0, id_words(&key.value).to_owned()),
        (KeyKind::Id, _) => (
            0.9,
            format!("{} (issuing country not given)", id_words(&key.value)),
        ),
        (KeyKind::NameCountry, Strength::Strong) => (1.0, "exact name + country".to_owned()),
        (KeyKind::NameBirthYear, Strength::Strong) => (1.0, "exact name + birth year".to_owned()),
        (KeyKind::NameCountry, _) => (0.95, "exact short name + country".to_owned()),
        (KeyKind::NameBirthYear, _) => (0.95, "exact short name + birth year".to_owned()),
        (KeyKind::Name, Strength::Medium | Strength::Strong) => (0.97, "exact name".to_owned()),
        (KeyKind::Name, Strength::Weak) => (0.9, "exact short name".to_owned()),
        (KeyKind::Joined, _) => (0.95, "same name, words joined".to_owned()),
        (KeyKind::Sound, _) => (0.88, "same name by sound".to_owned()),
        (KeyKind::Consonants | KeyKind::ConsonantSeq, _) => (
            0.8,
            "same consonants (one name written without vowels)".to_owned(),
        ),
    };
    (score, words)
}

/// The strength of a fuzzy name match: medium at [`MEDIUM_SIMILARITY`], or at
/// [`MEDIUM_WHOLE_QUERY`] when the queried name is found whole in the listed one; else weak.
pub fn fuzzy_strength(m: &NameMatch) -> Strength {
    if fuzzy_medium(m.similarity, m.query_whole, MEDIUM_SIMILARITY) {
        Strength::Medium
    } else {
        Strength::Weak
    }
}

/// Whether a fuzzy match of similarity `s` is medium with the boundary at `medium`
/// (`MEDIUM_SIMILARITY`; the evaluation moves it); `query_whole` as
/// [`NameMatch::query_whole`].
pub fn fuzzy_medium(s: f64, query_whole: bool, medium: f64) -> bool {
    s >= medium || (query_whole && s >= MEDIUM_WHOLE_QUERY)
}

/// The words of a fuzzy name match.
fn fuzzy_words(m: &NameMatch) -> String {
    let what = match m.weakest {
        Relation::Exact => "same name parts",
        Relation::Nickname => "another form of a given name",
        Relation::Joined => "words joined or split",
        Relation::Spelling => "similar spelling",
        Relation::Sound => "sounds alike",
        Relation::Initial => "initials",
    };
    format!("{what}: {} of {} name parts", m.matched, m.listed_tokens)
}

/// The report for one listed notice from the exact keys of the querier that hit it and
/// the listed names it opened; `None` when nothing reaches `threshold` (exact keys
/// always do).
pub fn verdict(hits: &[&MatchKey], names: &[NameEvidence], threshold: f64) -> Option<Verdict> {
    let mut best: Option<(f64, Strength, String)> = None;
    let mut consider = |score: f64, strength: Strength, why: String| {
        let better = best
            .as_ref()
            .is_none_or(|(s, st, _)| (score, strength) > (*s, *st));
        if better {
            best = Some((score, strength, why));
        }
    };
    for key in hits {
        let (score, why) = exact(key);
        consider(score, key.strength, why);
    }
    let mut query_names: Vec<usize> = Vec::new();
    for n in names {
        let s = n.matched.similarity;
        if s < threshold {
            continue;
        }
        consider(s, fuzzy_strength(&n.matched), fuzzy_words(&n.matched));
        if !query_names.contains(&n.query_name) {
            query_names.push(n.query_name);
        }
    }
    let (score, strength, why) = best?;
    query_names.sort_unstable();
    Some(Verdict {
        strength,
        score,
        why,
        query_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::PartyKind::{self, Organisation, Person};
    use crate::party::fuzzy::open_text;

    /// The verdict of one queried name against one listed name, and its similarity.
    fn judged(query: &str, listed: &str, kind: PartyKind) -> (f64, Option<Verdict>) {
        let matched = open_text(query, listed, kind).expect("the name opens");
        let evidence = [NameEvidence {
            query_name: 0,
            matched,
        }];
        let v = verdict(&[], &evidence, DEFAULT_THRESHOLD);
        (matched.similarity, v)
    }

    #[test]
    fn a_queried_name_found_whole_is_medium_below_the_similarity_boundary() {
        let (s, v) = judged("KIM, Kyu", "KIM, Ho Kyu", Person);
        assert!((DEFAULT_THRESHOLD..MEDIUM_SIMILARITY).contains(&s), "{s}");
        let v = v.expect("reported");
        assert_eq!(v.strength, Strength::Medium);
        assert_eq!(v.why, "same name parts: 2 of 3 name parts");
    }

    #[test]
    fn a_queried_name_with_a_part_the_listed_name_lacks_stays_weak() {
        let (s, v) = judged(
            "VALERIAN LABS DISTRIBUTION CORP.",
            "VALERIAN LABS, INC.",
            Organisation,
        );
        assert!((DEFAULT_THRESHOLD..MEDIUM_SIMILARITY).contains(&s), "{s}");
        assert_eq!(v.expect("reported").strength, Strength::Weak);
    }

    #[test]
    fn one_name_part_alike_by_sound_stays_weak() {
        let (s, v) = judged("FIROUZEH", "VERUS", Organisation);
        assert!((DEFAULT_THRESHOLD..MEDIUM_SIMILARITY).contains(&s), "{s}");
        assert_eq!(v.expect("reported").strength, Strength::Weak);
    }
}
