//! The labelled name pairs that screening is measured on, built from the public lists
//! (`../shared/data`, or the slices in `fixtures/lists`) by a seeded generator, so that a
//! reader can re-run it and get the same pairs.
//!
//! A pair is a *listed* party (what a holder's notice names) and a *query* party (what an
//! officer screens), with a label: the same party, or not. Families:
//!
//! * positives — `alias`: an OFAC SDN alias against the entity's primary name (aliases
//!   that share at least a third of their letter trigrams with it; the others, mostly
//!   translations and acronyms, are `alias_other` and reported apart); `script`: a UN
//!   original-script name against the Latin primary name; and perturbations of listed
//!   names (`typo`, `drop_token`, `add_token`, `reorder`, `translit`, `join_split`,
//!   `initials`, and `double`, two of them at once).
//! * hard negatives — distinct SDN entries whose names look alike: `family` (persons
//!   sharing a surname), `shared_word` (organisations sharing a distinctive word),
//!   `near` (the distinct entry nearest in letter trigrams) and `lookalike` (the distinct
//!   entry the fuzzy keys score highest: the hardest negatives for this matcher); and
//!   `script_lookalike`, a UN original-script name against the Latin name of the distinct
//!   UN entry the fuzzy keys score highest.
//! * `cross_list`: the same person on two lists — a UN entry's name against the SDN entry
//!   that carries one of its identity documents (linked by the document number, not by the
//!   name: the spellings, name order and name length of two real lists), and against it
//!   `cross_list_lookalike`, the SDN person not so linked, and not born in the same year,
//!   whom the fuzzy keys score highest; and `cross_list_aliases`, the `cross_list` pairs
//!   with the SDN entry's aliases in the listed party, as an import holds it.
//!
//! Entities are split between `dev` (for tuning) and `test` (to check that what was tuned
//! generalises) by a seeded hash of their list and id; both sides of a pair come from one
//! entity or, for negatives, from two of the same split.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use tessera_node::lists::{self, Format, ListRecord};
use tessera_node::party::normalise::name_tokens;
use tessera_node::party::{FuzzyParams, Party, PartyKind, Side, birth_year, party_keys_with};

use super::perturb::Perturbation;

/// Which half of the entities a pair comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Dev,
    Test,
}

/// One labelled pair.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub family: Cow<'static, str>,
    pub positive: bool,
    pub split: Split,
    pub listed: Party,
    pub query: Party,
}

/// One line of a pairs file (`--pairs`): what `--pairs-out` writes, `family` and `split`
/// optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairLine {
    #[serde(default)]
    family: Option<String>,
    positive: bool,
    #[serde(default)]
    split: Option<Split>,
    listed: Party,
    query: Party,
}

/// The family of a read pair that names none.
pub const GIVEN_FAMILY: &str = "given";

/// Reads labelled pairs from a JSON Lines file (one object a line: `listed` and `query`
/// parties in the party line form, `positive`, and optionally `family` and `split`).
/// A pair without a split is `test`: pairs brought from outside were not tuned on. Blank
/// lines are skipped; an error names the line and never quotes a value from it.
pub fn read_pairs(path: &Path) -> anyhow::Result<Vec<Pair>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() {
            continue;
        }
        let read: PairLine = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "{} line {}: not a labelled pair: {} (expected listed, query, positive, and optionally family and split)",
                path.display(),
                i + 1,
                lists::json_problem(&e)
            )
        })?;
        if read.listed.name.trim().is_empty() || read.query.name.trim().is_empty() {
            anyhow::bail!(
                "{} line {}: a party has an empty name",
                path.display(),
                i + 1
            );
        }
        pairs.push(Pair {
            family: read.family.map_or(Cow::Borrowed(GIVEN_FAMILY), Cow::Owned),
            positive: read.positive,
            split: read.split.unwrap_or(Split::Test),
            listed: read.listed,
            query: read.query,
        });
    }
    if pairs.is_empty() {
        anyhow::bail!("{} holds no pairs", path.display());
    }
    Ok(pairs)
}

/// How many pairs of each family to draw per split (at most).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub per_family: usize,
}

/// The entities read from the lists.
#[derive(Debug, Default)]
pub struct Sources {
    /// OFAC SDN entries (with aliases).
    pub sdn: Vec<ListRecord>,
    /// Consolidated Screening List rows that do not come from the SDN.
    pub csl: Vec<ListRecord>,
    /// UN entries (with original-script names).
    pub un: Vec<ListRecord>,
    /// Files that could not be read.
    pub skipped: Vec<String>,
}

