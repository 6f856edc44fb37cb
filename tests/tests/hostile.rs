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
    AlertsRequest, CardinalityRequest, DeconflictHitRequest, DenialAction, DenialNotice,
    EnforcementNotice, EnforcementType, FeedItem, GetNoticeRequest, IndexInfoRequest,
    IssueNoticeRequest, Marking, Notice, NoticeStatus, OverlapRequest, PartyRole, PullIndexRequest,
    PullNoticesRequest, PushNoticesRequest, RegimeBasis, ReportOverlapRequest, RoledParty,
    notice::Body,
};
use tessera_tests::*;
use tokio::net::TcpStream;
use tonic::transport::Channel;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";
const C: &str = "US-BIS";

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
    let (addr, _) = addrs(&fed.nodes[to]);
    channel_as(
        &fed.root,
        &fed.nodes[from].dir,
        &fed.nodes[to].agency,
        &addr,
        tune,
    )
}

/// A channel to `addr` (node `agency`) with the node certificate in `dir`.
fn channel_as(
    root: &std::path::Path,
    dir: &std::path::Path,
    agency: &str,
    addr: &str,
    tune: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> Channel {
    let cfg = client_with_cert(root, &dir.join("node.pem"), &dir.join("node.key"), agency);
    tessera_node::dial::channel_tuned(addr, Some("localhost"), cfg, Duration::from_secs(5), tune)
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

#[test]
fn idle_sockets_on_either_port_keep_neither_operators_nor_peers_out() {
    run_e2e(idle_sockets_on_either_port_keep_neither_operators_nor_peers_out_body());
}

async fn idle_sockets_on_either_port_keep_neither_operators_nor_peers_out_body() {
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
async fn evaluate(
    fed: &LocalFederation,
    from: usize,
    to: usize,
    n: usize,
) -> Result<usize, tonic::Status> {
    let mut client = as_peer(fed, from, to);
    let epoch = client
        .index_info(IndexInfoRequest {})
        .await?
        .into_inner()
        .epoch;
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(6)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(unread_streams());
    }));
    // The nodes were shut down and flushed inside; a blocking task still dropping a
    // storage handle must not keep the test from ending, and neither must one left by
    // a failed assertion (dropping the runtime would wait for it without end).
    runtime.shutdown_timeout(Duration::from_secs(10));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn unread_streams() {
    // In a directory of its own, kept after the shutdown to be read back.
    let root = tempfile::tempdir().expect("tmp");
    let fed = tessera_cli::federation::LocalFederation::start_in(
        root.path(),
        &[A, B],
        Duration::from_millis(200),
        |cfg| cfg.sync.pull_interval_ms = 300,
        false,
    )
    .await
    .expect("start");
    fed.wait_all_reachable(Duration::from_secs(20))
        .await
        .expect("reachable");
    // 40 index deltas of some 16 kB each: more than a stream's buffers hold.
    for i in 0..40 {
        issue(
            &fed.nodes[0],
            denial(&format!("S-{i}"), &format!("peer:{B}"), 8),
        )
        .await
        .expect("issue");
    }
    // Index rows are built at nice 19: on a machine busy with other work (other tests
    // of this file) that takes longer than the second it takes on an idle one.
    let ok = eventually(Duration::from_secs(90), || async {
        index_rows(&fed.nodes[1], A).await >= 2_000
    })
    .await;
    assert!(ok, "A's index for B did not reach 2,000 rows");

    // The attacker: B's certificate, a one-byte HTTP/2 window, 24 index
    // pulls and 2 notice pulls opened and never read.
    let hostile = peer_channel(&fed, 1, 0, |ep| {
        ep.initial_stream_window_size(Some(1))
            .initial_connection_window_size(Some(1))
    });
    let mut unread = Vec::new();
    for _ in 0..24 {
        let s = within(
            Duration::from_secs(5),
            "opening an index pull",
            FederationClient::new(hostile.clone()).pull_index(PullIndexRequest { after: 0 }),
        )
        .await
        .expect("pull index opened");
        unread.push(s.into_inner());
    }
    let mut notices = Vec::new();
    for _ in 0..2 {
        let s = within(
            Duration::from_secs(5),
            "opening a notice pull",
            FederationClient::new(hostile.clone())
                .pull_notices(PullNoticesRequest { after: 0, limit: 0 }),
        )
        .await
        .expect("pull notices opened");
        notices.push(s.into_inner());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Everyone else, and the attacker's own honest calls, still go through.
    within(
        Duration::from_secs(5),
        "an operator's issue",
        issue(&fed.nodes[0], denial("S-late", "local", 1)),
    )
    .await
    .expect("issue while streams are unread");
    let evaluated = within(
        Duration::from_secs(5),
        "an Evaluate",
        evaluate(&fed, 1, 0, 10),
    )
    .await
    .expect("evaluate while streams are unread");
    assert_eq!(evaluated, 10);

    // Past its allowance, the peer is told so at once.
    let mut refused = None;
    for _ in 0..10 {
        match within(
            Duration::from_secs(5),
            "a call past the allowance",
            FederationClient::new(hostile.clone()).pull_index(PullIndexRequest { after: 0 }),
        )
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
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("too many calls in progress"),
        "{refused:?}"
    );
    // (A notice pull may have been read to its end by then: only the
    // index pulls are sure to be in progress.)
    assert!(
        unread.len() <= tessera_node::service::limits::MAX_CALLS_PER_PEER,
        "{} index pulls in progress",
        unread.len()
    );

    // Cancelled, the streams give their places back.
    drop(unread);
    drop(notices);
    let ok = eventually(Duration::from_secs(5), || async {
        tokio::time::timeout(Duration::from_secs(2), evaluate(&fed, 1, 0, 10))
            .await
            .is_ok_and(|r| r.is_ok())
    })
    .await;
    assert!(ok, "the peer's allowance came back");

    // Streams left unread do not hold the shutdown up, and the node lets go
    // of its storage, flushed, with everything it acknowledged.
    let mut left = Vec::new();
    for _ in 0..20 {
        let s = FederationClient::new(hostile.clone())
            .pull_index(PullIndexRequest { after: 0 })
            .await
            .expect("pull index opened");
        left.push(s.into_inner());
    }
    let data = tessera_node::config::NodeConfig::load(&fed.nodes[0].dir.join("node.toml"))
        .expect("node.toml")
        .data_dir;
    let started = std::time::Instant::now();
    within(Duration::from_secs(30), "the shutdown", fed.shutdown())
        .await
        .expect("shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?} with streams unread",
        started.elapsed()
    );
    drop(left);
    // (Tasks of the cut connections may hold a tree a moment longer.)
    let mut db = sled::open(&data);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while db.is_err() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        db = sled::open(&data);
    }
    let db = db.expect("the node let go of its storage");
    let notices = db.open_tree("notices").expect("notices");
    let late = notices
        .iter()
        .filter_map(Result::ok)
        .any(|(k, _)| k.windows(6).any(|w| w == b"S-late"));
    assert!(
        late,
        "the notice issued while streams were unread is stored"
    );
}

/// `n` distinct blinded elements for a Cardinality call.
fn cardinality_batch(n: usize) -> CardinalityRequest {
    let keys: Vec<String> = (0..n).map(|i| format!("mk1|name|probe {i}")).collect();
    let refs: Vec<&[u8]> = keys.iter().map(String::as_bytes).collect();
    let (_, blinded) = tessera_node::privacy::CardinalityQuery::blind(&refs).expect("blind");
    CardinalityRequest {
        blinded: blinded.iter().map(|b| b.to_vec().into()).collect(),
    }
}

#[test]
fn an_overlap_count_needs_a_full_batch_and_pays_for_the_holders_set_from_its_own_budget() {
    run_e2e(
        an_overlap_count_needs_a_full_batch_and_pays_for_the_holders_set_from_its_own_budget_body(),
    );
}

async fn an_overlap_count_needs_a_full_batch_and_pays_for_the_holders_set_from_its_own_budget_body()
{
    let fed = reachable_federation(&[A, B], |cfg| {
        if cfg.agency == A {
            cfg.privacy.overlap_keys_per_day = 1;
            cfg.privacy.overlap_burst = 300;
        }
    })
    .await;
    issue(&fed.nodes[0], denial("S-1", &format!("peer:{B}"), 1))
        .await
        .expect("issue");
    let mut b = as_peer(&fed, 1, 0);

    // One key in, that key's membership out: refused, as is one key sent 100 times.
    let one = b.cardinality(cardinality_batch(1)).await.unwrap_err();
    assert_eq!(one.code(), tonic::Code::InvalidArgument, "{one:?}");
    assert!(one.message().contains("at least 100 distinct"), "{one:?}");
    let mut same = cardinality_batch(1);
    same.blinded = vec![same.blinded[0].clone(); 100];
    let same = b.cardinality(same).await.unwrap_err();
    assert_eq!(same.code(), tonic::Code::InvalidArgument, "{same:?}");

    // The set is computed once per session and the call that starts it pays for it.
    let first = b
        .cardinality(cardinality_batch(100))
        .await
        .expect("first")
        .into_inner();
    let set = first.holder_tags.len();
    assert!(set > 0 && set < 100, "A lists {set} keys for B");
    let mut answered = 1;
    loop {
        match b.cardinality(cardinality_batch(100)).await {
            Ok(r) => {
                assert_eq!(
                    r.into_inner().holder_tags,
                    first.holder_tags,
                    "one set per session"
                );
                answered += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                break;
            }
        }
        assert!(answered < 10, "never refused");
    }
    // 300 keys of budget: 100 + the set for the first call, 100 for each other.
    assert_eq!(answered, 1 + (200 - set) / 100, "set of {set}");
    // The overlap budget is spent; screening at A, a budget of its own, is not.
    assert_eq!(evaluate(&fed, 1, 0, 50).await.expect("screening"), 50);
    fed.shutdown().await.expect("shutdown");
}

/// An "investigation opened" notice kept at home, about one person.
fn investigation(serial: &str) -> Notice {
    let Some(Body::Denial(d)) = denial(serial, "local", 1).body else {
        unreachable!("a denial")
    };
    Notice {
        serial: serial.into(),
        marking: Marking::Amber as i32,
        distribution: Some(tessera_node::policy::parse_to("local").expect("to")),
        body: Some(Body::Enforcement(EnforcementNotice {
            r#type: EnforcementType::InvestigationOpened as i32,
            parties: d.parties,
            contact: "DE investigations desk".into(),
            status: NoticeStatus::InForce as i32,
            ..EnforcementNotice::default()
        })),
        ..Default::default()
    }
}

/// The row tags of node `to`'s index for node `from`, after `after`, once
/// there are some; and the newest position.
async fn row_tags(
    fed: &LocalFederation,
    from: usize,
    to: usize,
    after: u64,
) -> (Vec<Vec<u8>>, u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut found = (Vec::new(), after);
        if let Ok(s) = as_peer(fed, from, to)
            .pull_index(PullIndexRequest { after })
            .await
        {
            let mut s = s.into_inner();
            while let Ok(Some(d)) = s.message().await {
                found.1 = d.pos;
                found.0.extend(d.adds.iter().map(|a| a[..16].to_vec()));
            }
        }
        if !found.0.is_empty() {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "no rows indexed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deconfliction_alerts(node: &LocalNode) -> Vec<tessera_proto::v1::Alert> {
    node.operator()
        .expect("op")
        .alerts(AlertsRequest { after: 0 })
        .await
        .expect("alerts")
        .into_inner()
        .alerts
        .into_iter()
        .filter(|a| a.kind == "deconfliction")
        .collect()
}

#[test]
fn deconfliction_hits_are_taken_only_on_investigations_and_rate_limited() {
    run_e2e(deconfliction_hits_are_taken_only_on_investigations_and_rate_limited_body());
}

async fn deconfliction_hits_are_taken_only_on_investigations_and_rate_limited_body() {
    let fed = reachable_federation(&[A, B], |_| {}).await;
    issue(&fed.nodes[0], denial("S-1", &format!("peer:{B}"), 1))
        .await
        .expect("issue");
    let (denial_tags, pos) = row_tags(&fed, 1, 0, 0).await;
    let mut b = as_peer(&fed, 1, 0);
    let hit = |tag: &[u8], contact: &str| DeconflictHitRequest {
        tag: tag.to_vec(),
        contact: contact.into(),
    };
    // An ordinary denial row is not an investigation.
    let refused = b
        .deconflict_hit(hit(&denial_tags[0], "call me"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    assert!(deconfliction_alerts(&fed.nodes[0]).await.is_empty());

    issue(&fed.nodes[0], investigation("INV-1"))
        .await
        .expect("issue");
    let (inv_tags, _) = row_tags(&fed, 1, 0, pos).await;
    let mut accepted = 0;
    let mut limited = None;
    for _ in 0..30 {
        match b
            .deconflict_hit(hit(&inv_tags[0], "FR desk\u{1b}[2J"))
            .await
        {
            Ok(_) => accepted += 1,
            Err(status) => {
                limited = Some(status);
                break;
            }
        }
    }
    let limited = limited.expect("hits are rate-limited");
    assert_eq!(
        limited.code(),
        tonic::Code::ResourceExhausted,
        "{limited:?}"
    );
    assert!(accepted <= 10, "{accepted} hits taken at once");
    let alerts = deconfliction_alerts(&fed.nodes[0]).await;
    assert_eq!(alerts.len(), 1);
    let contact = alerts[0].r#match.clone().expect("match").contact;
    assert_eq!(contact, format!("as claimed by {B}: FR desk [2J"));
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn a_member_reports_only_the_counts_its_operator_ran_and_only_a_few() {
    run_e2e(a_member_reports_only_the_counts_its_operator_ran_and_only_a_few_body());
}

async fn a_member_reports_only_the_counts_its_operator_ran_and_only_a_few_body() {
    let fed = reachable_federation(&[A, B, C], |cfg| {
        cfg.groups
            .insert("trio".into(), vec![A.into(), B.into(), C.into()]);
    })
    .await;
    issue(&fed.nodes[1], denial("S-B", "all", 1))
        .await
        .expect("issue");
    issue(&fed.nodes[0], denial("S-A", "all", 1))
        .await
        .expect("issue");
    // C, hostile, asks B for B's count with A: B runs no count for it.
    let mut c = as_peer(&fed, 2, 1);
    let ask = || ReportOverlapRequest { peer: A.into() };
    let refused = c.report_overlap(ask()).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message().contains("has not counted"), "{refused:?}");

    // B's operator counts; then C may be told, a few times a minute.
    let ran = fed.nodes[1]
        .operator()
        .expect("op")
        .overlap(OverlapRequest { peer: A.into() })
        .await
        .expect("B counts with A")
        .into_inner();
    let told = c.report_overlap(ask()).await.expect("report").into_inner();
    assert_eq!((told.count, told.keys), (ran.count, ran.keys));
    let mut limited = None;
    for _ in 0..10 {
        if let Err(status) = c.report_overlap(ask()).await {
            limited = Some(status);
            break;
        }
    }
    let limited = limited.expect("reports are rate-limited");
    assert_eq!(
        limited.code(),
        tonic::Code::ResourceExhausted,
        "{limited:?}"
    );
    fed.shutdown().await.expect("shutdown");
}

/// Raw bytes as a gRPC message, to send what no generated client would.
#[derive(Clone, Copy, Default)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        let bytes = src.chunk().to_vec();
        src.advance(bytes.len());
        Ok(Some(bytes))
    }
}

#[test]
fn smaller_holes_are_closed() {
    run_e2e(smaller_holes_are_closed_body());
}

async fn smaller_holes_are_closed_body() {
    let fed = reachable_federation(&[A, B], |_| {}).await;
    let mut b = as_peer(&fed, 1, 0);

    // A push ending in a bare watermark cannot move A's cursor in B's feed.
    let push = b
        .push_notices(PushNoticesRequest {
            items: vec![FeedItem {
                seq: 1 << 63,
                prev_seq: 0,
                notice: None,
            }],
            index_pos: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(push.code(), tonic::Code::InvalidArgument, "{push:?}");
    let cursor = fed.nodes[0]
        .status()
        .await
        .expect("status")
        .peers
        .iter()
        .find(|p| p.agency == B)
        .map(|p| p.cursor)
        .expect("B");
    assert!(cursor < 1 << 32, "cursor {cursor}");

    // Bytes that are no protobuf: the caller's error, not the server's.
    let mut grpc = tonic::client::Grpc::new(peer_channel(&fed, 1, 0, |ep| ep));
    grpc.ready().await.expect("ready");
    let garbage = grpc
        .unary(
            tonic::Request::new(vec![0xff; 7]),
            "/tessera.v1.Federation/Evaluate".parse().expect("path"),
            Raw,
        )
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), tonic::Code::InvalidArgument, "{garbage:?}");

    // A future key epoch is not "retired"; a batch over 65,535 is refused as such.
    let epoch = b
        .index_info(IndexInfoRequest {})
        .await
        .expect("info")
        .into_inner()
        .epoch;
    let keys = vec!["mk1|name|x".to_owned()];
    let (_, mut request) =
        tessera_node::matching::screen::blind_request(&keys, epoch + 1).expect("blind");
    let future = b.evaluate(request.clone()).await.unwrap_err();
    assert_eq!(future.code(), tonic::Code::FailedPrecondition);
    assert!(!future.message().contains("retired"), "{future:?}");
    request.epoch = epoch;
    request.blinded = vec![request.blinded[0].clone(); 65_536];
    let big = b.evaluate(request).await.unwrap_err();
    assert_eq!(big.code(), tonic::Code::InvalidArgument, "{big:?}");
    assert!(big.message().contains("65535"), "{big:?}");
    fed.shutdown().await.expect("shutdown");
}

/// A field of `/proc/PID/status`, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field")
}

/// A push the node must decode in full (about 4 MiB) before refusing it.
fn big_push() -> PushNoticesRequest {
    PushNoticesRequest {
        items: vec![FeedItem {
            seq: 1,
            prev_seq: 0,
            notice: Some(tessera_proto::v1::SignedNotice {
                notice: vec![0x5a; 4_000_000],
                ..Default::default()
            }),
        }],
        index_pos: 0,
    }
}

/// The most memory one peer can make the node use, measured on a real
/// `tessera-node` process: connections past the per-peer cap, 4 MiB
/// messages on every call it may have in progress, and streams left unread.
#[test]
fn one_peer_uses_a_bounded_amount_of_the_nodes_memory() {
    run_e2e(one_peer_uses_a_bounded_amount_of_the_nodes_memory_body());
}

async fn one_peer_uses_a_bounded_amount_of_the_nodes_memory_body() {
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |_| {});
    fed.start(0);
    fed.ready(0).await;
    let mut op = tessera_proto::v1::operator_client::OperatorClient::new(fed.operator(0));
    // A feed for B of some 90 kB: more than one slice of an answer.
    for i in 0..30 {
        op.issue_notice(IssueNoticeRequest {
            notice: Some(denial(&format!("S-{i}"), &format!("peer:{B}"), 40)),
        })
        .await
        .expect("issue");
    }
    let pid = fed.pid(0).expect("running");
    // The node started itself again in its own place with the allocator's purge delay
    // set (`daemon::PURGE_DELAY`), unless the environment had set it already.
    let (name, value) = tessera_node::daemon::PURGE_DELAY;
    let want = std::env::var(name).unwrap_or_else(|_| value.to_owned());
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(
        environ
            .split(|&b| b == 0)
            .any(|kv| kv == format!("{name}={want}").as_bytes()),
        "the node runs without {name}={want}"
    );
    let before = proc_kib(pid, "VmRSS:");
    let addr = format!("127.0.0.1:{}", fed.agencies[0].federation_port);
    let attacker = |tune: fn(tonic::transport::Endpoint) -> tonic::transport::Endpoint| {
        channel_as(fed.root(), &fed.agencies[1].dir, A, &addr, tune)
    };

    // Connections: 8 are kept; the others are told why, then closed.
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..12 {
        let ch = attacker(|ep| {
            ep.initial_stream_window_size(Some(1))
                .initial_connection_window_size(Some(1))
        });
        match hello(ch.clone(), B).await {
            Ok(_) => kept.push(ch),
            Err(status) => refused.push(status),
        }
    }
    assert_eq!(kept.len(), 8, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|s| s.code() == tonic::Code::ResourceExhausted
                && s.message().contains("too many connections from FR-SBDU")),
        "{refused:?}"
    );

    // Every call it may have in progress carries a 4 MiB message.
    let pushes: Vec<_> = (0..40)
        .map(|i| {
            let mut client = FederationClient::new(kept[i % kept.len()].clone());
            tokio::spawn(async move { client.push_notices(big_push()).await })
        })
        .collect();
    for push in pushes {
        let answer = push.await.expect("push task");
        assert!(answer.is_err(), "a 4 MiB push of junk was taken");
    }

    // Streams left unread on every connection, up to and past the call cap.
    let mut unread = Vec::new();
    let mut over = None;
    for i in 0..48 {
        let mut client = FederationClient::new(kept[i % kept.len()].clone());
        let opened = tokio::time::timeout(
            Duration::from_secs(5),
            client.pull_notices(PullNoticesRequest { after: 0, limit: 0 }),
        )
        .await
        .expect("an answer at once");
        match opened {
            Ok(s) => unread.push(s.into_inner()),
            Err(status) => over = Some(status),
        }
    }
    assert_eq!(
        unread.len(),
        tessera_node::service::limits::MAX_CALLS_PER_PEER
    );
    let over = over.expect("calls past the cap are refused");
    assert!(
        over.message().contains("too many calls in progress"),
        "{over:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let peak = proc_kib(pid, "VmHWM:");
    let grew = peak.saturating_sub(before) / 1024;
    eprintln!(
        "node RSS before the attack {} MiB, peak {} MiB: grew {grew} MiB ({} streams unread)",
        before / 1024,
        peak / 1024,
        unread.len()
    );
    assert!(
        grew < PEER_MEMORY_BOUND_MIB,
        "one peer made the node grow by {grew} MiB"
    );
    // And the node still serves its operator.
    assert!(status(fed.operator(0)).await.is_ok());
}

