//! Nothing acknowledged is lost across a crash: a receiver killed in the
//! middle of a 10,000-notice sync catches up with every notice exactly once;
//! a sender killed right after acknowledging an issue still has it, and still
//! delivers it.

use std::time::Duration;

use tessera_proto::v1::operator_client::OperatorClient;
use tessera_proto::v1::{
    DenialAction, DenialNotice, ImportNoticesRequest, IssueNoticeRequest, Marking, Notice,
    NoticeStatus, PartyKind, PartyRole, RegimeBasis, RoledParty, ShowNoticeRequest, notice::Body,
};
use tessera_tests::*;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";

fn synthetic(i: usize) -> Notice {
    Notice {
        serial: format!("SYN-{i:06}"),
        marking: Marking::Green as i32,
        distribution: Some(tessera_node::policy::parse_to("all").expect("to")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: format!("REF-{i}"),
            regime_basis: RegimeBasis::Wassenaar as i32,
            action: DenialAction::Refuse as i32,
            decision_date: "2026-01-15".into(),
            parties: vec![RoledParty {
                role: PartyRole::EndUser as i32,
                party: Some(tessera_proto::v1::Party {
                    kind: PartyKind::Organisation as i32,
                    name: format!("Synthetic Test Organisation {i}"),
                    ..Default::default()
                }),
            }],
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn receiver_killed_mid_sync_catches_up_exactly_once() {
    run_e2e(receiver_killed_mid_sync_catches_up_exactly_once_body());
}

async fn receiver_killed_mid_sync_catches_up_exactly_once_body() {
    const N: usize = 10_000;
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |cfg| {
        // Small pushes, so that the sync is still running when B is killed.
        cfg.sync.push_batch = 50;
    });
    fed.start(0);
    fed.start(1);
    fed.ready(0).await;
    fed.ready(1).await;

    // A issues while B receives; B is killed as soon as it has some.
    let op = OperatorClient::new(fed.operator(0));
    let issuing = tokio::spawn(async move {
        let mut op = op;
        for chunk in (0..N).collect::<Vec<_>>().chunks(500) {
            let notices = chunk.iter().map(|&i| synthetic(i)).collect();
            let r = op
                .import_notices(ImportNoticesRequest { notices })
                .await
                .expect("import")
                .into_inner();
            assert_eq!(r.created as usize, chunk.len());
        }
    });
    let started = eventually(Duration::from_secs(30), || async {
        stored_from(fed.operator(1), A).await > 0
    })
    .await;
    assert!(started, "sync never started");
    let at_kill = stored_from(fed.operator(1), A).await;
    fed.kill(1);
    assert!(
        at_kill < N as u64,
        "sync finished before the kill ({at_kill}); the test proves nothing"
    );
    issuing.await.expect("issuing");

    fed.start(1);
    fed.ready(1).await;
    let done = eventually(Duration::from_secs(60), || async {
        stored_from(fed.operator(1), A).await >= N as u64
    })
    .await;
    assert!(done, "B did not catch up");
    // Exactly once: the count of stored versions is N, not more, and stays
    // so once A has pushed everything it still held (checked again below).
    assert_eq!(stored_from(fed.operator(1), A).await, N as u64);
    // A's outbox drains too (re-pushing what B already pulled is a no-op).
    let drained = eventually(Duration::from_secs(60), || async {
        status(fed.operator(0))
            .await
            .is_ok_and(|s| s.peers[0].outbox == 0)
    })
    .await;
    assert!(drained, "A's outbox not drained");
    assert_eq!(stored_from(fed.operator(1), A).await, N as u64);
}

#[test]
fn sender_killed_after_acknowledging_keeps_and_delivers() {
    run_e2e(sender_killed_after_acknowledging_keeps_and_delivers_body());
}

async fn sender_killed_after_acknowledging_keeps_and_delivers_body() {
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |_| {});
    fed.start(0);
    fed.ready(0).await;
    // B is down: the notice can only be in A's store and outbox.
    let issued = OperatorClient::new(fed.operator(0))
        .issue_notice(IssueNoticeRequest {
            notice: Some(synthetic(1)),
        })
        .await
        .expect("issue")
        .into_inner();
    fed.kill(0);

    fed.start(0);
    fed.ready(0).await;
    let shown = OperatorClient::new(fed.operator(0))
        .show_notice(ShowNoticeRequest {
            origin: A.into(),
            serial: issued.serial.clone(),
        })
        .await
        .expect("the acknowledged notice survived the crash")
        .into_inner();
    assert_eq!(shown.versions.len(), 1);

    fed.start(1);
    fed.ready(1).await;
    let delivered = eventually(Duration::from_secs(15), || async {
        stored_from(fed.operator(1), A).await == 1
    })
    .await;
    assert!(delivered, "the outbox did not survive the crash");
}

#[test]
fn an_evaluation_answered_before_a_crash_is_audited() {
    run_e2e(an_evaluation_answered_before_a_crash_is_audited_body());
}

async fn an_evaluation_answered_before_a_crash_is_audited_body() {
    use tessera_proto::v1::IndexInfoRequest;
    use tessera_proto::v1::federation_client::FederationClient;
    const ROUNDS: usize = 2;
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |_| {});
    // B's node certificate, used directly: B itself never runs.
    let b = fed.agencies[1].dir.clone();
    let as_b = client_with_cert(fed.root(), &b.join("node.pem"), &b.join("node.key"), A);
    let federation = format!("127.0.0.1:{}", fed.agencies[0].federation_port);
    let keys: Vec<String> = (0..128).map(|i| format!("mk1|name|k{i}")).collect();
    for _ in 0..ROUNDS {
        fed.start(0);
        fed.ready(0).await;
        let mut peer = FederationClient::new(channel(&federation, as_b.clone()));
        let epoch = peer
            .index_info(IndexInfoRequest {})
            .await
            .expect("index info")
            .into_inner()
            .epoch;
        let (_, request) =
            tessera_node::matching::screen::blind_request(&keys, epoch).expect("blind");
        let answer = peer.evaluate(request).await.expect("evaluate").into_inner();
        assert_eq!(answer.evaluated.len(), keys.len());
        // Killed the moment the answer arrives: no drain, no flush.
        fed.kill(0);
    }
    fed.start(0);
    fed.ready(0).await;
    let served = audit_lines(OperatorClient::new(fed.operator(0)))
        .await
        .into_iter()
        .filter(|l| l["action"] == "evaluation_served" && l["actor"] == B)
        .count();
    assert_eq!(served, ROUNDS, "an answered evaluation left no audit entry");
}

