//! Private matching end to end, over mutual TLS between real nodes: hits for
//! every key kind with the holder's disclosure, nothing for unlisted parties
//! or for notices the querier may not see, blinded requests that carry no key,
//! a holder answering under another key detected, revocations taking effect,
//! budgets, a peer down reported as such, continuous screening, overlap counts.

use std::collections::BTreeSet;
use std::time::Duration;

use prost::Message;
use tessera_node::notice::json::party_to_wire;
use tessera_node::party::{self, Party, PartyId, PartyKind};
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::{
    AlertsRequest, ChangeNoticeRequest, IssueNoticeRequest, Notice, OverlapRequest, ScreenRequest,
    ScreenResponse, WatchAddRequest, change_notice_request::Change,
};
use tessera_tests::fixtures::denial_to as denial;
use tessera_tests::*;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";
const C: &str = "US-BIS";

fn person() -> Party {
    Party {
        kind: PartyKind::Person,
        name: "Viktor Alekseyevich Tyurin".into(),
        countries: vec!["RU".into()],
        birth_date: Some("1961-05-04".into()),
        ..Party::default()
    }
}

fn company() -> Party {
    Party {
        kind: PartyKind::Organisation,
        name: "Polotsk-Steklovolokno OAO".into(),
        countries: vec!["BY".into()],
        ids: vec![PartyId {
            id_type: "LEI".into(),
            value: "529900T8BM49AURSDO55".into(),
            country: None,
        }],
        ..Party::default()
    }
}

async fn issue(node: &LocalNode, n: Notice) {
    node.operator()
        .expect("op")
        .issue_notice(IssueNoticeRequest { notice: Some(n) })
        .await
        .expect("issue");
}

async fn screen(node: &LocalNode, parties: &[Party]) -> ScreenResponse {
    node.operator()
        .expect("op")
        .screen(ScreenRequest {
            parties: parties.iter().map(party_to_wire).collect(),
            threshold: 0.0,
        })
        .await
        .expect("screen")
        .into_inner()
}

/// Waits until `node` holds at least `rows` rows of `peer`'s index.
async fn replicated(node: &LocalNode, peer: &str, rows: u64) {
    assert!(
        index_replicated(node, peer, rows).await,
        "{} did not replicate {peer}'s index",
        node.agency
    );
}

fn rows_of(parties: &[Party]) -> u64 {
    parties
        .iter()
        .flat_map(party::match_keys)
        .map(|k| k.value)
        .collect::<BTreeSet<_>>()
        .len() as u64
}

async fn federation() -> LocalFederation {
    reachable_federation(&[A, B, C], |cfg| {
        cfg.sync.pull_interval_ms = 300;
        cfg.privacy.contact = format!("{} export control desk", cfg.agency);
        if cfg.agency == A {
            for p in &mut cfg.peers {
                if p.agency == B {
                    p.disclosure = Some(tessera_node::policy::DisclosureLevel::Summary);
                }
                if p.agency == C {
                    p.keys_per_day = Some(40);
                    p.burst = Some(40);
                }
            }
        }
    })
    .await
}

#[test]
fn screening_finds_every_key_kind_and_nothing_else() {
    run_e2e(screening_finds_every_key_kind_and_nothing_else_body());
}

