//! Tests of index replication.

use super::*;
use crate::policy::DisclosureLevel;
use crate::privacy::OprfKey;
use crate::test_support::{agency, denial, honest_peer, index_delta, matching_world, org};

/// FR-SBDU's index for us: one denial, then a second one (and, when
/// `drop_first`, the first one's rows removed).
fn two_deltas(key: &OprfKey, drop_first: bool) -> Vec<IndexDelta> {
    let first = index_delta(
        key,
        &[denial(
            "FR-SBDU",
            "S-1",
            "all",
            &[org("Example Trading FZE", "AE")],
        )],
        DisclosureLevel::Pointer,
    );
    let mut second = index_delta(
        key,
        &[denial(
            "FR-SBDU",
            "S-2",
            "all",
            &[org("Other Machines LLC", "RU")],
        )],
        DisclosureLevel::Pointer,
    );
    second.pos = 2;
    second.reset = false;
    if drop_first {
        second.removes = first.adds.iter().map(|a| a[..ROW_ID].to_vec()).collect();
    }
    vec![first, second]
}

#[test]
fn deltas_apply_in_order_once_and_survive_a_reopen() {
    crate::test_support::run(async {
        let w = matching_world(&["FR-SBDU"]);
        let b = agency("FR-SBDU");
        let key = Arc::new(OprfKey::generate(1));
        let deltas = two_deltas(&key, false);
        let rows = deltas[0].adds.len() + deltas[1].adds.len();
        w.peers.add(
            &b,
            crate::exchange::fake::FakePeer {
                index: deltas,
                ..honest_peer(&key)
            },
        );
        assert_eq!(w.sync.pull(&b).await.unwrap(), rows);
        assert_eq!(w.replicas.cursor(&b).unwrap(), 2);
        assert_eq!(w.replicas.get(&b).unwrap().lookup.len(), rows);
        // Pulled again: nothing new.
        assert_eq!(w.sync.pull(&b).await.unwrap(), 0);
        let again = Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap();
        let replica = again.get(&b).unwrap();
        assert_eq!((replica.epoch, replica.lookup.len()), (1, rows));
    });
}

#[test]
fn removed_rows_leave_the_replica() {
    crate::test_support::run(async {
        let w = matching_world(&["FR-SBDU"]);
        let b = agency("FR-SBDU");
        let key = Arc::new(OprfKey::generate(1));
        let deltas = two_deltas(&key, true);
        let kept = deltas[1].adds.len();
        w.peers.add(
            &b,
            crate::exchange::fake::FakePeer {
                index: deltas,
                ..honest_peer(&key)
            },
        );
        w.sync.pull(&b).await.unwrap();
        assert_eq!(w.replicas.get(&b).unwrap().lookup.len(), kept);
    });
}

#[test]
fn a_peer_down_or_a_broken_stream_changes_nothing() {
    crate::test_support::run(async {
        let w = matching_world(&["FR-SBDU"]);
        let b = agency("FR-SBDU");
        let key = Arc::new(OprfKey::generate(1));
        assert!(matches!(w.sync.pull(&b).await, Err(ReplicaError::Peer(_))));
        w.peers.add(
            &b,
            crate::exchange::fake::FakePeer {
                index: two_deltas(&key, false),
                break_stream_after: Some(1),
                ..honest_peer(&key)
            },
        );
        assert!(matches!(w.sync.pull(&b).await, Err(ReplicaError::Peer(_))));
        assert_eq!(w.replicas.cursor(&b).unwrap(), 0);
        assert!(w.replicas.get(&b).is_none());
    });
}

#[test]
fn a_lying_peers_deltas_are_refused_whole() {
    crate::test_support::run(async {
        let w = matching_world(&["FR-SBDU"]);
        let b = agency("FR-SBDU");
        let key = Arc::new(OprfKey::generate(1));
        type Lie = Box<dyn Fn(&mut Vec<IndexDelta>)>;
        let cases: [(&str, Lie); 4] = [
            (
                "public key is not 32 bytes",
                Box::new(|d| d[0].public_key.truncate(31)),
            ),
            (
                "the key changed without a reset",
                Box::new(|d| d[1].public_key = OprfKey::generate(1).public_key_bytes().to_vec()),
            ),
            (
                "a removed row id is not 40 bytes",
                Box::new(|d| d[1].removes = vec![vec![1; 39]]),
            ),
            (
                "index entry bytes are malformed",
                Box::new(|d| d[1].adds[0].truncate(20)),
            ),
        ];
        for (problem, lie) in cases {
            let mut deltas = two_deltas(&key, false);
            lie(&mut deltas);
            w.peers.add(
                &b,
                crate::exchange::fake::FakePeer {
                    index: deltas,
                    ..honest_peer(&key)
                },
            );
            let err = w.sync.pull(&b).await.unwrap_err();
            assert!(
                matches!(&err, ReplicaError::Malformed { problem: p, .. } if p.contains(problem)),
                "{problem}: {err}"
            );
            assert_eq!(w.replicas.cursor(&b).unwrap(), 0, "{problem}");
            assert!(w.replicas.get(&b).is_none(), "{problem}");
        }
    });
}

