//! `tessera status` as an operator meets it: a working node, a node that is
//! down, a wrong certificate, an expired certificate — each failure one plain
//! sentence naming the cause and the fix.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tessera_cli::pki::{Ca, LeafSpec, write};
use tessera_tests::*;
use time::OffsetDateTime;

fn tessera(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(cli_binary!())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run tessera");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One line on stderr, no Rust debug output.
fn one_sentence(stderr: &str) {
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("Status {"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn status_and_its_errors() {
    run_e2e(status_and_its_errors_body());
}

async fn status_and_its_errors_body() {
    let fed = LocalFederation::start(&["DE-BAFA", "FR-SBDU"], Duration::from_millis(200))
        .await
        .expect("start");
    fed.wait_all_reachable(Duration::from_secs(20))
        .await
        .expect("reachable");
    let dir = fed.nodes[0].dir.clone();
    let cli = dir.join("cli.toml");

    // Working: table and JSON.
    let (ok, stdout, stderr) = tessera(&cli, &["status"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("FR-SBDU") && stdout.contains("yes"),
        "{stdout}"
    );
    let (ok, stdout, _) = tessera(&cli, &["status", "--json"]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(json["agency"], "DE-BAFA");
    assert_eq!(json["peers"][0]["reachable"], true);

    // A node that is down.
    let down = dir.join("cli-down.toml");
    let port = free_ports(1)[0];
    let text = std::fs::read_to_string(&cli).expect("read");
    let text_down = text
        .lines()
        .map(|l| {
            if l.starts_with("endpoint") {
                format!("endpoint = \"127.0.0.1:{port}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&down, text_down).expect("write");
    let (ok, _, stderr) = tessera(&down, &["status"]);
    assert!(!ok);
    one_sentence(&stderr);
    assert!(
        stderr.contains("is the node running") && stderr.contains("start it with"),
        "{stderr}"
    );

    // A certificate from another CA.
    let other = Ca::generate("Another CA", 30).expect("ca");
    let leaf = other
        .issue(&LeafSpec::operator("DE-BAFA", "admin", 30))
        .expect("leaf");
    write(&dir.join("wrong.pem"), leaf.cert_pem.as_bytes(), false).expect("w");
    write(&dir.join("wrong.key"), leaf.key_pem.as_bytes(), true).expect("w");
    let wrong = dir.join("cli-wrong.toml");
    std::fs::write(
        &wrong,
        text.replace("operator.pem", "wrong.pem")
            .replace("operator.key", "wrong.key"),
    )
    .expect("write");
    let (ok, _, stderr) = tessera(&wrong, &["status"]);
    assert!(!ok);
    one_sentence(&stderr);
    assert!(stderr.contains("certificate"), "{stderr}");

    // An expired certificate: refused locally before dialling, with the fix.
    let mut spec = LeafSpec::operator("DE-BAFA", "admin", 30);
    spec.not_before = OffsetDateTime::now_utc() - time::Duration::days(30);
    spec.not_after = OffsetDateTime::now_utc() - time::Duration::days(1);
    let (cert, key) = issue(&fed.root, "expired-op", &spec);
    let expired = dir.join("cli-expired.toml");
    std::fs::write(
        &expired,
        text.replace("operator.pem", &cert.display().to_string())
            .replace("operator.key", &key.display().to_string()),
    )
    .expect("write");
    let (ok, _, stderr) = tessera(&expired, &["status"]);
    assert!(!ok);
    one_sentence(&stderr);
    assert!(
        stderr.contains("expired on") && stderr.contains("new one"),
        "{stderr}"
    );

    // No config at all.
    let out = Command::new(cli_binary!())
        .arg("status")
        .env_remove("TESSERA_CONFIG")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_CONFIG"));

    fed.shutdown().await.expect("shutdown");
}

/// A command line that is wrong exits 2 (docs/cli.md, "Exit status"), whether clap sees it
/// (a missing flag) or the command does (no party name, an unknown list format, a bad
/// `--id`), with one sentence naming the flag; a node that cannot be reached is not asked.
#[test]
fn usage_errors_exit_2() {
    let config = Path::new("/nonexistent/cli.toml");
    for args in [
        &["screen"][..],
        &["screen", "--name", "Acme", "--id", "LEI"],
        &["screen", "--name", "Acme", "--kind", "spaceship"],
        &["notice", "import", "--format", "bogus", "list.csv"],
        &["keys", "--name", "Acme", "--id", "LEI"],
        &["overlap"],
    ] {
        let out = Command::new(cli_binary!())
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .expect("run tessera");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("no CLI config") && !stderr.contains("cannot read CLI config"),
            "{args:?} reached for the config first: {stderr}"
        );
    }
}