#[test]
fn notices_pulled_before_a_crash_are_audited() {
    run_e2e(notices_pulled_before_a_crash_are_audited_body());
}

async fn notices_pulled_before_a_crash_are_audited_body() {
    use tessera_proto::v1::PullNoticesRequest;
    use tessera_proto::v1::federation_client::FederationClient;
    const ROUNDS: usize = 2;
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |_| {});
    // B's node certificate, used directly: B itself never runs.
    let b = fed.agencies[1].dir.clone();
    let as_b = client_with_cert(fed.root(), &b.join("node.pem"), &b.join("node.key"), A);
    let federation = format!("127.0.0.1:{}", fed.agencies[0].federation_port);
    let mut cursor = 0;
    let mut pulled = 0;
    for round in 0..ROUNDS {
        fed.start(0);
        fed.ready(0).await;
        for i in 0..3 {
            OperatorClient::new(fed.operator(0))
                .issue_notice(IssueNoticeRequest {
                    notice: Some(synthetic(10 * round + i)),
                })
                .await
                .expect("issue");
        }
        let mut stream = FederationClient::new(channel(&federation, as_b.clone()))
            .pull_notices(PullNoticesRequest {
                after: cursor,
                limit: 0,
            })
            .await
            .expect("pull")
            .into_inner();
        while let Some(item) = stream.message().await.expect("item") {
            cursor = item.seq;
            pulled += usize::from(item.notice.is_some());
        }
        // Killed the moment the last notice arrives: no drain, no flush.
        fed.kill(0);
    }
    assert_eq!(pulled, 3 * ROUNDS);
    fed.start(0);
    fed.ready(0).await;
    let audited: u64 = audit_lines(OperatorClient::new(fed.operator(0)))
        .await
        .into_iter()
        .filter(|l| l["action"] == "notice_sent" && l["actor"] == B && l["object"] == "pull")
        .filter_map(|l| l["details"]["count"].as_u64())
        .sum();
    assert_eq!(
        audited, pulled as u64,
        "notices pulled before a crash left no audit entry"
    );
}

