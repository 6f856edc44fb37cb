//! Fuzzy names on the private path, both sides (docs/private-matching.md §2.2, §3.1).
//!
//! The holder ([`name_rows`]) seals each listed name t-of-n: one Shamir share per slot
//! under a random slot key, a pointer to that key under every alternative of the slot,
//! the name's label (with its token counts and digests of its common tokens) under a key
//! derived from the name's secret.
//!
//! The querier ([`QueryKeys`], [`find`]) evaluates the exact keys and every alternative of
//! its parties, opens what its outputs find, interpolates each name whose shares reach the
//! threshold, and scores what it opened with `party::fuzzy::score` and
//! `party::verdict::verdict`: the same computation as in the clear, so the private answer
//! equals the clear one (`tessera eval screening` checks it pair by pair).
//!
//! Never logged: a key, a token, a share, an output.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use curve25519_dalek::scalar::Scalar;

use crate::party::fuzzy::{
    self, FuzzyName, Relation, common_agreements_by, sound_code, spelling_forms,
};
use crate::party::verdict::{NameEvidence, Verdict, verdict};
use crate::party::{self, MatchKey, Party, Side};
use crate::privacy::threshold::{self, CommonDigests, Handle, NameKey, NameRecord, ShareRecord};
use crate::privacy::{
    EntryRef, IndexLookup, Label, OprfOutput, PrivacyError, Record, RowSource, Tag, tag_of,
};

use super::labels::{FUZZY_KIND, label_pointer_of};
use super::replica::RowSet;

/// Rows found by tag: a replica's row set, or one lookup table.
pub trait Rows {
    fn rows(&self, tag: &Tag) -> Vec<EntryRef<'_>>;
}

impl Rows for IndexLookup {
    fn rows(&self, tag: &Tag) -> Vec<EntryRef<'_>> {
        self.get(tag).collect()
    }
}

impl Rows for RowSet {
    fn rows(&self, tag: &Tag) -> Vec<EntryRef<'_>> {
        self.get(tag).collect()
    }
}

const EXACT: u8 = b'e';
const SOUND: u8 = b's';
const SPELLING: u8 = b'd';
/// The sound digest of a number: it has no sound, and this says it is a number.
const NUMBER: u8 = b'n';

/// The digests of a listed common token; `stems` as the listed name's
/// ([`FuzzyName::stems`]).
fn common_digests(key: &NameKey, token: &str, stems: bool) -> CommonDigests {
    let mut spelling: Vec<_> = spelling_forms(token, stems)
        .iter()
        .map(|f| key.digest(SPELLING, f))
        .collect();
    spelling.sort_unstable();
    spelling.dedup();
    CommonDigests {
        exact: key.digest(EXACT, token),
        sound: if fuzzy::is_number(token) {
            key.digest(NUMBER, "")
        } else {
            key.digest(SOUND, &sound_code(token))
        },
        spelling,
    }
}

/// `fuzzy::common_relation` against a listed common token known by its digests; `stems`
/// as the queried name's ([`FuzzyName::stems`]).
fn sealed_relation(
    key: &NameKey,
    query: &str,
    stems: bool,
    listed: &CommonDigests,
) -> Option<Relation> {
    if key.digest(EXACT, query) == listed.exact {
        return Some(Relation::Exact);
    }
    if key.digest(SOUND, &sound_code(query)) == listed.sound {
        return Some(Relation::Sound);
    }
    if !listed.spelling.is_empty()
        && spelling_forms(query, stems).iter().any(|f| {
            listed
                .spelling
                .binary_search(&key.digest(SPELLING, f))
                .is_ok()
        })
    {
        return Some(Relation::Spelling);
    }
    None
}

