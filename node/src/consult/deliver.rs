//! The transport of consultation steps: one worker per peer delivers our
//! signed steps, retrying with the node's back-off until the peer
//! acknowledges each; a step leaves the outbox only then, or when the peer
//! refuses it for good (reported to our operator, audited, never retried).
//!
//! Steps of one consultation go in order; steps of different consultations
//! are independent: one that the peer cannot take yet holds back only the
//! later steps of its own consultation.

use std::collections::BTreeSet;
use std::sync::Arc;

use prost::Message;
use tessera_proto::v1::ConsultMessage;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::flow::Consultations;
use crate::backoff::{Pacer, RetryPolicy, Round};
use crate::exchange::client::{PeerClient, PeerError};
use crate::identity::AgencyId;
use crate::store::StoreError;
use crate::wake::PeerWake;

/// One peer's step delivery.
#[derive(Debug)]
pub struct StepDelivery {
    pub peer: AgencyId,
    pub consultations: Arc<Consultations>,
    pub client: Arc<dyn PeerClient>,
    pub wake: Arc<PeerWake>,
    pub retry: RetryPolicy,
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Nothing waited.
    Nothing,
    /// Everything that waited was acknowledged or refused for good.
    All,
    /// The peer could not be reached, or some steps must wait; they stay queued.
    Stopped,
}

/// How the peer's answer to one step is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The peer cannot be reached: nothing else will go through now.
    Unreachable,
    /// The peer cannot take this step now (busy, storage trouble): retry it
    /// later, and hold back the later steps of its consultation.
    Later,
    /// The peer refused the step for good: it will never take it.
    Refused,
}

fn outcome(e: &PeerError) -> Outcome {
    match e.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Outcome::Unreachable,
        Code::InvalidArgument
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::AlreadyExists
        | Code::OutOfRange => Outcome::Refused,
        // Includes PERMISSION_DENIED and UNAUTHENTICATED: access that an
        // operator fixes (a certificate, a pinned key), after which the step
        // goes through.
        _ => Outcome::Later,
    }
}

impl StepDelivery {
    /// Delivers what waits, oldest first. A step the peer cannot take now
    /// holds back only the later steps of its consultation; a step refused
    /// for good is reported and leaves the outbox.
    pub async fn deliver_pending(&self) -> Result<Delivered, StoreError> {
        let consults = &self.consultations.consults;
        let pending = consults.outbox(&self.peer)?;
        if pending.is_empty() {
            return Ok(Delivered::Nothing);
        }
        let mut held: BTreeSet<String> = BTreeSet::new();
        for (step, signed) in pending {
            // Our own signed bytes; an unreadable one is sent as it is.
            let id = ConsultMessage::decode(signed.body.as_slice())
                .map(|m| m.consultation_id)
                .unwrap_or_default();
            if held.contains(&id) {
                continue;
            }
            match self.client.consult(&self.peer, signed.clone()).await {
                Ok(_) => consults.delivered(&self.peer, step)?,
                Err(e) => match outcome(&e) {
                    Outcome::Unreachable => {
                        tracing::debug!(peer = %self.peer, reason = %e, "consultation step not delivered; will retry");
                        return Ok(Delivered::Stopped);
                    }
                    Outcome::Later => {
                        tracing::debug!(peer = %self.peer, reason = %e, "consultation step deferred; will retry");
                        held.insert(id);
                    }
                    Outcome::Refused => {
                        self.consultations
                            .refused_by_peer(&self.peer, step, &signed, &e)
                            .await?;
                    }
                },
            }
        }
        Ok(if held.is_empty() {
            Delivered::All
        } else {
            Delivered::Stopped
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_answers_drop_a_step() {
        let call = |code| PeerError::Call {
            code,
            reason: "x".into(),
        };
        assert_eq!(outcome(&call(Code::Unavailable)), Outcome::Unreachable);
        assert_eq!(
            outcome(&PeerError::NoChannel("no".into())),
            Outcome::Unreachable
        );
        assert_eq!(outcome(&call(Code::ResourceExhausted)), Outcome::Later);
        assert_eq!(outcome(&call(Code::Internal)), Outcome::Later);
        assert_eq!(outcome(&call(Code::InvalidArgument)), Outcome::Refused);
        assert_eq!(outcome(&call(Code::FailedPrecondition)), Outcome::Refused);
        assert_eq!(outcome(&call(Code::NotFound)), Outcome::Refused);
        assert_eq!(outcome(&call(Code::PermissionDenied)), Outcome::Later);
    }
}