/// The bound stated in docs/threat-model.md ("Memory one peer can make the
/// node use"), in MiB above the node's resident size before the attack.
const PEER_MEMORY_BOUND_MIB: u64 = 320;

#[test]
fn a_peer_refused_faster_than_its_allowance_waits_for_its_refusals_and_no_other_peer_does() {
    run_e2e(
        a_peer_refused_faster_than_its_allowance_waits_for_its_refusals_and_no_other_peer_does_body(
        ),
    );
}

async fn a_peer_refused_faster_than_its_allowance_waits_for_its_refusals_and_no_other_peer_does_body()
 {
    let fed = reachable_federation(&[A, B, C], |_| {}).await;
    let unknown = |client: FederationClient<Channel>, i: usize| async move {
        let mut client = client;
        let t = std::time::Instant::now();
        let refused = client
            .get_notice(GetNoticeRequest {
                serial: format!("NOPE-{i}"),
            })
            .await
            .unwrap_err();
        (refused.code(), t.elapsed())
    };

    // B asks A for 140 serials A never issued, all at once: past its allowance of
    // refusals (`limits::REFUSALS_BURST`), the answers are held back.
    let b = as_peer(&fed, 1, 0);
    // The connection first, so that the client knows the server's limit of streams
    // before it opens 140 (streams past it would be refused by HTTP/2 itself).
    b.clone()
        .index_info(IndexInfoRequest {})
        .await
        .expect("index info");
    let calls: Vec<_> = (0..140)
        .map(|i| tokio::spawn(unknown(b.clone(), i)))
        .collect();
    // Meanwhile C's own refusal is not held back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, took) = unknown(as_peer(&fed, 2, 0), 0).await;
    assert_eq!(code, tonic::Code::NotFound);
    assert!(took < Duration::from_millis(500), "C waited {took:?}");

    // A held refusal is the refusal it was, only later. B's calls past its 32 in progress
    // are refused for that (RESOURCE_EXHAUSTED): at once within the allowance, held back
    // past it.
    let (mut held, mut held_not_found, mut at_once) = (0, 0, 0);
    for call in calls {
        let (code, took) = call.await.expect("call");
        assert!(
            [tonic::Code::NotFound, tonic::Code::ResourceExhausted].contains(&code),
            "{code:?}"
        );
        if took >= Duration::from_millis(900) {
            held += 1;
            held_not_found += usize::from(code == tonic::Code::NotFound);
        } else if took < Duration::from_millis(500) {
            at_once += 1;
        }
    }
    println!("{at_once} refusals at once, {held} held back ({held_not_found} NOT_FOUND)");
    assert!((95..=120).contains(&at_once), "{at_once} answered at once");
    assert!(held >= 20, "only {held} held back");
    assert!(
        held_not_found > 0,
        "no unknown serial's answer was held back"
    );
    fed.shutdown().await.expect("shutdown");
}
