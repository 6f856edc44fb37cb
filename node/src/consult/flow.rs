//! No-undercut consultations between the consulting agency (about to grant
//! what a peer denied) and the denying agency: open → answer (no objection,
//! objection, more information) → decision, with a deadline in working days
//! that can be extended once. Every step is a message signed by its sender,
//! stored on both nodes and retried until the peer acknowledges it. A grant
//! despite a denial becomes a notice to the sharing group.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::{
    Alert, ConsultAnswer, ConsultDecision, ConsultExtend, ConsultMessage, ConsultOpen, ConsultView,
    Consultation, GrantNotice, Marking, Match, Notice, SignedMessage, consult_message::Kind,
    notice::Body,
};
use time::Date;
use tokio_util::sync::CancellationToken;

use super::deadline::{ConsultState, MAX_DAYS, WorkCalendar};
use crate::audit::Action;
use crate::context::Context;
use crate::identity::AgencyId;
use crate::notice::dates;

/// Domain separation for consultation signatures.
pub const CONTEXT: &str = "tessera/consult/v1";

/// Why a consultation step was refused.
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
    Store(#[from] crate::store::StoreError),
}

fn invalid(s: impl Into<String>) -> ConsultError {
    ConsultError::Invalid(s.into())
}

/// This agency's working-day calendar.
pub fn calendar(ctx: &Context) -> WorkCalendar {
    WorkCalendar::new(
        ctx.config
            .consult
            .holidays
            .iter()
            .filter_map(|h| dates::parse(h)),
    )
}

/// Where a consultation stands on `today`, counted with `cal`.
pub fn state(c: &Consultation, today: Date, cal: &WorkCalendar) -> ConsultState {
    let answered = c.answer.is_some();
    let closed = c.decision.is_some();
    match dates::parse(&c.due) {
        Some(due) => super::deadline::state_for_due(due, today, answered, closed, cal),
        None if closed => ConsultState::Closed,
        None if answered => ConsultState::Answered,
        None => ConsultState::Open,
    }
}

/// The operator's view of a consultation on `today`.
pub fn view(ctx: &Context, c: Consultation, today: Date) -> ConsultView {
    let st = state(&c, today, &calendar(ctx));
    let working_days = match st {
        ConsultState::DueSoon { working_days_left } => i64::from(working_days_left),
        ConsultState::Overdue { working_days_late } => -i64::from(working_days_late),
        ConsultState::Open => dates::parse(&c.due).map_or(0, |due| {
            i64::from(calendar(ctx).working_days_between(today, due))
        }),
        _ => 0,
    };
    let undelivered = c
        .peer
        .parse::<AgencyId>()
        .map_or(0, |p| ctx.consults.undelivered(&p));
    ConsultView {
        state: st.as_str().replace('_', "-"),
        working_days,
        undelivered,
        consultation: Some(c),
    }
}

/// Signs `kind` as our next step of `c` to its peer, records it, queues it.
fn send(ctx: &Context, c: &mut Consultation, kind: Kind) -> Result<(), ConsultError> {
    let peer: AgencyId = c
        .peer
        .parse()
        .map_err(|_| invalid("peer: not an agency id"))?;
    let step = ctx.consults.next_step()?;
    let msg = ConsultMessage {
        consultation_id: c.id.clone(),
        step,
        from: ctx.agency.to_string(),
        to: c.peer.clone(),
        sent_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        kind: Some(kind),
    };
    let body = msg.encode_to_vec();
    let signed = SignedMessage {
        signature: ctx.signing.sign(CONTEXT, &body),
        body,
        origin: ctx.agency.to_string(),
        key_id: ctx.signing.public().key_id(),
    };
    audit_step(ctx, &peer, &msg, "sent");
    c.steps.push(msg);
    ctx.consults.save(c, Some((&peer, step, &signed)))?;
    Ok(())
}

fn kind_name(k: Option<&Kind>) -> &'static str {
    match k {
        Some(Kind::Open(_)) => "open",
        Some(Kind::Answer(_)) => "answer",
        Some(Kind::Extend(_)) => "extend",
        Some(Kind::Decision(_)) => "decision",
        None => "none",
    }
}

fn audit_step(ctx: &Context, peer: &AgencyId, msg: &ConsultMessage, direction: &str) {
    ctx.audit_event(
        peer.as_str(),
        Action::ConsultationStep,
        &msg.consultation_id,
        &serde_json::json!({ "step": kind_name(msg.kind.as_ref()), "direction": direction, "n": msg.step }),
    );
}

