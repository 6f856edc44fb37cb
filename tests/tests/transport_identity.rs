//! Mutual TLS and agency identity, end to end: every way in that must be
//! refused is refused with the right gRPC code or TLS alert, and the node keeps
//! serving; a configured peer and the local operator get in.

use std::time::{Duration, Instant};

use tessera_cli::pki::{Ca, LeafSpec};
use tessera_node::dial::explain;
use tessera_tests::*;
use time::OffsetDateTime;
use tonic::Code;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";

async fn federation() -> LocalFederation {
    reachable_federation(&[A, B], |_| {}).await
}

/// The node still answers its operator promptly.
async fn still_serving(fed: &LocalFederation) {
    let started = Instant::now();
    let s = fed.nodes[0].status().await.expect("node still answers");
    assert_eq!(s.agency, A);
    assert!(started.elapsed() < Duration::from_secs(3), "node stalled");
}

/// In TLS 1.3 the client finishes its handshake before the server judges the
/// client certificate, so the client sees either the server's alert or the
/// connection closing; both are refusals, and neither may look like success.
const CLOSED: &str = "closed the connection during set-up";

fn refused_with(result: Result<impl std::fmt::Debug, tonic::Status>, needle: &str) {
    let status = result.expect_err("must be refused");
    let why = explain(&status);
    assert!(
        why.contains(needle) || why.contains(CLOSED),
        "expected {needle:?} in {why:?} ({status:?})"
    );
}

#[test]
fn configured_peer_and_local_operator_are_accepted() {
    run_e2e(configured_peer_and_local_operator_are_accepted_body());
}

