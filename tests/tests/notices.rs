//! Notices end to end: distribution reaches exactly the peers entitled to
//! it, by every path; tampered, unpinned and replayed envelopes are refused
//! or no-ops; imports are idempotent.

use std::time::Duration;

use prost::Message;
use tessera_node::notice::json::{NoticeJson, parse};
use tessera_node::signing::SigningKey;
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::{
    FeedItem, GetNoticeRequest, IssueNoticeRequest, ListNoticesRequest, Notice, PullNoticesRequest,
    PushNoticesRequest, SignedNotice,
};
use tessera_tests::*;
use tonic::Code;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";
const C: &str = "US-BIS";
const D: &str = "GB-ECJU";
const E: &str = "IT-UAMA";

fn example_denial(to: &str) -> Notice {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/notices/denial.json"
    ))
    .expect("example");
    let mut json: NoticeJson = parse(&text).expect("parse");
    json.to = Some(to.to_owned());
    json.to_notice().expect("notice")
}

async fn issue(
    node: &LocalNode,
    notice: Notice,
) -> Result<tessera_proto::v1::IssueNoticeResponse, tonic::Status> {
    node.operator()
        .expect("client")
        .issue_notice(IssueNoticeRequest {
            notice: Some(notice),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// A federation of `agencies`, every node reachable.
async fn started(agencies: &[&str]) -> LocalFederation {
    reachable_federation(agencies, |_| {}).await
}

/// `node`'s cursor in `origin`'s feed: every position up to it was walked.
async fn cursor_at(node: &LocalNode, origin: &str) -> u64 {
    node.operator()
        .expect("op")
        .status(tessera_proto::v1::StatusRequest {})
        .await
        .expect("status")
        .into_inner()
        .peers
        .iter()
        .find(|p| p.agency == origin)
        .map_or(0, |p| p.cursor)
}

async fn serials_at(node: &LocalNode, origin: &str) -> Vec<String> {
    node.operator()
        .expect("client")
        .list_notices(ListNoticesRequest {
            origin: origin.into(),
            kind: String::new(),
            limit: 0,
        })
        .await
        .expect("list")
        .into_inner()
        .notices
        .into_iter()
        .filter_map(|v| v.notice.map(|n| n.serial))
        .collect()
}

fn node_client(
    fed: &LocalFederation,
    from: usize,
    to: usize,
) -> FederationClient<tonic::transport::Channel> {
    let dir = &fed.nodes[from].dir;
    let cfg = client_with_cert(
        &fed.root,
        &dir.join("node.pem"),
        &dir.join("node.key"),
        &fed.nodes[to].agency,
    );
    let (addr, _) = addrs(&fed.nodes[to]);
    FederationClient::new(channel(&addr, cfg))
}

#[test]
fn group_distribution_reaches_exactly_its_members() {
    run_e2e(group_distribution_reaches_exactly_its_members_body());
}

async fn group_distribution_reaches_exactly_its_members_body() {
    let fed = LocalFederation::start_with(&[A, B, C, D, E], Duration::from_millis(200), |cfg| {
        if cfg.agency == A {
            cfg.groups
                .insert("trio".into(), vec![A.into(), B.into(), C.into()]);
        }
        cfg.sync.pull_interval_ms = 300;
    })
    .await
    .expect("start");
    fed.wait_all_reachable(Duration::from_secs(30))
        .await
        .expect("reachable");

    let issued = issue(&fed.nodes[0], example_denial("group:trio"))
        .await
        .expect("issue");
    assert_eq!(issued.recipients, vec![B.to_owned(), C.to_owned()]);
    let serial = issued.serial.clone();

    // B and C have it within 2 s.
    let started = std::time::Instant::now();
    for i in [1, 2] {
        let node = &fed.nodes[i];
        let got = eventually(Duration::from_secs(2), || async {
            serials_at(node, A).await.contains(&serial)
        })
        .await;
        assert!(got, "{} did not receive the denial within 2 s", node.agency);
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    // Once D and E have pulled past the notice, they must still have nothing.
    for i in [3, 4] {
        let node = &fed.nodes[i];
        let past = eventually(Duration::from_secs(5), || async {
            cursor_at(node, A).await >= issued.seq
        })
        .await;
        assert!(past, "{} never pulled past the notice", node.agency);
    }
    for i in [3, 4] {
        assert!(
            serials_at(&fed.nodes[i], A).await.is_empty(),
            "{} received a notice not meant for it",
            fed.nodes[i].agency
        );
        // Pulling A's feed as D/E yields no notice, only a watermark that
        // moves their cursor past the entries that are not for them...
        let mut client = node_client(&fed, i, 0);
        let mut stream = client
            .pull_notices(PullNoticesRequest { after: 0, limit: 0 })
            .await
            .expect("pull")
            .into_inner();
        let watermark = stream.message().await.expect("stream").expect("watermark");
        assert!(watermark.notice.is_none(), "pull leaked a notice");
        assert_eq!((watermark.prev_seq, watermark.seq), (0, issued.seq));
        assert!(stream.message().await.expect("stream").is_none());
        assert_eq!(cursor_at(&fed.nodes[i], A).await, issued.seq);
        // ... and asking for it by id is NOT_FOUND, as for a serial that does not exist.
        let err = client
            .get_notice(GetNoticeRequest {
                serial: serial.clone(),
            })
            .await
            .expect_err("get by id");
        assert_eq!(err.code(), Code::NotFound);
    }
    // B may ask for it by id.
    let got = node_client(&fed, 1, 0)
        .get_notice(GetNoticeRequest {
            serial: serial.clone(),
        })
        .await
        .expect("B may get it");
    assert_eq!(got.into_inner().origin, A);
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn empty_group_unknown_group_and_red_to_all() {
    run_e2e(empty_group_unknown_group_and_red_to_all_body());
}

async fn empty_group_unknown_group_and_red_to_all_body() {
    let fed = LocalFederation::start_with(&[A, B], Duration::from_millis(200), |cfg| {
        cfg.groups.insert("nobody".into(), vec![]);
        cfg.sync.pull_interval_ms = 300;
    })
    .await
    .expect("start");
    fed.wait_all_reachable(Duration::from_secs(20))
        .await
        .expect("reachable");
    let a = &fed.nodes[0];

    // An empty group reaches nobody, and the notice is kept locally.
    let issued = issue(a, example_denial("group:nobody"))
        .await
        .expect("empty group");
    assert!(issued.recipients.is_empty());
    assert!(serials_at(a, A).await.contains(&issued.serial));

    // An unknown group is refused: it could never reach anybody.
    let err = issue(a, example_denial("group:nonexistent"))
        .await
        .expect_err("unknown group");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("not configured"), "{err:?}");

    // TLP:RED may go to named peers only.
    let mut red = example_denial("all");
    red.marking = tessera_proto::v1::Marking::Red as i32;
    let err = issue(a, red.clone()).await.expect_err("red to all");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("TLP:RED"), "{err:?}");
    red.distribution = Some(tessera_node::policy::parse_to("peer:FR-SBDU").expect("to"));
    let issued_red = issue(a, red).await.expect("red to a named peer");
    assert_eq!(issued_red.recipients, vec![B.to_owned()]);

    // After pull rounds, B holds only the RED notice, never the empty-group one.
    let b = &fed.nodes[1];
    assert!(
        eventually(Duration::from_secs(3), || async {
            serials_at(b, A).await.contains(&issued_red.serial)
        })
        .await
    );
    // B's cursor is past every notice A issued, so nothing more can come.
    assert!(
        eventually(Duration::from_secs(3), || async {
            cursor_at(b, A).await >= issued_red.seq
        })
        .await
    );
    assert_eq!(serials_at(b, A).await, vec![issued_red.serial.clone()]);
    fed.shutdown().await.expect("shutdown");
}

/// A's real notice, signed with A's key, as B would receive it.
fn signed_by(key: &SigningKey, seq: u64, serial: &str) -> FeedItem {
    let mut notice = example_denial("peer:FR-SBDU");
    notice.origin = A.into();
    notice.serial = serial.into();
    notice.version = 1;
    notice.issued_at = 1_770_000_000;
    notice.seq = seq;
    FeedItem {
        seq,
        prev_seq: 0,
        notice: Some(tessera_node::notice::seal::seal(&notice, key)),
    }
}

#[test]
fn tampered_unpinned_resent_and_replayed_envelopes() {
    run_e2e(tampered_unpinned_resent_and_replayed_envelopes_body());
}

async fn tampered_unpinned_resent_and_replayed_envelopes_body() {
    let fed = started(&[A, B, C]).await;
    let a_key = SigningKey::load(&fed.nodes[0].dir.join("signing.pk8")).expect("A's key");
    let mut as_a = node_client(&fed, 0, 1);
    let count = || async { stored_from(fed.nodes[1].cli.channel().expect("channel"), A).await };

    // A flipped bit in the signed bytes.
    let mut item = signed_by(&a_key, 1_000_001, "TAMPER-1");
    if let Some(env) = item.notice.as_mut() {
        let mid = env.notice.len() / 2;
        env.notice[mid] ^= 0x01;
    }
    let err = as_a
        .push_notices(PushNoticesRequest {
            items: vec![item],
            index_pos: 0,
        })
        .await
        .expect_err("flipped bit");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("signature") || err.message().contains("not a notice"),
        "{err:?}"
    );

    // Signed by a key that is not A's pinned key.
    let rogue = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).expect("key");
    let err = as_a
        .push_notices(PushNoticesRequest {
            items: vec![signed_by(&rogue, 1_000_002, "ROGUE-1")],
            index_pos: 0,
        })
        .await
        .expect_err("unpinned key");
    assert!(err.message().contains("pinned key"), "{err:?}");

    // C re-sharing A's genuine notice to B: refused (receivers never re-share).
    let mut as_c = node_client(&fed, 2, 1);
    let err = as_c
        .push_notices(PushNoticesRequest {
            items: vec![signed_by(&a_key, 1_000_003, "RESHARE-1")],
            index_pos: 0,
        })
        .await
        .expect_err("re-share");
    assert!(err.message().contains("re-share"), "{err:?}");
    assert_eq!(count().await, 0, "a refused notice was stored");

    // A genuine notice, then the same bytes replayed: stored once.
    let good = signed_by(&a_key, 1_000_004, "GOOD-1");
    let r = as_a
        .push_notices(PushNoticesRequest {
            items: vec![good.clone()],
            index_pos: 0,
        })
        .await
        .expect("good")
        .into_inner();
    assert_eq!((r.stored, r.duplicates), (1, 0));
    let r = as_a
        .push_notices(PushNoticesRequest {
            items: vec![good.clone()],
            index_pos: 0,
        })
        .await
        .expect("replay")
        .into_inner();
    assert_eq!((r.stored, r.duplicates), (0, 1));
    assert_eq!(count().await, 1);

    // The same serial and version with different content: refused, original kept.
    let mut forged = signed_by(&a_key, 1_000_004, "GOOD-1");
    let mut n =
        Notice::decode(forged.notice.as_ref().expect("env").notice.as_slice()).expect("decode");
    n.marking = tessera_proto::v1::Marking::Green as i32;
    forged.notice = Some(tessera_node::notice::seal::seal(&n, &a_key));
    let err = as_a
        .push_notices(PushNoticesRequest {
            items: vec![forged],
            index_pos: 0,
        })
        .await
        .expect_err("equivocation");
    assert!(err.message().contains("already received"), "{err:?}");
    assert_eq!(count().await, 1);

    // Garbage where a signed notice should be.
    let junk = FeedItem {
        seq: 9,
        prev_seq: 0,
        notice: Some(SignedNotice {
            notice: vec![0xff; 64],
            origin: A.into(),
            key_id: a_key.public().key_id(),
            signature: vec![0; 64],
        }),
    };
    let err = as_a
        .push_notices(PushNoticesRequest {
            items: vec![junk],
            index_pos: 0,
        })
        .await
        .expect_err("junk");
    assert_eq!(err.code(), Code::InvalidArgument);
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn amend_renew_revoke_keep_history_and_replicate() {
    run_e2e(amend_renew_revoke_keep_history_and_replicate_body());
}

async fn amend_renew_revoke_keep_history_and_replicate_body() {
    let fed = started(&[A, B]).await;
    let a = &fed.nodes[0];
    let issued = issue(a, example_denial("all")).await.expect("issue");
    let serial = issued.serial.clone();
    let mut op = a.operator().expect("op");
    use tessera_proto::v1::{
        ChangeNoticeRequest, ShowNoticeRequest, change_notice_request::Change,
    };
    for change in [
        Change::RenewUntil("2030-01-31".into()),
        Change::RevokeReason("court ruling".into()),
    ] {
        op.change_notice(ChangeNoticeRequest {
            serial: serial.clone(),
            change: Some(change),
        })
        .await
        .expect("change");
    }
    // A revoked notice cannot change any more.
    let err = op
        .change_notice(ChangeNoticeRequest {
            serial: serial.clone(),
            change: Some(Change::RenewUntil(String::new())),
        })
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let b = &fed.nodes[1];
    let all_three = eventually(Duration::from_secs(5), || async {
        b.operator()
            .expect("op")
            .show_notice(ShowNoticeRequest {
                origin: A.into(),
                serial: serial.clone(),
            })
            .await
            .is_ok_and(|r| r.into_inner().versions.len() == 3)
    })
    .await;
    assert!(all_three, "B did not get all three versions");
    let versions = b
        .operator()
        .expect("op")
        .show_notice(ShowNoticeRequest {
            origin: A.into(),
            serial,
        })
        .await
        .expect("show")
        .into_inner()
        .versions;
    let statuses: Vec<String> = versions
        .iter()
        .map(|v| {
            NoticeJson::from_notice(v.notice.as_ref().expect("n"))
                .denial
                .expect("d")
                .status
        })
        .collect();
    assert_eq!(statuses, ["in-force", "renewed", "revoked"]);
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn revocation_reaches_every_earlier_recipient() {
    run_e2e(revocation_reaches_every_earlier_recipient_body());
}

async fn revocation_reaches_every_earlier_recipient_body() {
    use tessera_proto::v1::{
        ChangeNoticeRequest, ShowNoticeRequest, change_notice_request::Change,
    };
    let fed = started(&[A, B, C]).await;
    let (a, b, c) = (&fed.nodes[0], &fed.nodes[1], &fed.nodes[2]);
    let serial = issue(a, example_denial(&format!("peer:{B},{C}")))
        .await
        .expect("issue")
        .serial;
    let versions_at = |node: &LocalNode| {
        let serial = serial.clone();
        let mut op = node.operator().expect("op");
        async move {
            op.show_notice(ShowNoticeRequest {
                origin: A.into(),
                serial,
            })
            .await
            .map_or(Vec::new(), |r| {
                r.into_inner()
                    .versions
                    .iter()
                    .filter_map(|v| v.notice.as_ref().map(|n| n.version))
                    .collect::<Vec<u32>>()
            })
        }
    };
    assert!(
        eventually(Duration::from_secs(5), || async {
            versions_at(c).await == [1]
        })
        .await
    );
    // Version 2 narrows the distribution to B; version 3 revokes.
    let mut op = a.operator().expect("op");
    let mut narrowed = example_denial(&format!("peer:{B}"));
    narrowed.serial.clone_from(&serial);
    op.change_notice(ChangeNoticeRequest {
        serial: serial.clone(),
        change: Some(Change::Amend(narrowed)),
    })
    .await
    .expect("amend");
    op.change_notice(ChangeNoticeRequest {
        serial: serial.clone(),
        change: Some(Change::RevokeReason("withdrawn".into())),
    })
    .await
    .expect("revoke");
    assert!(
        eventually(Duration::from_secs(5), || async {
            versions_at(b).await == [1, 2, 3]
        })
        .await
    );
    // C received version 1, so it gets the revocation, but never the
    // amendment it is no longer entitled to.
    assert!(
        eventually(Duration::from_secs(5), || async {
            versions_at(c).await == [1, 3]
        })
        .await,
        "C holds versions {:?}",
        versions_at(c).await
    );
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn review_dates_near_or_past_raise_one_reminder_each() {
    run_e2e(review_dates_near_or_past_raise_one_reminder_each_body());
}

async fn review_dates_near_or_past_raise_one_reminder_each_body() {
    use tessera_proto::v1::{AlertsRequest, ChangeNoticeRequest, change_notice_request::Change};
    let fed = started(&[A, B]).await;
    let a = &fed.nodes[0];
    let today = time::OffsetDateTime::now_utc().date();
    let with_review = |decision: time::Date, review: time::Date| {
        let mut n = example_denial("local");
        if let Some(tessera_proto::v1::notice::Body::Denial(d)) = n.body.as_mut() {
            d.decision_date = tessera_node::notice::dates::format(decision);
            d.review_due = tessera_node::notice::dates::format(review);
        }
        n
    };
    let years_ago = today - time::Duration::days(3 * 365 + 30);
    // Revoked at once, so that no check sees it in force.
    let revoked = issue(a, with_review(years_ago, today - time::Duration::days(1)))
        .await
        .expect("revoked");
    let mut op = a.operator().expect("op");
    op.change_notice(ChangeNoticeRequest {
        serial: revoked.serial.clone(),
        change: Some(Change::RevokeReason("withdrawn".into())),
    })
    .await
    .expect("revoke");
    let overdue = issue(a, with_review(years_ago, today - time::Duration::days(30)))
        .await
        .expect("overdue");
    let soon = issue(a, with_review(years_ago, today + time::Duration::days(30)))
        .await
        .expect("soon");
    let later = issue(a, with_review(today, today + time::Duration::days(400)))
        .await
        .expect("later");
    let reviews = || {
        let mut op = a.operator().expect("op");
        async move {
            op.alerts(AlertsRequest { after: 0 })
                .await
                .expect("alerts")
                .into_inner()
                .alerts
                .into_iter()
                .filter(|x| x.kind == "review")
                .map(|x| {
                    let m = x.r#match.unwrap_or_default();
                    (m.serial, m.action)
                })
                .collect::<Vec<_>>()
        }
    };
    let expected = vec![
        (overdue.serial.clone(), "review-overdue".to_owned()),
        (soon.serial.clone(), "review-due-soon".to_owned()),
    ];
    let got = eventually(Duration::from_secs(5), || async {
        let mut r = reviews().await;
        r.sort();
        let mut e = expected.clone();
        e.sort();
        r == e
    })
    .await;
    assert!(got, "review alerts: {:?}", reviews().await);
    // Another change wakes the check again: nothing is raised twice, and
    // the renewed notice's new date is far enough away.
    op.change_notice(ChangeNoticeRequest {
        serial: soon.serial.clone(),
        change: Some(Change::RenewUntil(String::new())),
    })
    .await
    .expect("renew");
    // A notice issued after the renewal is reminded: the check has run again.
    let marker = issue(a, with_review(years_ago, today - time::Duration::days(2)))
        .await
        .expect("marker");
    let checked = eventually(Duration::from_secs(5), || async {
        reviews().await.iter().any(|(s, _)| *s == marker.serial)
    })
    .await;
    assert!(checked, "review alerts: {:?}", reviews().await);
    assert_eq!(reviews().await.len(), 3, "{:?}", reviews().await);
    assert!(!reviews().await.iter().any(|(s, _)| *s == later.serial));
    fed.shutdown().await.expect("shutdown");
}
