//! Tests of the notices tree.

use super::*;

fn received(serial: &str, version: u32, seq: u64) -> (SignedNotice, Notice) {
    let notice = Notice {
        origin: "FR-SBDU".into(),
        serial: serial.into(),
        version,
        seq,
        ..Default::default()
    };
    let envelope = SignedNotice {
        notice: notice.encode_to_vec(),
        origin: "FR-SBDU".into(),
        key_id: "k".into(),
        signature: vec![version as u8; 64],
    };
    (envelope, notice)
}

#[test]
fn received_encoding_is_a_stored_notice() {
    let (envelope, _) = received("S-1", 2, 7);
    let bytes = encode_received(&envelope, 1_770_000_000_123);
    let expected = StoredNotice {
        envelope: Some(envelope),
        recipients: Vec::new(),
        stored_at_ms: 1_770_000_000_123,
    };
    assert_eq!(bytes, expected.encode_to_vec());
}

#[test]
fn a_pull_acknowledges_the_outbox_up_to_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ns = NoticeStore::open(&store, "DE-BAFA".parse().unwrap()).unwrap();
    let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
    let b: AgencyId = "FR-SBDU".parse().unwrap();
    let c: AgencyId = "US-BIS".parse().unwrap();
    for i in 0..5 {
        let notice = Notice {
            origin: "DE-BAFA".into(),
            serial: format!("S-{i}"),
            version: 1,
            ..Default::default()
        };
        let to = if i == 2 {
            vec![c.clone()]
        } else {
            vec![b.clone(), c.clone()]
        };
        ns.writer().append_own(notice, &to, &key).unwrap();
    }
    let seqs = |peer: &AgencyId| -> Vec<u64> {
        ns.outbox(peer, 100)
            .unwrap()
            .iter()
            .map(|i| i.seq)
            .collect()
    };
    assert_eq!(seqs(&b), [1, 2, 4, 5]);
    assert_eq!(ns.outbox_ack_through(&b, 3).unwrap(), 2);
    assert_eq!(seqs(&b), [4, 5]);
    assert_eq!(ns.outbox_ack_through(&b, 3).unwrap(), 0);
    // Another peer's outbox is untouched.
    assert_eq!(seqs(&c), [1, 2, 3, 4, 5]);
    assert_eq!(ns.outbox_ack_through(&b, u64::MAX).unwrap(), 2);
    assert_eq!(ns.outbox_len(&b).unwrap(), 0);
}

#[test]
fn repair_rebuilds_counts_feed_and_newest_versions_from_the_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ns = NoticeStore::open(&store, "DE-BAFA".parse().unwrap()).unwrap();
    let key_pair = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
    let own = |serial: &str, version: u32| Notice {
        origin: "DE-BAFA".into(),
        serial: serial.into(),
        version,
        issued_at: i64::from(version),
        ..Default::default()
    };
    for (serial, version) in [("S-1", 1), ("S-2", 1), ("S-1", 2)] {
        ns.writer()
            .append_own(own(serial, version), &[], &key_pair)
            .unwrap();
    }
    let (envelope, notice) = received("R-1", 1, 1);
    let from: AgencyId = "FR-SBDU".parse().unwrap();
    ns.writer()
        .apply_received(
            &from,
            &[Incoming {
                seq: 1,
                prev_seq: 0,
                envelope: &envelope,
                notice: &notice,
            }],
        )
        .unwrap();
    let healthy_latest = ns.latest_entry("DE-BAFA", "S-1").unwrap().unwrap();
    // What a backup taken during writes can hold: derived entries older
    // than the versions.
    let mut stale = sled::Batch::default();
    stale.remove(feed_key(3));
    stale.insert(LAST_SEQ_KEY, 2u64.to_be_bytes().as_slice());
    stale.insert(count_key("DE-BAFA"), 1u64.to_be_bytes().as_slice());
    stale.remove(count_key("FR-SBDU"));
    let mut old_latest = 1u32.to_be_bytes().to_vec();
    old_latest.extend_from_slice(&[9; 32]);
    stale.insert(latest_key("DE-BAFA", "S-1"), old_latest);
    ns.tree.sled().apply_batch(stale).unwrap();

    assert_eq!(ns.repair().unwrap(), 4);
    let counts = ns.counts().unwrap();
    assert_eq!((counts["DE-BAFA"], counts["FR-SBDU"]), (3, 1));
    assert_eq!(ns.last_seq().unwrap(), 3);
    assert_eq!(ns.u64_at(LAST_SEQ_KEY, LAST_SEQ).unwrap(), 3, "stored too");
    let feed: Vec<u64> = ns.feed_after(0).map(|r| r.unwrap().0).collect();
    assert_eq!(feed, [1, 2, 3]);
    assert_eq!(
        ns.latest_entry("DE-BAFA", "S-1").unwrap().unwrap(),
        healthy_latest
    );
    // Repairing a healthy store changes nothing.
    assert_eq!(ns.repair().unwrap(), 4);
    assert_eq!(ns.counts().unwrap(), counts);
}

