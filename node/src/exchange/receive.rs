//! Accepting notices from a peer, by push or by pull.
//!
//! A notice is accepted only from its origin (receivers never re-share),
//! only under the origin's pinned key, and only after its signature verifies
//! over the bytes received. Refusals are logged with the reason and counted,
//! never stored. The batch is flushed to disk before the caller acknowledges.

use tessera_proto::v1::{FeedItem, Notice};

use crate::context::Context;
use crate::identity::AgencyId;
use crate::notice::seal::open_many;
use crate::notice::store::{Applied, Incoming, NoticeStore, NoticeStoreError};

/// What a batch did.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub stored: u32,
    pub duplicates: u32,
    /// (index in the batch, reason) of each refused item.
    pub refused: Vec<(usize, String)>,
}

/// The cheap checks of one item from `from`, before any signature: refuses
/// an item without a notice or from another origin (receivers never
/// re-share). `Some` is a notice whose exact bytes we already hold, verified
/// when they first came, so not verified again; `None` is one to verify.
pub fn precheck(
    notices: &NoticeStore,
    from: &AgencyId,
    item: &FeedItem,
) -> Result<Option<Notice>, String> {
    let envelope = item.notice.as_ref().ok_or("no notice in the item")?;
    if envelope.origin != from.as_str() {
        return Err("the notice's origin is not the sender (receivers never re-share)".into());
    }
    if let Ok(peek) = <Notice as prost::Message>::decode(envelope.notice.as_slice())
        && peek.origin == from.as_str()
        && peek.seq == item.seq
        && notices
            .already_stored(&peek.origin, &peek.serial, peek.version, &envelope.notice)
            .unwrap_or(false)
    {
        return Ok(Some(peek));
    }
    Ok(None)
}

/// Verifies and stores `items` sent by `from`; flushes before returning.
pub async fn accept(
    ctx: &Context,
    from: &AgencyId,
    items: &[FeedItem],
) -> Result<Received, NoticeStoreError> {
    let mut out = Received::default();
    // A watermark (an item with no notice) can only end a pull.
    let (items, watermark) = match items.split_last() {
        Some((last, rest)) if last.notice.is_none() => (rest, Some(last)),
        _ => (items, None),
    };
    let Some(pinned) = ctx.peers.signing_key(from) else {
        out.refused = (0..items.len())
            .map(|i| (i, "the sender is not a configured peer".to_owned()))
            .collect();
        return Ok(out);
    };
    // Verify first (the expensive part, outside the write lock, in batches
    // on all cores); bytes we already hold, verified when they first came,
    // are not verified again.
    use rayon::prelude::*;
    let known = |item: &FeedItem| precheck(&ctx.notices, from, item);
    let mut checked: Vec<Result<Option<Notice>, String>> = if items.len() >= 32 {
        items.par_iter().map(known).collect()
    } else {
        items.iter().map(known).collect()
    };
    let to_open: Vec<usize> = (0..items.len())
        .filter(|&i| matches!(checked[i], Ok(None)))
        .collect();
    let opened: Vec<Result<Notice, String>> = to_open
        .par_chunks(crate::signing::VERIFY_BATCH)
        .flat_map_iter(|chunk| {
            let envelopes: Vec<&tessera_proto::v1::SignedNotice> = chunk
                .iter()
                .filter_map(|&i| items[i].notice.as_ref())
                .collect();
            open_many(&envelopes, &pinned)
                .into_iter()
                .zip(chunk)
                .map(|(result, &i)| match result {
                    Ok(n) if n.seq == items[i].seq => Ok(n),
                    Ok(_) => Err("the feed position does not match the signed notice".into()),
                    Err(e) => Err(e.to_string()),
                })
        })
        .collect();
    for (i, result) in to_open.into_iter().zip(opened) {
        checked[i] = result.map(Some);
    }
    let mut verified: Vec<(usize, &tessera_proto::v1::SignedNotice, Notice)> =
        Vec::with_capacity(items.len());
    for (i, (item, result)) in items.iter().zip(checked).enumerate() {
        match (item.notice.as_ref(), result) {
            (Some(envelope), Ok(Some(n))) => verified.push((i, envelope, n)),
            (_, Err(reason)) => out.refused.push((i, reason)),
            (None, Ok(_)) => out.refused.push((i, "no notice in the item".into())),
            (Some(_), Ok(None)) => out.refused.push((i, "the notice was not verified".into())),
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
    let results = {
        let writer = ctx.notices.writer();
        let results = writer.apply_received(from, &incoming)?;
        if let Some(w) = watermark {
            writer.advance_cursor(from, w.prev_seq, w.seq)?;
        }
        results
    };
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
    if out.stored > 0 || !items.is_empty() || watermark.is_some() {
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