/// The rows of one listed name: a share row per slot, a pointer row per alternative, and
/// the name's row, which names its notice's label row by `label_key`. `prefix` goes
/// before every alternative (the deconfliction domain).
pub fn name_rows(
    name: &FuzzyName,
    label_key: &threshold::SlotKey,
    prefix: &str,
) -> Result<Vec<RowSource>, PrivacyError> {
    let n = name.slots.len();
    let (secret, shares) = threshold::split(name.threshold, n)?;
    let handle = threshold::handle();
    let key = NameKey::derive(&secret, &handle);
    let small = |v: usize| u8::try_from(v).map_err(|_| PrivacyError::BadThreshold { t: v, n });
    let (t, n8) = (small(name.threshold)?, small(n)?);
    let mut rows = Vec::new();
    for (i, (slot, share)) in name.slots.iter().zip(&shares).enumerate() {
        // The share once, under its slot's key; a pointer to that key per alternative.
        let slot_key = threshold::slot_key();
        let record = ShareRecord {
            handle,
            x: small(i + 1)?,
            t,
            n: n8,
            share: *share,
        };
        rows.push(RowSource::Derived {
            y: Box::new(threshold::slot_row_key(&slot_key)),
            body: record.encode(),
        });
        for alt in &slot.alternatives {
            rows.push(RowSource::Pointer {
                input: format!("{prefix}{}", alt.value),
                slot: slot_key,
                relation: alt.relation.code(),
            });
        }
    }
    let record = NameRecord {
        tokens: small(name.tokens)?,
        slots: n8,
        common: name
            .common
            .iter()
            .map(|c| common_digests(&key, c, name.stems))
            .collect(),
        label_key: *label_key,
    };
    rows.push(RowSource::Derived {
        y: Box::new(*key.row_key()),
        body: record.encode()?,
    });
    Ok(rows)
}

/// How a querier's key string is used by its parties.
#[derive(Debug, Clone, Default)]
pub struct KeyUses {
    /// (party, exact key) for exact keys.
    pub exact: Vec<(usize, MatchKey)>,
    /// (party, fuzzy name index in `QueryKeys::names[party]`, slot, relation).
    pub alternatives: Vec<(usize, usize, usize, Relation)>,
}

/// The keys a querier evaluates for its parties, and what each is of which party.
#[derive(Debug, Clone, Default)]
pub struct QueryKeys {
    /// Distinct key strings, in evaluation order.
    pub values: Vec<String>,
    pub uses: Vec<KeyUses>,
    /// Per party: its fuzzy names.
    pub names: Vec<Vec<FuzzyName>>,
    /// Per party: how many keys it gave.
    pub per_party: Vec<u32>,
}

impl QueryKeys {
    /// The exact keys and fuzzy alternatives of `parties` (side query), each key string
    /// prefixed with `prefix` (empty, or the deconfliction domain).
    pub fn of(parties: &[Party], prefix: &str) -> Self {
        Self::with_prefixes(parties, &[prefix])
    }

    /// [`QueryKeys::of`] under each of `prefixes` in turn (an investigation subject is
    /// also matched in the deconfliction domain).
    pub fn with_prefixes(parties: &[Party], prefixes: &[&str]) -> Self {
        let mut out = Self::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut at = |out: &mut Self, value: String| -> usize {
            *index.entry(value).or_insert_with_key(|v| {
                out.values.push(v.clone());
                out.uses.push(KeyUses::default());
                out.values.len() - 1
            })
        };
        for (p, party) in parties.iter().enumerate() {
            let keys = party::party_keys(party, Side::Query);
            let mut mine: BTreeSet<usize> = BTreeSet::new();
            for prefix in prefixes {
                for k in &keys.exact {
                    let i = at(&mut out, format!("{prefix}{}", k.value));
                    out.uses[i].exact.push((p, k.clone()));
                    mine.insert(i);
                }
                for (n, name) in keys.names.iter().enumerate() {
                    for (s, slot) in name.slots.iter().enumerate() {
                        for alt in &slot.alternatives {
                            let i = at(&mut out, format!("{prefix}{}", alt.value));
                            out.uses[i].alternatives.push((p, n, s, alt.relation));
                            mine.insert(i);
                        }
                    }
                }
            }
            out.names.push(keys.names);
            out.per_party.push(mine.len() as u32);
        }
        out
    }

    /// The parties that use key `i`.
    pub fn owners(&self, i: usize) -> BTreeSet<usize> {
        let u = &self.uses[i];
        u.exact
            .iter()
            .map(|(p, _)| *p)
            .chain(u.alternatives.iter().map(|(p, ..)| *p))
            .collect()
    }
}

/// One listed notice a party matched: a label of it and the verdict.
#[derive(Debug, Clone)]
pub struct Finding {
    pub label: Label,
    /// The tag of the row the label was read from (a deconfliction hit names it).
    pub tag: Tag,
    pub verdict: Verdict,
    /// Kinds of the exact keys that matched, then `fuzzy_name` when a name opened.
    pub kinds: Vec<String>,
}

/// Everything the outputs found for one notice and one party.
#[derive(Default)]
struct Bucket<'a> {
    label: Option<(Label, Tag)>,
    exact: Vec<&'a MatchKey>,
    names: Vec<NameEvidence>,
}

/// Opened shares of one listed name: (key index, relation of the alternative, share).
type Group = Vec<(usize, u8, ShareRecord)>;

