//! Operations: the Prometheus endpoint counts what happened in a sync; a
//! backup taken while notices stream in restores into a fresh node, tree for
//! tree, and the restored node resumes sync from its cursors without
//! duplicates.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use tessera_cli::client::CliConfig;
use tessera_proto::v1::operator_client::OperatorClient;
use tessera_proto::v1::{
    DenialAction, DenialNotice, ImportNoticesRequest, Marking, Notice, NoticeStatus, PartyKind,
    PartyRole, RegimeBasis, RoledParty, notice::Body,
};
use tessera_tests::*;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";

fn synthetic(i: usize) -> Notice {
    Notice {
        serial: format!("OPS-{i:06}"),
        marking: Marking::Green as i32,
        distribution: Some(tessera_node::policy::parse_to("all").expect("to")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: format!("R-{i}"),
            regime_basis: RegimeBasis::Mtcr as i32,
            action: DenialAction::Refuse as i32,
            parties: vec![RoledParty {
                role: PartyRole::EndUser as i32,
                party: Some(tessera_proto::v1::Party {
                    kind: PartyKind::Organisation as i32,
                    name: format!("Operations Test Organisation {i}"),
                    ..Default::default()
                }),
            }],
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

async fn import(channel: tonic::transport::Channel, range: std::ops::Range<usize>) {
    let notices = range.map(synthetic).collect();
    OperatorClient::new(channel)
        .import_notices(ImportNoticesRequest { notices })
        .await
        .expect("import");
}

/// GET /metrics over plain HTTP on loopback.
fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn metric(text: &str, name_and_labels: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v.round() as u64)
}

#[test]
fn metrics_count_a_sync() {
    run_e2e(metrics_count_a_sync_body());
}

async fn metrics_count_a_sync_body() {
    let ports = free_ports(2);
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |cfg| {
        let port = if cfg.agency == A { ports[0] } else { ports[1] };
        cfg.metrics.listen = format!("127.0.0.1:{port}");
    });
    fed.start(0);
    fed.start(1);
    fed.ready(0).await;
    fed.ready(1).await;
    // Before anything happened: every counter is there at 0, with its HELP line, and the
    // gauges once the first sample is taken (a scrape may land in the middle of one).
    let at_start = eventually(Duration::from_secs(10), || async {
        let text = scrape(ports[1]);
        metric(
            &text,
            &format!("tessera_budget_refusals_total{{peer=\"{A}\"}}"),
        ) == Some(0)
            && metric(&text, &format!("tessera_sync_lag_notices{{peer=\"{A}\"}}")).is_some()
    })
    .await;
    let b = scrape(ports[1]);
    assert!(at_start, "counters not exported from the start:\n{b}");
    for name in [
        "tessera_notices_received_total",
        "tessera_budget_refusals_total",
        "tessera_sync_lag_notices",
    ] {
        assert!(b.contains(&format!("# HELP {name} ")), "{name}:\n{b}");
    }
    import(fed.operator(0), 0..300).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            stored_from(fed.operator(1), A).await == 300
        })
        .await
    );

    let settled = eventually(Duration::from_secs(15), || async {
        let a = scrape(ports[0]);
        metric(&a, &format!("tessera_notices_sent_total{{peer=\"{B}\"}}")) == Some(300)
            && metric(&a, &format!("tessera_sync_lag_notices{{peer=\"{B}\"}}")) == Some(0)
            && metric(&a, "tessera_peers_reachable") == Some(1)
            && metric(&a, &format!("tessera_index_rows{{peer=\"{B}\"}}")).is_some_and(|v| v > 0)
            && metric(&a, "tessera_audit_entries").is_some_and(|v| v > 0)
    })
    .await;
    let a = scrape(ports[0]);
    assert!(settled, "sender metrics did not settle:\n{a}");
    let received = eventually(Duration::from_secs(15), || async {
        metric(
            &scrape(ports[1]),
            &format!("tessera_notices_received_total{{peer=\"{A}\"}}"),
        ) == Some(300)
    })
    .await;
    let b = scrape(ports[1]);
    assert!(received, "receiver metrics did not settle:\n{b}");
    assert_eq!(
        metric(
            &b,
            &format!("tessera_notices_refused_total{{peer=\"{A}\"}}")
        )
        .unwrap_or(0),
        0
    );
    assert!(
        !a.contains("Operations Test Organisation") && !b.contains("Operations Test Organisation")
    );
}

