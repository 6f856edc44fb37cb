//! The `tessera-node` binary as an operator runs it: config errors exit 64
//! naming the key, SIGHUP re-reads the CRL without a restart, SIGTERM drains
//! and exits 0, a log written to a file is plain text.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tessera_cli::dev_certs::{self, DevAgency};
use tessera_cli::pki::{LeafSpec, write};
use tessera_tests::*;

fn dev_federation(root: &std::path::Path) -> Vec<DevAgency> {
    let names = vec!["DE-BAFA".to_owned(), "FR-SBDU".to_owned()];
    let mut made = dev_certs::generate(root, &names, 7400).expect("certs");
    let ports = free_ports(4);
    for (i, m) in made.iter_mut().enumerate() {
        m.federation_port = ports[2 * i];
        m.operator_port = ports[2 * i + 1];
    }
    for m in &made {
        write(
            &m.dir.join("node.toml"),
            dev_certs::node_toml(m, &made).as_bytes(),
            false,
        )
        .expect("toml");
        write(
            &m.dir.join("cli.toml"),
            dev_certs::cli_toml(m).as_bytes(),
            false,
        )
        .expect("toml");
    }
    made
}

fn spawn(config: &std::path::Path) -> Child {
    Command::new(node_binary!())
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tessera-node")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
fn bad_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let made = dev_federation(dir.path());
    let good = std::fs::read_to_string(made[0].dir.join("node.toml")).expect("read");
    let cases = [
        (
            good.replace("listen = \"127.0.0.1:", "listen = \"nowhere:"),
            "federation.listen",
        ),
        (
            good.replace("agency = \"DE-BAFA\"", "agency = \"de-bafa\""),
            "agency",
        ),
        (
            good.replace("cert = \"node.pem\"", "cert = \"missing.pem\""),
            "tls.cert",
        ),
        (
            good.replacen("signing_key = \"", "signing_key = \"zz", 1),
            "peers[0].signing_key",
        ),
        (format!("{good}\nunknown_key = 1\n"), "unknown_key"),
    ];
    for (text, key) in cases {
        let path = made[0].dir.join("bad.toml");
        std::fs::write(&path, text).expect("write");
        let out = Command::new(node_binary!())
            .arg("--config")
            .arg(&path)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{key}: {stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
}

#[test]
fn sighup_applies_a_revocation_and_sigterm_drains() {
    run_e2e(sighup_applies_a_revocation_and_sigterm_drains_body());
}

async fn sighup_applies_a_revocation_and_sigterm_drains_body() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    let made = dev_federation(root);
    let mut child = spawn(&made[0].dir.join("node.toml"));
    let op_addr = format!("127.0.0.1:{}", made[0].operator_port);

    let (cert, key) = issue(
        root,
        "temp-operator",
        &LeafSpec::operator("DE-BAFA", "temp", 30),
    );
    let client = client_with_cert(root, &cert, &key, "DE-BAFA");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match status(channel(&op_addr, client.clone())).await {
            Ok(s) => {
                assert_eq!(s.agency, "DE-BAFA");
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "node never answered: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    tessera_cli::pki::revoke(root, &cert).expect("revoke");
    signal(&child, "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let verdict = tls_verdict(&op_addr, client.clone()).await;
        if verdict
            == Err(rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRevoked,
            ))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "revocation not applied after SIGHUP: {verdict:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The node kept running: its own operator certificate still works.
    let admin = client_with_cert(
        root,
        &made[0].dir.join("operator.pem"),
        &made[0].dir.join("operator.key"),
        "DE-BAFA",
    );
    status(channel(&op_addr, admin))
        .await
        .expect("node still serves after SIGHUP");

    signal(&child, "TERM");
    let code = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(
        code,
        Some(0),
        "tessera-node did not drain and exit 0 on SIGTERM"
    );
    assert!(made[0].dir.join("data").join("db").exists() || made[0].dir.join("data").exists());
}

/// A log redirected to a file (not a terminal) carries no ANSI colour codes.
#[test]
fn logs_written_to_a_file_carry_no_colour() {
    let dir = tempfile::tempdir().expect("tmp");
    let made = dev_federation(dir.path());
    let log = dir.path().join("node.log");
    let mut child = Command::new(node_binary!())
        .arg("--config")
        .arg(made[0].dir.join("node.toml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn tessera-node");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains("node started") {
        std::thread::sleep(Duration::from_millis(50));
        text = std::fs::read_to_string(&log).unwrap_or_default();
    }
    signal(&child, "TERM");
    let _ = wait_exit(&mut child, Duration::from_secs(15));
    assert!(
        text.contains("INFO") && text.contains("node started"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file: {text:?}"
    );
}

/// Starts `tessera-node` on `config` and returns its exit code and stderr
/// once it stops (it must stop within 20 s).
fn run_until_exit(config: &std::path::Path) -> (Option<i32>, String) {
    let mut child = spawn(config);
    let code = wait_exit(&mut child, Duration::from_secs(8));
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    (code, stderr)
}

#[test]
fn damaged_sled_files_stop_the_node_with_exit_65() {
    run_e2e(damaged_sled_files_stop_the_node_with_exit_65_body());
}

async fn damaged_sled_files_stop_the_node_with_exit_65_body() {
    let dir = tempfile::tempdir().expect("tmp");
    let made = dev_federation(dir.path());
    let config = made[0].dir.join("node.toml");
    let data = made[0].dir.join("data");
    // A node that ran, wrote and stopped cleanly.
    let mut child = spawn(&config);
    let admin = client_with_cert(
        dir.path(),
        &made[0].dir.join("operator.pem"),
        &made[0].dir.join("operator.key"),
        "DE-BAFA",
    );
    let op_addr = format!("127.0.0.1:{}", made[0].operator_port);
    assert!(
        eventually(Duration::from_secs(20), || async {
            status(channel(&op_addr, admin.clone())).await.is_ok()
        })
        .await,
        "node never answered"
    );
    signal(&child, "TERM");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(15)), Some(0));
    let pristine = dir.path().join("pristine");
    copy_dir(&data, &pristine);

    // Bytes flipped all over the log, or one byte of a live record: sled reads
    // a damaged log as ending before the damage, or panics.
    for (what, every) in [("every 4093rd byte", 4093usize), ("one byte", 0)] {
        let _ = std::fs::remove_dir_all(&data);
        copy_dir(&pristine, &data);
        let path = data.join("db");
        let mut bytes = std::fs::read(&path).expect("read");
        if every == 0 {
            // A byte of a record sled still reads: inside the newest audit entry (a byte
            // in space sled no longer reads would change nothing).
            let name = b"\"prev_hash\"";
            let at = bytes
                .windows(name.len())
                .rposition(|w| w == name)
                .unwrap_or(bytes.len() / 2);
            bytes[at] ^= 0xA5;
        } else {
            for i in (0..bytes.len()).step_by(every) {
                bytes[i] ^= 0xA5;
            }
        }
        std::fs::write(&path, &bytes).expect("write");
        let (code, stderr) = run_until_exit(&config);
        assert!(!stderr.contains("panicked"), "{what}: a panic: {stderr}");
        assert_eq!(code, Some(65), "{what}: {stderr}");
        assert!(
            stderr.contains("tessera-node: audit chain") && stderr.contains("restore"),
            "{what}: {stderr}"
        );
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
