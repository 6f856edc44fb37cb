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

#[tokio::test]
async fn deltas_apply_in_order_once_and_survive_a_reopen() {
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
    let again = Replicas::open(&w.store, std::slice::from_ref(&b)).unwrap();
    let replica = again.get(&b).unwrap();
    assert_eq!((replica.epoch, replica.lookup.len()), (1, rows));
}

#[tokio::test]
async fn removed_rows_leave_the_replica() {
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
}

#[tokio::test]
async fn a_peer_down_or_a_broken_stream_changes_nothing() {
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
}

#[tokio::test]
async fn a_lying_peers_deltas_are_refused_whole() {
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
}

#[tokio::test(start_paused = true)]
async fn a_slow_peer_is_waited_for() {
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

#[test]
fn rows_written_ahead_of_the_cursor_by_a_crash_are_held_once() {
    let w = matching_world(&["FR-SBDU"]);
    let b = agency("FR-SBDU");
    let key = Arc::new(OprfKey::generate(1));
    let deltas = two_deltas(&key, false);
    let (first, second) = (deltas[0].adds.len(), deltas[1].adds.len());
    w.replicas.apply(&b, &deltas[..1]).unwrap();
    // A crash part-way through applying the second delta: its rows and the mark are
    // written, its cursor is not.
    w.replicas
        .tree
        .insert(writing_key(&b), 2u64.to_be_bytes().as_slice(), CURSOR)
        .unwrap();
    for a in &deltas[1].adds {
        let entry = IndexEntry::from_bytes(a).unwrap();
        let id = row_id(&entry.tag, &entry.nonce);
        w.replicas
            .tree
            .insert(rows_prefix(&b).bytes(&id), entry.sealed.clone(), ROW)
            .unwrap();
    }
    let reopened = Replicas::open(&w.store, std::slice::from_ref(&b)).unwrap();
    assert_eq!(reopened.cursor(&b).unwrap(), 1);
    assert_eq!(reopened.get(&b).unwrap().lookup.len(), first + second);
    // The second delta comes again: its rows are not counted twice.
    let added = reopened.apply(&b, &deltas).unwrap();
    assert!(added.is_empty(), "rows already held are not new");
    assert_eq!(reopened.cursor(&b).unwrap(), 2);
    assert_eq!(reopened.get(&b).unwrap().lookup.len(), first + second);
    assert!(
        reopened
            .tree
            .get(writing_key(&b), CURSOR)
            .unwrap()
            .is_none()
    );
    let again = Replicas::open(&w.store, std::slice::from_ref(&b)).unwrap();
    assert_eq!(again.get(&b).unwrap().rewritten_until, 0);
}
