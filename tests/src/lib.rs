//! Helpers for Tessera's end-to-end tests: real nodes on 127.0.0.1 over
//! mutual TLS, certificates made with rcgen, clients holding whatever
//! certificate a test needs.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, RootCertStore};
use tessera_cli::pki::{Ca, Leaf, LeafSpec, write};
use tessera_node::identity::AgencyId;
use tessera_node::tls::{TlsMaterial, read_certs};
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::operator_client::OperatorClient;
use tessera_proto::v1::{HelloRequest, HelloResponse, NodeInfo, StatusRequest, StatusResponse};
use tonic::Status;
use tonic::transport::Channel;

pub mod fixtures;
pub mod synthetic;
pub mod webdriver;

pub use tessera_cli::federation::{LocalFederation, LocalNode};

/// Runs an end-to-end test's body on a two-worker runtime of its own and ends the test
/// even when the body fails with nodes still running. A `#[tokio::test]` runtime, dropped
/// while a failed assertion unwinds, waits without end for a blocking task still in the
/// storage's flush on drop: the failure would hang the suite instead of being reported.
/// Here the runtime is given ten seconds to shut down, then the failure goes on.
pub fn run_e2e<F: std::future::Future>(body: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        // Only tests call this: a test that cannot build its runtime fails here, saying so.
        .expect("test runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(body)));
    runtime.shutdown_timeout(Duration::from_secs(10));
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Writes a leaf's certificate and key into `dir` as `<name>.pem` / `<name>.key`.
pub fn save_leaf(dir: &Path, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    write(&cert, leaf.cert_pem.as_bytes(), false).expect("write cert");
    write(&key, leaf.key_pem.as_bytes(), true).expect("write key");
    (cert, key)
}

/// Issues a leaf from the federation's own CA (in `root`).
pub fn issue(root: &Path, name: &str, spec: &LeafSpec) -> (PathBuf, PathBuf) {
    let ca = Ca::load(root).expect("load dev CA");
    let leaf = ca.issue(spec).expect("issue");
    save_leaf(root, name, &leaf)
}

/// A client config trusting the federation CA, presenting `cert`/`key`, and
/// expecting the server to be node `expected`.
pub fn client_with_cert(root: &Path, cert: &Path, key: &Path, expected: &str) -> Arc<ClientConfig> {
    let material = TlsMaterial::from_files(&[root.join("ca.pem")], &[], cert, key, true)
        .expect("client material");
    material
        .client_config(&expected.parse::<AgencyId>().expect("agency"))
        .expect("client config")
}

/// A client config presenting no certificate at all.
pub fn client_without_cert(root: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in read_certs("CA", &root.join("ca.pem")).expect("ca") {
        roots.add(c).expect("root");
    }
    let mut config = ClientConfig::builder_with_provider(tessera_node::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// A channel to `addr` with the given client config.
pub fn channel(addr: &str, config: Arc<ClientConfig>) -> Channel {
    tessera_node::dial::channel(addr, Some("localhost"), config, Duration::from_secs(5))
        .expect("channel")
}

/// Calls Federation.Hello introducing ourselves as `agency`.
pub async fn hello(channel: Channel, agency: &str) -> Result<HelloResponse, Status> {
    let mut client = FederationClient::new(channel);
    let request = HelloRequest {
        node: Some(NodeInfo {
            agency: agency.into(),
            software_version: "test".into(),
            protocol_version: 1,
            signing_key_id: String::new(),
            capabilities: vec![],
        }),
    };
    tokio::time::timeout(Duration::from_secs(10), client.hello(request))
        .await
        .map_err(|_| Status::deadline_exceeded("test call timed out"))?
        .map(tonic::Response::into_inner)
}

/// Calls Operator.Status.
pub async fn status(channel: Channel) -> Result<StatusResponse, Status> {
    let mut client = OperatorClient::new(channel);
    tokio::time::timeout(Duration::from_secs(10), client.status(StatusRequest {}))
        .await
        .map_err(|_| Status::deadline_exceeded("test call timed out"))?
        .map(tonic::Response::into_inner)
}

/// The federation and operator addresses of a node, from its config.
pub fn addrs(node: &LocalNode) -> (String, String) {
    let cfg =
        tessera_node::config::NodeConfig::load(&node.dir.join("node.toml")).expect("node.toml");
    (cfg.federation.listen, cfg.operator.listen)
}

/// Opens a raw TLS connection to `addr` and waits for the server's verdict
/// without sending anything: `Ok(())` if the server keeps the session open,
/// or the alert it sent. Deterministic, unlike a gRPC call racing the alert.
pub async fn tls_verdict(addr: &str, config: Arc<ClientConfig>) -> Result<(), rustls::Error> {
    use tokio::io::AsyncReadExt;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("tcp connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = match connector.connect(name, tcp).await {
        Ok(tls) => tls,
        Err(e) => return Err(rustls_error(&e)),
    };
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_millis(1500), tls.read(&mut buf)).await {
        // Silence (an h2 server waits for our preface) or data: accepted.
        Err(_) | Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(rustls_error(&e)),
    }
}

fn rustls_error(e: &std::io::Error) -> rustls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
        .unwrap_or_else(|| rustls::Error::General(e.to_string()))
}

/// Free loopback ports, found by binding port 0 (the OS may reuse them, so
/// use them at once).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// The `tessera-node` program of this build (usable in integration tests,
/// where Cargo names the binaries).
#[macro_export]
macro_rules! node_binary {
    () => {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_node-under-test"))
    };
}

/// The `tessera` program of this build.
#[macro_export]
macro_rules! cli_binary {
    () => {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_cli-under-test"))
    };
}

/// Nodes run as separate `tessera-node` processes, so a test can kill one
/// with SIGKILL (a crash: no drain, no flush) and start it again.
pub struct ProcFederation {
    pub temp: tempfile::TempDir,
    pub agencies: Vec<tessera_cli::dev_certs::DevAgency>,
    binary: PathBuf,
    children: Vec<Option<std::process::Child>>,
}

impl ProcFederation {
    /// Dev certificates and configs for `names` on free loopback ports;
    /// `tune` edits each node's config. Nothing is started yet.
    pub fn new(
        binary: PathBuf,
        names: &[&str],
        tune: impl Fn(&mut tessera_node::config::NodeConfig),
    ) -> Self {
        use tessera_cli::dev_certs;
        let temp = tempfile::tempdir().expect("tmp");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut made = dev_certs::generate(temp.path(), &names, 7400).expect("certs");
        let ports = free_ports(2 * made.len());
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
            let mut cfg =
                tessera_node::config::NodeConfig::load(&m.dir.join("node.toml")).expect("load");
            cfg.hello.interval_ms = 200;
            cfg.sync.pull_interval_ms = 500;
            cfg.sync.retry_max_ms = 1_000;
            tune(&mut cfg);
            let text = toml::to_string(&cfg).expect("toml");
            write(&m.dir.join("node.toml"), text.as_bytes(), false).expect("toml");
        }
        let children = made.iter().map(|_| None).collect();
        Self {
            temp,
            agencies: made,
            binary,
            children,
        }
    }

    pub fn root(&self) -> &Path {
        self.temp.path()
    }

    /// Starts node `i`.
    pub fn start(&mut self, i: usize) {
        let child = std::process::Command::new(&self.binary)
            .arg("--config")
            .arg(self.agencies[i].dir.join("node.toml"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn tessera-node");
        self.children[i] = Some(child);
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(std::process::Child::id)
    }

    /// SIGKILL: the node gets no chance to drain or flush.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The operator endpoint and a client config for node `i`'s own operator.
    pub fn operator(&self, i: usize) -> Channel {
        let (addr, cfg) = self.operator_endpoint(i);
        channel(&addr, cfg)
    }

    /// Node `i`'s operator address and an operator's client config, for a channel made
    /// elsewhere (on another runtime).
    pub fn operator_endpoint(&self, i: usize) -> (String, Arc<ClientConfig>) {
        let a = &self.agencies[i];
        let cfg = client_with_cert(
            self.root(),
            &a.dir.join("operator.pem"),
            &a.dir.join("operator.key"),
            &a.agency,
        );
        (format!("127.0.0.1:{}", a.operator_port), cfg)
    }

    /// Waits until node `i` answers Status.
    pub async fn ready(&self, i: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while status(self.operator(i)).await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "node {i} did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ProcFederation {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

/// Versions of notices from `origin` stored at the node behind `op`.
pub async fn stored_from(op: Channel, origin: &str) -> u64 {
    status(op)
        .await
        .ok()
        .and_then(|s| s.notices_by_origin.get(origin).copied())
        .unwrap_or(0)
}

/// The audit export of the node behind `op`, one JSON value per line.
pub async fn audit_lines(mut op: OperatorClient<Channel>) -> Vec<serde_json::Value> {
    use tokio_stream::StreamExt;
    let mut stream = op
        .audit_export(tessera_proto::v1::AuditExportRequest::default())
        .await
        .expect("audit export")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend(chunk.expect("chunk").jsonl);
    }
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("json line"))
        .collect()
}

/// Polls `f` every 20 ms until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `cmd` to its end off the runtime's threads (nodes of this process
/// keep serving meanwhile): (exit code, stdout, stderr).
pub async fn output_of(mut cmd: std::process::Command) -> (Option<i32>, String, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run the command");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether `node` comes to hold at least `rows` rows of `peer`'s index
/// within 20 seconds.
pub async fn index_replicated(node: &LocalNode, peer: &str, rows: u64) -> bool {
    eventually(Duration::from_secs(20), || async {
        node.operator()
            .expect("op")
            .status(StatusRequest {})
            .await
            .is_ok_and(|s| {
                s.into_inner()
                    .peers
                    .iter()
                    .any(|p| p.agency == peer && p.index_rows >= rows)
            })
    })
    .await
}

/// A federation of `agencies` in this process, configured by `configure`,
/// once every node reaches every other.
pub async fn reachable_federation(
    agencies: &[&str],
    configure: impl Fn(&mut tessera_node::config::NodeConfig),
) -> tessera_cli::federation::LocalFederation {
    let fed = tessera_cli::federation::LocalFederation::start_with(
        agencies,
        Duration::from_millis(200),
        configure,
    )
    .await
    .expect("start");
    fed.wait_all_reachable(Duration::from_secs(20))
        .await
        .expect("reachable");
    fed
}
