//! No-undercut consultations between the consulting agency (about to grant
//! what a peer denied) and the denying agency, as this node runs them: the
//! rules are `consult::machine`; here each step is checked, signed by its
//! sender, stored on both nodes (and queued for the peer, delivered by
//! `consult::deliver`), audited, and alerted. A grant despite a denial
//! becomes a notice to the sharing group.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tessera_proto::v1::{
    Alert, ConsultMessage, ConsultOpen, ConsultRefusal, ConsultView, Consultation, GrantNotice,
    Marking, Match, Notice, SignedMessage, consult_message::Kind, notice::Body,
};
use time::Date;
use tokio_util::sync::CancellationToken;

use super::deadline::{ConsultState, MAX_DAYS, SharedHolidays, WorkCalendar};
use super::machine::{self, Answer, By, Decision, Effect, Env, Refusal, Step};
use super::store::ConsultStore;
use crate::alerts::{AlertKind, AlertSink};
use crate::audit::{Action, AuditSink};
use crate::exchange::client::PeerError;
use crate::identity::AgencyId;
use crate::notice::dates;
use crate::notice::issue::{IssueError, Issuer};
use crate::notice::store::{NoticeStore, NoticeStoreError};
use crate::peers::PinnedKeys;
use crate::signing::SigningKey;
use crate::store::{Store, StoreError};
use crate::wake::Wakers;

/// Domain separation for consultation signatures.
pub const CONTEXT: &str = "tessera/consult/v1";

/// Why a consultation step was refused. The same error reaches the
/// operator and the peer with the same status code.
#[derive(Debug, thiserror::Error)]
pub enum ConsultError {
    #[error("{0}")]
    Invalid(String),
    #[error("no consultation {0}")]
    NotFound(String),
    #[error("{0}")]
    State(String),
    #[error("the step does not verify: {0}")]
    Unverified(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("the grant notice: {0}")]
    Grant(#[from] IssueError),
}

impl From<NoticeStoreError> for ConsultError {
    fn from(e: NoticeStoreError) -> Self {
        match e {
            NoticeStoreError::Store(e) => Self::Store(e),
            NoticeStoreError::Conflict { .. } => Self::Invalid(e.to_string()),
        }
    }
}

impl From<Refusal> for ConsultError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::State(s) => Self::State(s),
            Refusal::NotAllowed(s) => Self::Invalid(s.to_owned()),
        }
    }
}

impl From<ConsultError> for tonic::Status {
    fn from(e: ConsultError) -> Self {
        match e {
            ConsultError::Invalid(_) => Self::invalid_argument(e.to_string()),
            ConsultError::NotFound(_) => Self::not_found(e.to_string()),
            ConsultError::State(_) => Self::failed_precondition(e.to_string()),
            ConsultError::Unverified(_) => Self::permission_denied(e.to_string()),
            ConsultError::Store(e) => e.into(),
            ConsultError::Grant(e) => e.into(),
        }
    }
}

impl ConsultError {
    /// The status code this error reaches the wire with (for the audit).
    pub fn code(&self) -> tonic::Code {
        match self {
            Self::Invalid(_) => tonic::Code::InvalidArgument,
            Self::NotFound(_) => tonic::Code::NotFound,
            Self::State(_) => tonic::Code::FailedPrecondition,
            Self::Unverified(_) => tonic::Code::PermissionDenied,
            Self::Store(_) | Self::Grant(_) => tonic::Code::Internal,
        }
    }
}

pub(super) fn invalid(s: impl Into<String>) -> ConsultError {
    ConsultError::Invalid(s.into())
}

/// The most a transaction summary or provided information may hold, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;

/// A free text that must say something and fit in [`MAX_TEXT`] bytes.
pub(super) fn required_text(field: &str, what: &str, text: &str) -> Result<(), ConsultError> {
    if text.trim().is_empty() || text.len() > MAX_TEXT {
        return Err(invalid(format!(
            "{field}: give 1 to {MAX_TEXT} bytes {what}"
        )));
    }
    Ok(())
}

