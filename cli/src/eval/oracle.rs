//! Matching in the clear: what private screening reports for a query party against a
//! listed party, computed from both parties' keys directly. The private path must give
//! exactly these answers (the screening evaluation checks it pair by pair); the clear form
//! is what makes tuning over thousands of pairs and parameter sets fast.

use std::collections::{BTreeSet, HashMap};

use tessera_node::party::fuzzy::{self, FuzzyName};
use tessera_node::party::verdict::{NameEvidence, Verdict, fuzzy_medium, verdict};
use tessera_node::party::{MatchKey, Party, PartyKeys, Side, party_keys_with};

use super::dataset::Pair;

/// What one pair scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The best exact-key score, when an exact key matched (always reported).
    pub exact: Option<f64>,
    /// The best fuzzy similarity of an opened name, when one opened.
    pub fuzzy: Option<f64>,
    /// The best fuzzy similarity of an opened name in which the queried name is found
    /// whole ([`fuzzy::NameMatch::query_whole`]).
    pub whole: Option<f64>,
}

impl Scored {
    /// Reported at `threshold`?
    pub fn reported(&self, threshold: f64) -> bool {
        self.exact.is_some() || self.fuzzy.is_some_and(|s| s >= threshold)
    }

    /// Reported as medium or stronger, with the fuzzy medium boundary at `medium`
    /// (`MEDIUM_SIMILARITY` in the verdict)?
    pub fn medium(&self, medium: f64) -> bool {
        self.exact.is_some_and(|s| s >= 0.95)
            || self.fuzzy.is_some_and(|s| fuzzy_medium(s, false, medium))
            || self.whole.is_some_and(|s| fuzzy_medium(s, true, medium))
    }
}

/// The evidence a querier holding `query` gets from a holder listing `listed`: the exact
/// keys that hit, and each listed name it opened, scored.
pub fn evidence<'a>(
    query: &'a PartyKeys,
    listed: &PartyKeys,
) -> (Vec<&'a MatchKey>, Vec<NameEvidence>) {
    let listed_exact: BTreeSet<&str> = listed.exact.iter().map(|k| k.value.as_str()).collect();
    let hits: Vec<&MatchKey> = query
        .exact
        .iter()
        .filter(|k| listed_exact.contains(k.value.as_str()))
        .collect();
    let mut names = Vec::new();
    for q in &query.names {
        for l in &listed.names {
            if let Some(matched) = open(q, l) {
                names.push(NameEvidence {
                    query_name: q.name,
                    matched,
                });
            }
        }
    }
    (hits, names)
}

/// Scores `listed` for `query` if the querier covers enough of its slots to open it.
pub fn open(query: &FuzzyName, listed: &FuzzyName) -> Option<fuzzy::NameMatch> {
    fuzzy::open_clear(query, listed)
}

/// Scores one pair with the fuzzy parameters `params`.
pub fn score_pair(pair: &Pair, params: &fuzzy::FuzzyParams) -> Scored {
    score_parties(&pair.query, &pair.listed, params)
}

/// Scores a query party against a listed party.
pub fn score_parties(query: &Party, listed: &Party, params: &fuzzy::FuzzyParams) -> Scored {
    let q = party_keys_with(query, Side::Query, params);
    let l = party_keys_with(listed, Side::Listed, params);
    let (hits, names) = evidence(&q, &l);
    let exact = verdict(&hits, &[], 1.0).map(|v| v.score);
    let fuzzy = names
        .iter()
        .map(|n| n.matched.similarity)
        .max_by(f64::total_cmp);
    let whole = names
        .iter()
        .filter(|n| n.matched.query_whole)
        .map(|n| n.matched.similarity)
        .max_by(f64::total_cmp);
    Scored {
        exact,
        fuzzy,
        whole,
    }
}

/// The full report of a pair, as screening shows it.
pub fn verdict_of(query: &Party, listed: &Party, threshold: f64) -> Option<Verdict> {
    let params = fuzzy::FuzzyParams::default();
    let q = party_keys_with(query, Side::Query, &params);
    let l = party_keys_with(listed, Side::Listed, &params);
    let (hits, names) = evidence(&q, &l);
    verdict(&hits, &names, threshold)
}

/// What a querier learns below the threshold, for one query against a whole list: the
/// listed names of which it collects at least one share but too few to open them, and
/// how many shares that is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Partial {
    pub names: usize,
    pub shares: usize,
    /// Listed names it opened.
    pub opened: usize,
}

/// An index of a list's fuzzy alternatives, for [`Leakage::partial`].
pub struct Leakage {
    names: Vec<(usize, usize)>,
    by_alternative: HashMap<String, Vec<(usize, usize)>>,
}

impl Leakage {
    /// Indexes every fuzzy name of `listed`.
    pub fn new(listed: &[Party], params: &fuzzy::FuzzyParams) -> Self {
        let mut names = Vec::new();
        let mut by_alternative: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for p in listed {
            for n in party_keys_with(p, Side::Listed, params).names {
                let id = names.len();
                names.push((n.slots.len(), n.threshold));
                for (slot, s) in n.slots.iter().enumerate() {
                    for a in &s.alternatives {
                        let entry = by_alternative.entry(a.value.clone()).or_default();
                        if !entry.contains(&(id, slot)) {
                            entry.push((id, slot));
                        }
                    }
                }
            }
        }
        Self {
            names,
            by_alternative,
        }
    }

    /// Listed names (and shares) a query collects below their threshold.
    pub fn partial(&self, query: &Party, params: &fuzzy::FuzzyParams) -> Partial {
        let keys = party_keys_with(query, Side::Query, params);
        let mut covered: HashMap<usize, BTreeSet<usize>> = HashMap::new();
        for value in keys.all_values() {
            if let Some(hits) = self.by_alternative.get(value) {
                for &(name, slot) in hits {
                    covered.entry(name).or_default().insert(slot);
                }
            }
        }
        let mut out = Partial::default();
        for (name, slots) in covered {
            if slots.len() >= self.names[name].1 {
                out.opened += 1;
            } else {
                out.names += 1;
                out.shares += slots.len();
            }
        }
        out
    }

    /// Listed fuzzy names indexed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no listed name was indexed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
