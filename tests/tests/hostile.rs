//! A hostile peer, end to end: real nodes on loopback over mutual TLS, and an
//! attacker built from the generated gRPC client with a real peer
//! certificate (or, where no certificate is needed, bare TCP sockets). Each
//! test shows one bound of `docs/threat-model.md` holding while an honest
//! operator or peer keeps working.

use std::time::Duration;

use tessera_node::notice::json::party_to_wire;
use tessera_node::party::{Party, PartyKind};
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::{
    DenialAction, DenialNotice, IndexInfoRequest, IssueNoticeRequest, Marking, Notice,
    NoticeStatus, PartyRole, PullIndexRequest, PullNoticesRequest, RegimeBasis, RoledParty,
    notice::Body,
};
use tessera_tests::*;
use tokio::net::TcpStream;
use tonic::transport::Channel;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";

/// A federation client of node `to`, presenting node `from`'s certificate
/// (a configured peer: the attacker holds a real one).
fn as_peer(fed: &LocalFederation, from: usize, to: usize) -> FederationClient<Channel> {
    FederationClient::new(peer_channel(fed, from, to, |ep| ep))
}

fn peer_channel(
    fed: &LocalFederation,
    from: usize,
    to: usize,
    tune: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> Channel {
    let dir = &fed.nodes[from].dir;
    let cfg = client_with_cert(
        &fed.root,
        &dir.join("node.pem"),
        &dir.join("node.key"),
        &fed.nodes[to].agency,
    );
    let (addr, _) = addrs(&fed.nodes[to]);
    tessera_node::dial::channel_tuned(&addr, Some("localhost"), cfg, Duration::from_secs(5), tune)
        .expect("channel")
}

/// `n` TCP sockets to `addr` that never send a byte.
async fn idle_sockets(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        sockets.push(TcpStream::connect(addr).await.expect("tcp connect"));
    }
    sockets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_on_either_port_keep_neither_operators_nor_peers_out() {
    let fed = reachable_federation(&[A, B], |_| {}).await;
    let (fed_addr, op_addr) = addrs(&fed.nodes[0]);

    // 300 sockets on each port, more than the 256 handshake slots of a listener.
    let _federation_flood = idle_sockets(&fed_addr, 300).await;
    let _operator_flood = idle_sockets(&op_addr, 300).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = std::time::Instant::now();
    let status = fed.nodes[0].status().await;
    assert!(status.is_ok(), "operator kept out: {status:?}");
    let peer = hello(peer_channel(&fed, 1, 0, |ep| ep), B).await;
    assert!(peer.is_ok(), "peer kept out: {peer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not at once: {:?}",
        started.elapsed()
    );
    fed.shutdown().await.expect("shutdown");
}

/// A denial for `to` naming `n` people, each with their own name.
fn denial(serial: &str, to: &str, n: usize) -> Notice {
    let parties = (0..n).map(|i| RoledParty {
        role: PartyRole::EndUser as i32,
        party: Some(party_to_wire(&Party {
            kind: PartyKind::Person,
            name: format!("Person {serial} Number {i} Ivanovich"),
            countries: vec!["RU".into()],
            birth_date: Some("1961-05-04".into()),
            ..Party::default()
        })),
    });
    Notice {
        serial: serial.into(),
        marking: Marking::Amber as i32,
        distribution: Some(tessera_node::policy::parse_to(to).expect("to")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: format!("REF-{serial}"),
            regime_basis: RegimeBasis::Wassenaar as i32,
            action: DenialAction::Refuse as i32,
            decision_date: "2026-02-02".into(),
            items: vec![tessera_proto::v1::Item {
                control_entry: "3A001".into(),
                ..Default::default()
            }],
            parties: parties.collect(),
            destination: "RU".into(),
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

async fn issue(node: &LocalNode, n: Notice) -> Result<(), tonic::Status> {
    node.operator()
        .expect("op")
        .issue_notice(IssueNoticeRequest { notice: Some(n) })
        .await
        .map(|_| ())
}

/// Rows of `origin`'s index that `node` holds.
async fn index_rows(node: &LocalNode, origin: &str) -> u64 {
    node.status().await.map_or(0, |s| {
        s.peers
            .iter()
            .find(|p| p.agency == origin)
            .map_or(0, |p| p.index_rows)
    })
}

/// One Evaluate of `n` keys at node `to`, as node `from`.
async fn evaluate(fed: &LocalFederation, from: usize, to: usize, n: usize) -> Result<usize, tonic::Status> {
    let mut client = as_peer(fed, from, to);
    let epoch = client.index_info(IndexInfoRequest {}).await?.into_inner().epoch;
    let keys: Vec<String> = (0..n).map(|i| format!("mk1|name|probe {i}")).collect();
    let (_, request) = tessera_node::matching::screen::blind_request(&keys, epoch).expect("blind");
    Ok(client.evaluate(request).await?.into_inner().evaluated.len())
}

/// Within `limit`, or a plain failure.
async fn within<T>(limit: Duration, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}

/// The blocking pool is made small here (as a busy node's is, in effect) so
/// that streams pinning its threads show at once.
#[test]
fn unread_streams_hold_no_thread_and_a_peer_has_a_bounded_number_of_calls() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(6)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(unread_streams());
}

async fn unread_streams() {
    let fed = reachable_federation(&[A, B], |cfg| cfg.sync.pull_interval_ms = 300).await;
    for i in 0..12 {
        issue(&fed.nodes[0], denial(&format!("S-{i}"), &format!("peer:{B}"), 8))
            .await
            .expect("issue");
    }
    let ok = eventually(Duration::from_secs(20), || async {
        index_rows(&fed.nodes[1], A).await >= 500
    })
    .await;
    assert!(ok, "A's index for B did not reach 500 rows");

    // The attacker: B's certificate, a one-byte HTTP/2 window, 24 index
    // pulls and 2 notice pulls opened and never read.
    let hostile = peer_channel(&fed, 1, 0, |ep| {
        ep.initial_stream_window_size(Some(1))
            .initial_connection_window_size(Some(1))
    });
    let mut unread = Vec::new();
    for _ in 0..24 {
        let s = FederationClient::new(hostile.clone())
            .pull_index(PullIndexRequest { after: 0 })
            .await
            .expect("pull index opened");
        unread.push(s.into_inner());
    }
    let mut notices = Vec::new();
    for _ in 0..2 {
        let s = FederationClient::new(hostile.clone())
            .pull_notices(PullNoticesRequest { after: 0, limit: 0 })
            .await
            .expect("pull notices opened");
        notices.push(s.into_inner());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Everyone else, and the attacker's own honest calls, still go through.
    within(Duration::from_secs(5), "an operator's issue", issue(&fed.nodes[0], denial("S-late", "local", 1)))
        .await
        .expect("issue while streams are unread");
    let evaluated = within(Duration::from_secs(5), "an Evaluate", evaluate(&fed, 1, 0, 10))
        .await
        .expect("evaluate while streams are unread");
    assert_eq!(evaluated, 10);

    // Past its allowance, the peer is told so at once.
    let mut refused = None;
    for _ in 0..10 {
        match FederationClient::new(hostile.clone())
            .pull_index(PullIndexRequest { after: 0 })
            .await
        {
            Ok(s) => unread.push(s.into_inner()),
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("a peer's calls in progress are capped");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("too many calls in progress"), "{refused:?}");
    assert!(unread.len() + notices.len() <= tessera_node::service::limits::MAX_CALLS_PER_PEER);

    // Cancelled, the streams give their places back.
    drop(unread);
    drop(notices);
    let ok = eventually(Duration::from_secs(5), || async {
        evaluate(&fed, 1, 0, 10).await.is_ok()
    })
    .await;
    assert!(ok, "the peer's allowance came back");
    fed.shutdown().await.expect("shutdown");
}
