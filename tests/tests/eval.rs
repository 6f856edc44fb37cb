//! `tessera eval screening` on the repository's own list slices (no ../shared): it builds
//! labelled pairs, reports figures, and screens a sample of the pairs through two real
//! nodes, each private answer equal to the clear computation.

use std::path::Path;
use std::process::Command;

use tessera_tests::*;

#[test]
fn the_screening_evaluation_runs_on_the_fixtures_through_the_private_path() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("figures.json");
    let out = Command::new(cli_binary!())
        .current_dir(dir.path())
        .args([
            "eval",
            "screening",
            "--per-family",
            "40",
            "--private",
            "120",
        ])
        .arg("--data")
        .arg(repo.join("fixtures/lists"))
        .arg("--json-out")
        .arg(&json)
        .output()
        .expect("run tessera eval");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Private path"), "{stdout}");
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("figures")).expect("JSON");
    let private = &figures["private"];
    let pairs = private["pairs"].as_u64().expect("pairs");
    assert!(pairs >= 60, "{private}");
    assert_eq!(private["disagreements"], 0, "{private}");
    let recall = private["at_default"]["recall"].as_f64().expect("recall");
    assert!(recall > 0.5, "{private}");
    assert!(private["keys_per_party_mean"].as_f64().unwrap() > 5.0);
    assert!(figures["methods"].as_array().is_some_and(|m| m.len() == 3));
}

#[test]
fn labelled_pairs_from_a_file_are_measured_and_a_bad_line_is_named_without_its_values() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().expect("temp dir");
    let pairs = dir.path().join("pairs.jsonl");
    let json = dir.path().join("figures.json");
    std::fs::write(
        &pairs,
        concat!(
            r#"{"listed":{"kind":"person","name":"KOSARAYANIFARD, Pejman Mahmood"},"query":{"kind":"person","name":"Pejman Mahmood KOSARAYANIFARD"},"positive":true}"#,
            "\n",
            r#"{"listed":{"name":"NORTHERN STAR PRECISION MACHINERY LLC"},"query":{"name":"NORTHERN STAR PRECISON MACHINERY"},"positive":true,"family":"typo","split":"dev"}"#,
            "\n\n",
            r#"{"listed":{"name":"NORTHERN STAR PRECISION MACHINERY LLC"},"query":{"name":"BLUE RIVER ELECTRONICS"},"positive":false,"family":"unrelated"}"#,
            "\n",
        ),
    )
    .expect("write pairs");
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(cli_binary!())
            .current_dir(dir.path())
            .args(["eval", "screening", "--private", "3", "--data"])
            .arg(repo.join("fixtures/lists"))
            .args(args)
            .output()
            .expect("run tessera eval")
    };
    let out = run(&[
        "--pairs".as_ref(),
        pairs.as_os_str(),
        "--json-out".as_ref(),
        json.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pairs from"), "{stdout}");
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("figures")).expect("JSON");
    assert_eq!(figures["seed"], serde_json::Value::Null, "{figures}");
    assert_eq!(figures["pairs"]["given"], 1, "{figures}");
    assert_eq!(figures["pairs"]["typo"], 1, "{figures}");
    assert_eq!(figures["pairs"]["unrelated"], 1, "{figures}");
    // The pair without a split counts as test; both positives are found, the negative not.
    let at = &figures["methods"][0]["at_default"];
    assert_eq!(at["test"]["positives"], 1, "{at}");
    assert_eq!(at["test"]["negatives"], 1, "{at}");
    assert_eq!(at["test"]["true_positives"], 1, "{at}");
    assert_eq!(at["test"]["false_positives"], 0, "{at}");
    assert_eq!(at["dev"]["true_positives"], 1, "{at}");
    let private = &figures["private"];
    assert_eq!(private["pairs"], 3, "{private}");
    assert_eq!(private["disagreements"], 0, "{private}");

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        concat!(
            r#"{"listed":{"name":"ACME"},"query":{"name":"ACME"},"positive":true}"#,
            "\n",
            r#"{"listed":{"name":"ACME"},"query":{"name":"ACME"},"positive":"SECRET-VALUE"}"#,
            "\n",
        ),
    )
    .expect("write bad pairs");
    let out = run(&["--pairs".as_ref(), bad.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 2: not a labelled pair"), "{stderr}");
    assert!(!stderr.contains("SECRET-VALUE"), "{stderr}");
}
