//! Accepting notices from a peer, by push or by pull.
//!
//! A notice is accepted only from its origin (receivers never re-share),
//! only under the origin's pinned key, and only after its signature verifies
//! over the bytes received. Refusals are logged with the reason and counted,
//! never stored. The batch is flushed to disk before the caller acknowledges.

use std::sync::Arc;

use rayon::prelude::*;
use tessera_proto::v1::{FeedItem, Notice, PushNoticesRequest, PushNoticesResponse, SignedNotice};

use crate::audit::{Action, AuditSink};
use crate::identity::AgencyId;
use crate::matching::replica::Replicas;
use crate::notice::seal::{OpenError, open_many};
use crate::notice::store::{Applied, Incoming, NoticeStore, NoticeStoreError};
use crate::peers::PinnedKeys;
use crate::store::{Store, StoreError};
use crate::wake::Wakers;

/// Most notices accepted in one push.
pub const MAX_PUSH: usize = 5_000;

/// Why one item of a batch was refused (the others are applied).
#[derive(Debug, thiserror::Error)]
pub enum ItemRefusal {
    #[error("no notice in the item")]
    Empty,
    #[error("the notice's origin is not the sender (receivers never re-share)")]
    NotFromOrigin,
    #[error("the sender is not a configured peer")]
    UnknownSender,
    #[error("the feed position does not match the signed notice")]
    WrongPosition,
    #[error(transparent)]
    Unverified(#[from] OpenError),
    #[error("a different notice was already received under the same serial and version")]
    Conflict,
    #[error("the notice was not verified")]
    NotVerified,
}

/// Why a push was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("at most {MAX_PUSH} notices per push")]
    TooMany,
    #[error(
        "item {0} carries no notice: a push carries notices only (a watermark can only end a pull)"
    )]
    Watermark(usize),
    /// Some items were refused; the others are stored.
    #[error(
        "{refused} of {total} notices refused (the others were stored); first: item {first}: {reason}"
    )]
    Refused {
        refused: usize,
        total: usize,
        first: usize,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] NoticeStoreError),
}

impl From<StoreError> for ReceiveError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.into())
    }
}

impl From<ReceiveError> for tonic::Status {
    fn from(e: ReceiveError) -> Self {
        match e {
            ReceiveError::TooMany | ReceiveError::Watermark(_) | ReceiveError::Refused { .. } => {
                Self::invalid_argument(e.to_string())
            }
            ReceiveError::Store(e) => e.into(),
        }
    }
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct Received {
    pub stored: u32,
    pub duplicates: u32,
    /// (index in the batch, reason) of each refused item.
    pub refused: Vec<(usize, ItemRefusal)>,
}

/// The cheap checks of one item from `from`, before any signature: refuses
/// an item without a notice or from another origin (receivers never
/// re-share). `Some` is a notice whose exact bytes we already hold, verified
/// when they first came, so not verified again; `None` is one to verify.
pub fn precheck(
    notices: &NoticeStore,
    from: &AgencyId,
    item: &FeedItem,
) -> Result<Option<Notice>, ItemRefusal> {
    let envelope = item.notice.as_ref().ok_or(ItemRefusal::Empty)?;
    if envelope.origin != from.as_str() {
        return Err(ItemRefusal::NotFromOrigin);
    }
    if let Ok(peek) = <Notice as prost::Message>::decode(envelope.notice.as_slice())
        && peek.origin == from.as_str()
        && peek.seq == item.seq
        // A read error here only costs a verification: applying the item
        // reads the same record and reports the error.
        && notices
            .already_stored(&peek.origin, &peek.serial, peek.version, &envelope.notice)
            .unwrap_or(false)
    {
        return Ok(Some(peek));
    }
    Ok(None)
}

/// Verifies and stores what peers send, by push or by pull.
#[derive(Debug)]
pub struct Receiver {
    pub notices: Arc<NoticeStore>,
    pub pinned: PinnedKeys,
    pub store: Store,
    pub audit: AuditSink,
    pub replicas: Arc<Replicas>,
    pub wakers: Wakers,
}

impl Receiver {
    /// A push from `caller`: stores what verifies (durably) and, when the
    /// caller's index for us moved past our replica, wakes our pull.
    pub async fn push(
        &self,
        caller: &AgencyId,
        request: PushNoticesRequest,
    ) -> Result<PushNoticesResponse, ReceiveError> {
        let PushNoticesRequest { items, index_pos } = request;
        if items.len() > MAX_PUSH {
            return Err(ReceiveError::TooMany);
        }
        // A bare watermark would move our cursor in the caller's feed
        // wherever it said, skipping what we never received.
        if let Some(i) = items.iter().position(|i| i.notice.is_none()) {
            return Err(ReceiveError::Watermark(i));
        }
        let r = self.accept(caller, &items).await?;
        if index_pos > self.replicas.cursor(caller)? {
            self.wakers.pull(caller);
        }
        if let Some((first, reason)) = r.refused.first() {
            return Err(ReceiveError::Refused {
                refused: r.refused.len(),
                total: items.len(),
                first: *first,
                reason: reason.to_string(),
            });
        }
        Ok(PushNoticesResponse {
            stored: r.stored,
            duplicates: r.duplicates,
        })
    }