/// Where a consultation stands on `today`, counted with `cal`.
pub fn state(c: &Consultation, today: Date, cal: &WorkCalendar) -> ConsultState {
    machine::state(c, today, cal)
}

/// The peer's words for a refusal, as we keep and show them: its code and
/// message, cut to 300 characters, without control characters.
fn peer_reason(e: &PeerError) -> String {
    let text: String = e
        .reason()
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    format!("{:?}: {text}", e.code())
}

fn kind_name(k: Option<&Kind>) -> &'static str {
    match k {
        Some(Kind::Open(_)) => "open",
        Some(Kind::Answer(_)) => "answer",
        Some(Kind::Extend(_)) => "extend",
        Some(Kind::Decision(_)) => "decision",
        Some(Kind::Inform(_)) => "inform",
        None => "none",
    }
}

/// This node's consultations: the operator's steps and the peers'.
#[derive(Debug)]
pub struct Consultations {
    pub agency: AgencyId,
    pub consults: Arc<ConsultStore>,
    pub signing: Arc<SigningKey>,
    pub pinned: PinnedKeys,
    pub notices: Arc<NoticeStore>,
    pub issuer: Arc<Issuer>,
    /// Where a "granted despite a denial" notice goes (`consult.grant_notice_to`).
    pub grant_to: String,
    pub alerts: AlertSink,
    pub audit: AuditSink,
    pub calendar: WorkCalendar,
    /// A bloc charter's holidays, skipped in consultations between members.
    pub shared_holidays: Option<Arc<dyn SharedHolidays>>,
    pub store: Store,
    pub wakers: Wakers,
}

impl Consultations {
    /// This agency's working-day calendar.
    pub fn calendar(&self) -> &WorkCalendar {
        &self.calendar
    }

    /// The working days of a consultation with `peer`: this agency's
    /// calendar, less the holidays a bloc charter gives this agency and the
    /// peer when both are members.
    pub fn calendar_for(&self, peer: &str) -> WorkCalendar {
        match &self.shared_holidays {
            Some(shared) => self.calendar.with(shared.with_peer(peer)),
            None => self.calendar.clone(),
        }
    }

    /// The operator's view of a consultation on `today`.
    pub fn view(&self, c: Consultation, today: Date) -> Result<ConsultView, ConsultError> {
        let cal = self.calendar_for(&c.peer);
        let st = state(&c, today, &cal);
        let working_days = match st {
            ConsultState::DueSoon { working_days_left } => i64::from(working_days_left),
            ConsultState::Overdue { working_days_late } => -i64::from(working_days_late),
            ConsultState::Open => dates::parse(&c.due)
                .map_or(0, |due| i64::from(cal.working_days_between(today, due))),
            _ => 0,
        };
        let undelivered = match c.peer.parse::<AgencyId>() {
            Ok(p) => self.consults.undelivered(&p, &c.id)?,
            Err(_) => 0,
        };
        Ok(ConsultView {
            state: st.as_str().replace('_', "-"),
            working_days,
            undelivered,
            consultation: Some(c),
        })
    }

    /// Every consultation, as the operator sees it today.
    pub fn list(&self) -> Result<Vec<ConsultView>, ConsultError> {
        let today = dates::today();
        self.consults
            .list()?
            .into_iter()
            .map(|c| self.view(c, today))
            .collect()
    }

    /// One consultation, as the operator sees it today.
    pub fn show(&self, id: &str) -> Result<ConsultView, ConsultError> {
        self.view(self.load(id)?, dates::today())
    }

    fn load(&self, id: &str) -> Result<Consultation, ConsultError> {
        self.consults
            .get(id)?
            .ok_or_else(|| ConsultError::NotFound(id.to_owned()))
    }

    pub(super) fn audit_step(&self, peer: &AgencyId, msg: &ConsultMessage, direction: &str) {
        self.audit.event(
            peer.as_str(),
            Action::ConsultationStep,
            &msg.consultation_id,
            &serde_json::json!({ "step": kind_name(msg.kind.as_ref()), "direction": direction, "n": msg.step }),
        );
    }

