//! Steps from the peer: each is verified under the peer's pinned key, read,
//! checked for what only this side knows (an opening names one of our
//! denials that was sent to the caller; an opening on anything else gets one
//! answer, so that it cannot probe which serials exist), applied through `consult::machine`, stored, audited and
//! alerted. A step already applied is acknowledged as a duplicate.

use prost::Message;
use tessera_proto::v1::{
    ConsultAck, ConsultMessage, Consultation, Notice, SignedMessage, consult_message::Kind,
    notice::Body,
};

use super::flow::{CONTEXT, ConsultError, Consultations, invalid, required_text};
use super::machine::{self, By, Effect, Step};
use crate::identity::AgencyId;
use crate::notice::dates;

/// The one answer to an opening on a serial the caller may not consult on,
/// whether no notice has it, it is not a denial, or it never went to the
/// caller: the answer must not tell which.
pub(super) const NO_SUCH_DENIAL: &str = "no denial of ours with that serial was sent to you";

impl Consultations {
    /// Whether some version of our notice `serial` is a denial that was sent
    /// to `caller`.
    fn denial_sent_to(&self, caller: &AgencyId, serial: &str) -> Result<bool, ConsultError> {
        let versions = self.notices.versions(self.agency.as_str(), serial)?;
        Ok(versions.iter().any(|stored| {
            stored.recipients.iter().any(|r| r == caller.as_str())
                && stored
                    .envelope
                    .as_ref()
                    .and_then(|env| Notice::decode(env.notice.as_slice()).ok())
                    .is_some_and(|n| matches!(n.body, Some(Body::Denial(_))))
        }))
    }

    /// Verifies a signed step from `caller` and reads it.
    fn verified(
        &self,
        caller: &AgencyId,
        signed: &SignedMessage,
    ) -> Result<ConsultMessage, ConsultError> {
        let pinned = self.pinned.get(caller).ok_or_else(|| {
            ConsultError::Unverified("the sender is not a configured peer".into())
        })?;
        if signed.origin != caller.as_str() || signed.key_id != pinned.key_id() {
            return Err(ConsultError::Unverified(
                "not signed by the sender's pinned key".into(),
            ));
        }
        pinned
            .verify(CONTEXT, &signed.body, &signed.signature)
            .map_err(|_| ConsultError::Unverified("the signature does not verify".into()))?;
        let msg = ConsultMessage::decode(signed.body.as_slice()).map_err(|_| {
            ConsultError::Unverified("the signed bytes are not a consultation step".into())
        })?;
        if msg.from != caller.as_str() || msg.to != self.agency.as_str() {
            return Err(invalid("the step is not from the sender to us"));
        }
        Ok(msg)
    }

    /// The machine's step for a peer's message, after the checks only this
    /// side can make (an opening names one of our denials).
    fn their_step(
        &self,
        caller: &AgencyId,
        msg: &ConsultMessage,
        existing: Option<&Consultation>,
    ) -> Result<Step, ConsultError> {
        let kind = msg.kind.as_ref().ok_or_else(|| invalid("empty step"))?;
        if let Kind::Open(open) = kind {
            if existing.is_some() {
                return Err(invalid("the consultation already exists"));
            }
            if open.denial_origin != self.agency.as_str() {
                return Err(invalid("the consultation is about another agency's denial"));
            }
            if !self.denial_sent_to(caller, &open.denial_serial)? {
                return Err(invalid(NO_SUCH_DENIAL));
            }
            if !msg.consultation_id.starts_with(&format!("{caller}-C"))
                || dates::parse(&open.due).is_none()
            {
                return Err(invalid("malformed consultation id or due date"));
            }
            return Ok(Step::Open {
                by: By::Peer,
                id: msg.consultation_id.clone(),
                peer: caller.to_string(),
                open: open.clone(),
            });
        }
        let Some(c) = existing else {
            return Err(ConsultError::NotFound(msg.consultation_id.clone()));
        };
        if c.peer != caller.as_str() {
            return Err(invalid("the consultation is not with the sender"));
        }
        Ok(match kind {
            Kind::Open(_) => unreachable!("handled above"),
            Kind::Answer(a) => Step::Answer {
                by: By::Peer,
                answer: a
                    .answer
                    .parse()
                    .map_err(|e: machine::UnknownWord| invalid(e.to_string()))?,
                text: a.text.clone(),
            },
            Kind::Extend(e) => Step::Extend {
                by: By::Peer,
                days: e.days,
                due: e.due.clone(),
            },
            Kind::Inform(i) => {
                required_text("text", "of information", &i.text)?;
                Step::Inform {
                    by: By::Peer,
                    text: i.text.clone(),
                }
            }
            Kind::Decision(d) => Step::Decide {
                by: By::Peer,
                decision: d
                    .decision
                    .parse()
                    .map_err(|e: machine::UnknownWord| invalid(e.to_string()))?,
                text: d.text.clone(),
            },
        })
    }

    /// Applies a signed step from `caller`. Returns whether it was a duplicate.
    pub fn receive(&self, caller: &AgencyId, signed: &SignedMessage) -> Result<bool, ConsultError> {
        let msg = self.verified(caller, signed)?;
        let _one = self.consults.lock();
        let existing = self.consults.get(&msg.consultation_id)?;
        if let Some(c) = &existing
            && c.steps
                .iter()
                .any(|s| s.from == msg.from && s.step == msg.step)
        {
            return Ok(true);
        }
        let step = self.their_step(caller, &msg, existing.as_ref())?;
        let calendar = self.calendar_for(caller.as_str());
        let env = machine::Env {
            calendar: &calendar,
            today: dates::today(),
        };
        let (mut c, effects) = machine::step(existing.as_ref(), step, env)?;
        self.audit_step(caller, &msg, "received");
        c.steps.push(msg);
        self.consults.save(&c, None)?;
        for effect in effects {
            if let Effect::Alert(what) = effect {
                self.raise(&c, what);
            }
        }
        Ok(false)
    }

    /// The Consult RPC: applies the step and makes it durable before the
    /// peer's acknowledgement.
    pub async fn receive_durably(
        &self,
        caller: &AgencyId,
        signed: &SignedMessage,
    ) -> Result<ConsultAck, ConsultError> {
        let duplicate = match self.receive(caller, signed) {
            Ok(duplicate) => duplicate,
            Err(e) => {
                tracing::warn!(peer = %caller, reason = %e, "consultation step refused");
                // Durable with the next flush: a refusal is not worth one
                // of its own (a peer could make us flush at will).
                self.audit_refusal(caller, signed, &e);
                return Err(e);
            }
        };
        self.store.flush().await?;
        Ok(ConsultAck { duplicate })
    }
}
