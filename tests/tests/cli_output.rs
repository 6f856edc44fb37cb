//! What `tessera` prints, between real nodes over mutual TLS: a screening
//! says how many matches it left out because the operator marked them false
//! positives, in words and in `--json`.

use tessera_node::notice::json::party_to_wire;
use tessera_proto::v1::{
    IssueNoticeRequest, MarkFalsePositiveRequest, mark_false_positive_request::Subject,
};
use tessera_tests::fixtures::{denial, listed};
use tessera_tests::*;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";

/// `matching::screen` of the listed party at `node`, as text or JSON.
async fn screened(node: &LocalNode, json: bool) -> String {
    let mut out = Vec::new();
    tessera_cli::matching::screen(&node.cli, &[listed()], json, &mut out)
        .await
        .expect("screen");
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screening_says_how_many_matches_false_positives_left_out() {
    let fed = reachable_federation(&[A, B], |cfg| cfg.sync.pull_interval_ms = 300).await;
    let (a, b) = (&fed.nodes[0], &fed.nodes[1]);
    b.operator()
        .expect("op")
        .issue_notice(IssueNoticeRequest {
            notice: Some(denial("FR-9", &[listed()])),
        })
        .await
        .expect("B issues");
    assert!(
        index_replicated(a, B, 1).await,
        "A never received B's index"
    );

    let before = screened(a, false).await;
    assert!(
        before.contains("MATCH") && before.contains("FR-SBDU/FR-9"),
        "{before}"
    );
    assert!(
        !before.contains("not shown"),
        "nothing left out yet: {before}"
    );

    a.operator()
        .expect("op")
        .mark_false_positive(MarkFalsePositiveRequest {
            subject: Some(Subject::Party(party_to_wire(&listed()))),
            origin: B.into(),
            serial: "FR-9".into(),
            reason: "another plant".into(),
        })
        .await
        .expect("mark");
    let after = screened(a, false).await;
    assert!(!after.contains("FR-SBDU/FR-9"), "{after}");
    assert!(
        after.contains("1 match(es) not shown: marked false positive on this node"),
        "{after}"
    );
    let json: serde_json::Value =
        serde_json::from_str(screened(a, true).await.trim()).expect("json");
    assert_eq!(json["suppressed"], 1, "{json}");
    assert_eq!(json["matches"].as_array().map(Vec::len), Some(0), "{json}");
    fed.shutdown().await.expect("shutdown");
}