#[test]
fn a_slow_peer_is_waited_for() {
    crate::test_support::run_paused(async {
        let w = matching_world(&["FR-SBDU"]);
        let b = agency("FR-SBDU");
        let key = Arc::new(OprfKey::generate(1));
        w.peers.add(
            &b,
            crate::exchange::fake::FakePeer {
                index: two_deltas(&key, false),
                delay: std::time::Duration::from_secs(30),
                ..honest_peer(&key)
            },
        );
        let started = tokio::time::Instant::now();
        assert!(w.sync.pull(&b).await.unwrap() > 0);
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(30));
    });
}

/// A row of made-up bytes: tag from `n`, nonce from `n`.
fn made_up_row(n: u32) -> IndexEntry {
    let mut tag = [0u8; privacy::TAG_LEN];
    tag[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    let mut nonce = [0u8; privacy::NONCE_LEN];
    nonce[..4].copy_from_slice(&n.to_be_bytes());
    IndexEntry {
        tag,
        nonce,
        sealed: vec![7; 16],
    }
}

#[test]
fn many_small_deltas_stay_in_few_segments_and_every_row_is_found() {
    let mut set = RowSet::default();
    let none = HashSet::new();
    let mut most = 0;
    for batch in 0..500u32 {
        let adds = (0..20).map(|i| made_up_row(batch * 20 + i)).collect();
        set = set.apply(adds, &none).unwrap();
        most = most.max(set.segments());
    }
    assert_eq!(set.len(), 10_000);
    // Sizes double from the newest segment to the oldest: about log2(500) of them.
    assert!(most <= 10, "{most} segments");
    for n in [0, 1, 4_999, 9_999] {
        let row = made_up_row(n);
        let found: Vec<IndexEntry> = set.get(&row.tag).map(|r| r.to_entry()).collect();
        assert_eq!(found, [row]);
    }
    // A removal reaches the row in whichever segment holds it.
    let gone = made_up_row(17);
    let removes = HashSet::from([row_id(&gone.tag, &gone.nonce)]);
    set = set.apply(Vec::new(), &removes).unwrap();
    assert_eq!(set.len(), 9_999);
    assert_eq!(set.get(&gone.tag).count(), 0);
}

#[test]
fn no_merge_makes_a_segment_larger_than_the_cap() {
    let mut set = RowSet::default();
    let none = HashSet::new();
    let batch = 20_000u32;
    let batches = (3 * MERGED_ROWS_MAX as u32) / batch;
    for b in 0..batches {
        let adds = (0..batch).map(|i| made_up_row(b * batch + i)).collect();
        set = set.apply(adds, &none).unwrap();
        assert!(set.parts.iter().all(|p| p.len() <= MERGED_ROWS_MAX));
    }
    assert_eq!(set.len(), (batches * batch) as usize);
    assert!(set.segments() <= 12, "{} segments", set.segments());
    let last = made_up_row(batches * batch - 1);
    assert_eq!(set.get(&last.tag).count(), 1);
}

#[test]
fn too_many_segments_are_joined_in_pairs_never_all_at_once() {
    // Sizes 1, 5, 1, 1, 5, 1: the two 1s side by side are joined first (2), then the
    // first pair whose sum is smallest (1 + 5).
    let sizes = [1u32, 5, 1, 1, 5, 1];
    let mut n = 0;
    let mut parts: Vec<Arc<IndexLookup>> = sizes
        .iter()
        .map(|&size| {
            let rows: Vec<IndexEntry> = (n..n + size).map(made_up_row).collect();
            n += size;
            Arc::new(IndexLookup::from_entries(rows).unwrap())
        })
        .collect();
    join_smallest_neighbours(&mut parts, 4).unwrap();
    let left: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    assert_eq!(left, [6, 2, 5, 1]);
    for i in 0..n {
        let row = made_up_row(i);
        assert_eq!(
            parts.iter().map(|p| p.get(&row.tag).count()).sum::<usize>(),
            1
        );
    }
}

/// How many values the tree holds under `prefix`.
fn values_under(replicas: &Replicas, prefix: Key) -> usize {
    replicas.tree.count(prefix, DELTA).unwrap()
}

#[test]
fn a_copy_keeps_one_value_a_delta_not_one_a_row() {
    let w = matching_world(&["FR-SBDU"]);
    let b = agency("FR-SBDU");
    let key = Arc::new(OprfKey::generate(1));
    let deltas = two_deltas(&key, false);
    let rows = deltas[0].adds.len() + deltas[1].adds.len();
    assert!(rows > 4, "{rows}");
    w.replicas.apply(&b, &deltas).unwrap();
    assert_eq!(values_under(&w.replicas, deltas_prefix(&b)), 2);
    assert_eq!(values_under(&w.replicas, old_rows_prefix(&b)), 0);
    let again = Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap();
    assert_eq!(again.get(&b).unwrap().lookup.len(), rows);
}

#[test]
fn a_delta_written_ahead_of_its_cursor_by_a_crash_is_not_replayed_and_counts_once() {
    let w = matching_world(&["FR-SBDU"]);
    let b = agency("FR-SBDU");
    let key = Arc::new(OprfKey::generate(1));
    let deltas = two_deltas(&key, false);
    let (first, second) = (deltas[0].adds.len(), deltas[1].adds.len());
    w.replicas.apply(&b, &deltas[..1]).unwrap();
    // A crash part-way through applying the second delta: the delta is written, its
    // cursor is not.
    let generation = w.replicas.get(&b).unwrap().generation;
    w.replicas
        .tree
        .insert(
            delta_key(&b, generation, 2, 0),
            deltas[1].encode_to_vec(),
            DELTA,
        )
        .unwrap();
    let reopened = Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap();
    assert_eq!(reopened.cursor(&b).unwrap(), 1);
    assert_eq!(reopened.get(&b).unwrap().lookup.len(), first);
    // The second delta comes again: its rows are new once, and held once.
    let added = reopened.apply(&b, &deltas).unwrap();
    assert_eq!(added.len(), second);
    assert_eq!(reopened.cursor(&b).unwrap(), 2);
    assert_eq!(reopened.get(&b).unwrap().lookup.len(), first + second);
    let again = Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap();
    assert_eq!(again.get(&b).unwrap().lookup.len(), first + second);
}

#[test]
fn a_reset_starts_a_generation_and_the_old_one_is_dropped() {
    let w = matching_world(&["FR-SBDU"]);
    let b = agency("FR-SBDU");
    let key = Arc::new(OprfKey::generate(1));
    let deltas = two_deltas(&key, false);
    w.replicas.apply(&b, &deltas).unwrap();
    let before = w.replicas.get(&b).unwrap().generation;
    // The holder rebuilt our index: a reset at position 3 with the first denial only.
    let mut reset = deltas[0].clone();
    reset.pos = 3;
    w.replicas.apply(&b, &[reset]).unwrap();
    let now = w.replicas.get(&b).unwrap();
    assert_eq!(now.generation, before + 1);
    assert_eq!(now.lookup.len(), deltas[0].adds.len());
    assert_eq!(values_under(&w.replicas, generation_prefix(&b, before)), 0);
    assert_eq!(values_under(&w.replicas, deltas_prefix(&b)), 1);
    let again = Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap();
    assert_eq!(again.get(&b).unwrap().lookup.len(), deltas[0].adds.len());
}

#[test]
fn removals_that_pile_up_are_written_away_as_a_snapshot() {
    let w = matching_world(&["FR-SBDU"]);
    let b = agency("FR-SBDU");
    let key = Arc::new(OprfKey::generate(1));
    let deltas = two_deltas(&key, true);
    let second = deltas[1].adds.len();
    let replicas = Replicas {
        snapshot_when: 0,
        ..Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap()
    };
    replicas.apply(&b, &deltas).unwrap();
    // The first denial's rows were added and removed: more held than left.
    let now = replicas.get(&b).unwrap();
    assert_eq!(now.lookup.len(), second);
    assert_eq!(now.stored_rows, second, "written again as the rows left");
    assert_eq!(values_under(&replicas, deltas_prefix(&b)), 1);
    let again = Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap();
    let replica = again.get(&b).unwrap();
    assert_eq!((replica.cursor, replica.lookup.len()), (2, second));
    // And it goes on from there.
    let mut third = deltas[1].clone();
    third.pos = 3;
    third.adds = deltas[0].adds.clone();
    third.removes = Vec::new();
    again.apply(&b, &[third]).unwrap();
    let reopened = Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap();
    assert_eq!(
        reopened.get(&b).unwrap().lookup.len(),
        second + deltas[0].adds.len()
    );
}

#[test]
fn rows_kept_one_value_a_row_before_are_written_as_deltas_once() {
    let w = matching_world(&["FR-SBDU"]);
    let b = agency("FR-SBDU");
    let key = Arc::new(OprfKey::generate(1));
    let deltas = two_deltas(&key, false);
    let rows = deltas[0].adds.len() + deltas[1].adds.len();
    // The layout before: epoch, a cursor of eight bytes, one value a row.
    let mut e = key.epoch().to_be_bytes().to_vec();
    e.extend_from_slice(&key.public_key_bytes());
    let tree = &w.replicas.tree;
    tree.insert(epoch_key(&b), e, EPOCH).unwrap();
    tree.insert(cursor_key(&b), 2u64.to_be_bytes().as_slice(), CURSOR)
        .unwrap();
    for a in deltas.iter().flat_map(|d| &d.adds) {
        let entry = IndexEntry::from_bytes(a).unwrap();
        let id = row_id(&entry.tag, &entry.nonce);
        tree.insert(
            old_rows_prefix(&b).bytes(&id),
            entry.sealed.clone(),
            OLD_ROW,
        )
        .unwrap();
    }
    let opened = Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap();
    let replica = opened.get(&b).unwrap();
    assert_eq!((replica.cursor, replica.lookup.len()), (2, rows));
    assert_eq!(values_under(&opened, old_rows_prefix(&b)), 0);
    assert!(values_under(&opened, deltas_prefix(&b)) >= 1);
    let again = Replicas::open(&w.store, std::slice::from_ref(&b), None).unwrap();
    assert_eq!(again.get(&b).unwrap().lookup.len(), rows);
    // The same rows, byte for byte.
    let mut held: Vec<Vec<u8>> = again
        .get(&b)
        .unwrap()
        .lookup
        .parts
        .iter()
        .flat_map(|p| p.iter().map(|e| e.to_entry().to_bytes()))
        .collect();
    let mut sent: Vec<Vec<u8>> = deltas.iter().flat_map(|d| d.adds.clone()).collect();
    held.sort();
    sent.sort();
    assert_eq!(held, sent);
}

#[test]
fn our_own_copy_keeps_only_its_cursor_and_comes_back_from_the_holders_deltas() {
    let w = matching_world(&["FR-SBDU"]);
    let own = agency("FR-SBDU");
    let key = Arc::new(OprfKey::generate(1));
    let deltas = two_deltas(&key, false);
    let rows = deltas[0].adds.len() + deltas[1].adds.len();
    let replicas = Replicas::open(&w.store, std::slice::from_ref(&own), Some(&own)).unwrap();
    assert_eq!(
        replicas.apply_mirrored(&own, &deltas[..1]).unwrap().len(),
        deltas[0].adds.len()
    );
    assert_eq!(
        replicas.apply_mirrored(&own, &deltas).unwrap().len(),
        deltas[1].adds.len()
    );
    assert_eq!(
        values_under(&replicas, deltas_prefix(&own)),
        0,
        "no row kept here"
    );
    let reopened = Replicas::open(&w.store, std::slice::from_ref(&own), Some(&own)).unwrap();
    assert!(reopened.needs_restore(&own));
    assert_eq!(reopened.cursor(&own).unwrap(), 2);
    // Not applied to before it is restored: its rows would be missing.
    assert!(reopened.apply_mirrored(&own, &deltas).is_err());
    // The holder's deltas, past the cursor too: only those up to it are restored.
    let mut later = deltas[1].clone();
    later.pos = 3;
    later.adds = deltas[0].adds.clone();
    let mut held = deltas.clone();
    held.push(later.clone());
    reopened
        .restore(&own, || held.iter().cloned().map(Ok))
        .unwrap();
    assert!(!reopened.needs_restore(&own));
    assert_eq!(reopened.get(&own).unwrap().lookup.len(), rows);
    // Then the delta after the cursor is new, once.
    assert_eq!(
        reopened.apply_mirrored(&own, &held).unwrap().len(),
        later.adds.len()
    );
}