    /// Records that `peer` refused our queued `step` for good: the step
    /// leaves the outbox, the refusal is kept on the consultation, audited
    /// and alerted, and made durable.
    pub async fn refused_by_peer(
        &self,
        peer: &AgencyId,
        step: u64,
        signed: &SignedMessage,
        error: &PeerError,
    ) -> Result<(), StoreError> {
        let msg = ConsultMessage::decode(signed.body.as_slice()).unwrap_or_default();
        let kind = kind_name(msg.kind.as_ref());
        tracing::warn!(peer = %peer, step, kind, code = ?error.code(), "the peer refused a consultation step; not retried");
        {
            let _one = self.consults.lock();
            let mut c = self.consults.get(&msg.consultation_id)?;
            if let Some(c) = c.as_mut() {
                c.refused.push(ConsultRefusal {
                    step,
                    kind: kind.to_owned(),
                    reason: peer_reason(error),
                });
                self.consults.save(c, None)?;
            }
            self.consults.delivered(peer, step)?;
            self.audit.event(
                peer.as_str(),
                Action::ConsultationRefused,
                if c.is_some() {
                    &msg.consultation_id
                } else {
                    "consult"
                },
                &serde_json::json!({ "step": kind, "n": step, "by": "peer", "code": format!("{:?}", error.code()) }),
            );
            if let Some(c) = &c {
                self.raise(c, "refused-by-peer");
            }
        }
        self.store.flush().await
    }

    /// Audits a peer's step that we refused. The consultation is named only
    /// if we hold it: an id the peer made up is not written down.
    pub(super) fn audit_refusal(&self, peer: &AgencyId, signed: &SignedMessage, e: &ConsultError) {
        let msg = ConsultMessage::decode(signed.body.as_slice()).unwrap_or_default();
        let known = !msg.consultation_id.is_empty()
            && matches!(self.consults.get(&msg.consultation_id), Ok(Some(c)) if c.peer == peer.as_str());
        self.audit.event(
            peer.as_str(),
            Action::ConsultationRefused,
            if known { &msg.consultation_id } else { "consult" },
            &serde_json::json!({ "step": kind_name(msg.kind.as_ref()), "by": "us", "code": format!("{:?}", e.code()) }),
        );
    }

    /// Signs `kind` as our next step of `c` to its peer, records it, queues it.
    fn send(&self, c: &mut Consultation, kind: Kind) -> Result<(), ConsultError> {
        let peer: AgencyId = c
            .peer
            .parse()
            .map_err(|_| invalid("peer: not an agency id"))?;
        let step = self.consults.next_step()?;
        let msg = ConsultMessage {
            consultation_id: c.id.clone(),
            step,
            from: self.agency.to_string(),
            to: c.peer.clone(),
            sent_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            kind: Some(kind),
        };
        let body = msg.encode_to_vec();
        let signed = SignedMessage {
            signature: self.signing.sign(CONTEXT, &body),
            body,
            origin: self.agency.to_string(),
            key_id: self.signing.public().key_id(),
        };
        self.audit_step(&peer, &msg, "sent");
        c.steps.push(msg);
        self.consults.save(c, Some((&peer, step, &signed)))?;
        Ok(())
    }

