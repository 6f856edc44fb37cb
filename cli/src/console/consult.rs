//! The Consultations page: inbox (peers consulting us about our denials)
//! and outbox (our consultations), with working-day deadlines, due today and
//! overdue highlighted; a consultation's steps and its actions: answer
//! (with "more information" to ask for it), provide information, extend,
//! decide.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Form, Path, Query};
use axum::response::{Html, Redirect};
use serde::Deserialize;
use tessera_proto::v1::consult_message::Kind;
use tessera_proto::v1::{
    ConsultDecideRequest, ConsultExtendRequest, ConsultInformRequest, ConsultListRequest,
    ConsultRespondRequest, ConsultShowRequest, ConsultView,
};

use super::auth::{Session, check_csrf};
use super::page::{Done, csrf_field, esc, flash, iso_s, layout, url_part};
use super::{PageError, Shared};

/// The deadline in words, and the row class that highlights it.
fn timing(v: &ConsultView) -> (String, &'static str) {
    let due = v.consultation.as_ref().map_or("", |c| c.due.as_str());
    match v.state.as_str() {
        "overdue" => (
            format!(
                "overdue by {} working day(s) (was due {due})",
                v.working_days.abs()
            ),
            "bad",
        ),
        "due-soon" | "open" if v.working_days == 0 => (format!("due today ({due})"), "warn"),
        "due-soon" | "open" => (
            format!("{} working day(s) left, due {due}", v.working_days),
            if v.state == "due-soon" { "warn" } else { "" },
        ),
        other => (format!("{other}; was due {due}"), ""),
    }
}