/// Verify on the node behind `op`, against its peers' anchors or not.
async fn verify(
    op: tonic::transport::Channel,
    against_peers: bool,
) -> tessera_proto::v1::AuditVerifyResponse {
    OperatorClient::new(op)
        .audit_verify(tessera_proto::v1::AuditVerifyRequest { against_peers })
        .await
        .expect("audit verify")
        .into_inner()
}

/// Rewrites the audit chain in the data directory `data` as someone with
/// full disk access would: entry 1 (the checkpoint interval) says 0, every
/// entry is rehashed, every checkpoint and the watermark are deleted.
fn rewrite_history(data: &std::path::Path) {
    use tessera_node::audit::{Entry, details_hash, entry_hash};
    let db = sled::open(data).expect("open sled");
    let tree = db.open_tree("audit").expect("tree");
    let key = |tag: u8, seq: u64| {
        let mut k = vec![tag];
        k.extend_from_slice(&seq.to_be_bytes());
        k
    };
    let mut prev = [0u8; 32];
    for seq in 1.. {
        let Some(bytes) = tree.get(key(b'e', seq)).expect("get") else {
            break;
        };
        let mut e: Entry = serde_json::from_slice(&bytes).expect("entry");
        if seq == 1 {
            e.details = serde_json::json!({ "checkpoint_every": 0 });
            e.details_hash = details_hash(&e.details).expect("details");
        }
        e.prev_hash = prev;
        e.hash = entry_hash(&e);
        prev = e.hash;
        tree.insert(key(b'e', seq), serde_json::to_vec(&e).expect("json"))
            .expect("write");
        tree.remove(key(b'c', seq)).expect("remove checkpoint");
    }
    db.flush().expect("flush");
    drop(db);
    let _ = std::fs::remove_file(data.join("audit.watermark"));
}

#[test]
fn a_rewritten_audit_history_is_caught_against_the_peers() {
    run_e2e(a_rewritten_audit_history_is_caught_against_the_peers_body());
}

async fn a_rewritten_audit_history_is_caught_against_the_peers_body() {
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |cfg| {
        cfg.audit.checkpoint_every = 2;
    });
    fed.start(0);
    fed.start(1);
    fed.ready(0).await;
    fed.ready(1).await;
    for i in 0..4 {
        OperatorClient::new(fed.operator(0))
            .issue_notice(IssueNoticeRequest {
                notice: Some(synthetic(i)),
            })
            .await
            .expect("issue");
        let sent = eventually(Duration::from_secs(10), || async {
            stored_from(fed.operator(1), A).await == i as u64 + 1
        })
        .await;
        assert!(sent, "notice {i} not delivered");
    }
    // B keeps A's newest checkpoints.
    let anchored = eventually(Duration::from_secs(15), || async {
        let r = verify(fed.operator(0), true).await;
        r.peers
            .first()
            .is_some_and(|p| p.newest >= 4 && p.problem.is_empty())
    })
    .await;
    assert!(anchored, "B never kept A's checkpoints");
    fed.kill(0);

    rewrite_history(&fed.agencies[0].dir.join("data"));
    fed.start(0);
    fed.ready(0).await;
    // The node's own records cannot tell...
    let local = verify(fed.operator(0), false).await;
    assert!(local.entries >= 5, "{local:?}");
    // ...but B's anchors can.
    let r = verify(fed.operator(0), true).await;
    let b = r.peers.first().expect("B");
    assert!(b.reached, "{b:?}");
    assert!(b.problem.contains("history was rewritten"), "{b:?}");
    let cli = tessera_cli::client::CliConfig::load(&fed.agencies[0].dir.join("cli.toml"))
        .expect("cli.toml");
    let err = tessera_cli::audit::verify(&cli, true, false, &mut Vec::new())
        .await
        .expect_err("the CLI must fail on a rewritten history");
    assert!(
        err.to_string()
            .contains("does not match what its peers keep"),
        "{err}"
    );
}