/// Every tree of a sled database as sorted key/value pairs.
/// Tree name → its entries in key order.
type Trees = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

fn dump(path: &std::path::Path) -> Trees {
    let db = sled::open(path).expect("open");
    db.tree_names()
        .into_iter()
        .map(|name| {
            let tree = db.open_tree(&name).expect("tree");
            let kvs = tree
                .iter()
                .map(|kv| kv.expect("kv"))
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
            (name.to_vec(), kvs)
        })
        .collect()
}

#[test]
fn backup_while_streaming_restores_and_resumes_without_duplicates() {
    run_e2e(backup_while_streaming_restores_and_resumes_without_duplicates_body());
}

async fn backup_while_streaming_restores_and_resumes_without_duplicates_body() {
    const N: usize = 3_000;
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |cfg| cfg.sync.push_batch = 50);
    fed.start(0);
    fed.start(1);
    fed.ready(0).await;
    fed.ready(1).await;
    for start in (0..N).step_by(500) {
        import(fed.operator(0), start..start + 500).await;
    }

    // Back B up while A's notices are still arriving.
    assert!(
        eventually(Duration::from_secs(30), || async {
            stored_from(fed.operator(1), A).await > 0
        })
        .await
    );
    let cli = CliConfig::load(&fed.agencies[1].dir.join("cli.toml")).expect("cli.toml");
    let file = fed.root().join("fr.backup");
    let mut sink = Vec::new();
    tessera_cli::backup::run(&cli, &file, &mut sink)
        .await
        .expect("backup");
    let at_backup = stored_from(fed.operator(1), A).await;

    // B is lost; a fresh data directory is restored from the backup.
    fed.kill(1);
    let data = fed.agencies[1].dir.join("data");
    std::fs::remove_dir_all(&data).expect("lose B's data");
    let out = std::process::Command::new(node_binary!())
        .args(["restore", "--config"])
        .arg(fed.agencies[1].dir.join("node.toml"))
        .arg("--from")
        .arg(&file)
        .output()
        .expect("restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Tree for tree, the restored database is the backup, except for what
    // restore rebuilds from the notice versions: counts, our own feed and
    // newest-version entries (see `NoticeStore::repair`), and the audit
    // entry of the restore itself.
    let derived = |tree: &[u8], k: &[u8]| {
        tree == b"notices" && (matches!(k.first(), Some(b'n' | b'f' | b'l')) || k == b"mseq")
    };
    let mut expected: Trees = BTreeMap::new();
    let mut current = Vec::new();
    tessera_node::backup::read(std::fs::File::open(&file).expect("open"), |item| {
        match item {
            tessera_node::backup::Item::Tree(name) => {
                current.clone_from(&name);
                expected.entry(name).or_default();
            }
            tessera_node::backup::Item::Entry(k, v) => {
                expected.entry(current.clone()).or_default().push((k, v));
            }
            tessera_node::backup::Item::File(..) => {}
        }
        Ok(())
    })
    .expect("backup verifies");
    let restored = dump(&data);
    for (tree, kvs) in &mut expected {
        kvs.retain(|(k, _)| !derived(tree, k));
        let mut got = restored.get(tree).cloned().unwrap_or_default();
        got.retain(|(k, _)| !derived(tree, k));
        if tree == b"audit" {
            // The restore appends its own entry and checkpoint.
            let before = got.len();
            got.retain(|(k, _)| kvs.iter().any(|(e, _)| e == k));
            assert_eq!(
                before - got.len(),
                2,
                "restore adds one entry and its checkpoint"
            );
        }
        assert_eq!(
            got.len(),
            kvs.len(),
            "tree {}",
            String::from_utf8_lossy(tree)
        );
        assert!(
            got == *kvs,
            "tree {} differs",
            String::from_utf8_lossy(tree)
        );
    }
    assert!(
        data.join("oprf").join(format!("{A}.key")).exists(),
        "OPRF keys not restored"
    );

    // The restored node resumes from its cursors: every notice, exactly once.
    fed.start(1);
    fed.ready(1).await;
    let done = eventually(Duration::from_secs(60), || async {
        stored_from(fed.operator(1), A).await >= N as u64
    })
    .await;
    assert!(
        done,
        "the restored node did not catch up (had {at_backup} at backup)"
    );
    // Exactly once, and it stays so once A has nothing left to push.
    assert_eq!(stored_from(fed.operator(1), A).await, N as u64);
    let drained = eventually(Duration::from_secs(60), || async {
        status(fed.operator(0))
            .await
            .is_ok_and(|s| s.peers.iter().all(|p| p.outbox == 0))
    })
    .await;
    assert!(drained, "A's outbox not drained");
    assert_eq!(stored_from(fed.operator(1), A).await, N as u64);
}

