//! Tests of overlap counts.

use std::time::Duration;

use super::*;
use crate::exchange::fake::{FakePeer, FakePeers};
use crate::test_support::{agency, audit_on, audited, denial, org, signing_key, temp_store};

struct Setup {
    _dir: tempfile::TempDir,
    peers: FakePeers,
    overlap: Arc<Overlap>,
    audit: AuditSink,
    /// The keys of our first party, which FR-SBDU also lists.
    shared: Vec<String>,
    ours: usize,
}

/// DE-BAFA with two denials; FR-SBDU lists the first party, US-BIS
/// and JP-METI are scripted down; one group holds all but JP-METI.
fn setup() -> Setup {
    let (dir, store) = temp_store();
    let notices = Arc::new(NoticeStore::open(&store, agency("DE-BAFA")).unwrap());
    let key = signing_key();
    let first = denial("DE-BAFA", "S-1", "all", &[org("Example Trading FZE", "AE")]);
    let second = denial(
        "DE-BAFA",
        "S-2",
        "local",
        &[org("Other Machines LLC", "RU")],
    );
    let all = [agency("FR-SBDU"), agency("US-BIS")];
    notices
        .writer()
        .append_own(first.clone(), &all, &key)
        .unwrap();
    notices
        .writer()
        .append_own(second.clone(), &[], &key)
        .unwrap();
    let shared: Vec<String> = labels::notice_keys(&first)
        .into_iter()
        .map(|k| k.value)
        .collect();
    let ours = shared.len() + labels::notice_keys(&second).len();
    let peers = FakePeers::new();
    peers.add(
        &agency("FR-SBDU"),
        FakePeer {
            set: [shared.clone(), vec!["mk1|name|unrelated".into()]].concat(),
            overlaps: BTreeMap::from([("US-BIS".to_owned(), 7)]),
            ..FakePeer::default()
        },
    );
    for down in ["US-BIS", "JP-METI"] {
        peers.add(
            &agency(down),
            FakePeer {
                down: true,
                ..FakePeer::default()
            },
        );
    }
    let audit = audit_on(&store);
    let ids = vec![agency("FR-SBDU"), agency("US-BIS"), agency("JP-METI")];
    let budgets = Arc::new(Budgets::new(
        [(agency("FR-SBDU"), (86_400, 50))],
        audit.clone(),
    ));
    let overlap = Arc::new(Overlap {
        agency: agency("DE-BAFA"),
        notices,
        client: Arc::new(peers.clone()),
        budgets,
        audit: audit.clone(),
        groups: BTreeMap::from([(
            "eu".to_owned(),
            vec!["DE-BAFA".into(), "FR-SBDU".into(), "US-BIS".into()],
        )]),
        peers: ids,
        min_batch: 3,
        chunk: MAX_ELEMENTS,
        sessions: Sessions::new(Duration::from_secs(3_600)),
        counted: std::sync::Mutex::default(),
        reports: crate::throttle::PerPeerRate::new(REPORTS_PER_DAY, REPORT_BURST),
    });
    Setup {
        _dir: dir,
        peers,
        overlap,
        audit,
        shared,
        ours,
    }
}

#[test]
fn the_count_is_the_keys_both_lists_hold_and_nothing_else() {
    crate::test_support::run(async {
        let s = setup();
        let (count, keys) = s.overlap.with_peer(&agency("FR-SBDU")).await.unwrap();
        assert_eq!(count as usize, s.shared.len());
        assert_eq!(keys as usize, s.ours);
        // What FR-SBDU may see of ours: the first notice only.
        assert_eq!(
            s.overlap.own_keys(Some(&agency("FR-SBDU"))).unwrap().len(),
            s.shared.len()
        );
    });
}