impl Sources {
    /// Reads the lists under `dir`: either `shared/data` (`ofac_sdn_*/sdn.csv`,
    /// `us_csl/consolidated.csv`, `un_consolidated/UN_consolidated.xml`) or the
    /// repository's `fixtures/lists` (`sdn/sdn.csv`, `consolidated.csv` and
    /// `entity_list.csv`, `un_consolidated.xml`).
    pub fn read(dir: &Path) -> Self {
        let mut s = Self::default();
        let first =
            |candidates: &[&str]| candidates.iter().map(|c| dir.join(c)).find(|p| p.is_file());
        let mut read = |format: Format, candidates: &[&str], out: &mut Vec<ListRecord>| {
            let Some(path) = first(candidates) else {
                s.skipped
                    .push(format!("{format}: none of {}", candidates.join(", ")));
                return;
            };
            match lists::read(format, &path) {
                Ok(rows) => out.extend(rows.into_iter().filter_map(Result::ok)),
                Err(e) => s.skipped.push(format!("{format}: {e}")),
            }
        };
        let mut sdn = Vec::new();
        let mut csl = Vec::new();
        let mut un = Vec::new();
        read(
            Format::Sdn,
            &["ofac_sdn_2023-12-28/sdn.csv", "sdn/sdn.csv"],
            &mut sdn,
        );
        read(
            Format::Csl,
            &["us_csl/consolidated.csv", "entity_list.csv"],
            &mut csl,
        );
        read(
            Format::Un,
            &["un_consolidated/UN_consolidated.xml", "un_consolidated.xml"],
            &mut un,
        );
        csl.retain(|r| !r.list.contains("SDN"));
        s.sdn = sdn;
        s.csl = csl;
        s.un = un;
        s
    }
}

/// A name-only party: the pairs compare names, so attributes are left out.
fn named(kind: PartyKind, name: &str) -> Party {
    Party {
        kind,
        name: name.to_owned(),
        ..Party::default()
    }
}

/// Letter trigrams of a name's normalised tokens, sorted and joined.
fn trigrams(name: &str, kind: PartyKind) -> BTreeSet<[u8; 3]> {
    let mut tokens = name_tokens(name, kind);
    tokens.sort();
    let joined = format!(" {} ", tokens.join(" "));
    joined
        .as_bytes()
        .windows(3)
        .map(|w| [w[0], w[1], w[2]])
        .collect()
}

