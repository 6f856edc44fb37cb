//! What `tessera` prints, between real nodes over mutual TLS: a screening
//! says how many matches it left out because the operator marked them false
//! positives, in words and in `--json`; `import --json` prints the counts
//! the docs show; a reader that stops early is no error; a missing file is
//! named as the user gave it; `harmonise` fails when a pair has no figure.

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

#[test]
fn screening_says_how_many_matches_false_positives_left_out() {
    run_e2e(screening_says_how_many_matches_false_positives_left_out_body());
}

async fn screening_says_how_many_matches_false_positives_left_out_body() {
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

/// A bash `script` with `$TESSERA` the CLI and `node` its config, in the
/// test crate's folder: (exit code, stdout, stderr).
async fn sh(node: &LocalNode, script: &str) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .env("TESSERA", cli_binary!())
        .env("TESSERA_CONFIG", node.dir.join("cli.toml"))
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    output_of(cmd).await
}

#[test]
fn import_json_a_cut_pipe_and_paths_as_given() {
    run_e2e(import_json_a_cut_pipe_and_paths_as_given_body());
}

async fn import_json_a_cut_pipe_and_paths_as_given_body() {
    let fed = reachable_federation(&["US-BIS"], |_| {}).await;
    let node = &fed.nodes[0];

    // `import --json`: one line of counts, as docs/cli.md says, and nothing else on stdout.
    let (code, stdout, stderr) = sh(
        node,
        r#""$TESSERA" notice import --format csl --to all ../fixtures/lists/consolidated.csv --json"#,
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let counts: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(counts["read"], 30, "{counts}");
    assert_eq!(counts["created"], 13, "{counts}");
    assert_eq!(counts["skipped"], 14, "{counts}");

    // A reader that stops early: no "Broken pipe", exit 0.
    let (code, stdout, stderr) =
        sh(node, r#"set -o pipefail; "$TESSERA" notice list | head -2"#).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(!stderr.to_lowercase().contains("broken pipe"), "{stderr}");

    // A file that is not there is named as given, its cause said once.
    for (script, path) in [
        (
            r#""$TESSERA" notice import --format csl ./no-such/list.csv"#,
            "./no-such/list.csv",
        ),
        (
            r#""$TESSERA" harmonise --group all-dev --svg ./no-such/overlap.svg"#,
            "./no-such/overlap.svg",
        ),
    ] {
        let (code, _, stderr) = sh(node, script).await;
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(path), "{stderr}");
        assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    }
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn harmonise_fails_when_a_pair_has_no_figure() {
    run_e2e(harmonise_fails_when_a_pair_has_no_figure_body());
}

async fn harmonise_fails_when_a_pair_has_no_figure_body() {
    let fed = reachable_federation(&[A, B, "US-BIS"], |_| {}).await;
    // Only A's own pairs can be counted here: the peers' operators counted nothing.
    let (code, stdout, stderr) = sh(&fed.nodes[0], r#""$TESSERA" harmonise --group all-dev"#).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("FR-SBDU ~ US-BIS: no figure"), "{stdout}");
    assert!(
        stderr.contains("1 of 3 pair(s) have no figure; the matrix is incomplete"),
        "{stderr}"
    );
    fed.shutdown().await.expect("shutdown");
}