#[test]
fn a_list_longer_than_one_call_is_counted_in_chunks_and_the_counts_add_up() {
    crate::test_support::run(async {
        let mut s = setup();
        Arc::get_mut(&mut s.overlap).unwrap().chunk = 2;
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = calls.clone();
        let holder = Arc::new(CardinalityHolder::new());
        let set = holder
            .holder_set(&[s.shared.clone(), vec!["mk1|name|unrelated".into()]].concat())
            .unwrap();
        s.peers.update(&agency("FR-SBDU"), move |p| {
            let holder = holder.clone();
            let set = set.clone();
            let seen = seen.clone();
            p.on_cardinality = Some(Arc::new(move |request: CardinalityRequest| {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // Each call no larger than a chunk, padded to the minimum batch.
                assert_eq!(request.blinded.len(), 3);
                let evaluated = holder.evaluate_shuffled(&request.blinded).unwrap();
                Ok(CardinalityResponse {
                    holder_tags: set.tags().iter().map(|t| t.to_vec()).collect(),
                    evaluated: evaluated.iter().map(|e| e.to_vec()).collect(),
                })
            }));
        });
        let (count, keys) = s.overlap.with_peer(&agency("FR-SBDU")).await.unwrap();
        assert_eq!(count as usize, s.shared.len());
        assert_eq!(keys as usize, s.ours);
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            s.ours.div_ceil(2)
        );
    });
}

#[test]
fn a_peer_down_lying_or_over_budget_is_unavailable_with_the_reason() {
    crate::test_support::run(async {
        let s = setup();
        let status = |e: OverlapError| tonic::Status::from(e);
        let down = s.overlap.with_peer(&agency("US-BIS")).await.unwrap_err();
        assert!(
            down.to_string().starts_with("US-BIS: connection refused"),
            "{down}"
        );
        assert_eq!(status(down).code(), tonic::Code::Unavailable);

        s.peers.update(&agency("FR-SBDU"), |p| {
            p.on_cardinality = Some(Arc::new(|r: CardinalityRequest| {
                Ok(CardinalityResponse {
                    holder_tags: vec![vec![1, 2, 3]],
                    evaluated: r.blinded.iter().map(|b| b.to_vec()).collect(),
                })
            }));
        });
        let lying = s.overlap.with_peer(&agency("FR-SBDU")).await.unwrap_err();
        assert!(matches!(lying, OverlapError::Malformed), "{lying}");
        assert_eq!(status(lying).code(), tonic::Code::Unavailable);

        s.peers.update(&agency("FR-SBDU"), |p| {
            p.on_cardinality = None;
            p.refuse = Some((
                tonic::Code::ResourceExhausted,
                "query budget exhausted: 3 keys asked; retry in 60 s".into(),
            ));
        });
        let over = s.overlap.with_peer(&agency("FR-SBDU")).await.unwrap_err();
        assert!(
            over.to_string().contains("query budget exhausted"),
            "{over}"
        );
    });
}

#[test]
fn a_slow_peer_is_waited_for() {
    crate::test_support::run_paused(async {
        let s = setup();
        s.peers
            .update(&agency("FR-SBDU"), |p| p.delay = Duration::from_secs(12));
        let started = tokio::time::Instant::now();
        let (count, _) = s.overlap.with_peer(&agency("FR-SBDU")).await.unwrap();
        assert_eq!(count as usize, s.shared.len());
        assert_eq!(started.elapsed(), Duration::from_secs(12));
    });
}

#[test]
fn harmonising_counts_each_pair_and_names_the_pairs_it_could_not() {
    crate::test_support::run(async {
        let s = setup();
        let r = s.overlap.harmonise("eu").await.unwrap();
        assert_eq!(r.keys["DE-BAFA"] as usize, s.ours);
        let cell = |a: &str, b: &str| {
            r.cells
                .iter()
                .find(|c| c.a == a && c.b == b)
                .cloned()
                .unwrap()
        };
        assert_eq!(cell("DE-BAFA", "FR-SBDU").count as usize, s.shared.len());
        assert!(cell("DE-BAFA", "US-BIS").problem.starts_with("US-BIS: "));
        assert_eq!(cell("FR-SBDU", "US-BIS").count, 7, "as FR-SBDU reported");
        let unknown = s.overlap.harmonise("nato").await.unwrap_err();
        assert_eq!(
            tonic::Status::from(unknown).code(),
            tonic::Code::InvalidArgument
        );
    });
}