#[test]
fn newest_received_version_is_the_last_entry_under_its_serial() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ns = NoticeStore::open(&store, "DE-BAFA".parse().unwrap()).unwrap();
    let from: AgencyId = "FR-SBDU".parse().unwrap();
    let items = [
        received("S-1", 1, 1),
        received("S-1", 2, 2),
        received("S-10", 1, 3),
        received("S-1", 10, 4),
    ];
    let incoming: Vec<Incoming<'_>> = items
        .iter()
        .map(|(envelope, notice)| Incoming {
            seq: notice.seq,
            prev_seq: notice.seq - 1,
            envelope,
            notice,
        })
        .collect();
    let applied = ns.writer().apply_received(&from, &incoming).unwrap();
    assert!(applied.iter().all(|a| matches!(a, Ok(Applied::Stored))));
    assert_eq!(
        ns.latest_entry("FR-SBDU", "S-1").unwrap().unwrap().version,
        10
    );
    assert_eq!(
        ns.latest_entry("FR-SBDU", "S-10").unwrap().unwrap().version,
        1
    );
    assert!(ns.latest_entry("FR-SBDU", "S-2").unwrap().is_none());
    let listed: Vec<(String, u32)> = ns
        .list_latest(Some("FR-SBDU"))
        .unwrap()
        .into_iter()
        .map(|s| {
            let n = Notice::decode(s.envelope.unwrap().notice.as_slice()).unwrap();
            (n.serial, n.version)
        })
        .collect();
    assert_eq!(listed, [("S-1".into(), 10), ("S-10".into(), 1)]);
    assert_eq!(ns.list_latest(None).unwrap().len(), 2);
    assert!(ns.list_latest(Some("FR")).unwrap().is_empty());
    assert_eq!(ns.counts().unwrap()["FR-SBDU"], 4);
    assert_eq!(ns.cursor(&from).unwrap(), 4);
    // The same bytes again are duplicates; other bytes under a stored
    // version are a conflict, and change nothing.
    let again = ns.writer().apply_received(&from, &incoming[..1]).unwrap();
    assert!(matches!(again[0], Ok(Applied::Duplicate)));
    let (mut other, notice) = received("S-1", 2, 2);
    other.signature = vec![0xee; 64];
    other.notice.push(0);
    let conflict = ns
        .writer()
        .apply_received(
            &from,
            &[Incoming {
                seq: 2,
                prev_seq: 1,
                envelope: &other,
                notice: &notice,
            }],
        )
        .unwrap();
    assert!(matches!(
        conflict[0],
        Err(NoticeStoreError::Conflict { .. })
    ));
    assert_eq!(ns.counts().unwrap()["FR-SBDU"], 4);
}

#[test]
fn store_errors_reach_the_wire_as_internal_and_conflicts_as_already_exists() {
    let conflict = NoticeStoreError::Conflict {
        origin: "FR-SBDU".into(),
        serial: "S-1".into(),
        version: 2,
    };
    assert_eq!(
        tonic::Status::from(conflict).code(),
        tonic::Code::AlreadyExists
    );
    let corrupt: NoticeStoreError = StoreError::Corrupt {
        tree: TREE,
        record: FEED,
    }
    .into();
    let status = tonic::Status::from(corrupt);
    assert_eq!(status.code(), tonic::Code::Internal);
    assert_eq!(
        status.message(),
        "stored own feed entry in tree notices is corrupt"
    );
}