/// Rows read under one tag at most. A real list puts a few thousand names under its most
/// frequent name part; a hostile holder could put millions under a tag it knows we ask for
/// (it can compute any output), and make every screening open them all.
pub const MAX_ROWS_PER_TAG: usize = 20_000;

/// Shares of a name with more slots than any name can have are not the holder's honest
/// work (and would cost the square of their count to interpolate): refused.
fn plausible(share: &ShareRecord) -> bool {
    usize::from(share.n) <= party::MAX_NAME_TOKENS
}

/// Interpolates a name from its shares and opens its label row.
fn open_name(
    lookup: &dyn Rows,
    handle: &Handle,
    group: &Group,
) -> Option<(NameKey, NameRecord, Tag)> {
    let (t, n) = (group[0].2.t, group[0].2.n);
    let mut points: BTreeMap<u8, Scalar> = BTreeMap::new();
    for (_, _, s) in group {
        // Shares of one name that disagree on the threshold are not the holder's.
        if (s.t, s.n) != (t, n) {
            return None;
        }
        points.entry(s.x).or_insert(s.share);
    }
    if points.len() < usize::from(t) {
        return None;
    }
    let chosen: Vec<(u8, Scalar)> = points.into_iter().take(usize::from(t)).collect();
    let secret = threshold::interpolate(&chosen)?;
    let key = NameKey::derive(&secret, handle);
    let y = key.row_key();
    let tag = tag_of(y);
    let record = lookup
        .rows(&tag)
        .into_iter()
        .find_map(|entry| match entry.open_record(y) {
            Ok(Record::Name(record)) => Some(record),
            _ => None,
        })?;
    Some((key, record, tag))
}

/// The first record under a random key (a slot's or a label's) that `pick` accepts.
fn under_key<T>(
    lookup: &dyn Rows,
    key: &threshold::SlotKey,
    pick: impl Fn(Record) -> Option<T>,
) -> Option<T> {
    let y = threshold::slot_row_key(key);
    lookup
        .rows(&tag_of(&y))
        .into_iter()
        .take(MAX_ROWS_PER_TAG)
        .find_map(|entry| entry.open_record(&y).ok().and_then(&pick))
}

/// The share a pointer's slot key opens (none if no row under it opens as a plausible
/// share).
pub fn follow(lookup: &dyn Rows, slot: &threshold::SlotKey) -> Option<ShareRecord> {
    under_key(lookup, slot, |record| match record {
        Record::Share(share) if plausible(&share) => Some(share),
        _ => None,
    })
}

/// The label row under a label key (none if no row under it opens as a label).
fn label_row(lookup: &dyn Rows, key: &threshold::SlotKey) -> Option<Label> {
    under_key(lookup, key, |record| match record {
        Record::Label(label) => Some(*label),
        _ => None,
    })
}

/// The label an exact key's pointer leads to, with the key's kind and strength (none if
/// the byte is not an exact key's or no row under the key opens as a label).
pub fn follow_label(lookup: &dyn Rows, key: &threshold::SlotKey, code: u8) -> Option<Label> {
    let (kind, strength) = label_pointer_of(code)?;
    Some(Label {
        key_kind: kind.as_str().to_owned(),
        strength: strength.as_str().to_owned(),
        ..label_row(lookup, key)?
    })
}

