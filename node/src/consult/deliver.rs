//! The transport of consultation steps: one worker per peer delivers our
//! signed steps in order, retrying with the node's back-off until the peer
//! acknowledges each; a step leaves the outbox only then.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::store::ConsultStore;
use crate::backoff::{Pacer, RetryPolicy, Round};
use crate::exchange::client::PeerClient;
use crate::identity::AgencyId;
use crate::store::StoreError;
use crate::wake::PeerWake;

/// One peer's step delivery.
#[derive(Debug)]
pub struct StepDelivery {
    pub peer: AgencyId,
    pub consults: Arc<ConsultStore>,
    pub client: Arc<dyn PeerClient>,
    pub wake: Arc<PeerWake>,
    pub retry: RetryPolicy,
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Nothing waited.
    Nothing,
    /// Everything that waited was acknowledged.
    All,
    /// The peer could not be reached or refused; the rest waits.
    Stopped,
}

impl StepDelivery {
    /// Delivers what waits, oldest first, until one fails.
    pub async fn deliver_pending(&self) -> Result<Delivered, StoreError> {
        let pending = self.consults.outbox(&self.peer)?;
        if pending.is_empty() {
            return Ok(Delivered::Nothing);
        }
        for (step, msg) in pending {
            match self.client.consult(&self.peer, msg).await {
                Ok(_) => self.consults.delivered(&self.peer, step)?,
                Err(reason) => {
                    tracing::debug!(peer = %self.peer, %reason, "consultation step not delivered; will retry");
                    return Ok(Delivered::Stopped);
                }
            }
        }
        Ok(Delivered::All)
    }

    /// The worker: delivers whenever woken, retries with back-off.
    pub async fn run(self, stop: CancellationToken) {
        let mut pacer = Pacer::new(self.retry, stop);
        loop {
            let round = match self.deliver_pending().await {
                Ok(Delivered::All) => Round::More,
                Ok(Delivered::Nothing) => Round::Idle,
                Ok(Delivered::Stopped) => Round::Failed,
                Err(error) => {
                    tracing::error!(peer = %self.peer, %error, "cannot read the consultation outbox");
                    Round::Failed
                }
            };
            if !pacer.pause(round, &self.wake.consult).await {
                return;
            }
        }
    }
}
