//! Tessera node: the daemon an export-control agency runs to share licence
//! denials, enforcement notices and hashed party identifiers with its peers.
//!
//! Layout (one concern per module; `docs/architecture.md` draws the arrows):
//!
//! - `config`: the TOML config, typed and validated before anything starts;
//! - `identity`: agency ids and roles read from certificates;
//! - `tls`, `listener`, `dial`: mutual TLS 1.3 both ways, CRLs, reload;
//! - `signing`: the agency's Ed25519 key and peers' pinned keys;
//! - `store`: sled, the gate that orders batches against flushes, and
//!   `store::keys`, the typed keys and values of every tree;
//! - `notice`, `policy`: the notice model, validation, signing, storage,
//!   issuing and review dates, and who may receive what and at which
//!   disclosure level;
//! - `peers`, `exchange`: what we know of peers, the calls we make to them
//!   (`exchange::client::PeerClient`), greetings, push, pull, receive, feed;
//! - `party`, `lists`: party records, match keys, and the public list readers;
//! - `privacy`, `matching`: the VOPRF crypto, and the indexes, screening,
//!   watch lists, deconfliction and overlap counts the node runs on it;
//! - `consult`: no-undercut consultations (deadlines, the state machine,
//!   the signed exchange, delivery, storage);
//! - `alerts`: the operator's alerts, raised by watch, deconfliction,
//!   consultations and reviews;
//! - `audit`: the signed audit chain;
//! - `backoff`, `wake`: the one retry policy, and the signals between workers;
//! - `throttle`: rate limits for log lines, audit entries and cheap calls;
//! - `backup`, `telemetry`, `logging`, `daemon`: operations;
//! - `service`: thin gRPC handlers and the per-surface guard.
//!
//! The node is built here, once: each worker and each service gets exactly
//! the handles it uses (stores, the signer, the peer client, the alert
//! sink, the wakers). Dependencies point one way: `service` → the domain
//! workers → stores and crypto. `Node::bind(config)` then
//! `node.serve(shutdown)` runs a node; shutdown is a future so tests pass
//! their own and the binary passes SIGINT/SIGTERM.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod audit;
pub mod background;
pub mod backoff;
pub mod backup;
pub mod bloc;
pub mod config;
pub mod consult;
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
pub mod review;
pub mod service;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod tls;
pub mod wake;

#[cfg(test)]
mod test_support;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_proto::v1::federation_server::FederationServer;
use tessera_proto::v1::operator_server::OperatorServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::alerts::{AlertSink, AlertStore};
use crate::audit::anchor::{AnchorPuller, AnchorStore};
use crate::audit::{AuditLog, AuditSink};
use crate::backoff::RetryPolicy;
use crate::bloc::applications::ApplicationBook;
use crate::bloc::charters::Charters;
use crate::bloc::report::PilotSource;
use crate::config::NodeConfig;
use crate::consult::deadline::WorkCalendar;
use crate::consult::deliver::StepDelivery;
use crate::consult::flow::Consultations;
use crate::consult::store::ConsultStore;
use crate::exchange::client::{PeerClient, TonicPeers};
use crate::exchange::feed::FeedServer;
use crate::exchange::hello::Greeter;
use crate::exchange::pull::Puller;
use crate::exchange::push::Pusher;
use crate::exchange::receive::Receiver;
use crate::identity::AgencyId;
use crate::matching::budgets::Budgets;
use crate::matching::deconflict::{Deconfliction, HitDelivery, HitQueue};
use crate::matching::holder::{HolderIndex, IndexPolicy, Indexer};
use crate::matching::keys::KeyRing;
use crate::matching::overlap::Overlap;
use crate::matching::own::{OwnIndex, OwnLists};
use crate::matching::replica::{ReplicaSync, Replicas};
use crate::matching::screen::Screener;
use crate::matching::serve::IndexServer;
use crate::matching::watch::{WatchStore, Watcher};
use crate::notice::issue::Issuer;
use crate::notice::review::Reviewer;
use crate::notice::store::NoticeStore;
use crate::peers::{PeerTable, PinnedKeys};
use crate::policy::{DisclosureLevel, Policy};
use crate::service::federation::FederationService;
use crate::service::guard::{Guard, Surface};
use crate::service::limits::{CallLimits, MAX_STREAMS_PER_CONNECTION, PerPeerLayer};
use crate::service::operator::OperatorService;
use crate::service::operator::admin::AdminDesk;
use crate::service::operator::bloc::BlocDesk;
use crate::service::operator::matching::MatchingDesk;
use crate::service::operator::notices::NoticeDesk;
use crate::service::operator::review::ReviewDesk;
use crate::service::operator::status::NodeStatus;
use crate::signing::SigningKey;
use crate::store::Store;
use crate::telemetry::Sampler;
use crate::tls::TlsState;
use crate::wake::Wakers;