/// What `outputs` (key index, output) find in `lookup` for the parties of `keys`: per
/// party, one finding per notice, those below `threshold` left out (exact keys always
/// count).
pub fn find(
    lookup: &dyn Rows,
    keys: &QueryKeys,
    outputs: &[(usize, OprfOutput)],
    threshold: f64,
) -> Vec<Vec<Finding>> {
    let parties = keys.per_party.len();
    let mut buckets: Vec<BTreeMap<(String, String), Bucket<'_>>> =
        (0..parties).map(|_| BTreeMap::new()).collect();
    let mut groups: BTreeMap<Handle, Group> = BTreeMap::new();
    for (i, y) in outputs {
        for entry in lookup.rows(&tag_of(y)).into_iter().take(MAX_ROWS_PER_TAG) {
            // A row under our tag that does not open is not ours to read.
            let mut exact = |label: Label| {
                for (p, key) in &keys.uses[*i].exact {
                    let b = buckets[*p]
                        .entry((label.origin.clone(), label.serial.clone()))
                        .or_default();
                    b.exact.push(key);
                    b.label.get_or_insert_with(|| (label.clone(), *entry.tag));
                }
            };
            match entry.open_record(y) {
                Ok(Record::Label(label)) => exact(*label),
                Ok(Record::Pointer { slot, relation }) if label_pointer_of(relation).is_some() => {
                    if let Some(label) = follow_label(lookup, &slot, relation) {
                        exact(label);
                    }
                }
                Ok(Record::Pointer { slot, relation }) => {
                    if let Some(share) = follow(lookup, &slot) {
                        groups
                            .entry(share.handle)
                            .or_default()
                            .push((*i, relation, share));
                    }
                }
                // A share or a name record is reached through its pointer or secret, never
                // found by a key's output.
                Ok(Record::Share(_) | Record::Name(_)) | Err(_) => {}
            }
        }
    }
    for (handle, group) in &groups {
        let Some((name_key, record, tag)) = open_name(lookup, handle, group) else {
            continue;
        };
        let Some(label) = label_row(lookup, &record.label_key) else {
            continue;
        };
        let label = Label {
            key_kind: FUZZY_KIND.to_owned(),
            strength: party::Strength::Weak.as_str().to_owned(),
            ..label
        };
        let opened = Opened {
            key: &name_key,
            record: &record,
            label: &label,
            tag,
        };
        score_opened(keys, group, &opened, &mut buckets);
    }
    buckets
        .into_iter()
        .map(|b| {
            b.into_values()
                .filter_map(|bucket| {
                    let (label, tag) = bucket.label?;
                    let v = verdict(&bucket.exact, &bucket.names, threshold)?;
                    let mut kinds: Vec<String> = Vec::new();
                    for k in &bucket.exact {
                        let kind = k.kind.as_str().to_owned();
                        if !kinds.contains(&kind) {
                            kinds.push(kind);
                        }
                    }
                    if bucket
                        .names
                        .iter()
                        .any(|n| n.matched.similarity >= threshold)
                    {
                        kinds.push("fuzzy_name".to_owned());
                    }
                    Some(Finding {
                        label,
                        tag,
                        verdict: v,
                        kinds,
                    })
                })
                .collect()
        })
        .collect()
}

/// Scores an opened listed name for every query name that covers its threshold.
/// A listed name the querier opened: its key, record, label, and the tag of its row.
struct Opened<'r> {
    key: &'r NameKey,
    record: &'r NameRecord,
    label: &'r Label,
    tag: Tag,
}

fn score_opened<'a>(
    keys: &'a QueryKeys,
    group: &Group,
    opened: &Opened<'_>,
    buckets: &mut [BTreeMap<(String, String), Bucket<'a>>],
) {
    let Opened {
        key: name_key,
        record,
        label,
        tag,
    } = *opened;
    let t = usize::from(group[0].2.t);
    // (party, query name) -> (query slot, listed slot) -> strongest relation.
    let mut agreements: BTreeMap<(usize, usize), BTreeMap<(usize, usize), Relation>> =
        BTreeMap::new();
    for (i, relation, share) in group {
        let Some(listed) = Relation::from_code(*relation) else {
            continue;
        };
        for &(p, n, s, relation) in &keys.uses[*i].alternatives {
            let r = relation.combine(listed);
            let slot = usize::from(share.x) - 1;
            let best = agreements
                .entry((p, n))
                .or_default()
                .entry((s, slot))
                .or_insert(r);
            *best = (*best).min(r);
        }
    }
    let number = name_key.digest(NUMBER, "");
    for ((p, n), pairs) in agreements {
        let query = &keys.names[p][n];
        if fuzzy::numbers_conflict(
            query,
            &record.common,
            |c| c.sound == number,
            |q, c| name_key.digest(EXACT, q) == c.exact,
        ) {
            continue;
        }
        let list: Vec<fuzzy::Agreement> = pairs
            .into_iter()
            .map(|((q, slot), relation)| fuzzy::Agreement {
                query: q,
                slot,
                relation,
            })
            .collect();
        let common = |used: &BTreeSet<usize>| {
            common_agreements_by(query, used, &record.common, |q, c| {
                sealed_relation(name_key, q, query.stems, c)
            })
        };
        let Some(matched) = fuzzy::score(
            &list,
            &common,
            query,
            usize::from(record.tokens),
            usize::from(record.slots),
            t,
        ) else {
            continue;
        };
        let b = buckets[p]
            .entry((label.origin.clone(), label.serial.clone()))
            .or_default();
        b.label.get_or_insert_with(|| (label.clone(), tag));
        b.names.push(NameEvidence {
            query_name: query.name,
            matched,
        });
    }
}

#[cfg(test)]
mod tests;