    /// Verifies and stores `items` sent by `from`; flushes before returning.
    pub async fn accept(
        &self,
        from: &AgencyId,
        items: &[FeedItem],
    ) -> Result<Received, NoticeStoreError> {
        let mut out = Received::default();
        // A watermark (an item with no notice) can only end a pull.
        let (items, watermark) = match items.split_last() {
            Some((last, rest)) if last.notice.is_none() => (rest, Some(last)),
            _ => (items, None),
        };
        let Some(pinned) = self.pinned.get(from) else {
            out.refused = (0..items.len())
                .map(|i| (i, ItemRefusal::UnknownSender))
                .collect();
            return Ok(out);
        };
        // Verify first (the expensive part, outside the write lock, in batches
        // on all cores); bytes we already hold, verified when they first came,
        // are not verified again.
        let known = |item: &FeedItem| precheck(&self.notices, from, item);
        let mut checked: Vec<Result<Option<Notice>, ItemRefusal>> = if items.len() >= 32 {
            items.par_iter().map(known).collect()
        } else {
            items.iter().map(known).collect()
        };
        let to_open: Vec<usize> = (0..items.len())
            .filter(|&i| matches!(checked[i], Ok(None)))
            .collect();
        let opened: Vec<Result<Notice, ItemRefusal>> = to_open
            .par_chunks(crate::signing::VERIFY_BATCH)
            .flat_map_iter(|chunk| {
                let envelopes: Vec<&SignedNotice> = chunk
                    .iter()
                    .filter_map(|&i| items[i].notice.as_ref())
                    .collect();
                open_many(&envelopes, &pinned)
                    .into_iter()
                    .zip(chunk)
                    .map(|(result, &i)| match result {
                        Ok(n) if n.seq == items[i].seq => Ok(n),
                        Ok(_) => Err(ItemRefusal::WrongPosition),
                        Err(e) => Err(e.into()),
                    })
            })
            .collect();
        for (i, result) in to_open.into_iter().zip(opened) {
            checked[i] = result.map(Some);
        }
        let mut verified: Vec<(usize, &SignedNotice, Notice)> = Vec::with_capacity(items.len());
        for (i, (item, result)) in items.iter().zip(checked).enumerate() {
            match (item.notice.as_ref(), result) {
                (Some(envelope), Ok(Some(n))) => verified.push((i, envelope, n)),
                (_, Err(reason)) => out.refused.push((i, reason)),
                (None, Ok(_)) => out.refused.push((i, ItemRefusal::Empty)),
                (Some(_), Ok(None)) => out.refused.push((i, ItemRefusal::NotVerified)),
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
            let writer = self.notices.writer();
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
                Err(NoticeStoreError::Conflict { .. }) => {
                    out.refused.push((*i, ItemRefusal::Conflict));
                }
                Err(e) => return Err(e),
            }
        }
        if out.stored > 0 || !items.is_empty() || watermark.is_some() {
            self.store.flush().await?;
        }
        for (i, reason) in &out.refused {
            tracing::warn!(peer = %from, item = i, %reason, "notice refused");
            self.audit.event(
                from.as_str(),
                Action::NoticeRefused,
                "notice",
                &serde_json::json!({ "item": i, "reason": reason.to_string() }),
            );
        }
        crate::telemetry::notices_refused(from, out.refused.len() as u64);
        crate::telemetry::notices_received(from, u64::from(out.stored));
        if out.stored > 0 {
            self.audit.event(
                from.as_str(),
                Action::NoticeReceived,
                "notices",
                &serde_json::json!({ "stored": out.stored, "duplicates": out.duplicates }),
            );
            tracing::debug!(peer = %from, stored = out.stored, duplicates = out.duplicates, "notices received");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_support::{agency, audit_on, signed_feed, signing_key, temp_store};

    fn receiver(store: &Store, pinned: PinnedKeys, wakers: &Wakers) -> Receiver {
        let ids = [agency("FR-SBDU")];
        Receiver {
            notices: Arc::new(NoticeStore::open(store, agency("DE-BAFA")).unwrap()),
            pinned,
            store: store.clone(),
            audit: audit_on(store),
            replicas: Arc::new(Replicas::open(store, &ids, None).unwrap()),
            wakers: wakers.clone(),
        }
    }

    #[test]
    fn a_push_stores_what_verifies_and_names_the_first_refusal() {
        crate::test_support::run(async {
            let (_dir, store) = temp_store();
            let b = agency("FR-SBDU");
            let key = signing_key();
            let wakers = Wakers::new(std::slice::from_ref(&b));
            let r = receiver(
                &store,
                PinnedKeys::new([(b.clone(), *key.public())]),
                &wakers,
            );
            let mut items = signed_feed("FR-SBDU", &key, 3);
            items[1].seq = 7; // signed as position 2, sent as 7
            let request = PushNoticesRequest {
                items: items.clone(),
                index_pos: 4,
            };
            let err = r.push(&b, request).await.unwrap_err();
            assert_eq!(
                err.to_string(),
                "1 of 3 notices refused (the others were stored); first: item 1: \
             the feed position does not match the signed notice"
            );
            assert_eq!(
                tonic::Status::from(err).code(),
                tonic::Code::InvalidArgument
            );
            assert_eq!(r.notices.counts().unwrap()["FR-SBDU"], 2);
            // The sender's index for us moved past our replica: our pull is woken.
            tokio::time::timeout(Duration::from_millis(10), wakers.peer(&b).pull.notified())
                .await
                .expect("pull woken");
            // The same again: duplicates, nothing refused once the bad item is gone.
            items.remove(1);
            let ok = r
                .push(
                    &b,
                    PushNoticesRequest {
                        items,
                        index_pos: 0,
                    },
                )
                .await
                .unwrap();
            assert_eq!((ok.stored, ok.duplicates), (0, 2));
        });
    }

    #[test]
    fn a_push_too_large_or_from_an_unpinned_sender_is_refused() {
        crate::test_support::run(async {
            let (_dir, store) = temp_store();
            let b = agency("FR-SBDU");
            let key = signing_key();
            let r = receiver(&store, PinnedKeys::default(), &Wakers::default());
            let err = r
                .push(
                    &b,
                    PushNoticesRequest {
                        items: vec![FeedItem::default(); MAX_PUSH + 1],
                        index_pos: 0,
                    },
                )
                .await
                .unwrap_err();
            assert!(matches!(err, ReceiveError::TooMany));
            let got = r
                .accept(&b, &signed_feed("FR-SBDU", &key, 2))
                .await
                .unwrap();
            assert_eq!(got.stored, 0);
            assert!(
                got.refused
                    .iter()
                    .all(|(_, why)| matches!(why, ItemRefusal::UnknownSender))
            );
        });
    }
}
