//! Hello: greet every configured peer at start and then periodically, keeping
//! per-peer reachability, last seen and round-trip time.

use std::sync::Arc;
use std::time::Instant;

use tessera_proto::v1::HelloRequest;
use tessera_proto::v1::federation_client::FederationClient;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::identity::AgencyId;
use crate::peers::PeerInfo;

/// Greets all peers every `hello.interval_ms` until `stop`.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(ctx.config.hello_interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let rounds = ctx
            .peers
            .agencies()
            .into_iter()
            .map(|peer| greet(ctx.clone(), peer));
        futures::future::join_all(rounds).await;
    }
}

/// One greeting to one peer.
pub async fn greet(ctx: Arc<Context>, peer: AgencyId) {
    let channel = match ctx.peers.channel(&peer, &ctx.tls) {
        Ok(c) => c,
        Err(why) => {
            ctx.peers.failed(&peer, why);
            return;
        }
    };
    let mut client = FederationClient::new(channel);
    let started = Instant::now();
    let request = HelloRequest {
        node: Some(ctx.node_info()),
    };
    let outcome = tokio::time::timeout(ctx.config.hello_timeout(), client.hello(request)).await;
    match outcome {
        Ok(Ok(response)) => {
            let rtt = started.elapsed();
            let Some(node) = response.into_inner().node else {
                ctx.peers
                    .failed(&peer, "the peer's Hello carried no node info".into());
                return;
            };
            if node.agency != peer.as_str() {
                ctx.peers
                    .failed(&peer, "the peer introduced itself as another agency".into());
                return;
            }
            let was_reachable = ctx
                .peers
                .snapshot()
                .iter()
                .any(|(a, _, s)| *a == peer && s.reachable);
            ctx.peers.seen(
                &peer,
                Some(rtt),
                Some(PeerInfo {
                    software_version: node.software_version,
                    protocol_version: node.protocol_version,
                    signing_key_id: node.signing_key_id,
                    capabilities: node.capabilities,
                }),
            );
            if !was_reachable {
                tracing::info!(peer = %peer, rtt_us = rtt.as_micros() as u64, "peer reachable");
                let wakers = ctx.wakers(&peer);
                wakers.pull.notify_one();
                wakers.push.notify_one();
            }
        }
        Ok(Err(status)) => {
            let why = crate::dial::explain(&status);
            tracing::debug!(peer = %peer, reason = %why, "hello failed");
            ctx.peers.failed(&peer, why);
        }
        Err(_) => {
            ctx.peers
                .failed(&peer, "no answer within the hello timeout".into());
        }
    }
}