#[test]
fn a_report_is_given_only_within_a_shared_group_and_is_audited() {
    crate::test_support::run(async {
        let s = setup();
        let ask = |peer: &str| ReportOverlapRequest { peer: peer.into() };
        // FR-SBDU asks for our count with US-BIS, which our operator never ran:
        // a report runs no count of its own.
        let err = s
            .overlap
            .report_for(&agency("FR-SBDU"), &ask("US-BIS"))
            .await
            .unwrap_err();
        assert_eq!(
            tonic::Status::from(err).code(),
            tonic::Code::FailedPrecondition
        );
        // Our operator counts with FR-SBDU; US-BIS asks about it: told and audited.
        s.overlap.with_peer(&agency("FR-SBDU")).await.unwrap();
        let r = s
            .overlap
            .report_for(&agency("US-BIS"), &ask("FR-SBDU"))
            .await
            .unwrap();
        assert_eq!(r.count as usize, s.shared.len());
        assert!(audited(&s.audit).contains(&"match_disclosed".to_owned()));
        for (caller, other, code) in [
            ("JP-METI", "FR-SBDU", tonic::Code::PermissionDenied),
            ("FR-SBDU", "FR-SBDU", tonic::Code::PermissionDenied),
            ("FR-SBDU", "XX-NOBODY", tonic::Code::PermissionDenied),
            ("FR-SBDU", "nobody", tonic::Code::InvalidArgument),
        ] {
            let err = s
                .overlap
                .report_for(&agency(caller), &ask(other))
                .await
                .unwrap_err();
            assert_eq!(tonic::Status::from(err).code(), code, "{caller} {other}");
        }
    });
}

fn blinded(n: usize) -> Vec<Vec<u8>> {
    let keys: Vec<String> = (0..n).map(|i| format!("mk1|name|probe {i}")).collect();
    let refs: Vec<&[u8]> = keys.iter().map(String::as_bytes).collect();
    let (_, blinded) = CardinalityQuery::blind(&refs).unwrap();
    blinded.iter().map(|b| b.to_vec()).collect()
}

#[test]
fn the_holder_side_checks_the_batch_charges_the_budget_and_audits_the_count() {
    crate::test_support::run(async {
        let s = setup();
        let fr = agency("FR-SBDU");
        let request = |blinded: Vec<Vec<u8>>| CardinalityRequest {
            blinded: blinded.into_iter().map(Into::into).collect(),
        };
        let code = |e: OverlapError| tonic::Status::from(e).code();
        // Fewer than the minimum, or the same element twice: refused.
        let small = s
            .overlap
            .cardinality(&fr, request(blinded(2)))
            .await
            .unwrap_err();
        assert!(small.to_string().contains("at least 3 distinct"), "{small}");
        assert_eq!(code(small), tonic::Code::InvalidArgument);
        let mut twice = blinded(3);
        twice.push(twice[0].clone());
        let dup = s
            .overlap
            .cardinality(&fr, request(twice))
            .await
            .unwrap_err();
        assert_eq!(code(dup), tonic::Code::InvalidArgument);

        // The first call starts the session and pays for the set; later calls
        // reuse it and pay for their elements.
        let r = s
            .overlap
            .cardinality(&fr, request(blinded(3)))
            .await
            .unwrap();
        assert_eq!(r.evaluated.len(), 3);
        assert_eq!(r.holder_tags.len(), s.shared.len());
        let again = s
            .overlap
            .cardinality(&fr, request(blinded(3)))
            .await
            .unwrap();
        assert_eq!(again.holder_tags, r.holder_tags, "one set per session");
        assert!(audited(&s.audit).contains(&"evaluation_served".to_owned()));
        let left = 50 - (3 + s.shared.len()) - 3;
        let over = s
            .overlap
            .cardinality(&fr, request(blinded(left + 1)))
            .await
            .unwrap_err();
        assert_eq!(
            code(over),
            tonic::Code::ResourceExhausted,
            "the set was charged"
        );
        let stranger = s
            .overlap
            .cardinality(&agency("JP-METI"), request(blinded(3)))
            .await
            .unwrap_err();
        assert_eq!(code(stranger), tonic::Code::PermissionDenied);
    });
}