async fn commit(ctx: &Context, peer: &str) -> Result<(), ConsultError> {
    ctx.store.flush().await?;
    if let Ok(p) = peer.parse::<AgencyId>() {
        ctx.wakers(&p).consult.notify_one();
    }
    Ok(())
}

/// Opens a consultation with the agency that issued `denial_origin/denial_serial`.
pub async fn open(
    ctx: &Context,
    denial_origin: &str,
    denial_serial: &str,
    summary: &str,
    days: u32,
) -> Result<ConsultView, ConsultError> {
    let peer: AgencyId = denial_origin
        .parse()
        .map_err(|_| invalid("denial_origin: not an agency id"))?;
    if !ctx.peers.contains(&peer) {
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
    if summary.trim().is_empty() || summary.len() > 16 * 1024 {
        return Err(invalid(
            "summary: give 1 to 16384 bytes describing the transaction",
        ));
    }
    let today = dates::today();
    let due = calendar(ctx).add_working_days(today, days);
    let mut c = Consultation {
        id: format!("{}-C{}", ctx.agency, ctx.consults.next_number()?),
        role: "consulting".into(),
        peer: peer.to_string(),
        due: dates::format(due),
        days,
        ..Consultation::default()
    };
    let open = ConsultOpen {
        denial_origin: peer.to_string(),
        denial_serial: denial_serial.to_owned(),
        summary: summary.to_owned(),
        opened_on: dates::format(today),
        days,
        due: c.due.clone(),
    };
    c.open = Some(open.clone());
    {
        let _g = ctx.consults.lock();
        send(ctx, &mut c, Kind::Open(open))?;
    }
    commit(ctx, &c.peer).await?;
    tracing::info!(consultation = %c.id, peer = %peer, "consultation opened");
    Ok(view(ctx, c, today))
}

fn load(ctx: &Context, id: &str) -> Result<Consultation, ConsultError> {
    ctx.consults
        .get(id)?
        .ok_or_else(|| ConsultError::NotFound(id.to_owned()))
}

/// The denying agency answers.
pub async fn respond(
    ctx: &Context,
    id: &str,
    answer: &str,
    text: &str,
) -> Result<ConsultView, ConsultError> {
    if !matches!(answer, "no-objection" | "objection" | "more-information") {
        return Err(invalid(
            "answer: no-objection, objection or more-information",
        ));
    }
    if answer != "no-objection" && text.trim().is_empty() {
        return Err(invalid(
            "text: an objection or a question needs its reasons",
        ));
    }
    let c = {
        let _g = ctx.consults.lock();
        let mut c = load(ctx, id)?;
        if c.role != "consulted" {
            return Err(ConsultError::State(
                "only the denying agency answers a consultation".into(),
            ));
        }
        if c.decision.is_some() {
            return Err(ConsultError::State("the consultation is closed".into()));
        }
        let a = ConsultAnswer {
            answer: answer.to_owned(),
            text: text.to_owned(),
        };
        c.answer = Some(a.clone());
        send(ctx, &mut c, Kind::Answer(a))?;
        c
    };
    commit(ctx, &c.peer).await?;
    Ok(view(ctx, c, dates::today()))
}

/// Either side extends the deadline once, to at most 30 working days.
pub async fn extend(ctx: &Context, id: &str, days: u32) -> Result<ConsultView, ConsultError> {
    let c = {
        let _g = ctx.consults.lock();
        let mut c = load(ctx, id)?;
        if c.decision.is_some() {
            return Err(ConsultError::State("the consultation is closed".into()));
        }
        let opened = c
            .open
            .as_ref()
            .and_then(|o| dates::parse(&o.opened_on))
            .ok_or_else(|| ConsultError::State("the consultation has no opening date".into()))?;
        let mut deadline = super::deadline::Deadline {
            opened,
            days: c.days,
            extended: c.extended,
        };
        deadline
            .extend(days)
            .map_err(|e| ConsultError::State(e.to_string()))?;
        c.days = deadline.days;
        c.extended = true;
        c.due = dates::format(deadline.due(&calendar(ctx)));
        let e = ConsultExtend {
            days: c.days,
            due: c.due.clone(),
        };
        send(ctx, &mut c, Kind::Extend(e))?;
        c
    };
    commit(ctx, &c.peer).await?;
    Ok(view(ctx, c, dates::today()))
}

/// The consulting agency records its decision; a grant is notified to the bloc.
pub async fn decide(
    ctx: &Context,
    id: &str,
    decision: &str,
    text: &str,
) -> Result<ConsultView, ConsultError> {
    if !matches!(decision, "granted" | "refused" | "withdrawn") {
        return Err(invalid("decision: granted, refused or withdrawn"));
    }
    let c = {
        let _g = ctx.consults.lock();
        let mut c = load(ctx, id)?;
        if c.role != "consulting" {
            return Err(ConsultError::State(
                "only the consulting agency decides".into(),
            ));
        }
        if c.decision.is_some() {
            return Err(ConsultError::State(
                "the consultation is already closed".into(),
            ));
        }
        let d = ConsultDecision {
            decision: decision.to_owned(),
            text: text.to_owned(),
        };
        c.decision = Some(d.clone());
        send(ctx, &mut c, Kind::Decision(d))?;
        c
    };
    if decision == "granted" {
        grant_notice(ctx, &c, text).await?;
    }
    commit(ctx, &c.peer).await?;
    Ok(view(ctx, c, dates::today()))
}

/// "Granted despite a denial": a notice to the sharing group.
async fn grant_notice(ctx: &Context, c: &Consultation, reasons: &str) -> Result<(), ConsultError> {
    let open = c.open.clone().unwrap_or_default();
    let notice = Notice {
        marking: Marking::Amber as i32,
        distribution: Some(
            crate::policy::parse_to(&ctx.config.consult.grant_notice_to)
                .map_err(|e| invalid(e.to_string()))?,
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
    let issued = crate::notice::issue::issue(ctx, notice).map_err(|e| invalid(e.to_string()))?;
    ctx.store.flush().await?;
    ctx.wake_push(&issued.recipients);
    tracing::info!(consultation = %c.id, serial = %issued.serial, "granted despite a denial: notice issued");
    Ok(())
}

/// Applies a signed step from `caller`. Returns whether it was a duplicate.
pub fn receive(
    ctx: &Context,
    caller: &AgencyId,
    signed: &SignedMessage,
) -> Result<bool, ConsultError> {
    let pinned = ctx
        .peers
        .signing_key(caller)
        .ok_or_else(|| ConsultError::Unverified("the sender is not a configured peer".into()))?;
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
    if msg.from != caller.as_str() || msg.to != ctx.agency.as_str() {
        return Err(invalid("the step is not from the sender to us"));
    }
    let _g = ctx.consults.lock();
    let existing = ctx.consults.get(&msg.consultation_id)?;
    if let Some(c) = &existing
        && c.steps
            .iter()
            .any(|s| s.from == msg.from && s.step == msg.step)
    {
        return Ok(true);
    }
    let mut c = match (&msg.kind, existing) {
        (Some(Kind::Open(open)), None) => {
            if open.denial_origin != ctx.agency.as_str() {
                return Err(invalid("the consultation is about another agency's denial"));
            }
            let known = ctx
                .notices
                .latest(ctx.agency.as_str(), &open.denial_serial)
                .map_err(|e| invalid(e.to_string()))?;
            if known.is_none() {
                return Err(invalid("no denial of ours has that serial"));
            }
            if !msg.consultation_id.starts_with(&format!("{caller}-C"))
                || dates::parse(&open.due).is_none()
            {
                return Err(invalid("malformed consultation id or due date"));
            }
            Consultation {
                id: msg.consultation_id.clone(),
                role: "consulted".into(),
                peer: caller.to_string(),
                open: Some(open.clone()),
                due: open.due.clone(),
                days: open.days,
                ..Consultation::default()
            }
        }
        (Some(Kind::Open(_)), Some(_)) => return Err(invalid("the consultation already exists")),
        (_, None) => return Err(ConsultError::NotFound(msg.consultation_id.clone())),
        (Some(kind), Some(mut c)) => {
            if c.peer != caller.as_str() {
                return Err(invalid("the consultation is not with the sender"));
            }
            if c.decision.is_some() {
                return Err(ConsultError::State("the consultation is closed".into()));
            }
            match kind {
                Kind::Answer(a) if c.role == "consulting" => c.answer = Some(a.clone()),
                Kind::Decision(d) if c.role == "consulted" => c.decision = Some(d.clone()),
                Kind::Extend(e)
                    if !c.extended && e.days <= MAX_DAYS && dates::parse(&e.due).is_some() =>
                {
                    c.extended = true;
                    c.days = e.days;
                    c.due.clone_from(&e.due);
                }
                _ => return Err(invalid("this step is not allowed here")),
            }
            c
        }
        (None, Some(_)) => return Err(invalid("empty step")),
    };
    audit_step(ctx, caller, &msg, "received");
    let kind = kind_name(msg.kind.as_ref());
    c.steps.push(msg);
    ctx.consults.save(&c, None)?;
    raise(ctx, &c, kind);
    Ok(false)
}

/// An operator alert about a consultation (no transaction details in it).
fn raise(ctx: &Context, c: &Consultation, what: &str) {
    let alert = Alert {
        kind: "consultation".into(),
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
    if let Ok(Some(a)) = ctx.watch.deconfliction_alert(alert) {
        tracing::info!(alert = a.seq, consultation = %c.id, step = what, "consultation alert");
    }
}

/// Raises due-soon and overdue reminders once each, as of `today`.
pub fn remind(ctx: &Context, today: Date) -> Result<u32, ConsultError> {
    let cal = calendar(ctx);
    let mut raised = 0;
    let _g = ctx.consults.lock();
    for mut c in ctx.consults.list()? {
        let what = match state(&c, today, &cal) {
            ConsultState::DueSoon { .. } => "due-soon",
            ConsultState::Overdue { .. } => "overdue",
            _ => continue,
        };
        if c.reminded.iter().any(|r| r == what) {
            continue;
        }
        c.reminded.push(what.to_owned());
        ctx.consults.save(&c, None)?;
        raise(ctx, &c, what);
        raised += 1;
    }
    Ok(raised)
}

/// Delivers queued steps to `peer`, retrying with back-off until acknowledged.
pub async fn deliver(ctx: Arc<Context>, peer: AgencyId, stop: CancellationToken) {
    let wake = ctx.wakers(&peer);
    let min = Duration::from_millis(ctx.config.sync.retry_min_ms);
    let max = Duration::from_millis(ctx.config.sync.retry_max_ms);
    let mut backoff = min;
    loop {
        let pending = ctx.consults.outbox(&peer);
        if pending.is_empty() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = wake.consult.notified() => continue,
                () = tokio::time::sleep(max) => continue,
            }
        }
        let mut failed = false;
        for (step, msg) in pending {
            let sent = match ctx.peers.channel(&peer, &ctx.tls) {
                Ok(channel) => FederationClient::new(channel)
                    .consult(msg)
                    .await
                    .map_err(|s| s.to_string()),
                Err(e) => Err(e),
            };
            match sent {
                Ok(_) => {
                    if let Err(error) = ctx.consults.delivered(&peer, step) {
                        tracing::error!(%error, "cannot clear a delivered consultation step");
                    }
                }
                Err(reason) => {
                    tracing::debug!(peer = %peer, %reason, "consultation step not delivered; will retry");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
                () = wake.consult.notified() => {}
            }
            backoff = (backoff * 2).min(max);
        } else {
            backoff = min;
        }
    }
}

/// Checks reminders every minute.
pub async fn reminders(ctx: Arc<Context>, stop: CancellationToken) {
    loop {
        if let Err(error) = remind(&ctx, dates::today()) {
            tracing::error!(%error, "consultation reminders failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(due: &str) -> Consultation {
        Consultation {
            id: "FR-SBDU-C1".into(),
            due: due.into(),
            ..Consultation::default()
        }
    }

    #[test]
    fn state_follows_the_stated_due_day_across_weekends_and_holidays() {
        let d = |s| dates::parse(s).unwrap();
        let plain = WorkCalendar::new([]);
        // Due Friday 2026-12-04.
        let due = c("2026-12-04");
        assert_eq!(state(&due, d("2026-11-30"), &plain), ConsultState::Open);
        assert_eq!(
            state(&due, d("2026-12-02"), &plain),
            ConsultState::DueSoon {
                working_days_left: 2
            }
        );
        assert_eq!(
            state(&due, d("2026-12-04"), &plain),
            ConsultState::DueSoon {
                working_days_left: 0
            }
        );
        // The weekend after a Friday deadline is overdue by no working day yet; Monday by one.
        assert_eq!(
            state(&due, d("2026-12-06"), &plain),
            ConsultState::Overdue {
                working_days_late: 0
            }
        );
        assert_eq!(
            state(&due, d("2026-12-07"), &plain),
            ConsultState::Overdue {
                working_days_late: 1
            }
        );
        // A holiday on that Monday does not count.
        let holiday = WorkCalendar::new([d("2026-12-07")]);
        assert_eq!(
            state(&due, d("2026-12-07"), &holiday),
            ConsultState::Overdue {
                working_days_late: 0
            }
        );
        // Answered or closed wins over the calendar; an overdue one is never closed by itself.
        let mut answered = c("2026-12-04");
        answered.answer = Some(ConsultAnswer {
            answer: "objection".into(),
            text: "x".into(),
        });
        assert_eq!(
            state(&answered, d("2027-06-01"), &plain),
            ConsultState::Answered
        );
        assert!(matches!(
            state(&due, d("2027-06-01"), &plain),
            ConsultState::Overdue { .. }
        ));
    }
}
