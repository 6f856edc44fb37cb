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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_killed_mid_sync_catches_up_exactly_once() {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_killed_after_acknowledging_keeps_and_delivers() {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_answered_before_a_crash_is_audited() {
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
