//! Accepting notices from a peer, by push or by pull.
//!
//! A notice is accepted only from its origin (receivers never re-share),
//! only under the origin's pinned key, and only after its signature verifies
//! over the bytes received. Refusals are logged with the reason and counted,
//! never stored. The batch is flushed to disk before the caller acknowledges.

use tessera_proto::v1::FeedItem;

use crate::context::Context;
use crate::identity::AgencyId;
use crate::notice::seal::open;
use crate::notice::store::{Applied, NoticeStoreError};

/// What a batch did.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub stored: u32,
    pub duplicates: u32,
    /// (index in the batch, reason) of each refused item.
    pub refused: Vec<(usize, String)>,
}

/// Verifies and stores `items` sent by `from`; flushes before returning.
pub async fn accept(
    ctx: &Context,
    from: &AgencyId,
    items: &[FeedItem],
) -> Result<Received, NoticeStoreError> {
    let mut out = Received::default();
    let Some(pinned) = ctx.peers.signing_key(from) else {
        out.refused = (0..items.len())
            .map(|i| (i, "the sender is not a configured peer".to_owned()))
            .collect();
        return Ok(out);
    };
    {
        let writer = ctx.notices.writer();
        for (i, item) in items.iter().enumerate() {
            let Some(envelope) = item.notice.as_ref() else {
                out.refused.push((i, "no notice in the item".into()));
                continue;
            };
            if envelope.origin != from.as_str() {
                out.refused.push((
                    i,
                    "the notice's origin is not the sender (receivers never re-share)".into(),
                ));
                continue;
            }
            let notice = match open(envelope, &pinned) {
                Ok(n) => n,
                Err(e) => {
                    out.refused.push((i, e.to_string()));
                    continue;
                }
            };
            if notice.seq != item.seq {
                out.refused.push((
                    i,
                    "the feed position does not match the signed notice".into(),
                ));
                continue;
            }
            match writer.apply_received(from, item.seq, item.prev_seq, envelope, &notice) {
                Ok(Applied::Stored) => out.stored += 1,
                Ok(Applied::Duplicate) => out.duplicates += 1,
                Err(NoticeStoreError::Conflict { .. }) => out.refused.push((
                    i,
                    "a different notice was already received under the same serial and version"
                        .into(),
                )),
                Err(e) => return Err(e),
            }
        }
    }
    if out.stored > 0 || !items.is_empty() {
        ctx.store.flush().await?;
    }
    for (i, reason) in &out.refused {
        tracing::warn!(peer = %from, item = i, %reason, "notice refused");
        ctx.audit_event(
            from.as_str(),
            crate::audit::Action::NoticeRefused,
            "notice",
            &serde_json::json!({ "item": i, "reason": reason }),
        );
    }
    crate::telemetry::notices_refused(from, out.refused.len() as u64);
    crate::telemetry::notices_received(from, u64::from(out.stored));
    if out.stored > 0 {
        ctx.audit_event(
            from.as_str(),
            crate::audit::Action::NoticeReceived,
            "notices",
            &serde_json::json!({ "stored": out.stored, "duplicates": out.duplicates }),
        );
    }
    if out.stored > 0 {
        tracing::debug!(peer = %from, stored = out.stored, duplicates = out.duplicates, "notices received");
    }
    Ok(out)
}
