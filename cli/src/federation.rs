//! A federation of real nodes in this process: dev certificates in a
//! temporary directory, listeners on 127.0.0.1 ports the OS picks, mutual TLS.
//! `tessera demo` runs on it; so can tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tessera_node::config::NodeConfig;
use tessera_proto::v1::{StatusRequest, StatusResponse};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::CliConfig;
use crate::dev_certs::{self, DevAgency};

/// A running node of the local federation.
pub struct LocalNode {
    pub agency: String,
    pub dir: PathBuf,
    pub cli: CliConfig,
    reloader: Option<tessera_node::Reloader>,
    /// A node prepared but not yet started (see `start_node`).
    pending: Option<tessera_node::Node>,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), tessera_node::NodeError>>>,
}

/// Several nodes, each peer of all the others.
pub struct LocalFederation {
    temp: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub nodes: Vec<LocalNode>,
}

impl LocalFederation {
    /// Makes certificates for `agencies` under a fresh temporary directory and
    /// starts one node per agency, greeting peers every `hello`.
    pub async fn start(agencies: &[&str], hello: Duration) -> anyhow::Result<Self> {
        Self::start_with(agencies, hello, |_| {}).await
    }

    /// As `start`, letting `tune` change each node's config before it starts.
    pub async fn start_with(
        agencies: &[&str],
        hello: Duration,
        tune: impl Fn(&mut NodeConfig),
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let root = dir.path().to_owned();
        let mut fed = Self::start_in(&root, agencies, hello, tune, false).await?;
        fed.temp = Some(dir);
        Ok(fed)
    }

    /// As `start_with`, in `root` (kept afterwards); with `defer`, nodes are
    /// only prepared.
    pub async fn start_in(
        root: &Path,
        agencies: &[&str],
        hello: Duration,
        tune: impl Fn(&mut NodeConfig),
        defer: bool,
    ) -> anyhow::Result<Self> {
        let names: Vec<String> = agencies.iter().map(|a| (*a).to_owned()).collect();
        let mut listeners = Vec::new();
        for _ in agencies {
            let f = TcpListener::bind("127.0.0.1:0").await?;
            let o = TcpListener::bind("127.0.0.1:0").await?;
            listeners.push((f, o));
        }
        let mut made: Vec<DevAgency> = dev_certs::generate(root, &names, 7400)?;
        for (m, (f, o)) in made.iter_mut().zip(&listeners) {
            m.federation_port = f.local_addr()?.port();
            m.operator_port = o.local_addr()?.port();
        }
        let mut nodes = Vec::new();
        for (m, (f, o)) in made.iter().zip(listeners) {
            crate::pki::write(
                &m.dir.join("node.toml"),
                dev_certs::node_toml(m, &made).as_bytes(),
                false,
            )?;
            crate::pki::write(
                &m.dir.join("cli.toml"),
                dev_certs::cli_toml(m).as_bytes(),
                false,
            )?;
            let mut config = NodeConfig::load(&m.dir.join("node.toml"))?;
            config.hello.interval_ms = hello.as_millis() as u64;
            config.sync.pull_interval_ms = 1_000;
            tune(&mut config);
            let node = tessera_node::Node::with_listeners(config, f, o)?;
            nodes.push(LocalNode {
                agency: m.agency.clone(),
                dir: m.dir.clone(),
                cli: CliConfig::load(&m.dir.join("cli.toml"))?,
                reloader: Some(node.reloader()),
                pending: Some(node),
                stop: CancellationToken::new(),
                task: None,
            });
        }
        let mut fed = Self {
            temp: None,
            root: root.to_owned(),
            nodes,
        };
        if !defer {
            for i in 0..fed.nodes.len() {
                fed.start_node(i);
            }
        }
        Ok(fed)
    }

    /// Like `start_with`, but no node runs until `start_node` is called.
    pub async fn prepare(
        agencies: &[&str],
        hello: Duration,
        tune: impl Fn(&mut NodeConfig),
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let root = dir.path().to_owned();
        let mut fed = Self::start_in(&root, agencies, hello, tune, true).await?;
        fed.temp = Some(dir);
        Ok(fed)
    }

    /// Starts node `i` if it was prepared and not started yet.
    pub fn start_node(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if let Some(node) = n.pending.take() {
            let shutdown = n.stop.clone().cancelled_owned();
            n.task = Some(tokio::spawn(node.serve(shutdown)));
        }
    }

    /// Waits until every node sees every peer reachable.
    pub async fn wait_all_reachable(
        &self,
        within: Duration,
    ) -> anyhow::Result<Vec<StatusResponse>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut all = Vec::new();
            for n in &self.nodes {
                if let Ok(s) = n.status().await {
                    all.push(s);
                }
            }
            let ready = all.len() == self.nodes.len()
                && all.iter().all(|s| s.peers.iter().all(|p| p.reachable));
            if ready {
                return Ok(all);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("the nodes did not all see each other within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops node `i` (drain, flush), leaving the others running.
    pub async fn stop_node(&mut self, i: usize) -> anyhow::Result<()> {
        self.nodes[i].stop.cancel();
        if let Some(task) = self.nodes[i].task.take() {
            task.await??;
        }
        Ok(())
    }

    /// Re-reads certificates and CRLs on node `i`, as SIGHUP does.
    pub fn reload(&self, i: usize) -> anyhow::Result<()> {
        if let Some(r) = &self.nodes[i].reloader {
            r.reload()?;
        }
        Ok(())
    }

    /// Stops every node (drain, flush) and waits for them.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        for n in &mut self.nodes {
            n.stop.cancel();
        }
        for n in &mut self.nodes {
            if let Some(task) = n.task.take() {
                task.await??;
            }
        }
        Ok(())
    }
}

impl LocalNode {
    /// An operator client of this node, as the CLI makes it.
    pub fn operator(
        &self,
    ) -> anyhow::Result<tessera_proto::v1::operator_client::OperatorClient<tonic::transport::Channel>>
    {
        self.cli.operator()
    }

    /// Status through the operator port, as the CLI asks it.
    pub async fn status(&self) -> anyhow::Result<StatusResponse> {
        let mut client = self.cli.operator()?;
        let response = client
            .status(StatusRequest {})
            .await
            .map_err(|s| crate::client::explain_call(&self.cli, &s))?;
        Ok(response.into_inner())
    }
}
