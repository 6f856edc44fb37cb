//! Tests of fuzzy names on the private path, with real OPRF outputs.

use super::*;
use crate::matching::labels;
use crate::party::verdict::DEFAULT_THRESHOLD;
use crate::party::{PartyKind, party_keys};
use crate::policy::DisclosureLevel;
use crate::privacy::{self, IndexLookup, OprfKey};
use crate::test_support::{denial, org};

fn person(name: &str) -> Party {
    Party {
        kind: PartyKind::Person,
        name: name.into(),
        ..Party::default()
    }
}

/// A holder's index under `key` listing each party in a denial of its own.
fn index(key: &OprfKey, listed: &[Party]) -> IndexLookup {
    let mut rows = Vec::new();
    for (i, p) in listed.iter().enumerate() {
        let n = denial("DE-BAFA", &format!("S-{i}"), "all", std::slice::from_ref(p));
        let to = vec!["FR-SBDU".to_owned()];
        rows.extend(
            labels::sources_for_peer(&n, &to, "FR-SBDU", DisclosureLevel::Pointer, "desk").unwrap(),
        );
    }
    IndexLookup::from_entries(privacy::build_sources(key, &rows).unwrap()).unwrap()
}

/// The querier's outputs for `values`, through blind, a holder's evaluation under
/// `holder` and a finalise verified against `holder`'s public key.
fn evaluate(holder: &OprfKey, values: &[String]) -> Vec<(usize, OprfOutput)> {
    let refs: Vec<&[u8]> = values.iter().map(String::as_bytes).collect();
    let (state, blinded) = privacy::blind(&refs).unwrap();
    let (evaluated, proof) = privacy::evaluate_blinded(holder, &blinded).unwrap();
    privacy::finalize(&state, &evaluated, &proof, &holder.public_key_bytes())
        .unwrap()
        .into_iter()
        .enumerate()
        .collect()
}

fn screen(key: &OprfKey, lookup: &IndexLookup, query: &Party) -> Vec<Finding> {
    let keys = QueryKeys::of(std::slice::from_ref(query), "");
    let outputs = evaluate(key, &keys.values);
    find(lookup, &keys, &outputs, DEFAULT_THRESHOLD).remove(0)
}

/// The same answer computed in the clear from both parties' keys.
fn clear(query: &Party, listed: &Party) -> Option<Verdict> {
    let q = party_keys(query, Side::Query);
    let l = party_keys(listed, Side::Listed);
    let hits: Vec<&MatchKey> = q
        .exact
        .iter()
        .filter(|k| l.exact.iter().any(|x| x.value == k.value))
        .collect();
    let mut names = Vec::new();
    for qn in &q.names {
        for ln in &l.names {
            if let Some(matched) = fuzzy::open_clear(qn, ln) {
                names.push(NameEvidence {
                    query_name: qn.name,
                    matched,
                });
            }
        }
    }
    verdict(&hits, &names, DEFAULT_THRESHOLD)
}

/// The keys of `query` restricted to the exact spelling of the tokens of `slots` (no
/// exact name keys, no joins that would reach a neighbour), as a querier that knows only
/// those name parts would hold them.
fn only_slots(query: &Party, slots: &[usize]) -> QueryKeys {
    let mut keys = QueryKeys::of(std::slice::from_ref(query), "");
    for (i, uses) in keys.uses.iter_mut().enumerate() {
        uses.exact.clear();
        uses.alternatives
            .retain(|&(_, _, s, r)| slots.contains(&s) && r == Relation::Exact);
        if uses.alternatives.is_empty() {
            keys.values[i].clear();
        }
    }
    keys
}

fn outputs_of(key: &OprfKey, keys: &QueryKeys) -> Vec<(usize, OprfOutput)> {
    evaluate(key, &keys.values)
        .into_iter()
        .filter(|(i, _)| !keys.values[*i].is_empty())
        .collect()
}

#[test]
fn a_name_opens_with_exactly_t_slots_and_not_with_t_minus_one() {
    let key = OprfKey::generate(1);
    // Four distinctive parts: threshold 3.
    let listed = person("Artem Viktorovich SAMOYLOV Kuznetsky");
    let names = party_keys(&listed, Side::Listed).names;
    assert_eq!((names[0].slots.len(), names[0].threshold), (4, 3));
    let lookup = index(&key, std::slice::from_ref(&listed));
    for (slots, opens) in [
        (vec![0, 1, 2], true),
        (vec![1, 2, 3], true),
        (vec![0, 2], false),
        (vec![3], false),
    ] {
        let keys = only_slots(&listed, &slots);
        let outputs = outputs_of(&key, &keys);
        let found = find(&lookup, &keys, &outputs, 0.0).remove(0);
        assert_eq!(!found.is_empty(), opens, "slots {slots:?}");
        if opens {
            assert_eq!(found[0].label.serial, "S-0");
            assert_eq!(found[0].kinds, ["fuzzy_name"]);
        }
    }
}

