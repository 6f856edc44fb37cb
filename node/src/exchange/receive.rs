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
use crate::notice::store::{Applied, Incoming, NoticeStoreError};

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
    // Verify first (the expensive part, outside the write lock, on all
    // cores); bytes we already hold, verified when they first came, are not
    // verified again.
    let checked: Vec<Result<tessera_proto::v1::Notice, String>> = {
        use rayon::prelude::*;
        let check = |item: &FeedItem| -> Result<tessera_proto::v1::Notice, String> {
            let envelope = item.notice.as_ref().ok_or("no notice in the item")?;
            if envelope.origin != from.as_str() {
                return Err(
                    "the notice's origin is not the sender (receivers never re-share)".into(),
                );
            }
            if let Ok(peek) =
                <tessera_proto::v1::Notice as prost::Message>::decode(envelope.notice.as_slice())
                && peek.origin == from.as_str()
                && peek.seq == item.seq
                && ctx
                    .notices
                    .already_stored(&peek.origin, &peek.serial, peek.version, &envelope.notice)
                    .unwrap_or(false)
            {
                return Ok(peek);
            }
            match open(envelope, &pinned) {
                Ok(n) if n.seq == item.seq => Ok(n),
                Ok(_) => Err("the feed position does not match the signed notice".into()),
                Err(e) => Err(e.to_string()),
            }
        };
        if items.len() >= 32 {
            items.par_iter().map(check).collect()
        } else {
            items.iter().map(check).collect()
        }
    };
    let mut verified: Vec<(
        usize,
        &tessera_proto::v1::SignedNotice,
        tessera_proto::v1::Notice,
    )> = Vec::with_capacity(items.len());
    for (i, (item, result)) in items.iter().zip(checked).enumerate() {
        match (item.notice.as_ref(), result) {
            (Some(envelope), Ok(n)) => verified.push((i, envelope, n)),
            (_, Err(reason)) => out.refused.push((i, reason)),
            (None, Ok(_)) => out.refused.push((i, "no notice in the item".into())),
        }
    }
    let incoming: Vec<Incoming<'_>> = verified
        .iter()
        .map(|(i, envelope, notice)| Incoming {
            seq: items[*i].seq,
            prev_seq: items[*i].prev_seq,
            envelope,
            notice,
        })
        .collect();
    let results = ctx.notices.writer().apply_received(from, &incoming)?;
    for ((i, _, _), result) in verified.iter().zip(results) {
        match result {
            Ok(Applied::Stored) => out.stored += 1,
            Ok(Applied::Duplicate) => out.duplicates += 1,
            Err(NoticeStoreError::Conflict { .. }) => out.refused.push((
                *i,
                "a different notice was already received under the same serial and version".into(),
            )),
            Err(e) => return Err(e),
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