async fn screening_finds_every_key_kind_and_nothing_else_body() {
    let fed = federation().await;
    let (a, b, c) = (&fed.nodes[0], &fed.nodes[1], &fed.nodes[2]);
    issue(a, denial("D-1", "peer:FR-SBDU", &[person(), company()])).await;
    replicated(b, A, rows_of(&[person(), company()])).await;

    // Exactly the listed parties, as A wrote them.
    let r = screen(b, &[person(), company()]).await;
    assert!(
        r.unavailable.iter().all(|u| u.peer != A),
        "{:?}",
        r.unavailable
    );
    for result in &r.results {
        let m = result
            .matches
            .iter()
            .find(|m| m.origin == A)
            .expect("match from A");
        assert_eq!(m.serial, "D-1");
        assert_eq!(m.strength, "strong");
        assert_eq!(m.disclosure, "summary");
        assert_eq!(m.action, "refuse");
        assert_eq!(m.control_entries, vec!["3A001".to_owned()]);
        assert_eq!(m.contact, "DE-BAFA export control desk");
    }

    // Each key kind alone finds it.
    let only_id = Party {
        name: "Completely Different Name Ltd".into(),
        ids: company().ids,
        ..Party::default()
    };
    let name_country = Party {
        countries: vec!["BY".into()],
        ..Party {
            name: "POLOTSK STEKLOVOLOKNO".into(),
            ..Party::default()
        }
    };
    let name_birth = Party {
        kind: PartyKind::Person,
        name: "TYURIN, Viktor Alekseyevich".into(),
        birth_date: Some("1961".into()),
        ..Party::default()
    };
    let phonetic = Party {
        kind: PartyKind::Person,
        name: "Viktor Alexeyevich Tiurin".into(),
        ..Party::default()
    };
    let r = screen(b, &[only_id, name_country, name_birth, phonetic]).await;
    let kinds: Vec<Vec<String>> = r
        .results
        .iter()
        .map(|res| {
            res.matches
                .iter()
                .filter(|m| m.origin == A)
                .flat_map(|m| m.key_kinds.clone())
                .collect()
        })
        .collect();
    assert!(kinds[0].contains(&"id".to_owned()), "{kinds:?}");
    assert!(kinds[1].contains(&"name_country".to_owned()), "{kinds:?}");
    assert!(
        kinds[2].contains(&"name_birth_year".to_owned()),
        "{kinds:?}"
    );
    assert!(
        kinds[3].iter().any(|k| k == "sound" || k == "fuzzy_name"),
        "{kinds:?}"
    );

    // An unlisted party matches nothing.
    let r = screen(
        b,
        &[Party {
            name: "Harmless Bakery Cooperative".into(),
            ..Party::default()
        }],
    )
    .await;
    assert!(
        r.results[0].matches.is_empty(),
        "{:?}",
        r.results[0].matches
    );

    // C may not see D-1: its index from A has no such rows.
    let r = screen(c, &[company()]).await;
    assert!(
        r.results[0].matches.iter().all(|m| m.origin != A),
        "{:?}",
        r.results[0].matches
    );

    // Revocation: the rows disappear at B after the delta.
    a.operator()
        .expect("op")
        .change_notice(ChangeNoticeRequest {
            serial: "D-1".into(),
            change: Some(Change::RevokeReason("error".into())),
        })
        .await
        .expect("revoke");
    let gone = eventually(Duration::from_secs(10), || async {
        screen(b, &[company()]).await.results[0]
            .matches
            .iter()
            .all(|m| m.origin != A)
    })
    .await;
    assert!(gone, "a revoked denial still matches");
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn blinded_requests_carry_no_key_and_a_wrong_key_is_detected() {
    run_e2e(blinded_requests_carry_no_key_and_a_wrong_key_is_detected_body());
}

async fn blinded_requests_carry_no_key_and_a_wrong_key_is_detected_body() {
    let fed = federation().await;
    let (a, b) = (&fed.nodes[0], &fed.nodes[1]);
    issue(a, denial("D-2", "peer:FR-SBDU", &[company()])).await;
    issue(&fed.nodes[2], denial("D-3", "peer:FR-SBDU", &[person()])).await;
    replicated(b, A, rows_of(&[company()])).await;

    let keys: Vec<String> = party::match_keys(&company())
        .into_iter()
        .map(|k| k.value)
        .collect();
    let (state, request) = tessera_node::matching::screen::blind_request(&keys, 1).expect("blind");
    let bytes = request.encode_to_vec();
    for k in &keys {
        let needle = k.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "a key travels in the clear"
        );
    }
    assert!(
        !bytes
            .windows(8)
            .any(|w| w == b"POLOTSK ".as_slice() || w == b"polotsk ".as_slice())
    );

    // Sent as B to A, it is answered and verifies against A's published key.
    let dir = &b.dir;
    let as_b = |to: usize| {
        let cfg = client_with_cert(
            &fed.root,
            &dir.join("node.pem"),
            &dir.join("node.key"),
            &fed.nodes[to].agency,
        );
        let (addr, _) = addrs(&fed.nodes[to]);
        FederationClient::new(channel(&addr, cfg))
    };
    let info = as_b(0)
        .index_info(tessera_proto::v1::IndexInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    let answer = as_b(0)
        .evaluate(request.clone())
        .await
        .expect("evaluate")
        .into_inner();
    let ys =
        tessera_node::privacy::finalize(&state, &answer.evaluated, &answer.proof, &info.public_key)
            .expect("A's proof verifies");
    assert_eq!(ys.len(), keys.len());

    // The same request answered by another holder (US-BIS, also epoch 1),
    // checked against A's key: the proof fails and nothing is accepted.
    let (state, request) = tessera_node::matching::screen::blind_request(&keys, 1).expect("blind");
    let other = as_b(2)
        .evaluate(request)
        .await
        .expect("evaluate at C")
        .into_inner();
    let err =
        tessera_node::privacy::finalize(&state, &other.evaluated, &other.proof, &info.public_key)
            .expect_err("another key must be detected");
    assert_eq!(err, tessera_node::privacy::PrivacyError::ProofInvalid);
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn budgets_and_peers_down_are_reported_never_as_no_match() {
    run_e2e(budgets_and_peers_down_are_reported_never_as_no_match_body());
}

async fn budgets_and_peers_down_are_reported_never_as_no_match_body() {
    let mut fed = federation().await;
    issue(&fed.nodes[0], denial("D-4", "all", &[company()])).await;
    replicated(&fed.nodes[2], A, 1).await;

    // C's budget at A is 40 keys: a batch of more is refused, and said so.
    let many: Vec<Party> = (0..20)
        .map(|i| Party {
            name: format!("Test Party Number {i} Trading"),
            countries: vec!["DE".into(), "FR".into()],
            ..Party::default()
        })
        .collect();
    let r = screen(&fed.nodes[2], &many).await;
    let problem = r
        .unavailable
        .iter()
        .find(|u| u.peer == A)
        .expect("A reported");
    assert!(problem.reason.contains("budget"), "{problem:?}");

    // A down: B's screening reports A unavailable, not "no match".
    replicated(&fed.nodes[1], A, 1).await;
    fed.stop_node(0).await.expect("stop A");
    let r = screen(&fed.nodes[1], &[company()]).await;
    let problem = r
        .unavailable
        .iter()
        .find(|u| u.peer == A)
        .expect("A reported unavailable");
    assert!(problem.reason.contains("unreachable"), "{problem:?}");
    assert!(!r.screened_peers.contains(&A.to_owned()));
    fed.nodes.remove(0);
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn watch_list_alerts_on_a_new_denial_without_a_new_query() {
    run_e2e(watch_list_alerts_on_a_new_denial_without_a_new_query_body());
}

async fn watch_list_alerts_on_a_new_denial_without_a_new_query_body() {
    let fed = federation().await;
    let (a, b) = (&fed.nodes[0], &fed.nodes[1]);
    issue(a, denial("D-5", "peer:FR-SBDU", &[person()])).await;
    replicated(b, A, 1).await;
    let added = b
        .operator()
        .expect("op")
        .watch_add(WatchAddRequest {
            parties: vec![party_to_wire(&company())],
            reference: "APP-2026-77".into(),
            purpose: "watch".into(),
            contact: String::new(),
        })
        .await
        .expect("watch add")
        .into_inner();
    assert_eq!(added.alerts, 0);
    let evaluated_before = audit_count(a, "evaluation_served").await;

    issue(a, denial("D-6", "peer:FR-SBDU", &[company()])).await;
    let alerted = eventually(Duration::from_secs(10), || async {
        b.operator()
            .expect("op")
            .alerts(AlertsRequest { after: 0 })
            .await
            .is_ok_and(|r| {
                r.into_inner()
                    .alerts
                    .iter()
                    .any(|al| al.r#match.as_ref().is_some_and(|m| m.serial == "D-6"))
            })
    })
    .await;
    assert!(alerted, "no alert for the new denial");
    assert_eq!(
        audit_count(a, "evaluation_served").await,
        evaluated_before,
        "the alert needed a new query"
    );
    fed.shutdown().await.expect("shutdown");
}

/// Entries of one action in a node's audit chain.
async fn audit_count(node: &LocalNode, action: &str) -> usize {
    let mut out = Vec::new();
    tessera_cli::audit::export(&node.cli, None, &mut out)
        .await
        .expect("export");
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| l.contains(&format!("\"action\":\"{action}\"")))
        .count()
}

#[test]
fn overlap_returns_the_count_and_nothing_else() {
    run_e2e(overlap_returns_the_count_and_nothing_else_body());
}

async fn overlap_returns_the_count_and_nothing_else_body() {
    let fed = federation().await;
    let (a, b) = (&fed.nodes[0], &fed.nodes[1]);
    let shared = company();
    let only_a = person();
    let only_b = Party {
        name: "Nizhny Tagil Example Works".into(),
        countries: vec!["RU".into()],
        ..Party::default()
    };
    issue(
        a,
        denial("O-A", "peer:FR-SBDU", &[shared.clone(), only_a.clone()]),
    )
    .await;
    issue(b, denial("O-B", "local", &[shared.clone(), only_b.clone()])).await;
    // Let A's indexer settle, then count from B.
    replicated(b, A, rows_of(&[shared.clone(), only_a.clone()])).await;

    let keys = |ps: &[Party]| {
        ps.iter()
            .flat_map(|p| party::exact_keys(p, party::Side::Listed))
            .map(|k| k.value)
            .collect::<BTreeSet<_>>()
    };
    let expected = keys(&[shared.clone(), only_b])
        .intersection(&keys(&[shared, only_a]))
        .count() as u64;
    let r = b
        .operator()
        .expect("op")
        .overlap(OverlapRequest { peer: A.into() })
        .await
        .expect("overlap")
        .into_inner();
    assert_eq!(r.count, expected);
    assert!(expected > 0);
    fed.shutdown().await.expect("shutdown");
}

/// An agency's own lists are screened too, with the same keys and scoring, and reported
/// as its own: a denial kept at home (never shared) is found by its own officers under a
/// misspelt name, and by no peer.
#[test]
fn own_lists_are_screened_with_the_same_scoring_and_marked_as_own() {
    run_e2e(own_lists_are_screened_with_the_same_scoring_and_marked_as_own_body());
}

async fn own_lists_are_screened_with_the_same_scoring_and_marked_as_own_body() {
    let fed = federation().await;
    let (a, b) = (&fed.nodes[0], &fed.nodes[1]);
    issue(a, denial("OWN-1", "local", &[company()])).await;
    let misspelt = Party {
        kind: PartyKind::Organisation,
        name: "Polotsk Steklovolokna".into(),
        ..Party::default()
    };
    let found = eventually(Duration::from_secs(15), || async {
        screen(a, std::slice::from_ref(&misspelt)).await.results[0]
            .matches
            .iter()
            .any(|m| m.serial == "OWN-1")
    })
    .await;
    assert!(found, "own denial not found by its own officers");
    let r = screen(a, &[misspelt.clone(), company()]).await;
    let fuzzy = r.results[0]
        .matches
        .iter()
        .find(|m| m.serial == "OWN-1")
        .expect("own match");
    assert!(
        fuzzy.own && fuzzy.origin == A && fuzzy.peer == A,
        "{fuzzy:?}"
    );
    assert!(
        fuzzy.key_kinds.iter().any(|k| k == "fuzzy_name"),
        "{fuzzy:?}"
    );
    assert!(fuzzy.why.contains("name parts"), "{fuzzy:?}");
    let exact = r.results[1]
        .matches
        .iter()
        .find(|m| m.serial == "OWN-1")
        .expect("own exact match");
    assert_eq!(
        (exact.strength.as_str(), exact.why.as_str()),
        ("strong", "same LEI")
    );
    assert_eq!(exact.disclosure, "full", "own notices are shown whole");
    // A peer never sees it.
    let r = screen(b, &[company()]).await;
    assert!(
        r.results[0].matches.iter().all(|m| m.serial != "OWN-1"),
        "{:?}",
        r.results[0].matches
    );
}

/// The watch list covers our own lists too: a denial our agency issues after a party was
/// put on its watch list raises an alert marked as our own, with no screening in between.
#[test]
fn own_denials_raise_watch_alerts_marked_as_own() {
    run_e2e(own_denials_raise_watch_alerts_marked_as_own_body());
}

async fn own_denials_raise_watch_alerts_marked_as_own_body() {
    let fed = federation().await;
    let a = &fed.nodes[0];
    let added = a
        .operator()
        .expect("op")
        .watch_add(WatchAddRequest {
            parties: vec![party_to_wire(&company())],
            reference: "APP-OWN-1".into(),
            purpose: "watch".into(),
            contact: String::new(),
        })
        .await
        .expect("watch add")
        .into_inner();
    assert_eq!(added.alerts, 0);
    assert!(
        added.unavailable.iter().all(|p| p.peer != A),
        "own lists reported as a problem: {:?}",
        added.unavailable
    );
    issue(a, denial("OWN-W1", "local", &[company()])).await;
    let alert = eventually(Duration::from_secs(15), || async {
        a.operator()
            .expect("op")
            .alerts(AlertsRequest { after: 0 })
            .await
            .is_ok_and(|r| {
                r.into_inner().alerts.iter().any(|al| {
                    al.reference == "APP-OWN-1"
                        && al
                            .r#match
                            .as_ref()
                            .is_some_and(|m| m.serial == "OWN-W1" && m.own && m.peer == A)
                })
            })
    })
    .await;
    assert!(alert, "no watch alert for our own new denial");
    fed.shutdown().await.expect("shutdown");
}
