//! Tessera node: the daemon an export-control agency runs to share licence
//! denials, enforcement notices and hashed party identifiers with its peers.
//!
//! Layout (one concern per module):
//! - `config`: the TOML config, validated before anything starts;
//! - `identity`: agency ids and roles read from certificates;
//! - `tls`, `listener`, `dial`: mutual TLS 1.3 both ways, CRLs, reload;
//! - `signing`: the agency's Ed25519 key and peers' pinned keys;
//! - `store`: sled, and the gate that orders batches against flushes;
//! - `notice`, `policy`: the notice model, validation, signing, storage, and
//!   who may receive what;
//! - `peers`, `exchange`: what we know of peers and how we talk to them;
//! - `party`, `lists`: party records, match keys, and the public list readers;
//! - `privacy`, `matching`: the VOPRF crypto, and the indexes, screening,
//!   watch lists and overlap counts the node runs on it;
//! - `consult`, `audit`: no-undercut consultations, the signed audit chain;
//! - `backup`, `telemetry`, `daemon`: operations;
//! - `service`: thin gRPC handlers and the per-surface guard.
//!
//! `Node::bind(config)` then `node.serve(shutdown)` runs a node; shutdown is a
//! future so tests pass their own and the binary passes SIGINT/SIGTERM.

#![forbid(unsafe_code)]

pub mod audit;
pub mod backup;
pub mod config;
pub mod consult;
pub mod context;
pub mod daemon;
pub mod dial;
pub mod exchange;
pub mod identity;
pub mod listener;
pub mod lists;
pub mod logging;
pub mod matching;
pub mod notice;
pub mod party;
pub mod peers;
pub mod policy;
pub mod privacy;
pub mod service;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_proto::v1::federation_server::FederationServer;
use tessera_proto::v1::operator_server::OperatorServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::config::NodeConfig;
use crate::context::Context;
use crate::peers::PeerTable;
use crate::service::federation::FederationService;
use crate::service::guard::{Guard, Surface};
use crate::service::operator::OperatorService;
use crate::signing::SigningKey;
use crate::store::Store;
use crate::tls::TlsState;

/// How long in-flight calls may run after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why a node could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Signing(#[from] signing::SigningError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the {surface} server failed: {source}")]
    Serve {
        surface: &'static str,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("reflection service: {0}")]
    Reflection(String),
    #[error("private matching: {0}")]
    Matching(String),
    #[error("audit chain: {0}")]
    Audit(String),
    #[error("metrics: {0}")]
    Metrics(String),
}

/// A node with its listeners bound, ready to serve.
pub struct Node {
    ctx: Arc<Context>,
    federation: TcpListener,
    operator: TcpListener,
}

impl Node {
    /// Binds the listeners named in the config.
    pub async fn bind(config: NodeConfig) -> Result<Self, NodeError> {
        let fed_addr = config::parse_listen("federation.listen", &config.federation.listen)?;
        let op_addr = config::parse_listen("operator.listen", &config.operator.listen)?;
        let federation = TcpListener::bind(fed_addr)
            .await
            .map_err(|source| NodeError::Bind {
                addr: fed_addr,
                source,
            })?;
        let operator = TcpListener::bind(op_addr)
            .await
            .map_err(|source| NodeError::Bind {
                addr: op_addr,
                source,
            })?;
        Self::with_listeners(config, federation, operator)
    }