fn jaccard(a: &BTreeSet<[u8; 3]>, b: &BTreeSet<[u8; 3]>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

/// Aliases at least this similar (trigram Jaccard) to the primary name are spelling
/// variants (`alias`); the rest are `alias_other`.
pub const ALIAS_VARIANT_JACCARD: f64 = 0.33;

fn split_of(seed: u64, list: &str, id: &str) -> Split {
    // FNV-1a over the seed, list and id: stable across platforms and Rust versions.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed
        .to_le_bytes()
        .iter()
        .chain(list.as_bytes())
        .chain(b"/")
        .chain(id.as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    if h >> 63 == 0 {
        Split::Dev
    } else {
        Split::Test
    }
}

/// Builds the pairs. Deterministic for a given `seed` and input.
pub fn generate(sources: &Sources, seed: u64, sizes: Sizes) -> Vec<Pair> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pairs: Vec<Pair> = Vec::new();
    let mut take = |family: &'static str, mut candidates: Vec<Pair>, rng: &mut ChaCha8Rng| {
        for split in [Split::Dev, Split::Test] {
            let mut of_split: Vec<Pair> = candidates
                .iter()
                .filter(|p| p.split == split)
                .cloned()
                .collect();
            of_split.shuffle(rng);
            of_split.truncate(sizes.per_family);
            pairs.extend(of_split);
        }
        candidates.clear();
        let _ = family;
    };

    // Aliases against primary names.
    let mut alias = Vec::new();
    let mut alias_other = Vec::new();
    for r in &sources.sdn {
        let kind = r.party.kind;
        let split = split_of(seed, "sdn", &r.list_id);
        let primary = trigrams(&r.party.name, kind);
        for a in &r.party.aliases {
            let variant = jaccard(&primary, &trigrams(a, kind)) >= ALIAS_VARIANT_JACCARD;
            let pair = Pair {
                family: if variant { "alias" } else { "alias_other" }.into(),
                positive: true,
                split,
                listed: named(kind, &r.party.name),
                query: named(kind, a),
            };
            if variant {
                alias.push(pair);
            } else {
                alias_other.push(pair);
            }
        }
    }
    take("alias", alias, &mut rng);
    take("alias_other", alias_other, &mut rng);

    // Original script against the Latin name.
    let script: Vec<Pair> = sources
        .un
        .iter()
        .flat_map(|r| {
            let split = split_of(seed, "un", &r.list_id);
            r.party.original_script_names.iter().map(move |o| Pair {
                family: "script".into(),
                positive: true,
                split,
                listed: named(r.party.kind, &r.party.name),
                query: named(r.party.kind, o),
            })
        })
        .collect();
    take("script", script, &mut rng);

    // Perturbed list names.
    let listed: Vec<(Split, PartyKind, &str)> = sources
        .sdn
        .iter()
        .map(|r| (split_of(seed, "sdn", &r.list_id), r))
        .chain(
            sources
                .csl
                .iter()
                .map(|r| (split_of(seed, "csl", &r.list_id), r)),
        )
        .chain(
            sources
                .un
                .iter()
                .map(|r| (split_of(seed, "un", &r.list_id), r)),
        )
        .map(|(s, r)| (s, r.party.kind, r.party.name.as_str()))
        .collect();
    let person_words: Vec<String> = sources
        .sdn
        .iter()
        .filter(|r| r.party.kind == PartyKind::Person)
        .flat_map(|r| {
            r.party
                .name
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| w.len() >= 3)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    for p in Perturbation::ALL {
        let mut candidates = Vec::new();
        for &(split, kind, name) in &listed {
            if let Some(q) = p.apply(name, kind, &person_words, &mut rng) {
                candidates.push(Pair {
                    family: p.as_str().into(),
                    positive: true,
                    split,
                    listed: named(kind, name),
                    query: named(kind, &q),
                });
            }
        }
        take(p.as_str(), candidates, &mut rng);
    }
    let mut double = Vec::new();
    for &(split, kind, name) in &listed {
        let mut two = Perturbation::ALL.choose_multiple(&mut rng, 2);
        let (Some(a), Some(b)) = (two.next(), two.next()) else {
            continue;
        };
        let once = a.apply(name, kind, &person_words, &mut rng);
        if let Some(q) = once.and_then(|q| b.apply(&q, kind, &person_words, &mut rng)) {
            double.push(Pair {
                family: "double".into(),
                positive: true,
                split,
                listed: named(kind, name),
                query: named(kind, &q),
            });
        }
    }
    take("double", double, &mut rng);

    // Hard negatives among distinct SDN entries.
    let entries: Vec<(Split, &ListRecord, Vec<String>)> = sources
        .sdn
        .iter()
        .map(|r| {
            (
                split_of(seed, "sdn", &r.list_id),
                r,
                name_tokens(&r.party.name, r.party.kind),
            )
        })
        .filter(|(_, _, t)| !t.is_empty())
        .collect();
    let negative =
        |family: &'static str, a: &(Split, &ListRecord, Vec<String>), b: &ListRecord| Pair {
            family: family.into(),
            positive: false,
            split: a.0,
            listed: named(b.party.kind, &b.party.name),
            query: named(a.1.party.kind, &a.1.party.name),
        };
    let same_names = |a: &[String], b: &[String]| {
        let mut a = a.to_vec();
        let mut b = b.to_vec();
        a.sort();
        b.sort();
        a == b
    };

    // Persons sharing a surname (the last written token).
    let mut by_surname: BTreeMap<(Split, &str), Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.1.party.kind == PartyKind::Person
            && e.2.len() >= 2
            && let Some(last) = e.2.last()
        {
            by_surname.entry((e.0, last.as_str())).or_default().push(i);
        }
    }
    let mut family = Vec::new();
    for group in by_surname.values().filter(|g| g.len() >= 2) {
        for (k, &i) in group.iter().enumerate() {
            let j = group[(k + 1 + rng.gen_range(0..group.len() - 1)) % group.len()];
            if !same_names(&entries[i].2, &entries[j].2) {
                family.push(negative("family", &entries[i], entries[j].1));
            }
        }
    }
    take("family", family, &mut rng);

    // Organisations sharing a distinctive word.
    let mut by_word: HashMap<(Split, &str), Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.1.party.kind != PartyKind::Person {
            for t in &e.2 {
                if t.len() >= 4 && !tessera_node::party::fuzzy::is_common(t) {
                    by_word.entry((e.0, t.as_str())).or_default().push(i);
                }
            }
        }
    }
    let mut words: Vec<_> = by_word.into_iter().filter(|(_, g)| g.len() >= 2).collect();
    words.sort();
    let mut shared = Vec::new();
    for (_, group) in &words {
        let i = group[rng.gen_range(0..group.len())];
        let j = group[rng.gen_range(0..group.len())];
        if i != j && !same_names(&entries[i].2, &entries[j].2) {
            shared.push(negative("shared_word", &entries[i], entries[j].1));
        }
    }
    take("shared_word", shared, &mut rng);

    // The nearest distinct entry by letter trigrams, for a sample of entries.
    let grams: Vec<BTreeSet<[u8; 3]>> = entries
        .iter()
        .map(|(_, r, _)| trigrams(&r.party.name, r.party.kind))
        .collect();
    let mut posting: HashMap<[u8; 3], Vec<usize>> = HashMap::new();
    for (i, g) in grams.iter().enumerate() {
        for t in g {
            posting.entry(*t).or_default().push(i);
        }
    }
    let mut sample: Vec<usize> = (0..entries.len()).collect();
    sample.shuffle(&mut rng);
    sample.truncate(sizes.per_family * 6);
    let mut near = Vec::new();
    for &i in &sample {
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for t in &grams[i] {
            let Some(list) = posting.get(t) else { continue };
            // Very common trigrams say nothing about nearness and cost the most.
            if list.len() > 2_000 {
                continue;
            }
            for &j in list {
                if j != i && entries[j].0 == entries[i].0 {
                    *counts.entry(j).or_default() += 1;
                }
            }
        }
        let best = counts
            .into_iter()
            .filter(|&(j, _)| !same_names(&entries[i].2, &entries[j].2))
            .map(|(j, inter)| {
                let union = grams[i].len() + grams[j].len() - inter;
                (inter as f64 / union.max(1) as f64, j)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        if let Some((_, j)) = best {
            near.push(negative("near", &entries[i], entries[j].1));
        }
    }
    take("near", near, &mut rng);

    // The distinct entry that the fuzzy keys themselves find most alike: the hardest
    // look-alikes for this matcher (drawn with the spec's parameters, whatever is tuned).
    let params = tessera_node::party::FuzzyParams::default();
    let sdn_index = LookalikeIndex::new(
        entries
            .iter()
            .map(|(_, r, _)| named(r.party.kind, &r.party.name))
            .collect(),
        Alternatives::Fuzzy,
        &params,
    );
    let mut lookalike = Vec::new();
    for &i in &sample {
        let query = named(entries[i].1.party.kind, &entries[i].1.party.name);
        let best = sdn_index.best(&query, &params, |j| {
            j != i && entries[j].0 == entries[i].0 && !same_names(&entries[i].2, &entries[j].2)
        });
        if let Some(j) = best {
            lookalike.push(negative("lookalike", &entries[i], entries[j].1));
        }
    }
    take("lookalike", lookalike, &mut rng);

    // Original-script names against the Latin name of the distinct UN entry the fuzzy keys
    // score highest: the look-alikes of a query written in another script.
    let index = LookalikeIndex::new(
        sources
            .un
            .iter()
            .map(|r| named(r.party.kind, &r.party.name))
            .collect(),
        Alternatives::All,
        &params,
    );
    let mut script_lookalike = Vec::new();
    for (i, r) in sources.un.iter().enumerate() {
        let split = split_of(seed, "un", &r.list_id);
        let own = name_tokens(&r.party.name, r.party.kind);
        for o in &r.party.original_script_names {
            let query = named(r.party.kind, o);
            let best = index.best(&query, &params, |j| {
                let other = &sources.un[j];
                j != i
                    && split_of(seed, "un", &other.list_id) == split
                    && name_tokens(&other.party.name, other.party.kind) != own
            });
            if let Some(j) = best {
                script_lookalike.push(Pair {
                    family: "script_lookalike".into(),
                    positive: false,
                    split,
                    listed: index.listed[j].clone(),
                    query,
                });
            }
        }
    }
    take("script_lookalike", script_lookalike, &mut rng);

    // The same person on two lists, as each list writes the name: a UN entry's name against
    // the SDN entry that carries one of its identity documents (linked by the document's
    // number, never by the name). Against it, the SDN person the fuzzy keys score highest
    // that is not linked to the UN entry and not born in the same year.
    let mut by_document: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for (j, e) in entries.iter().enumerate() {
        if e.1.party.kind == PartyKind::Person {
            for d in document_numbers(&e.1.party) {
                by_document.entry(d).or_default().insert(j);
            }
        }
    }
    let mut cross_list = Vec::new();
    let mut cross_list_aliases = Vec::new();
    let mut cross_lookalike = Vec::new();
    for r in sources
        .un
        .iter()
        .filter(|r| r.party.kind == PartyKind::Person)
    {
        let linked: BTreeSet<usize> = document_numbers(&r.party)
            .iter()
            .filter_map(|d| by_document.get(d))
            .flatten()
            .copied()
            .collect();
        if linked.is_empty() {
            continue;
        }
        let split = split_of(seed, "un", &r.list_id);
        let query = named(PartyKind::Person, &r.party.name);
        for &j in &linked {
            cross_list.push(Pair {
                family: "cross_list".into(),
                positive: true,
                split,
                listed: named(PartyKind::Person, &entries[j].1.party.name),
                query: query.clone(),
            });
            // The same, with the SDN entry's aliases in the listed party, as an import of
            // the list holds it.
            cross_list_aliases.push(Pair {
                family: "cross_list_aliases".into(),
                positive: true,
                split,
                listed: Party {
                    aliases: entries[j].1.party.aliases.clone(),
                    ..named(PartyKind::Person, &entries[j].1.party.name)
                },
                query: query.clone(),
            });
        }
        let year = born(&r.party);
        let best = sdn_index.best(&query, &params, |j| {
            let other = &entries[j].1.party;
            !linked.contains(&j)
                && other.kind == PartyKind::Person
                && (year.is_none() || born(other) != year)
        });
        if let Some(j) = best {
            cross_lookalike.push(Pair {
                family: "cross_list_lookalike".into(),
                positive: false,
                split,
                listed: named(PartyKind::Person, &entries[j].1.party.name),
                query,
            });
        }
    }
    take("cross_list", cross_list, &mut rng);
    take("cross_list_lookalike", cross_lookalike, &mut rng);
    take("cross_list_aliases", cross_list_aliases, &mut rng);
    pairs
}

/// A party's identity document numbers, letters and digits only, upper case: those of six
/// characters or more that hold a digit (shorter ones link unrelated people).
fn document_numbers(party: &Party) -> BTreeSet<String> {
    party
        .ids
        .iter()
        .map(|id| {
            id.value
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_uppercase()
        })
        .filter(|v| v.len() >= 6 && v.bytes().any(|b| b.is_ascii_digit()))
        .collect()
}

fn born(party: &Party) -> Option<&str> {
    party.birth_date.as_deref().and_then(birth_year)
}

/// Which keys of a listed party lead to it in a [`LookalikeIndex`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Alternatives {
    /// The alternatives of its fuzzy names' slots.
    Fuzzy,
    /// Those and its exact keys.
    All,
}