async fn configured_peer_and_local_operator_are_accepted_body() {
    let fed = federation().await;
    let root = &fed.root;
    let (fed_a, op_a) = addrs(&fed.nodes[0]);
    let b = &fed.nodes[1].dir;
    let peer = client_with_cert(root, &b.join("node.pem"), &b.join("node.key"), A);
    let reply = hello(channel(&fed_a, peer), B)
        .await
        .expect("peer hello accepted");
    assert_eq!(reply.node.expect("node").agency, A);

    let a = &fed.nodes[0].dir;
    let op = client_with_cert(root, &a.join("operator.pem"), &a.join("operator.key"), A);
    let s = status(channel(&op_a, op))
        .await
        .expect("operator status accepted");
    assert_eq!(s.peers.len(), 1);
    assert!(s.peers[0].reachable);
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn handshake_refusals() {
    run_e2e(handshake_refusals_body());
}

async fn handshake_refusals_body() {
    let fed = federation().await;
    let root = fed.root.clone();
    let (fed_a, op_a) = addrs(&fed.nodes[0]);

    use rustls::AlertDescription as Alert;
    let alert = |a| Err::<(), _>(rustls::Error::AlertReceived(a));

    // No client certificate.
    assert_eq!(
        tls_verdict(&fed_a, client_without_cert(&root)).await,
        alert(Alert::CertificateRequired)
    );
    assert_eq!(
        tls_verdict(&op_a, client_without_cert(&root)).await,
        alert(Alert::CertificateRequired)
    );

    // A certificate from another CA.
    let other = Ca::generate("Another CA", 30).expect("ca");
    let leaf = other.issue(&LeafSpec::node(B, 30)).expect("leaf");
    let (cert, key) = save_leaf(&root, "other-ca", &leaf);
    assert_eq!(
        tls_verdict(&fed_a, client_with_cert(&root, &cert, &key, A)).await,
        alert(Alert::UnknownCA)
    );

    // An expired certificate.
    let mut spec = LeafSpec::node(B, 30);
    spec.not_before = OffsetDateTime::now_utc() - time::Duration::days(30);
    spec.not_after = OffsetDateTime::now_utc() - time::Duration::days(1);
    let (cert, key) = issue(&root, "expired", &spec);
    assert_eq!(
        tls_verdict(&fed_a, client_with_cert(&root, &cert, &key, A)).await,
        alert(Alert::CertificateExpired)
    );

    // A TLS 1.2-only client.
    let b = &fed.nodes[1].dir;
    let tls12 = tls12_client(&root, &b.join("node.pem"), &b.join("node.key"));
    assert_eq!(
        tls_verdict(&fed_a, tls12.clone()).await,
        alert(Alert::ProtocolVersion)
    );
    refused_with(hello(channel(&fed_a, tls12), B).await, "TLS version");

    // The valid certificate of the same peer gets through the same path.
    let good = client_with_cert(&root, &b.join("node.pem"), &b.join("node.key"), A);
    assert_eq!(tls_verdict(&fed_a, good).await, Ok(()));

    still_serving(&fed).await;
    fed.shutdown().await.expect("shutdown");
}

fn tls12_client(
    root: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in tessera_node::tls::read_certs("CA", &root.join("ca.pem")).expect("ca") {
        roots.add(c).expect("root");
    }
    let chain = tessera_node::tls::read_certs("cert", cert).expect("cert");
    let key = tessera_node::tls::read_key(key).expect("key");
    let mut config = rustls::ClientConfig::builder_with_provider(tessera_node::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("tls12")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth");
    config.alpn_protocols = vec![b"h2".to_vec()];
    std::sync::Arc::new(config)
}

#[test]
fn role_and_agency_refusals() {
    run_e2e(role_and_agency_refusals_body());
}

async fn role_and_agency_refusals_body() {
    let fed = federation().await;
    let root = fed.root.clone();
    let (fed_a, op_a) = addrs(&fed.nodes[0]);
    let a = fed.nodes[0].dir.clone();
    let b = fed.nodes[1].dir.clone();

    // A node certificate of an agency that is not a configured peer.
    let (cert, key) = issue(&root, "stranger", &LeafSpec::node("IT-UAMA", 30));
    let err = hello(
        channel(&fed_a, client_with_cert(&root, &cert, &key, A)),
        "IT-UAMA",
    )
    .await
    .expect_err("stranger");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("not a configured peer"), "{err:?}");

    // An operator certificate on the federation port.
    let op = client_with_cert(&root, &a.join("operator.pem"), &a.join("operator.key"), A);
    let err = hello(channel(&fed_a, op), A)
        .await
        .expect_err("operator on federation");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // A node certificate on the operator port.
    let node_b = client_with_cert(&root, &b.join("node.pem"), &b.join("node.key"), A);
    let err = status(channel(&op_a, node_b))
        .await
        .expect_err("node on operator");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // An operator certificate of another agency.
    let op_b = client_with_cert(&root, &b.join("operator.pem"), &b.join("operator.key"), A);
    let err = status(channel(&op_a, op_b))
        .await
        .expect_err("foreign operator");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("cannot operate"), "{err:?}");

    // A peer claiming to be another agency in Hello than its certificate says.
    let peer_b = client_with_cert(&root, &b.join("node.pem"), &b.join("node.key"), A);
    let err = hello(channel(&fed_a, peer_b), "US-BIS")
        .await
        .expect_err("lying hello");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // And a client dialling B while expecting A is stopped by its own verifier.
    let (fed_b, _) = addrs(&fed.nodes[1]);
    let mixed = client_with_cert(&root, &a.join("node.pem"), &a.join("node.key"), A);
    refused_with(
        hello(channel(&fed_b, mixed), A).await,
        "does not name the node we meant to reach",
    );

    still_serving(&fed).await;
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn revoked_certificate_is_refused_after_reload() {
    run_e2e(revoked_certificate_is_refused_after_reload_body());
}

async fn revoked_certificate_is_refused_after_reload_body() {
    let fed = federation().await;
    let root = fed.root.clone();
    let (_, op_a) = addrs(&fed.nodes[0]);
    let (cert, key) = issue(
        &root,
        "second-operator",
        &LeafSpec::operator(A, "second", 30),
    );
    let client = client_with_cert(&root, &cert, &key, A);
    let open = channel(&op_a, client.clone());
    status(open.clone())
        .await
        .expect("accepted before revocation");

    tessera_cli::pki::revoke(&root, &cert).expect("revoke");
    // Not yet reloaded: still accepted.
    status(channel(&op_a, client.clone()))
        .await
        .expect("accepted until reload");
    fed.reload(0).expect("reload");
    // A new connection is refused at the handshake...
    assert_eq!(
        tls_verdict(&op_a, client.clone()).await,
        Err(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRevoked
        ))
    );
    refused_with(status(channel(&op_a, client.clone())).await, "revoked");
    // ... and the connection opened before the revocation is refused too.
    let err = status(open)
        .await
        .expect_err("open connection after revocation");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    still_serving(&fed).await;
    fed.shutdown().await.expect("shutdown");
}
