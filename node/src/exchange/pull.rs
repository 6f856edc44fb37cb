//! The pull worker: one per peer, catching up from our cursor in the peer's
//! feed when the peer becomes reachable and then periodically. Pushes are the
//! fast path; pulls make sure nothing is missed after downtime on either side.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tessera_proto::v1::PullNoticesRequest;
use tessera_proto::v1::federation_client::FederationClient;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::identity::AgencyId;

/// Items applied per flush during a pull.
pub const PULL_BATCH: usize = 2_048;

/// Pulls from `peer` until `stop`.
pub async fn run(ctx: Arc<Context>, peer: AgencyId, stop: CancellationToken) {
    let wake = ctx.wakers(&peer);
    let interval = Duration::from_millis(ctx.config.sync.pull_interval_ms);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.pull.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(why) = pull_once(&ctx, &peer, &stop).await {
            tracing::debug!(peer = %peer, reason = %why, "pull failed; will retry");
        }
        if let Err(why) = crate::matching::replica::pull(&ctx, &peer).await {
            tracing::debug!(peer = %peer, reason = %why, "index pull failed; will retry");
        }
    }
}

/// One catch-up: streams the peer's feed after our cursor and applies it.
pub async fn pull_once(
    ctx: &Context,
    peer: &AgencyId,
    stop: &CancellationToken,
) -> Result<u64, String> {
    let after = ctx.notices.cursor(peer).map_err(|e| e.to_string())?;
    let channel = ctx.peers.channel(peer, &ctx.tls)?;
    let mut client = FederationClient::new(channel).max_decoding_message_size(64 << 20);
    let mut stream = client
        .pull_notices(PullNoticesRequest { after, limit: 0 })
        .await
        .map_err(|s| crate::dial::explain(&s))?
        .into_inner();
    let mut batch = Vec::with_capacity(PULL_BATCH);
    let mut stored = 0u64;
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => None,
            next = stream.next() => next,
        };
        let done = match next {
            Some(Ok(item)) => {
                batch.push(item);
                false
            }
            Some(Err(status)) => return Err(crate::dial::explain(&status)),
            None => true,
        };
        if batch.len() >= PULL_BATCH || (done && !batch.is_empty()) {
            let r = super::receive::accept(ctx, peer, &batch)
                .await
                .map_err(|e| e.to_string())?;
            stored += u64::from(r.stored);
            batch.clear();
        }
        if done {
            break;
        }
    }
    if stored > 0 {
        tracing::info!(peer = %peer, stored, "caught up from the peer's feed");
    }
    Ok(stored)
}