#[test]
fn below_the_threshold_no_combination_of_answers_opens_a_name() {
    let key = OprfKey::generate(1);
    let listed = person("Artem Viktorovich SAMOYLOV Kuznetsky");
    let lookup = index(&key, std::slice::from_ref(&listed));
    // Two slots from one query, the same two again from another: still two points.
    let mut groups: BTreeMap<Handle, Group> = BTreeMap::new();
    for slots in [[0, 1], [1, 0], [0, 1]] {
        let keys = only_slots(&listed, &slots);
        for (i, y) in outputs_of(&key, &keys) {
            for entry in lookup.rows(&tag_of(&y)) {
                if let Ok(Record::Pointer { slot, relation }) = entry.open_record(&y)
                    && let Some(s) = follow(&lookup, &slot)
                {
                    groups.entry(s.handle).or_default().push((i, relation, s));
                }
            }
        }
    }
    assert_eq!(groups.len(), 1);
    let group = groups.values().next().unwrap();
    let handle = groups.keys().next().unwrap();
    let xs: BTreeSet<u8> = group.iter().map(|(_, _, s)| s.x).collect();
    assert_eq!(xs.len(), 2);
    assert!(open_name(&lookup, handle, group).is_none());
    // Every interpolation of the points held gives no key of any row.
    let points: Vec<(u8, Scalar)> = xs
        .iter()
        .map(|x| {
            let s = group.iter().find(|(_, _, s)| s.x == *x).unwrap();
            (*x, s.2.share)
        })
        .collect();
    for subset in [&points[..1], &points[1..], &points[..]] {
        let secret = threshold::interpolate(subset).unwrap();
        let y = *NameKey::derive(&secret, handle).row_key();
        assert!(lookup.rows(&tag_of(&y)).is_empty());
    }
}

#[test]
fn shares_sealed_for_one_peer_do_not_open_with_another_peers_outputs() {
    let for_a = OprfKey::generate(1);
    let for_b = OprfKey::generate(1);
    let listed = person("Artem Viktorovich SAMOYLOV Kuznetsky");
    let lookup = index(&for_a, std::slice::from_ref(&listed));
    assert!(!screen(&for_a, &lookup, &listed).is_empty());
    assert!(screen(&for_b, &lookup, &listed).is_empty());
    // Even a row found by tag does not open under another key's output.
    let keys = QueryKeys::of(std::slice::from_ref(&listed), "");
    for (_, y) in evaluate(&for_b, &keys.values) {
        for entry in lookup.iter() {
            assert!(entry.open_record(&y).is_err());
        }
    }
}

#[test]
fn the_private_answer_equals_the_clear_one() {
    let key = OprfKey::generate(1);
    let listed = vec![
        person("Artem Viktorovich SAMOYLOV"),
        person("Mohammed Ali HASSAN"),
        org("Abu Dhabi Petroleum Trading LLC", "AE"),
        org("Example Trading FZE", "AE"),
        person("Ivan PETROV"),
        org("Mining Enterprise No 2", "KP"),
        org("Fu Yuan Yu 7862", "CN"),
        org("Daewon Industries", "KP"),
    ];
    let queries = vec![
        person("Artyom SAMOILOV"),
        person("A. SAMOYLOV Viktorovich"),
        person("Muhammad Ali HASSAN"),
        person("Mohammed HUSSEIN"),
        org("AbuDhabi Petroleum Trading", "AE"),
        org("Example Trading FZE", "AE"),
        org("Exampel Tradng", "DE"),
        person("Sergei PETROV"),
        person("Ivan PETROFF"),
        org("Unrelated Bakery GmbH", "DE"),
        // Numbers: the same one, another one (no match whatever the words), none.
        org("Mining Enterprise No 2", "CN"),
        org("Mining Enterprise No 1", "CN"),
        org("Fu Yuan Yu 8652", "KR"),
        org("Fu Yuan Yu", "KR"),
        // A common word by its stem.
        org("Daewon Industry Company", "CN"),
    ];
    let lookup = index(&key, &listed);
    let mut reported = 0;
    for q in &queries {
        let private = screen(&key, &lookup, q);
        for (i, l) in listed.iter().enumerate() {
            let serial = format!("S-{i}");
            let p = private.iter().find(|f| f.label.serial == serial);
            let c = clear(q, l);
            assert_eq!(p.map(|f| &f.verdict), c.as_ref(), "query {q:?} listed {i}");
            reported += usize::from(c.is_some());
        }
    }
    assert!(
        reported >= 8,
        "{reported} pairs reported: the fixture tests too little"
    );
    for (q, l) in [(11, 5), (12, 6)] {
        assert!(clear(&queries[q], &listed[l]).is_none(), "numbers conflict");
    }
    assert!(clear(&queries[10], &listed[5]).is_some());
    assert!(clear(&queries[13], &listed[6]).is_some());
    let stem = clear(&queries[14], &listed[7]).expect("reported");
    assert!(stem.score >= 0.85, "{stem:?}");
}

