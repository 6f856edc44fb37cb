//! Serving our own feed to a peer: a pull streams what the peer may see
//! after its cursor (with a watermark when the walk passed notices not for
//! it), and acknowledges our outbox up to that cursor; a get returns the
//! newest version of one notice if the peer may see it. Each batch of
//! notices is audited (`notice_sent`, object `pull`) and the entry is on
//! disk before the batch leaves the node.

use std::sync::Arc;

use futures::Stream;
use tessera_proto::v1::{FeedItem, SignedNotice};

use crate::audit::{Action, AuditError, AuditSink};
use crate::identity::AgencyId;
use crate::notice::store::{NoticeStore, NoticeStoreError};

/// Feed entries read per batch (no sled iterator stays open while a slow
/// peer holds up the stream: sled's readers and writers share one lock), and
/// read only when the peer has taken the previous batch.
const WALK_BATCH: usize = 256;

/// Where a pull has got to.
struct Walk {
    notices: Arc<NoticeStore>,
    audit: AuditSink,
    caller: String,
    /// The last item sent for the caller.
    prev: u64,
    /// The last entry walked.
    cursor: u64,
    left: usize,
}

impl Walk {
    /// One batch of the feed, its notices audited before they are handed out.
    fn step(self) -> crate::store::paced::Step<Self, FeedItem, FeedError> {
        let (audit, caller) = (self.audit.clone(), self.caller.clone());
        let (next, items) = self.batch();
        let sent: Vec<u64> = items
            .iter()
            .filter_map(|i| match i {
                Ok(FeedItem {
                    seq,
                    notice: Some(_),
                    ..
                }) => Some(*seq),
                _ => None,
            })
            .collect();
        if let (Some(first), Some(last)) = (sent.first(), sent.last()) {
            let details = serde_json::json!({
                "count": sent.len(),
                "first_seq": first,
                "last_seq": last,
            });
            let log = audit.log();
            let durable = log
                .record(&caller, Action::NoticeSent, "pull", &details)
                .and_then(|seq| log.durable_through_blocking(seq));
            if let Err(e) = durable {
                return (None, vec![Err(FeedError::Audit(e))]);
            }
        }
        (next, items)
    }

    /// One batch of the feed: the caller's items, and a watermark at the end
    /// when the walk passed entries not for it.
    fn batch(mut self) -> crate::store::paced::Step<Self, FeedItem, FeedError> {
        let batch: Vec<_> = self
            .notices
            .feed_after(self.cursor)
            .take(WALK_BATCH)
            .collect();
        if batch.is_empty() {
            let watermark = (self.cursor > self.prev).then(|| {
                Ok(FeedItem {
                    seq: self.cursor,
                    prev_seq: self.prev,
                    notice: None,
                })
            });
            return (None, watermark.into_iter().collect());
        }
        let mut items = Vec::new();
        for entry in batch {
            match entry {
                Ok((seq, stored)) => {
                    self.cursor = seq;
                    if !stored.recipients.contains(&self.caller) {
                        continue;
                    }
                    items.push(Ok(FeedItem {
                        seq,
                        prev_seq: self.prev,
                        notice: stored.envelope,
                    }));
                    self.prev = seq;
                    self.left -= 1;
                    if self.left == 0 {
                        return (None, items);
                    }
                }
                Err(e) => {
                    items.push(Err(FeedError::Store(e)));
                    return (None, items);
                }
            }
        }
        (Some(self), items)
    }
}

/// Why a feed request failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Store(#[from] NoticeStoreError),
    #[error("no such notice for you")]
    NotFound,
    #[error("the feed task stopped before it finished")]
    Task,
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<FeedError> for tonic::Status {
    fn from(e: FeedError) -> Self {
        match e {
            FeedError::Store(e) => e.into(),
            FeedError::NotFound => Self::not_found(e.to_string()),
            FeedError::Task => Self::internal(e.to_string()),
            FeedError::Audit(e) => crate::audit::withheld(&e),
        }
    }
}

/// Our feed, as peers read it.
#[derive(Debug, Clone)]
pub struct FeedServer {
    agency: AgencyId,
    notices: Arc<NoticeStore>,
    audit: AuditSink,
}

impl FeedServer {
    pub fn new(agency: AgencyId, notices: Arc<NoticeStore>, audit: AuditSink) -> Self {
        Self {
            agency,
            notices,
            audit,
        }
    }

