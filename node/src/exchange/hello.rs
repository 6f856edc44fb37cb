//! Hello: greet every configured peer at start and then periodically, keeping
//! per-peer reachability, last seen and round-trip time, and answer a peer's
//! greeting. A peer that becomes reachable is pulled from and pushed to at once.

use std::sync::Arc;
use std::time::Duration;

use tessera_proto::v1::{HelloRequest, HelloResponse, NodeInfo};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::PeerClient;
use crate::identity::AgencyId;
use crate::peers::{PeerInfo, PeerTable};
use crate::wake::Wakers;

/// The software version reported to peers and operators.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What this node can do, announced in Hello.
pub const CAPABILITIES: &[&str] = &["hello/1", "notices/1", "voprf-ristretto255-sha512/1"];

/// How this node introduces itself.
pub fn node_info(agency: &AgencyId, signing_key_id: String) -> NodeInfo {
    NodeInfo {
        agency: agency.to_string(),
        software_version: SOFTWARE_VERSION.into(),
        protocol_version: tessera_proto::PROTOCOL_VERSION,
        signing_key_id,
        capabilities: CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// Why a peer's greeting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("node: missing")]
    Missing,
    #[error("node.agency does not match the agency in your certificate")]
    WrongAgency,
}

impl From<HelloError> for tonic::Status {
    fn from(e: HelloError) -> Self {
        match e {
            HelloError::Missing => Self::invalid_argument(e.to_string()),
            HelloError::WrongAgency => Self::permission_denied(e.to_string()),
        }
    }
}

fn info(node: NodeInfo) -> PeerInfo {
    PeerInfo {
        software_version: node.software_version,
        protocol_version: node.protocol_version,
        signing_key_id: node.signing_key_id,
        capabilities: node.capabilities,
    }
}

/// Greets the peers and answers their greetings.
#[derive(Debug)]
pub struct Greeter {
    pub peers: Arc<PeerTable>,
    pub client: Arc<dyn PeerClient>,
    /// How this node introduces itself ([`node_info`]).
    pub me: NodeInfo,
    /// Between greetings (`hello.interval_ms`).
    pub interval: Duration,
    /// Before a greeting counts as failed (`hello.timeout_ms`).
    pub timeout: Duration,
    pub wakers: Wakers,
}

impl Greeter {
    /// Greets all peers every interval until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let rounds = self.peers.agencies().into_iter().map(|peer| {
                let this = self.clone();
                async move { this.greet(&peer).await }
            });
            futures::future::join_all(rounds).await;
        }
    }

    /// One greeting to one peer; its outcome is recorded in the peer table.
    pub async fn greet(&self, peer: &AgencyId) {
        let started = Instant::now();
        let request = HelloRequest {
            node: Some(self.me.clone()),
        };
        let outcome = tokio::time::timeout(self.timeout, self.client.hello(peer, request)).await;
        match outcome {
            Ok(Ok(response)) => {
                let rtt = started.elapsed();
                let Some(node) = response.node else {
                    self.peers
                        .failed(peer, "the peer's Hello carried no node info".into());
                    return;
                };
                if node.agency != peer.as_str() {
                    self.peers
                        .failed(peer, "the peer introduced itself as another agency".into());
                    return;
                }
                let was_reachable = self.peers.is_reachable(peer);
                self.peers.seen(peer, Some(rtt), Some(info(node)));
                if !was_reachable {
                    tracing::info!(peer = %peer, rtt_us = rtt.as_micros() as u64, "peer reachable");
                    self.wakers.pull(peer);
                    self.wakers.push(std::slice::from_ref(peer));
                }
            }
            Ok(Err(error)) => {
                tracing::debug!(peer = %peer, reason = %error, "hello failed");
                self.peers.failed(peer, error.to_string());
            }
            Err(_) => {
                self.peers
                    .failed(peer, "no answer within the hello timeout".into());
            }
        }
    }

    /// A peer's greeting: it must name the agency of its certificate.
    pub fn answer(
        &self,
        caller: &AgencyId,
        request: HelloRequest,
    ) -> Result<HelloResponse, HelloError> {
        let node = request.node.ok_or(HelloError::Missing)?;
        if node.agency != caller.as_str() {
            return Err(HelloError::WrongAgency);
        }
        self.peers.seen(caller, None, Some(info(node)));
        Ok(HelloResponse {
            node: Some(self.me.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::fake::{FakePeer, FakePeers};
    use crate::test_support::agency;

    fn greeter(peers: &FakePeers, table: &Arc<PeerTable>, wakers: &Wakers) -> Greeter {
        Greeter {
            peers: table.clone(),
            client: Arc::new(peers.clone()),
            me: node_info(&agency("DE-BAFA"), "k1".into()),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            wakers: wakers.clone(),
        }
    }

    fn setup() -> (AgencyId, FakePeers, Arc<PeerTable>, Wakers) {
        let b = agency("FR-SBDU");
        let peers = FakePeers::new();
        let table = Arc::new(PeerTable::for_tests(std::slice::from_ref(&b)));
        let wakers = Wakers::new(std::slice::from_ref(&b));
        (b, peers, table, wakers)
    }

    fn state(table: &PeerTable, peer: &AgencyId) -> crate::peers::PeerState {
        table
            .snapshot()
            .into_iter()
            .find(|(a, _, _)| a == peer)
            .map(|(_, _, s)| s)
            .unwrap()
    }

    #[test]
    fn a_peer_that_answers_is_reachable_and_its_workers_are_woken() {
        crate::test_support::run_paused(async {
            let (b, peers, table, wakers) = setup();
            peers.add(
                &b,
                FakePeer {
                    node: Some(node_info(&b, "kb".into())),
                    delay: Duration::from_millis(40),
                    ..FakePeer::default()
                },
            );
            greeter(&peers, &table, &wakers).greet(&b).await;
            let s = state(&table, &b);
            assert!(s.reachable);
            assert_eq!(s.rtt, Some(Duration::from_millis(40)));
            assert_eq!(s.info.unwrap().signing_key_id, "kb");
            // Pull and push were woken: their permits are stored.
            let w = wakers.peer(&b);
            tokio::time::timeout(Duration::from_millis(1), w.pull.notified())
                .await
                .expect("pull woken");
            tokio::time::timeout(Duration::from_millis(1), w.push.notified())
                .await
                .expect("push woken");
        });
    }

    #[test]
    fn a_peer_that_is_down_slow_or_lying_is_unreachable_with_the_reason() {
        crate::test_support::run_paused(async {
            let (b, peers, table, wakers) = setup();
            let g = greeter(&peers, &table, &wakers);
            let cases = [
                (
                    FakePeer {
                        down: true,
                        ..FakePeer::default()
                    },
                    "connection refused",
                ),
                (
                    FakePeer {
                        node: Some(node_info(&b, "kb".into())),
                        delay: Duration::from_secs(6),
                        ..FakePeer::default()
                    },
                    "no answer within the hello timeout",
                ),
                (
                    FakePeer {
                        node: Some(node_info(&agency("US-BIS"), "ku".into())),
                        ..FakePeer::default()
                    },
                    "introduced itself as another agency",
                ),
                (FakePeer::default(), "carried no node info"),
            ];
            for (peer, reason) in cases {
                peers.add(&b, peer);
                g.greet(&b).await;
                let s = state(&table, &b);
                assert!(!s.reachable, "{reason}");
                assert!(
                    s.last_error.as_deref().unwrap_or_default().contains(reason),
                    "{:?} lacks {reason}",
                    s.last_error
                );
            }
        });
    }

    #[test]
    fn a_greeting_must_name_the_callers_agency() {
        let (b, peers, table, wakers) = setup();
        let g = greeter(&peers, &table, &wakers);
        let hello = |agency: &AgencyId| HelloRequest {
            node: Some(node_info(agency, "kb".into())),
        };
        let answer = g.answer(&b, hello(&b)).unwrap();
        assert_eq!(answer.node.unwrap().agency, "DE-BAFA");
        assert!(state(&table, &b).reachable);
        let err = g.answer(&b, hello(&agency("US-BIS"))).unwrap_err();
        assert_eq!(
            tonic::Status::from(err).code(),
            tonic::Code::PermissionDenied
        );
        let err = g.answer(&b, HelloRequest { node: None }).unwrap_err();
        assert_eq!(
            tonic::Status::from(err).code(),
            tonic::Code::InvalidArgument
        );
    }
}