/// Listed parties found by their keys, to draw the distinct party the fuzzy keys score
/// highest against a query (the `lookalike` families).
struct LookalikeIndex {
    listed: Vec<Party>,
    by_key: HashMap<String, Vec<usize>>,
}

impl LookalikeIndex {
    /// Keys held by more parties than this say nothing about likeness and cost the most.
    const MAX_PARTIES_PER_KEY: usize = 500;

    fn new(listed: Vec<Party>, keys: Alternatives, params: &FuzzyParams) -> Self {
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, party) in listed.iter().enumerate() {
            let k = party_keys_with(party, Side::Listed, params);
            let values: Vec<&str> = match keys {
                Alternatives::All => k.all_values(),
                Alternatives::Fuzzy => k
                    .names
                    .iter()
                    .flat_map(|n| &n.slots)
                    .flat_map(|s| &s.alternatives)
                    .map(|a| a.value.as_str())
                    .collect(),
            };
            for v in values {
                let list = by_key.entry(v.to_owned()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        Self { listed, by_key }
    }

    /// The accepted listed party that scores highest against `query` (ties: the first).
    fn best(
        &self,
        query: &Party,
        params: &FuzzyParams,
        accept: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let q = party_keys_with(query, Side::Query, params);
        let mut candidates: BTreeSet<usize> = BTreeSet::new();
        for v in q.all_values() {
            if let Some(list) = self.by_key.get(v)
                && list.len() <= Self::MAX_PARTIES_PER_KEY
            {
                candidates.extend(list.iter().copied());
            }
        }
        candidates
            .into_iter()
            .filter(|&j| accept(j))
            .filter_map(|j| {
                let s = super::oracle::score_parties(query, &self.listed[j], params);
                s.fuzzy.or(s.exact).map(|score| (score, j))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, j)| j)
    }
}
