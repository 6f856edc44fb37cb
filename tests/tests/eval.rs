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