    /// A pull from `caller` after `after` (at most `limit` items, 0: all).
    /// The caller advances its cursor only once what it pulled is on its
    /// disk, so a pull from `after` acknowledges everything up to it: those
    /// notices need not be pushed again.
    pub async fn pull(
        &self,
        caller: &AgencyId,
        after: u64,
        limit: u32,
    ) -> Result<impl Stream<Item = Result<FeedItem, FeedError>> + Send + use<>, FeedError> {
        let limit = if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        };
        if after > 0 {
            let notices = self.notices.clone();
            let peer = caller.clone();
            let trimmed =
                tokio::task::spawn_blocking(move || notices.outbox_ack_through(&peer, after))
                    .await
                    .map_err(|_| FeedError::Task)??;
            if trimmed > 0 {
                tracing::debug!(peer = %caller, trimmed, "outbox items acknowledged by a pull");
            }
        }
        let walk = Walk {
            notices: self.notices.clone(),
            audit: self.audit.clone(),
            caller: caller.to_string(),
            prev: after,
            cursor: after,
            left: limit,
        };
        Ok(crate::store::paced::paced(walk, Walk::step, || {
            FeedError::Task
        }))
    }

    /// The newest version of our notice `serial`, if `caller` may see it.
    pub fn get(&self, caller: &AgencyId, serial: &str) -> Result<SignedNotice, FeedError> {
        let stored = self
            .notices
            .latest(self.agency.as_str(), serial)?
            .ok_or(FeedError::NotFound)?;
        if !stored.recipients.iter().any(|r| r == caller.as_str()) {
            return Err(FeedError::NotFound);
        }
        stored.envelope.ok_or(FeedError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::test_support::{agency, audit_on, denial, org, signing_key, temp_store};

    #[test]
    fn a_peer_pulls_what_it_may_see_with_a_watermark_and_acknowledges_by_pulling() {
        crate::test_support::run(async {
            let (_dir, store) = temp_store();
            let notices = Arc::new(NoticeStore::open(&store, agency("DE-BAFA")).unwrap());
            let key = signing_key();
            let (fr, us) = (agency("FR-SBDU"), agency("US-BIS"));
            for (i, to) in [
                vec![fr.clone()],
                vec![us.clone()],
                vec![fr.clone()],
                vec![us.clone()],
            ]
            .into_iter()
            .enumerate()
            {
                let n = denial("DE-BAFA", &format!("S-{i}"), "all", &[org("X Ltd", "AE")]);
                notices.writer().append_own(n, &to, &key).unwrap();
            }
            let audit = audit_on(&store);
            let feed = FeedServer::new(agency("DE-BAFA"), notices.clone(), audit.clone());
            let items: Vec<FeedItem> = feed
                .pull(&fr, 0, 0)
                .await
                .unwrap()
                .map(Result::unwrap)
                .collect()
                .await;
            let seen: Vec<(u64, u64, bool)> = items
                .iter()
                .map(|i| (i.seq, i.prev_seq, i.notice.is_some()))
                .collect();
            // Items 1 and 3, then a watermark over 4 (not for FR-SBDU).
            assert_eq!(seen, [(1, 0, true), (3, 1, true), (4, 3, false)]);
            // Audited, and on disk, before they were handed out.
            let sent: Vec<_> = (1..=audit.log().len())
                .filter_map(|seq| audit.log().entry(seq).ok().flatten())
                .filter(|e| e.action == "notice_sent")
                .collect();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].actor, "FR-SBDU");
            assert_eq!(sent[0].object, "pull");
            assert_eq!(sent[0].details["count"], 2);
            assert_eq!(sent[0].details["last_seq"], 3);
            assert_eq!(notices.outbox_len(&fr).unwrap(), 2);
            let _: Vec<_> = feed.pull(&fr, 3, 0).await.unwrap().collect().await;
            assert_eq!(
                notices.outbox_len(&fr).unwrap(),
                0,
                "acknowledged by the pull"
            );
            assert_eq!(
                notices.outbox_len(&us).unwrap(),
                2,
                "another peer's outbox stays"
            );
            assert!(feed.get(&fr, "S-0").is_ok());
            let hidden = feed.get(&fr, "S-1").unwrap_err();
            assert_eq!(tonic::Status::from(hidden).code(), tonic::Code::NotFound);
        });
    }
}