/// A table of consultations.
pub fn table(views: &[ConsultView]) -> String {
    let mut out = String::from(
        r#"<table><thead><tr><th scope="col">Consultation</th><th scope="col">With</th><th scope="col">About denial</th><th scope="col">State</th><th scope="col">Deadline</th><th scope="col">Answer / decision</th></tr></thead><tbody>"#,
    );
    for v in views {
        let Some(c) = &v.consultation else { continue };
        let (deadline, class) = timing(v);
        let denial = c
            .open
            .as_ref()
            .map(|o| format!("{}/{}", o.denial_origin, o.denial_serial))
            .unwrap_or_default();
        // Information answers a question: until the new answer, say so.
        let informed = c.answer.is_none()
            && c.decision.is_none()
            && matches!(
                c.steps.last().and_then(|s| s.kind.as_ref()),
                Some(Kind::Inform(_))
            );
        let outcome = [
            c.answer.as_ref().map(|a| a.answer.clone()),
            informed.then(|| "information provided, awaiting the answer".to_owned()),
            c.decision.as_ref().map(|d| d.decision.clone()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" → ");
        let _ = write!(
            out,
            r#"<tr class="{class}"><td><a href="/consultations/{u}">{id}</a></td><td>{peer}</td><td>{denial}</td><td>{state}</td><td>{deadline}</td><td>{outcome}</td></tr>"#,
            u = url_part(&c.id),
            id = esc(&c.id),
            peer = esc(&c.peer),
            denial = esc(&denial),
            state = esc(&v.state),
            deadline = esc(&deadline),
            outcome = esc(&outcome),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// `GET /consultations`.
pub async fn list(state: Shared, Query(done): Query<Done>) -> Result<Html<String>, PageError> {
    let r = state
        .op()
        .consult_list(ConsultListRequest {})
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner();
    let (inbox, outbox): (Vec<ConsultView>, Vec<ConsultView>) =
        r.consultations.into_iter().partition(|v| {
            v.consultation
                .as_ref()
                .is_some_and(|c| c.role == "consulted")
        });
    let mut body = flash(done.done.as_deref());
    body.push_str("<p>Deadlines count working days in this agency's calendar. Rows due today are amber, overdue ones red.</p>");
    let _ = write!(
        body,
        "<h2>Inbox: peers consulting us about our denials ({})</h2>",
        inbox.len()
    );
    body.push_str(&if inbox.is_empty() {
        "<p>None.</p>".to_owned()
    } else {
        table(&inbox)
    });
    let _ = write!(
        body,
        "<h2>Outbox: our consultations of peers ({})</h2>",
        outbox.len()
    );
    body.push_str(&if outbox.is_empty() {
        "<p>None. Open one from an alert (escalate) or with <code>tessera consult open</code>.</p>"
            .to_owned()
    } else {
        table(&outbox)
    });
    Ok(layout(
        state.agency(),
        "Consultations",
        "/consultations",
        &body,
    ))
}

fn step_words(kind: Option<&Kind>) -> String {
    match kind {
        Some(Kind::Open(o)) => format!(
            "opened about {}/{}: {} working days, due {}",
            o.denial_origin, o.denial_serial, o.days, o.due
        ),
        Some(Kind::Answer(a)) if a.text.is_empty() => format!("answered: {}", a.answer),
        Some(Kind::Answer(a)) => format!("answered: {} — {}", a.answer, a.text),
        Some(Kind::Extend(e)) => format!("extended to {} working days, due {}", e.days, e.due),
        Some(Kind::Inform(i)) => format!("provided information — {}", i.text),
        Some(Kind::Decision(d)) if d.text.is_empty() => format!("decided: {}", d.decision),
        Some(Kind::Decision(d)) => format!("decided: {} — {}", d.decision, d.text),
        None => "-".to_owned(),
    }
}

/// `GET /consultations/{id}`.
pub async fn show(
    state: Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Html<String>, PageError> {
    let v = state
        .op()
        .consult_show(ConsultShowRequest { id: id.clone() })
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner();
    let c = v
        .consultation
        .clone()
        .ok_or_else(|| PageError::NotFound(format!("consultation {id}")))?;
    let mut body = flash(done.done.as_deref());
    body.push_str(&table(std::slice::from_ref(&v)));
    if v.undelivered > 0 {
        let _ = write!(
            body,
            r#"<p class="warn">{} step(s) waiting for delivery to {} (retried until acknowledged).</p>"#,
            v.undelivered,
            esc(&c.peer)
        );
    }
    if let Some(o) = &c.open {
        let _ = write!(
            body,
            "<h2>Transaction summary</h2><pre>{}</pre>",
            esc(o.summary.trim())
        );
    }
    body.push_str(r#"<h2>Steps</h2><table><thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">From</th><th scope="col">Step</th></tr></thead><tbody>"#);
    for (i, s) in c.steps.iter().enumerate() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            iso_s(s.sent_at),
            esc(&s.from),
            esc(&step_words(s.kind.as_ref()))
        );
    }
    body.push_str("</tbody></table>");
    let csrf = csrf_field(&session);
    let u = url_part(&c.id);
    let closed = v.state == "closed";
    // The denying side answers once; "more information" may be followed by a new answer.
    let may_answer = c
        .answer
        .as_ref()
        .is_none_or(|a| a.answer == "more-information");
    if !closed && c.role == "consulted" && may_answer {
        let _ = write!(
            body,
            r#"<h2>Answer</h2><form method="post" action="/consultations/{u}/answer" id="answer">{csrf}
<div class="grid"><div><label for="answer-kind">Answer</label><select id="answer-kind" name="answer"><option value="no-objection">No objection</option><option value="objection">Objection</option><option value="more-information">Ask for more information</option></select></div>
<div><label for="answer-text">Reasons or question <span class="hint">(required for an objection or a question)</span></label><textarea id="answer-text" name="text"></textarea></div></div>
<p><button type="submit">Send the answer</button></p></form>"#
        );
    }
    if !closed && c.role == "consulting" && c.decision.is_none() {
        let asked = match &c.answer {
            Some(a) if a.answer == "more-information" => format!(
                r#"<p class="warn">{} asks: {}</p>"#,
                esc(&c.peer),
                esc(&a.text)
            ),
            _ => String::new(),
        };
        let _ = write!(
            body,
            r#"<h2>Provide information</h2>{asked}<form method="post" action="/consultations/{u}/inform" id="inform">{csrf}
<p><label for="inform-text">Information for {peer} <span class="hint">(asked for, or of your own accord; the deadline does not move)</span></label><textarea id="inform-text" name="text" required></textarea></p>
<p><button type="submit">Send the information</button></p></form>"#,
            peer = esc(&c.peer)
        );
        let _ = write!(
            body,
            r#"<h2>Decide</h2><form method="post" action="/consultations/{u}/decide" id="decide">{csrf}
<div class="grid"><div><label for="decision">Decision</label><select id="decision" name="decision"><option value="refused">Refused</option><option value="granted">Granted (notified to the group)</option><option value="withdrawn">Withdrawn</option></select></div>
<div><label for="decision-text">Reasons</label><textarea id="decision-text" name="text"></textarea></div></div>
<p><button type="submit">Record the decision</button></p></form>"#
        );
    }
    if !closed && !c.extended {
        let _ = write!(
            body,
            r#"<h2>Extend the deadline</h2><form method="post" action="/consultations/{u}/extend" class="inline" id="extend">{csrf}<label for="days">New total of working days (at most 30, once)</label><input type="number" id="days" name="days" min="1" max="30" value="20" style="width:6em"><button type="submit" class="secondary">Extend</button></form>"#
        );
    }
    Ok(layout(
        state.agency(),
        &format!("Consultation {}", c.id),
        "/consultations",
        &body,
    ))
}

#[derive(Debug, Deserialize)]
pub struct ActForm {
    csrf: String,
    #[serde(default)]
    answer: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    days: u32,
}

/// `POST /consultations/{id}/{answer|inform|decide|extend}`.
pub async fn act(
    state: Shared,
    Extension(session): Extension<Session>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&session, &form.csrf)?;
    let mut op = state.op();
    let done = match action.as_str() {
        "answer" => {
            op.consult_respond(ConsultRespondRequest {
                id: id.clone(),
                answer: form.answer.clone(),
                text: form.text,
            })
            .await
            .map_err(|s| state.failed(&s))?;
            format!("Answer sent: {}", form.answer)
        }
        "inform" => {
            op.consult_inform(ConsultInformRequest {
                id: id.clone(),
                text: form.text,
            })
            .await
            .map_err(|s| state.failed(&s))?;
            "Information sent".to_owned()
        }
        "decide" => {
            op.consult_decide(ConsultDecideRequest {
                id: id.clone(),
                decision: form.decision.clone(),
                text: form.text,
            })
            .await
            .map_err(|s| state.failed(&s))?;
            format!("Decision recorded: {}", form.decision)
        }
        "extend" => {
            op.consult_extend(ConsultExtendRequest {
                id: id.clone(),
                days: form.days,
            })
            .await
            .map_err(|s| state.failed(&s))?;
            format!("Deadline extended to {} working days", form.days)
        }
        other => return Err(PageError::NotFound(format!("action {other}"))),
    };
    Ok(Redirect::to(&format!(
        "/consultations/{}?done={}",
        url_part(&id),
        url_part(&done)
    )))
}
