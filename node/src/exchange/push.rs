//! The outbox worker: one per peer, pushing our notices that the peer has
//! not yet acknowledged, oldest first, retrying with exponential back-off.
//! An item leaves the outbox only when the peer has durably stored it.

use std::sync::Arc;
use std::time::Duration;

use tessera_proto::v1::PushNoticesRequest;
use tessera_proto::v1::federation_client::FederationClient;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::identity::AgencyId;

/// Pushes `peer`'s outbox until `stop`.
pub async fn run(ctx: Arc<Context>, peer: AgencyId, stop: CancellationToken) {
    let wake = ctx.wakers(&peer);
    let min = Duration::from_millis(ctx.config.sync.retry_min_ms);
    let max = Duration::from_millis(ctx.config.sync.retry_max_ms);
    let mut backoff = min;
    // The index position last announced to this peer (not durable: the
    // peer's periodic pull covers a restart).
    let mut announced = 0u64;
    loop {
        let index_pos = ctx.holder.last_pos(&peer);
        let items = match ctx.notices.outbox(&peer, ctx.config.sync.push_batch) {
            Ok(items) => items,
            Err(error) => {
                tracing::error!(peer = %peer, %error, "cannot read the outbox");
                Vec::new()
            }
        };
        if items.is_empty() && index_pos <= announced {
            tokio::select! {
                () = stop.cancelled() => return,
                () = wake.push.notified() => continue,
                () = tokio::time::sleep(max) => continue,
            }
        }
        let seqs: Vec<u64> = items.iter().map(|i| i.seq).collect();
        let outcome = push_once(&ctx, &peer, items, index_pos).await;
        match outcome {
            Ok(()) => {
                backoff = min;
                announced = index_pos;
                if let Err(error) = ctx.notices.outbox_ack(&peer, &seqs) {
                    tracing::error!(peer = %peer, %error, "cannot clear the outbox");
                }
            }
            Err(why) => {
                tracing::debug!(peer = %peer, reason = %why, retry_ms = backoff.as_millis() as u64, "push failed; will retry");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(jitter(backoff)) => {}
                }
                backoff = (backoff * 2).min(max);
            }
        }
    }
}

async fn push_once(
    ctx: &Context,
    peer: &AgencyId,
    items: Vec<tessera_proto::v1::FeedItem>,
    index_pos: u64,
) -> Result<(), String> {
    let channel = ctx.peers.channel(peer, &ctx.tls)?;
    let mut client = FederationClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let n = items.len();
    let call = client.push_notices(PushNoticesRequest { items, index_pos });
    match tokio::time::timeout(Duration::from_secs(60), call).await {
        Ok(Ok(response)) => {
            let r = response.into_inner();
            tracing::debug!(peer = %peer, sent = n, stored = r.stored, duplicates = r.duplicates, "pushed");
            crate::telemetry::notices_sent(peer, n as u64);
            if n > 0 {
                ctx.audit_event(
                    peer.as_str(),
                    crate::audit::Action::NoticeSent,
                    "push",
                    &serde_json::json!({ "count": n, "stored": r.stored }),
                );
            }
            ctx.peers.seen(peer, None, None);
            Ok(())
        }
        Ok(Err(status)) => Err(crate::dial::explain(&status)),
        Err(_) => Err("the push timed out".into()),
    }
}

/// Spreads retries: between 50% and 100% of `d`.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    d.mul_f64(0.5 + f64::from(b[0]) / 510.0)
}