#[test]
fn common_tokens_count_through_their_digests_only() {
    let (secret, _) = threshold::split(1, 1).unwrap();
    let key = NameKey::derive(&secret, &threshold::handle());
    let trading = common_digests(&key, "TRADING", true);
    assert_eq!(
        sealed_relation(&key, "TRADING", true, &trading),
        Some(Relation::Exact)
    );
    assert_eq!(
        sealed_relation(&key, "TRADIG", true, &trading),
        Some(Relation::Spelling)
    );
    assert_eq!(sealed_relation(&key, "BANK", true, &trading), None);
    for (q, l) in [
        ("TRADING", "TRADING"),
        ("TRADNG", "TRADING"),
        ("LLC", "LTD"),
        ("INDUSTRY", "INDUSTRIES"),
        ("ADMINISTRATIVE", "ADMINISTRATION"),
    ] {
        for stems in [(true, true), (true, false), (false, true), (false, false)] {
            assert_eq!(
                sealed_relation(&key, q, stems.0, &common_digests(&key, l, stems.1)),
                fuzzy::common_relation(q, l, stems),
                "{q} / {l} {stems:?}"
            );
        }
    }
    // Words of one stem agree only when both names stem their words (not persons').
    let listed = |stems| common_digests(&key, "ADMINISTRATION", stems);
    let relation =
        |stems: (bool, bool)| sealed_relation(&key, "ADMINISTRATIVE", stems.0, &listed(stems.1));
    assert_eq!(relation((true, true)), Some(Relation::Spelling));
    assert_eq!(relation((false, true)), None);
    assert_eq!(relation((true, false)), None);
    // Under another name's key the digests say nothing.
    let (other, _) = threshold::split(1, 1).unwrap();
    let key2 = NameKey::derive(&other, &threshold::handle());
    assert_eq!(sealed_relation(&key2, "TRADING", true, &trading), None);
}

/// A hostile holder's rows cost bounded work: shares claiming more slots than a name can
/// have are ignored, and at most `MAX_ROWS_PER_TAG` rows are read under one tag.
#[test]
fn a_hostile_holders_rows_cost_bounded_work() {
    let key = OprfKey::generate(1);
    let listed = person("Artem Viktorovich SAMOYLOV");
    let mut rows = Vec::new();
    let n = denial("DE-BAFA", "S-0", "all", std::slice::from_ref(&listed));
    let to = vec!["FR-SBDU".to_owned()];
    rows.extend(
        labels::sources_for_peer(&n, &to, "FR-SBDU", DisclosureLevel::Pointer, "desk").unwrap(),
    );
    // 200 shares of one planted name of 200 slots under a tag the querier asks for.
    let (_, shares) = threshold::split(200, 200).unwrap();
    let handle = threshold::handle();
    for (i, share) in shares.iter().enumerate() {
        let record = ShareRecord {
            handle,
            x: u8::try_from(i + 1).unwrap(),
            t: 200,
            n: 200,
            share: *share,
        };
        let slot = threshold::slot_key();
        rows.push(RowSource::Derived {
            y: Box::new(threshold::slot_row_key(&slot)),
            body: record.encode(),
        });
        rows.push(RowSource::Pointer {
            input: "mk2|t|SAMOYLOV".into(),
            slot,
            relation: 0,
        });
    }
    let lookup = IndexLookup::from_entries(privacy::build_sources(&key, &rows).unwrap()).unwrap();
    let found = screen(&key, &lookup, &listed);
    assert_eq!(found.len(), 1, "the real name is still found");
    assert_eq!(found[0].label.serial, "S-0");
}