    /// An operator alert about a consultation (no transaction details in
    /// it). A failure to store it is logged: the step itself stands.
    pub(super) fn raise(&self, c: &Consultation, what: &str) {
        let alert = Alert {
            kind: AlertKind::Consultation.as_str().into(),
            reference: c.id.clone(),
            r#match: Some(Match {
                peer: c.peer.clone(),
                origin: c
                    .open
                    .as_ref()
                    .map(|o| o.denial_origin.clone())
                    .unwrap_or_default(),
                serial: format!("{}#{what}", c.id),
                action: what.to_owned(),
                ..Match::default()
            }),
            ..Alert::default()
        };
        match self.alerts.consultation(alert) {
            Ok(Some(a)) => {
                tracing::info!(alert = a.seq, consultation = %c.id, step = what, "consultation alert");
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, consultation = %c.id, "cannot store a consultation alert");
            }
        }
    }

    /// Applies one of our steps to consultation `id` (or a new one) under the
    /// store's lock: the machine decides, then its effects are carried out
    /// and the result stored. Returns the consultation and whether the
    /// grant notice is due.
    fn step_ours(
        &self,
        current: Option<&Consultation>,
        step: Step,
    ) -> Result<(Consultation, bool), ConsultError> {
        let peer = match (current, &step) {
            (Some(c), _) => c.peer.clone(),
            (None, Step::Open { peer, .. }) => peer.clone(),
            (None, _) => String::new(),
        };
        let calendar = self.calendar_for(&peer);
        let env = Env {
            calendar: &calendar,
            today: dates::today(),
        };
        let (mut c, effects) = machine::step(current, step, env)?;
        let mut grant = false;
        for effect in effects {
            match effect {
                Effect::Send(kind) => self.send(&mut c, kind)?,
                Effect::GrantNotice => grant = true,
                Effect::Alert(what) => {
                    self.consults.save(&c, None)?;
                    self.raise(&c, what);
                }
            }
        }
        Ok((c, grant))
    }

    /// Makes our step durable and wakes the peer's delivery.
    async fn commit(&self, c: &Consultation) -> Result<(), ConsultError> {
        self.store.flush().await?;
        if let Ok(p) = c.peer.parse::<AgencyId>() {
            self.wakers.consult(&p);
        }
        Ok(())
    }

    /// Opens a consultation with the agency that issued `denial_origin/denial_serial`.
    pub async fn open(
        &self,
        denial_origin: &str,
        denial_serial: &str,
        summary: &str,
        days: u32,
    ) -> Result<ConsultView, ConsultError> {
        let peer: AgencyId = denial_origin
            .parse()
            .map_err(|_| invalid("denial_origin: not an agency id"))?;
        if self.pinned.get(&peer).is_none() {
            return Err(invalid(format!("{peer} is not a configured peer")));
        }
        crate::notice::validate::serial(denial_serial).map_err(|e| invalid(e.to_string()))?;
        let days = if days == 0 {
            super::deadline::DEFAULT_DAYS
        } else {
            days
        };
        if days > MAX_DAYS {
            return Err(invalid(format!("days: at most {MAX_DAYS} working days")));
        }
        required_text("summary", "describing the transaction", summary)?;
        let today = dates::today();
        let due = self
            .calendar_for(peer.as_str())
            .add_working_days(today, days);
        let open = ConsultOpen {
            denial_origin: peer.to_string(),
            denial_serial: denial_serial.to_owned(),
            summary: summary.to_owned(),
            opened_on: dates::format(today),
            days,
            due: dates::format(due),
        };
        let (c, _) = {
            let _one = self.consults.lock();
            let id = format!("{}-C{}", self.agency, self.consults.next_number()?);
            self.step_ours(
                None,
                Step::Open {
                    by: By::Us,
                    id,
                    peer: peer.to_string(),
                    open,
                },
            )?
        };
        self.commit(&c).await?;
        tracing::info!(consultation = %c.id, peer = %peer, "consultation opened");
        self.view(c, today)
    }

    /// Takes one of our steps on an existing consultation.
    fn take(&self, id: &str, step: Step) -> Result<(Consultation, bool), ConsultError> {
        let _one = self.consults.lock();
        let c = self.load(id)?;
        self.step_ours(Some(&c), step)
    }

    /// The denying agency answers.
    pub async fn respond(
        &self,
        id: &str,
        answer: &str,
        text: &str,
    ) -> Result<ConsultView, ConsultError> {
        let answer: Answer = answer
            .parse()
            .map_err(|_| invalid("answer: no-objection, objection or more-information"))?;
        if answer != Answer::NoObjection && text.trim().is_empty() {
            return Err(invalid(
                "text: an objection or a question needs its reasons",
            ));
        }
        let step = Step::Answer {
            by: By::Us,
            answer,
            text: text.to_owned(),
        };
        let (c, _) = self.take(id, step)?;
        self.commit(&c).await?;
        self.view(c, dates::today())
    }

    /// Either side extends the deadline once, to at most 30 working days.
    pub async fn extend(&self, id: &str, days: u32) -> Result<ConsultView, ConsultError> {
        let step = Step::Extend {
            by: By::Us,
            days,
            due: String::new(),
        };
        let (c, _) = self.take(id, step)?;
        self.commit(&c).await?;
        self.view(c, dates::today())
    }

    /// The consulting agency provides information: asked for (it answers
    /// a pending "more-information") or of its own accord.
    pub async fn inform(&self, id: &str, text: &str) -> Result<ConsultView, ConsultError> {
        required_text("text", "of information for the denying agency", text)?;
        let step = Step::Inform {
            by: By::Us,
            text: text.to_owned(),
        };
        let (c, _) = self.take(id, step)?;
        self.commit(&c).await?;
        self.view(c, dates::today())
    }

    /// The consulting agency records its decision; a grant is notified to the bloc.
    pub async fn decide(
        &self,
        id: &str,
        decision: &str,
        text: &str,
    ) -> Result<ConsultView, ConsultError> {
        let decision: Decision = decision
            .parse()
            .map_err(|_| invalid("decision: granted, refused or withdrawn"))?;
        if decision == Decision::Granted
            && text.trim().is_empty()
            && self
                .load(id)?
                .answer
                .is_some_and(|a| a.answer == "objection")
        {
            return Err(invalid(
                "text: give the reasons for granting despite the denying agency's objection; they go to it in the undercut notice",
            ));
        }
        let step = Step::Decide {
            by: By::Us,
            decision,
            text: text.to_owned(),
        };
        let (c, grant) = self.take(id, step)?;
        if grant {
            self.grant_notice(&c, text).await?;
        }
        self.commit(&c).await?;
        self.view(c, dates::today())
    }

    /// "Granted despite a denial": a notice to the sharing group.
    async fn grant_notice(&self, c: &Consultation, reasons: &str) -> Result<(), ConsultError> {
        let open = c.open.clone().unwrap_or_default();
        let notice = Notice {
            marking: Marking::Amber as i32,
            distribution: Some(
                crate::policy::parse_to(&self.grant_to).map_err(|e| invalid(e.to_string()))?,
            ),
            body: Some(Body::Grant(GrantNotice {
                consultation_id: c.id.clone(),
                denial_origin: open.denial_origin,
                denial_serial: open.denial_serial,
                answer: c
                    .answer
                    .as_ref()
                    .map(|a| a.answer.clone())
                    .unwrap_or_default(),
                decision_date: dates::format(dates::today()),
                reasons: reasons.to_owned(),
            })),
            ..Notice::default()
        };
        // The denying agency always receives it (an undercut notice), whatever
        // `consult.grant_notice_to` says.
        let denier: Vec<AgencyId> = c.peer.parse().into_iter().collect();
        let issued = self.issuer.issue_also(notice, &denier)?;
        self.issuer.publish(&issued.recipients).await?;
        tracing::info!(consultation = %c.id, serial = %issued.serial, "granted despite a denial: notice issued");
        Ok(())
    }

    /// Raises due-soon and overdue reminders once each, as of `today`.
    pub fn remind(&self, today: Date) -> Result<u32, ConsultError> {
        let mut raised = 0;
        let _one = self.consults.lock();
        for c in self.consults.list()? {
            let calendar = self.calendar_for(&c.peer);
            let env = Env {
                calendar: &calendar,
                today,
            };
            let (c, effects) = machine::step(Some(&c), Step::Tick, env)?;
            for effect in effects {
                if let Effect::Alert(what) = effect {
                    self.consults.save(&c, None)?;
                    self.raise(&c, what);
                    raised += 1;
                }
            }
        }
        Ok(raised)
    }

    /// Checks reminders every minute.
    pub async fn reminders(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(error) = self.remind(dates::today()) {
                tracing::error!(%error, "consultation reminders failed");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