    /// Uses listeners the caller bound (tests bind `127.0.0.1:0` first).
    pub fn with_listeners(
        config: NodeConfig,
        federation: TcpListener,
        operator: TcpListener,
    ) -> Result<Self, NodeError> {
        config.validate()?;
        let tls = Arc::new(TlsState::load(&config.tls)?);
        let agency = config.agency_id();
        match tls.current().material.own_identity() {
            Some(id) if id.agency == agency && id.role == identity::Role::Node => {}
            _ => {
                return Err(config::ConfigError::Invalid {
                    key: "tls.cert".into(),
                    problem: format!("the certificate does not carry urn:tessera:node:{agency}"),
                }
                .into());
            }
        }
        let signing = Arc::new(SigningKey::load(&config.signing.key)?);
        let store = Store::open(&config.data_dir)?;
        let notices = notice::store::NoticeStore::open(&store, agency.clone())?;
        let peers = Arc::new(PeerTable::new(&config));
        let peer_ids = peers.agencies();
        let keys = matching::keys::KeyRing::open(&config.data_dir, &peer_ids)
            .map_err(|e| NodeError::Matching(e.to_string()))?;
        let holder = matching::holder::HolderIndex::open(&store)?;
        let replicas = matching::replica::Replicas::open(&store, &peer_ids)
            .map_err(|e| NodeError::Matching(e.to_string()))?;
        let watch = matching::watch::WatchStore::open(&store)?;
        let consults = consult::store::ConsultStore::open(&store)?;
        let audit = audit::AuditLog::open(&store, signing.clone(), config.audit.checkpoint_every)
            .map_err(|e| NodeError::Audit(e.to_string()))?;
        let now = tokio::time::Instant::now();
        let budgets = peer_ids
            .iter()
            .map(|p| {
                let (per_day, burst) = config.budget_for(p);
                (p.clone(), privacy::QueryBudget::new(per_day, burst, now))
            })
            .collect();
        let wakers = peers
            .agencies()
            .into_iter()
            .map(|a| (a, Arc::default()))
            .collect();
        let local = |l: &TcpListener| {
            l.local_addr().map_err(|source| NodeError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })
        };
        let ctx = Arc::new(Context {
            peers,
            wakers,
            notices,
            keys,
            holder,
            replicas,
            watch,
            audit,
            consults,
            budgets: std::sync::Mutex::new(budgets),
            indexer_wake: tokio::sync::Notify::new(),
            review_wake: tokio::sync::Notify::new(),
            agency,
            signing,
            tls,
            store,
            federation_addr: local(&federation)?,
            operator_addr: local(&operator)?,
            started_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            config,
        });
        Ok(Self {
            ctx,
            federation,
            operator,
        })
    }

    pub fn federation_addr(&self) -> SocketAddr {
        self.ctx.federation_addr
    }

    pub fn operator_addr(&self) -> SocketAddr {
        self.ctx.operator_addr
    }

    /// A handle that re-reads certificates and CRLs (what SIGHUP does).
    pub fn reloader(&self) -> Reloader {
        Reloader(self.ctx.clone())
    }

    /// Serves until `shutdown` completes, then drains in-flight calls for up
    /// to a grace period and flushes storage.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let ctx = self.ctx;
        let stop = CancellationToken::new();
        let guard = |surface| Guard {
            surface,
            ctx: ctx.clone(),
        };

        let fed_guard = guard(Surface::Federation);
        let federation = Server::builder()
            .layer(tonic::service::InterceptorLayer::new(move |r| {
                fed_guard.check(r)
            }))
            .add_service(FederationServer::new(FederationService {
                ctx: ctx.clone(),
            }))
            .serve_with_incoming_shutdown(
                listener::incoming(
                    "federation",
                    self.federation,
                    ctx.tls.clone(),
                    ctx.config.handshake_timeout(),
                    stop.clone(),
                ),
                stop.clone().cancelled_owned(),
            );

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<OperatorServer<OperatorService>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tessera_proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| NodeError::Reflection(e.to_string()))?;
        let op_guard = guard(Surface::Operator);
        let operator = Server::builder()
            .layer(tonic::service::InterceptorLayer::new(move |r| {
                op_guard.check(r)
            }))
            .add_service(OperatorServer::new(OperatorService { ctx: ctx.clone() }))
            .add_service(health_service)
            .add_service(reflection)
            .serve_with_incoming_shutdown(
                listener::incoming(
                    "operator",
                    self.operator,
                    ctx.tls.clone(),
                    ctx.config.handshake_timeout(),
                    stop.clone(),
                ),
                stop.clone().cancelled_owned(),
            );

        let federation = tokio::spawn(federation);
        let operator = tokio::spawn(operator);
        let hello = tokio::spawn(exchange::hello::run(ctx.clone(), stop.clone()));
        if !ctx.config.metrics.listen.is_empty() {
            let addr = config::parse_listen("metrics.listen", &ctx.config.metrics.listen)?;
            telemetry::install(addr).map_err(NodeError::Metrics)?;
            tracing::info!(%addr, "metrics served at /metrics");
        }
        let mut workers = vec![
            tokio::spawn(matching::holder::run(ctx.clone(), stop.clone())),
            tokio::spawn(consult::flow::reminders(ctx.clone(), stop.clone())),
            tokio::spawn(notice::review::run(ctx.clone(), stop.clone())),
        ];
        if !ctx.config.metrics.listen.is_empty() {
            workers.push(tokio::spawn(telemetry::sample(ctx.clone(), stop.clone())));
        }
        for peer in ctx.peers.agencies() {
            workers.push(tokio::spawn(exchange::push::run(
                ctx.clone(),
                peer.clone(),
                stop.clone(),
            )));
            workers.push(tokio::spawn(exchange::pull::run(
                ctx.clone(),
                peer.clone(),
                stop.clone(),
            )));
            workers.push(tokio::spawn(consult::flow::deliver(
                ctx.clone(),
                peer.clone(),
                stop.clone(),
            )));
            workers.push(tokio::spawn(matching::watch::deliver_hits(
                ctx.clone(),
                peer,
                stop.clone(),
            )));
        }
        tracing::info!(
            agency = %ctx.agency,
            federation = %ctx.federation_addr,
            operator = %ctx.operator_addr,
            peers = ctx.peers.agencies().len(),
            "node started"
        );

        shutdown.await;
        tracing::info!(agency = %ctx.agency, "shutting down: draining calls");
        stop.cancel();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            let fed = federation.await;
            let op = operator.await;
            let _ = hello.await;
            futures::future::join_all(workers).await;
            (fed, op)
        })
        .await;
        if let Err(error) = ctx.audit.checkpoint() {
            tracing::error!(%error, "cannot write the shutdown audit checkpoint");
        }
        ctx.store.flush().await?;
        tracing::info!(agency = %ctx.agency, "storage flushed; stopped");
        match drained {
            Ok((Ok(Err(source)), _)) => Err(NodeError::Serve {
                surface: "federation",
                source,
            }),
            Ok((_, Ok(Err(source)))) => Err(NodeError::Serve {
                surface: "operator",
                source,
            }),
            Ok(_) => Ok(()),
            Err(_) => {
                tracing::warn!("grace period over; remaining calls were cut");
                Ok(())
            }
        }
    }
}

/// Re-reads TLS material on demand.
#[derive(Clone)]
pub struct Reloader(Arc<Context>);

impl Reloader {
    pub fn reload(&self) -> Result<(), NodeError> {
        match self.0.tls.reload() {
            Ok(generation) => {
                tracing::info!(generation, "certificates and CRLs reloaded");
                self.0.audit_event(
                    &self.0.agency.to_string(),
                    audit::Action::ConfigReloaded,
                    "tls",
                    &serde_json::json!({ "generation": generation }),
                );
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "reload failed; keeping the previous certificates and CRLs");
                Err(error.into())
            }
        }
    }
}

/// Binds and serves until `shutdown`.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    Node::bind(config).await?.serve(shutdown).await
}