/// How long in-flight calls may run after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long answers already made may take to reach their callers after
/// that, before the connections are cut.
const DELIVERY_GRACE: Duration = Duration::from_secs(1);

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
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("private matching: {0}")]
    Keys(#[from] matching::keys::KeyError),
    #[error("private matching: {0}")]
    Replicas(#[from] matching::replica::ReplicaError),
    #[error("audit chain: {0}")]
    Audit(#[from] audit::AuditError),
    #[error("metrics: {0}")]
    Metrics(#[from] telemetry::MetricsError),
}

impl NodeError {
    /// Whether the node stopped because its data directory is damaged
    /// (`tessera-node` exits 65 for it).
    pub fn is_damaged_data(&self) -> bool {
        match self {
            Self::Store(e) => e.is_damaged(),
            Self::Audit(e) => {
                matches!(
                    e,
                    audit::AuditError::Corrupt { .. } | audit::AuditError::Broken { .. }
                ) || matches!(e, audit::AuditError::Store(s) if s.is_damaged())
            }
            _ => false,
        }
    }
}

/// The background workers, each with its own handles.
struct Workers {
    greeter: Arc<Greeter>,
    indexer: Arc<Indexer>,
    own_lists: Arc<OwnLists>,
    consultations: Arc<Consultations>,
    reviewer: Arc<Reviewer>,
    anchors: AnchorPuller,
    sampler: Option<Sampler>,
    per_peer: Vec<PeerWorkers>,
}

/// The workers of one peer.
struct PeerWorkers {
    pusher: Pusher,
    puller: Puller,
    steps: StepDelivery,
    hits: HitDelivery,
}

impl Workers {
    /// Every worker is background work (see [`background`]).
    fn spawn(self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![
            background::spawn(self.greeter.run(stop.clone())),
            background::spawn(self.indexer.run(stop.clone())),
            background::spawn(self.own_lists.run(stop.clone())),
            background::spawn(self.consultations.reminders(stop.clone())),
            background::spawn(self.reviewer.run(stop.clone())),
            background::spawn(self.anchors.run(stop.clone())),
        ];
        if let Some(sampler) = self.sampler {
            tasks.push(background::spawn(sampler.run(stop.clone())));
        }
        for p in self.per_peer {
            tasks.push(background::spawn(p.pusher.run(stop.clone())));
            tasks.push(background::spawn(p.puller.run(stop.clone())));
            tasks.push(background::spawn(p.steps.run(stop.clone())));
            tasks.push(background::spawn(p.hits.run(stop.clone())));
        }
        tasks
    }
}

/// A node with its listeners bound, ready to serve.
pub struct Node {
    agency: AgencyId,
    federation: TcpListener,
    operator: TcpListener,
    federation_addr: SocketAddr,
    operator_addr: SocketAddr,
    tls: Arc<TlsState>,
    accept_limits: listener::AcceptLimits,
    metrics: Option<SocketAddr>,
    store: Store,
    audit: AuditSink,
    federation_service: FederationService,
    operator_service: OperatorService,
    federation_guard: Guard,
    operator_guard: Guard,
    workers: Workers,
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

    /// Uses listeners the caller bound (tests bind `127.0.0.1:0` first), and
    /// builds every part of the node: each worker and each service gets
    /// exactly the handles it uses.
    pub fn with_listeners(
        config: NodeConfig,
        federation: TcpListener,
        operator: TcpListener,
    ) -> Result<Self, NodeError> {
        config.validate()?;
        let local = |l: &TcpListener| {
            l.local_addr().map_err(|source| NodeError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })
        };
        let federation_addr = local(&federation)?;
        let operator_addr = local(&operator)?;
        let accept_limits = config.accept_limits();

        // Identity, keys and trust.
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
        let peers = Arc::new(PeerTable::new(&config));
        let peer_ids = peers.agencies();
        let pinned = PinnedKeys::from_config(&config);
        let policy = Policy::from_config(&config);
        let retry = RetryPolicy::new(
            Duration::from_millis(config.sync.retry_min_ms),
            Duration::from_millis(config.sync.retry_max_ms),
        );
        let calendar = WorkCalendar::new(
            config
                .consult
                .holidays
                .iter()
                .filter_map(|h| notice::dates::parse(h)),
        );

        // Stores.
        let store = Store::open_with_cache(&config.data_dir, config.storage.cache_mb)?;
        let notices = Arc::new(NoticeStore::open(&store, agency.clone())?);
        // Our own notices are indexed for us too (a key and a copy like a peer's), so that
        // screening and the watch list also check our own lists (`matching::own`).
        let indexed: Vec<AgencyId> = peer_ids
            .iter()
            .cloned()
            .chain(std::iter::once(agency.clone()))
            .collect();
        let keys = Arc::new(KeyRing::open(&config.data_dir, &indexed)?);
        let holder = Arc::new(HolderIndex::open(&store)?);
        let replicas = Arc::new(Replicas::open(&store, &indexed, Some(&agency))?);
        let watch = Arc::new(WatchStore::open(&store)?);
        let hits = Arc::new(HitQueue::open(&store)?);
        let alert_store = Arc::new(AlertStore::open(&store)?);
        let consults = Arc::new(ConsultStore::open(&store)?);
        let audit = AuditSink::new(Arc::new(
            AuditLog::open_journaled(
                &store,
                signing.clone(),
                config.audit.checkpoint_every,
                &config.data_dir.join("audit.journal"),
            )?
            .watermarked(&config.data_dir.join("audit.watermark"))?,
        ));

        // Shared handles.
        let wakers = Wakers::new(&peer_ids);
        let alerts = AlertSink::new(alert_store.clone(), audit.clone());
        let client: Arc<dyn PeerClient> = Arc::new(TonicPeers::new(peers.clone(), tls.clone()));
        let me = exchange::hello::node_info(&agency, signing.public().key_id());
        let budgets = Arc::new(Budgets::open(
            &store,
            peer_ids.iter().map(|p| (p.clone(), config.budget_for(p))),
            audit.clone(),
        )?);

        // Domain workers.
        let anchors = Arc::new(AnchorStore::open(&store)?);
        let anchor_puller = AnchorPuller {
            peers: peer_ids.clone(),
            client: client.clone(),
            pinned: pinned.clone(),
            anchors: anchors.clone(),
            interval: config.hello_interval(),
        };
        let greeter = Arc::new(Greeter {
            peers: peers.clone(),
            client: client.clone(),
            me,
            interval: config.hello_interval(),
            timeout: config.hello_timeout(),
            wakers: wakers.clone(),
        });
        let issuer = Arc::new(Issuer {
            agency: agency.clone(),
            notices: notices.clone(),
            signing: signing.clone(),
            policy,
            default_to: config.notices.default_to.clone(),
            store: store.clone(),
            wakers: wakers.clone(),
        });
        let indexer = Arc::new(Indexer {
            holder: holder.clone(),
            notices: notices.clone(),
            keys: keys.clone(),
            policy: IndexPolicy {
                levels: peer_ids
                    .iter()
                    .map(|p| (p.clone(), config.disclosure_for(p)))
                    // Our own index at summary: own matches are shown whole from our
                    // notice store (`OwnIndex::show_whole`).
                    .chain(std::iter::once((agency.clone(), DisclosureLevel::Summary)))
                    .collect(),
                contact: config.privacy.contact.clone(),
            },
            agency: agency.clone(),
            store: store.clone(),
            wakers: wakers.clone(),
        });
        let own_index = OwnIndex {
            agency: agency.clone(),
            keys: keys.clone(),
            holder: holder.clone(),
            notices: notices.clone(),
        };
        let watch_store = watch.clone();
        let watcher = Arc::new(Watcher {
            watch,
            replicas: replicas.clone(),
            client: client.clone(),
            alerts: alerts.clone(),
            hits: hits.clone(),
            wakers: wakers.clone(),
            store: store.clone(),
            peers: peer_ids.clone(),
            own: Some(own_index.clone()),
        });
        let own_lists = Arc::new(OwnLists::new(
            own_index,
            replicas.clone(),
            watcher.clone(),
            wakers.own_index(),
        ));
        let replica_sync = Arc::new(ReplicaSync::new(
            replicas.clone(),
            client.clone(),
            store.clone(),
            watcher.clone(),
        ));
        let receiver = Arc::new(Receiver {
            notices: notices.clone(),
            pinned: pinned.clone(),
            store: store.clone(),
            audit: audit.clone(),
            replicas: replicas.clone(),
            wakers: wakers.clone(),
        });
        let screener = Arc::new(
            Screener::new(replicas.clone(), client.clone(), peer_ids.clone())
                .with_own(own_lists.clone()),
        );
        let overlap = Arc::new(Overlap {
            agency: agency.clone(),
            notices: notices.clone(),
            client: client.clone(),
            budgets: Arc::new(Budgets::open_overlap(
                &store,
                peer_ids.iter().map(|p| {
                    let limits = (
                        config.privacy.overlap_keys_per_day,
                        config.privacy.overlap_burst,
                    );
                    (p.clone(), limits)
                }),
                audit.clone(),
            )?),
            audit: audit.clone(),
            groups: config.groups.clone(),
            peers: peer_ids.clone(),
            min_batch: config.privacy.min_overlap_batch,
            chunk: matching::overlap::MAX_ELEMENTS,
            sessions: matching::overlap::Sessions::new(Duration::from_secs(
                config.privacy.overlap_session_secs,
            )),
            counted: std::sync::Mutex::default(),
            reports: throttle::PerPeerRate::new(
                matching::overlap::REPORTS_PER_DAY,
                matching::overlap::REPORT_BURST,
            ),
        });
        let charters = Arc::new(Charters::open(
            &store,
            agency.clone(),
            notices.clone(),
            audit.clone(),
        )?);
        let consultations = Arc::new(Consultations {
            agency: agency.clone(),
            consults: consults.clone(),
            signing: signing.clone(),
            pinned: pinned.clone(),
            notices: notices.clone(),
            issuer: issuer.clone(),
            grant_to: config.consult.grant_notice_to.clone(),
            alerts: alerts.clone(),
            audit: audit.clone(),
            calendar: calendar.clone(),
            shared_holidays: Some(charters.clone()),
            store: store.clone(),
            wakers: wakers.clone(),
        });
        let reviewer = Arc::new(Reviewer {
            agency: agency.clone(),
            notices: notices.clone(),
            alerts: alerts.clone(),
            warn_days: config.notices.review_warning_days,
            wake: wakers.review(),
        });
        let per_peer = peer_ids
            .iter()
            .map(|peer| {
                let wake = wakers.peer(peer);
                PeerWorkers {
                    pusher: Pusher {
                        peer: peer.clone(),
                        notices: notices.clone(),
                        holder: holder.clone(),
                        client: client.clone(),
                        peers: peers.clone(),
                        audit: audit.clone(),
                        wake: wake.clone(),
                        batch: config.sync.push_batch,
                        retry,
                        timeout: exchange::push::PUSH_TIMEOUT,
                    },
                    puller: Puller {
                        peer: peer.clone(),
                        notices: notices.clone(),
                        receiver: receiver.clone(),
                        replicas: replica_sync.clone(),
                        client: client.clone(),
                        wake: wake.clone(),
                        interval: Duration::from_millis(config.sync.pull_interval_ms),
                        retry,
                    },
                    steps: StepDelivery {
                        peer: peer.clone(),
                        consultations: consultations.clone(),
                        client: client.clone(),
                        wake: wake.clone(),
                        retry,
                    },
                    hits: HitDelivery {
                        peer: peer.clone(),
                        hits: hits.clone(),
                        client: client.clone(),
                        wake,
                        retry,
                    },
                }
            })
            .collect();
        let metrics = if config.metrics.listen.is_empty() {
            None
        } else {
            Some(config::parse_listen(
                "metrics.listen",
                &config.metrics.listen,
            )?)
        };
        let sampler = metrics.map(|_| Sampler {
            peers: peers.clone(),
            notices: notices.clone(),
            holder: holder.clone(),
            replicas: replicas.clone(),
            audit: audit.clone(),
            consultations: consultations.clone(),
        });

        let applications = Arc::new(ApplicationBook::open(&store)?);
        let pilot = Arc::new(PilotSource {
            charters: charters.clone(),
            applications: applications.clone(),
            consults: consults.clone(),
            signing: signing.clone(),
        });

        // Services.
        let matching = Arc::new(MatchingDesk {
            screener,
            watcher,
            alerts: alert_store,
            overlap: overlap.clone(),
            indexer: indexer.clone(),
            issuer: issuer.clone(),
            peers: peer_ids.clone(),
            wakers,
        });
        let bloc = Arc::new(BlocDesk {
            charters,
            applications,
            pilot: pilot.clone(),
            matching: matching.clone(),
            consultations: consultations.clone(),
            issuer: issuer.clone(),
            client: client.clone(),
            pinned,
            groups: config.groups.clone(),
            disclosure: peer_ids
                .iter()
                .map(|p| (p.clone(), config.disclosure_for(p)))
                .collect(),
        });
        let federation_service = FederationService {
            greeter: greeter.clone(),
            receiver,
            feed: FeedServer::new(agency.clone(), notices.clone(), audit.clone()),
            index: Arc::new(
                IndexServer::new(holder.clone(), keys, budgets.clone(), audit.clone())
                    .with_feed(notices.clone()),
            ),
            overlap: overlap.clone(),
            deconfliction: Arc::new(Deconfliction::new(
                agency.clone(),
                holder.clone(),
                notices.clone(),
                budgets.clone(),
                alerts,
            )),
            consultations: consultations.clone(),
            audit: audit.clone(),
            anchors,
            limits: Arc::new(CallLimits::new(
                &peer_ids,
                service::limits::MAX_CALLS_PER_PEER,
                config.tls.peer_read_mib_per_sec.saturating_mul(1024 * 1024),
            )),
            pilot: pilot.clone(),
        };
        let operator_service = OperatorService {
            status: Arc::new(NodeStatus {
                agency: agency.clone(),
                signing_key_id: signing.public().key_id(),
                federation_addr,
                started_at: time::OffsetDateTime::now_utc().unix_timestamp(),
                peers: peers.clone(),
                notices: notices.clone(),
                replicas,
                holder,
            }),
            notices: Arc::new(NoticeDesk {
                issuer: issuer.clone(),
                notices,
            }),
            matching: matching.clone(),
            consultations: consultations.clone(),
            review: Arc::new(ReviewDesk {
                agency: agency.clone(),
                false_positives: crate::review::FalsePositives::open(&store)?,
                reviews: crate::review::AlertReviews::open(&store)?,
                watch: watch_store,
                audit: audit.clone(),
            }),
            admin: Arc::new(AdminDesk {
                client: client.clone(),
                peers: peer_ids,
                audit: audit.clone(),
                signing_key: *signing.public(),
                store: store.clone(),
                data_dir: config.data_dir,
                agency: agency.clone(),
                signing: signing.clone(),
            }),
            bloc,
        };
        let guard = |surface| {
            Guard::new(
                surface,
                agency.clone(),
                tls.clone(),
                peers.clone(),
                audit.clone(),
            )
        };
        Ok(Self {
            federation_guard: guard(Surface::Federation),
            operator_guard: guard(Surface::Operator),
            agency,
            federation,
            operator,
            federation_addr,
            operator_addr,
            accept_limits,
            tls,
            metrics,
            store,
            audit,
            federation_service,
            operator_service,
            workers: Workers {
                greeter,
                indexer,
                own_lists,
                consultations,
                reviewer,
                anchors: anchor_puller,
                sampler,
                per_peer,
            },
        })
    }

    pub fn federation_addr(&self) -> SocketAddr {
        self.federation_addr
    }

    pub fn operator_addr(&self) -> SocketAddr {
        self.operator_addr
    }

    /// A handle that re-reads certificates and CRLs (what SIGHUP does).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            agency: self.agency.clone(),
            tls: self.tls.clone(),
            audit: self.audit.clone(),
        }
    }

    /// Serves until `shutdown` completes, then drains in-flight calls for up
    /// to a grace period and flushes storage.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let stop = CancellationToken::new();
        let cut = CancellationToken::new();
        let at_work = service::inflight::InFlight::default();
        let fed_guard = self.federation_guard;
        let per_peer = PerPeerLayer(self.federation_service.limits.clone());
        let federation = Server::builder()
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .layer(at_work.clone())
            .layer(tower::util::MapResponseLayer::new(
                service::undecodable_is_invalid_argument::<
                    tonic::service::interceptor::ResponseBody<tonic::body::Body>,
                >,
            ))
            .layer(tonic::service::InterceptorLayer::new(move |r| {
                fed_guard.check(r)
            }))
            .layer(per_peer)
            .add_service(FederationServer::new(self.federation_service))
            .serve_with_incoming_shutdown(
                listener::incoming(
                    "federation",
                    self.federation,
                    self.tls.clone(),
                    self.accept_limits,
                    (stop.clone(), cut.clone()),
                ),
                stop.clone().cancelled_owned(),
            );

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<OperatorServer<OperatorService>>()
            .await;
        // Both reflection versions: v1, and v1alpha for the clients that speak only it
        // (Python's grpcio-reflection, several GUI clients).
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tessera_proto::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tessera_proto::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        let op_guard = self.operator_guard;
        let operator = Server::builder()
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .layer(at_work.clone())
            .layer(tower::util::MapResponseLayer::new(
                service::undecodable_is_invalid_argument::<
                    tonic::service::interceptor::ResponseBody<tonic::body::Body>,
                >,
            ))
            .layer(tonic::service::InterceptorLayer::new(move |r| {
                op_guard.check(r)
            }))
            .add_service(OperatorServer::new(self.operator_service))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(
                listener::incoming(
                    "operator",
                    self.operator,
                    self.tls.clone(),
                    listener::AcceptLimits {
                        per_peer: None,
                        ..self.accept_limits
                    },
                    (stop.clone(), cut.clone()),
                ),
                stop.clone().cancelled_owned(),
            );

        let federation = tokio::spawn(federation);
        let operator = tokio::spawn(operator);
        if let Some(addr) = self.metrics {
            telemetry::install(addr)?;
            tracing::info!(%addr, "metrics served at /metrics");
        }
        let peers = self.workers.per_peer.len();
        let workers = self.workers.spawn(&stop);
        tracing::info!(
            agency = %self.agency,
            federation = %self.federation_addr,
            operator = %self.operator_addr,
            peers,
            "node started"
        );

        shutdown.await;
        tracing::info!(agency = %self.agency, "shutting down: draining calls");
        stop.cancel();
        // The work in progress gets the grace period; answers still on their way
        // get a moment more, then every connection is cut: a peer that leaves
        // its streams unread does not hold the node up (it pulls again from its
        // cursor). The servers and workers are done before storage is flushed,
        // so no handler still writes or holds a tree.
        let worked = tokio::time::timeout(SHUTDOWN_GRACE, async {
            at_work.idle().await;
            futures::future::join_all(workers).await;
        })
        .await;
        let aborts = [federation.abort_handle(), operator.abort_handle()];
        let mut servers = futures::future::join(federation, operator);
        let delivered = tokio::time::timeout(DELIVERY_GRACE, &mut servers).await;
        let (fed, op) = if let Ok(done) = delivered {
            done
        } else {
            cut.cancel();
            let ended = tokio::time::timeout(DELIVERY_GRACE, &mut servers).await;
            if let Ok(done) = ended {
                done
            } else {
                aborts.iter().for_each(tokio::task::AbortHandle::abort);
                servers.await
            }
        };
        let drained = worked.map(|()| (fed, op));
        if let Err(error) = self.audit.log().checkpoint() {
            tracing::error!(%error, "cannot write the shutdown audit checkpoint");
        }
        self.store.flush().await?;
        // Again through the chain, which then moves its watermark.
        self.audit.log().flush().await?;
        tracing::info!(agency = %self.agency, "storage flushed; stopped");
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
pub struct Reloader {
    agency: AgencyId,
    tls: Arc<TlsState>,
    audit: AuditSink,
}

impl Reloader {
    pub fn reload(&self) -> Result<(), NodeError> {
        match self.tls.reload() {
            Ok(generation) => {
                tracing::info!(generation, "certificates and CRLs reloaded");
                self.audit.event(
                    self.agency.as_str(),
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