/// Runs `tessera-node restore` for agency `i` from `file`; (success, stderr).
fn restore(fed: &ProcFederation, i: usize, file: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(node_binary!())
        .args(["restore", "--force", "--config"])
        .arg(fed.agencies[i].dir.join("node.toml"))
        .arg("--from")
        .arg(file)
        .output()
        .expect("restore");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn restore_takes_only_our_own_unchanged_backup_and_audits_both() {
    run_e2e(restore_takes_only_our_own_unchanged_backup_and_audits_both_body());
}

async fn restore_takes_only_our_own_unchanged_backup_and_audits_both_body() {
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |_| {});
    fed.start(0);
    fed.ready(0).await;
    import(fed.operator(0), 0..3).await;
    let cli = CliConfig::load(&fed.agencies[0].dir.join("cli.toml")).expect("cli.toml");
    let file = fed.root().join("de.backup");
    tessera_cli::backup::run(&cli, &file, &mut Vec::new())
        .await
        .expect("backup");
    let digest_of = |lines: Vec<serde_json::Value>, action: &str| {
        lines
            .into_iter()
            .rev()
            .find(|l| l["action"] == action)
            .map(|l| {
                l["details"]["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
    };
    let made = digest_of(
        audit_lines(OperatorClient::new(fed.operator(0))).await,
        "backup_made",
    );
    assert!(made.is_some(), "the backup was not audited");
    fed.kill(0);

    // B may not restore A's backup, even into an empty data directory.
    let (ok, err) = restore(&fed, 1, &file);
    assert!(!ok, "B restored A's backup");
    assert!(err.contains("a backup of DE-BAFA, not of FR-SBDU"), "{err}");
    assert!(!fed.agencies[1].dir.join("data").join("db").exists());

    // A changed file, its (unkeyed) digest recomputed, is refused.
    let bytes = std::fs::read(&file).expect("read");
    let end = bytes.len() - (1 + 32 + 1 + 4 + 16 + 4 + 64);
    assert_eq!(bytes[end], b'E', "backup layout");
    // A serial in a stored notice becomes another, lengths unchanged.
    let mut changed = bytes.clone();
    let at = changed
        .windows(10)
        .position(|w| w == b"OPS-000001")
        .expect("a serial in the backup");
    changed[at + 9] = b'7';
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&changed[..end]);
    changed[end + 1..end + 33].copy_from_slice(&digest);
    let forged = fed.root().join("forged.backup");
    std::fs::write(&forged, &changed).expect("write");
    let (ok, err) = restore(&fed, 0, &forged);
    assert!(!ok, "a changed backup was restored");
    assert!(err.contains("signature does not verify"), "{err}");

    // A's own backup restores, and both the backup and the restore are audited.
    let (ok, err) = restore(&fed, 0, &file);
    assert!(ok, "{err}");
    fed.start(0);
    fed.ready(0).await;
    let restored = digest_of(
        audit_lines(OperatorClient::new(fed.operator(0))).await,
        "backup_restored",
    );
    assert_eq!(
        restored, made,
        "the restore was not audited with the backup's digest"
    );
    OperatorClient::new(fed.operator(0))
        .audit_verify(tessera_proto::v1::AuditVerifyRequest::default())
        .await
        .expect("the restored chain verifies");
}

/// The operator port answers gRPC reflection in both versions clients speak: v1 and
/// v1alpha, each listing the operator service.
#[test]
fn reflection_answers_in_v1_and_v1alpha() {
    run_e2e(reflection_answers_in_v1_and_v1alpha_body());
}

async fn reflection_answers_in_v1_and_v1alpha_body() {
    use tonic_reflection::pb::{v1, v1alpha};
    let mut fed = ProcFederation::new(node_binary!(), &[A], |_| {});
    fed.start(0);
    fed.ready(0).await;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(fed.operator(0));
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("v1 reflection")
        .into_inner();
    let answer = answers.message().await.expect("v1 answer").expect("one");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("v1: not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "tessera.v1.Operator"),
        "{names:?}"
    );

    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(fed.operator(0));
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("v1alpha reflection")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("v1alpha answer")
        .expect("one");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("v1alpha: not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "tessera.v1.Operator"),
        "{names:?}"
    );
}
